/**
 * The PPRC layer of a primary volume: reads pass straight through (W3: PPRC
 * never delays them); writes, write-zeroes and trims go to the pair's write
 * path (Pair.hostWrite: mirror / record / refuse, W1-W6). Flush makes the
 * pair's track marks durable first, then reaches this volume and the
 * secondary, so a host flush makes the mirror durable on both sides.
 * Detached (pair terminated while layers sat above it) it passes everything.
 *
 * It keeps the NBD fast path (nbd/fast-path.ts SlotPassingLayer) when it sits
 * directly on the LUN: reads pass `into` through, and a write's buffer (a slot
 * of the engine's arena) is used by both sides only until the write settles:
 * the pair applies locally after the secondary's ack, resends a request cut by
 * a link going down only once the secondary is done with the lost copy, and
 * never starts a copy on the secondary after the ack timed out (Pair.remote).
 */
import { PassThroughLayer } from '../../volume/pass-through-layer.js';
import type { Extent, Volume, WriteOptions, WriteZeroesOptions } from '../../volume/volume.js';

/** A host update as the pair's write path applies it: locally, and to the secondary channel. */
export interface Update {
  kind: 'write' | 'write-zeroes' | 'trim';
  offset: number;
  length: number;
  /** A write's data (a local pair may write it to both LUNs in one request). */
  data?: Uint8Array;
  apply(v: Volume, fua: boolean): Promise<void>;
}

export interface WritePath {
  hostWrite(update: Update, below: Volume, fua: boolean): Promise<void>;
  /** Writes are being held (consistency group): they may wait long. */
  readonly holding: boolean;
  /** fdatasync the track marks written so far (before the flush makes the writes they cover durable). */
  syncMarks(): Promise<void>;
  flushSecondary(): Promise<void>;
}

export class MirrorLayer extends PassThroughLayer {
  readonly passesSlots = true as const;

  constructor(
    below: Volume,
    private path: WritePath | undefined,
  ) {
    super(below);
  }

  override write(offset: number, data: Uint8Array, options?: WriteOptions): Promise<void> {
    // A held write may wait up to the consistency timeout: it waits on its own copy, not on a slot of the
    // engine's arena that every LUN shares.
    if (this.path?.holding && data.buffer instanceof SharedArrayBuffer) data = Uint8Array.prototype.slice.call(data);
    return this.update({ kind: 'write', offset, length: data.byteLength, data, apply: (v, fua) => v.write(offset, data, fua ? { ...options, fua } : options) }, options);
  }

  override writeZeroes(offset: number, length: number, options?: WriteZeroesOptions): Promise<void> {
    return this.update({ kind: 'write-zeroes', offset, length, apply: (v, fua) => v.writeZeroes(offset, length, fua ? { ...options, fua } : options) }, options);
  }

  override trim(offset: number, length: number, options?: WriteOptions): Promise<void> {
    return this.update({ kind: 'trim', offset, length, apply: (v, fua) => v.trim(offset, length, fua ? { ...options, fua } : options) }, options);
  }

  override async flush(): Promise<void> {
    await this.path?.syncMarks();
    await this.below.flush();
    await this.path?.flushSecondary();
  }

  detach(): void {
    this.path = undefined;
  }

  get attached(): boolean {
    return this.path !== undefined;
  }

  private update(update: Update, options: WriteOptions | undefined): Promise<void> {
    if (!this.path) return update.apply(this.below, false);
    return this.path.hostWrite(update, this.below, options?.fua ?? false);
  }
}
