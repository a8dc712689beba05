/**
 * The bytes received on a socket and not yet parsed, kept as the list of
 * chunks the socket delivered (never Buffer.concat per chunk). Reads return
 * views into a chunk when the bytes lie in one, and copy only when a message
 * straddles chunks.
 */
export class ByteQueue {
  private chunks: Buffer[] = [];
  /** Offset of the first unread byte in chunks[0]. */
  private head = 0;
  private _length = 0;

  get length(): number {
    return this._length;
  }

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this._length += chunk.length;
  }

  /** The next `n` bytes without consuming them; a view when contiguous. Caller ensures n <= length. */
  peek(n: number): Buffer {
    const first = this.chunks[0]!;
    if (first.length - this.head >= n) return first.subarray(this.head, this.head + n);
    const out = Buffer.allocUnsafe(n);
    let copied = 0;
    let offset = this.head;
    for (const c of this.chunks) {
      const m = Math.min(c.length - offset, n - copied);
      c.copy(out, copied, offset, offset + m);
      copied += m;
      offset = 0;
      if (copied === n) break;
    }
    return out;
  }

  /** Consume and return the next `n` bytes; a view when contiguous. Caller ensures n <= length. */
  take(n: number): Buffer {
    if (n === 0) return Buffer.alloc(0);
    const out = this.peek(n);
    this.skip(n);
    return out;
  }

  /** Consume up to `n` bytes as views of the received chunks; returns the views (total <= n). */
  takeChunks(n: number): Buffer[] {
    const out: Buffer[] = [];
    while (n > 0 && this.chunks.length > 0) {
      const first = this.chunks[0]!;
      const m = Math.min(first.length - this.head, n);
      out.push(first.subarray(this.head, this.head + m));
      this.advance(m);
      n -= m;
    }
    return out;
  }

  /** Copy up to `n` bytes into `target` at `at`, consuming them; returns the count copied. */
  copyInto(target: Uint8Array, at: number, n: number): number {
    let copied = 0;
    while (copied < n && this.chunks.length > 0) {
      const first = this.chunks[0]!;
      const m = Math.min(first.length - this.head, n - copied);
      target.set(first.subarray(this.head, this.head + m), at + copied);
      this.advance(m);
      copied += m;
    }
    return copied;
  }

  /** Drop up to `n` bytes; returns the count dropped. */
  skip(n: number): number {
    let dropped = 0;
    while (dropped < n && this.chunks.length > 0) {
      const first = this.chunks[0]!;
      const m = Math.min(first.length - this.head, n - dropped);
      this.advance(m);
      dropped += m;
    }
    return dropped;
  }

  clear(): void {
    this.chunks = [];
    this.head = 0;
    this._length = 0;
  }

  private advance(m: number): void {
    this.head += m;
    this._length -= m;
    if (this.head === this.chunks[0]!.length) {
      this.chunks.shift();
      this.head = 0;
    }
  }
}

/** Join views into one contiguous buffer (no copy for a single view). */
export function joinChunks(chunks: Buffer[], total: number): Buffer {
  if (chunks.length === 1) return chunks[0]!;
  const out = Buffer.allocUnsafe(total);
  let at = 0;
  for (const c of chunks) {
    c.copy(out, at);
    at += c.length;
  }
  return out;
}
