import type { Socket } from 'node:net';
import { LunrigError } from '../errors.js';
import { ByteQueue } from './byte-queue.js';

/**
 * Exact-length reads from a socket as promises, for the client's handshake,
 * where each step waits for one message. After the handshake the queue (with
 * any bytes already received) is handed to the transmission reply reader.
 */
export class SocketReader {
  readonly queue = new ByteQueue();
  private waiter: { n: number; resolve: (b: Buffer) => void; reject: (e: Error) => void } | undefined;
  private failure: LunrigError | undefined;
  private attached = true;
  private readonly onData = (chunk: Buffer): void => {
    this.queue.push(chunk);
    this.settle();
  };
  private readonly onEnd = (): void => this.fail(new LunrigError('UNREACHABLE', 'NBD server closed the connection during the handshake'));
  private readonly onError = (err: Error): void => this.fail(new LunrigError('UNREACHABLE', `NBD connection failed: ${err.message}`, undefined, { cause: err }));

  constructor(private readonly socket: Socket) {
    socket.on('data', this.onData);
    socket.on('end', this.onEnd);
    socket.on('close', this.onEnd);
    socket.on('error', this.onError);
  }

  read(n: number): Promise<Buffer> {
    if (this.waiter) return Promise.reject(new LunrigError('INTERNAL', 'SocketReader: concurrent reads'));
    if (this.queue.length >= n) return Promise.resolve(this.queue.take(n));
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.waiter = { n, resolve, reject };
    });
  }

  /** Fail the pending read (e.g. on a handshake timeout). */
  fail(err: LunrigError): void {
    this.failure ??= err;
    const w = this.waiter;
    this.waiter = undefined;
    w?.reject(this.failure);
  }

  /** Stop listening; the caller takes over the socket and `queue`. */
  detach(): void {
    if (!this.attached) return;
    this.attached = false;
    this.socket.off('data', this.onData);
    this.socket.off('end', this.onEnd);
    this.socket.off('close', this.onEnd);
    this.socket.off('error', this.onError);
  }

  private settle(): void {
    const w = this.waiter;
    if (w && this.queue.length >= w.n) {
      this.waiter = undefined;
      w.resolve(this.queue.take(w.n));
    }
  }
}
