/**
 * Raw NBD-over-TLS sessions for the TLS tests: do the plaintext greeting and
 * STARTTLS by hand, then run tls.connect on the socket with whatever options
 * a test wants (TLS 1.2 only, a PSK suite, no certificate...), and speak
 * options over the encrypted stream.
 */
import net from 'node:net';
import tls from 'node:tls';
import * as C from '../../../src/nbd/constants.js';
import { decodeOptionReplyHeader, encodeClientFlags, encodeOption } from '../../../src/nbd/handshake-codec.js';
import { SocketReader } from '../../../src/nbd/socket-reader.js';
import type { OptionReply } from './harness.js';

export class RawSession {
  private constructor(
    public socket: net.Socket,
    public reader: SocketReader,
  ) {}

  /** Connect, read the greeting, send FIXED_NEWSTYLE | NO_ZEROES. */
  static async open(path: string, clientFlags = C.NBD_FLAG_C_FIXED_NEWSTYLE | C.NBD_FLAG_C_NO_ZEROES): Promise<RawSession> {
    const socket = net.connect({ path });
    socket.on('error', () => undefined);
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    const s = new RawSession(socket, new SocketReader(socket));
    await s.reader.read(C.NBD_GREETING_SIZE);
    socket.write(encodeClientFlags(clientFlags));
    return s;
  }

  async option(option: number, data: Uint8Array = Buffer.alloc(0)): Promise<OptionReply[]> {
    this.socket.write(encodeOption(option, data));
    const out: OptionReply[] = [];
    for (;;) {
      const h = decodeOptionReplyHeader(await this.reader.read(C.NBD_OPTION_REPLY_HEADER_SIZE));
      const r = { option: h.option, type: h.type, data: await this.reader.read(h.length) };
      out.push(r);
      if (r.type === C.NBD_REP_ACK || (r.type & C.NBD_REP_FLAG_ERROR) !== 0) return out;
    }
  }

  /** STARTTLS, then the TLS handshake with `options`; resolves with the TLS socket or rejects with the handshake error. */
  async startTls(options: tls.ConnectionOptions): Promise<tls.TLSSocket> {
    const [ack] = await this.option(C.NBD_OPT_STARTTLS);
    if (ack!.type !== C.NBD_REP_ACK) throw new Error(`STARTTLS refused: 0x${ack!.type.toString(16)}`);
    this.reader.detach();
    const socket = tls.connect({ socket: this.socket, rejectUnauthorized: false, ...options });
    await new Promise<void>((resolve, reject) => {
      socket.once('secureConnect', resolve);
      socket.once('error', reject);
      socket.once('close', () => reject(new Error('closed during the TLS handshake')));
    });
    socket.on('error', () => undefined);
    this.socket = socket;
    this.reader = new SocketReader(socket);
    return socket;
  }

  get closed(): Promise<void> {
    return new Promise((resolve) => (this.socket.destroyed ? resolve() : this.socket.once('close', () => resolve())));
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/** The close reason of the next connection the server ends. */
export function nextDisconnect(server: { once(ev: 'disconnect', f: (i: { id: number; reason: string }) => void): unknown }): Promise<string> {
  return new Promise((resolve) => server.once('disconnect', (i) => resolve(i.reason)));
}
