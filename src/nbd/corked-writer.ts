import type { Socket } from 'node:net';

/**
 * Batches everything written to a socket within one tick into one corked
 * write (a single writev): replies (or requests) completed together leave
 * together, and a header and its data never go out as separate packets.
 */
export class CorkedWriter {
  private corked = false;
  private readonly uncork = (): void => {
    this.corked = false;
    if (!this.socket.destroyed) this.socket.uncork();
  };

  constructor(private readonly socket: Socket) {}

  send(buffers: readonly Uint8Array[]): void {
    if (this.socket.destroyed || this.socket.writableEnded) return;
    if (!this.corked) {
      this.corked = true;
      this.socket.cork();
      process.nextTick(this.uncork);
    }
    for (const b of buffers) this.socket.write(b);
  }

  /**
   * Send one buffer the caller must keep intact until `written` runs: once the
   * socket is done with it (handed to the kernel, or dropped because the
   * socket was destroyed). Returns false, without calling `written`, when the
   * socket takes no more writes.
   */
  sendOwned(buffer: Uint8Array, written: () => void): boolean {
    if (this.socket.destroyed || this.socket.writableEnded) return false;
    if (!this.corked) {
      this.corked = true;
      this.socket.cork();
      process.nextTick(this.uncork);
    }
    this.socket.write(buffer, written);
    return true;
  }

  /** Hand what is corked to the socket now, not at the end of the tick (before STARTTLS wraps it). */
  flush(): void {
    if (this.corked) this.uncork();
  }

  /** Bytes handed to the socket and not yet accepted by the kernel. */
  get buffered(): number {
    return this.socket.writableLength;
  }
}
