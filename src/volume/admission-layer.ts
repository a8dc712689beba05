/**
 * A layer that only decides whether a request may go on (a fault switch, a
 * reservation, a link, an access gate) and then passes it down unchanged.
 * Subclasses say yes, later, or no in `admit`; the operations and their
 * order live here once.
 */
import { PassThroughLayer } from './pass-through-layer.js';
import type { Extent, WriteOptions, WriteZeroesOptions } from './volume.js';

/** Reads and block status read; writes, write-zeroes, trims and flushes change (or commit) data. */
export type RequestKind = 'read' | 'write';

export abstract class AdmissionLayer extends PassThroughLayer {
  override read(offset: number, length: number, into?: Uint8Array): Promise<Uint8Array> {
    return this.pass('read', () => this.below.read(offset, length, into));
  }

  override write(offset: number, data: Uint8Array, options?: WriteOptions): Promise<void> {
    return this.pass('write', () => this.below.write(offset, data, options));
  }

  override writeZeroes(offset: number, length: number, options?: WriteZeroesOptions): Promise<void> {
    return this.pass('write', () => this.below.writeZeroes(offset, length, options));
  }

  override trim(offset: number, length: number, options?: WriteOptions): Promise<void> {
    return this.pass('write', () => this.below.trim(offset, length, options));
  }

  override flush(): Promise<void> {
    return this.pass('write', () => this.below.flush());
  }

  override blockStatus(offset: number, length: number): Promise<Extent[]> {
    return this.pass('read', () => this.below.blockStatus(offset, length));
  }

  /**
   * `undefined`: go on at once (no extra await on the hot path); a promise:
   * go on once it resolves, or fail with its rejection.
   */
  protected abstract admit(kind: RequestKind): Promise<void> | undefined;

  private pass<T>(kind: RequestKind, op: () => Promise<T>): Promise<T> {
    const wait = this.admit(kind);
    return wait ? wait.then(op) : op();
  }
}
