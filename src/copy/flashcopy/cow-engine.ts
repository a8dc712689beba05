/**
 * The copy-on-write rules of one FlashCopy relationship (spec §2.3), shared by
 * its source layer and target layer. `source` and `target` are the Volumes
 * just below those layers: the source's current data and the target's own
 * blocks.
 *
 *  - read target, grain copied: from the target; not copied: from the source
 *    (still its T0 data: nobody writes an uncopied source grain, see below),
 *    under a shared grain lock so a copy-on-write cannot slip in mid-read;
 *  - write source, grain not copied: copy the whole grain to the target, commit
 *    copy and bit (GrainCommitter: durable, or written in order), then let the write through;
 *  - write target, grain not copied: first materialise the T0 grain on the
 *    target unless the write covers all of it, apply the write, then set the
 *    bit: nothing copies over that grain afterwards;
 *  - incremental relationships also record every written grain as changed,
 *    durably before the write (a lost mark would make a refresh skip it).
 * Grains beyond the covered size (a larger target) pass straight through.
 */
import { LunrigError } from '../../errors.js';
import type { Extent, Volume } from '../../volume/volume.js';
import type { GrainBitmaps } from './grain-bitmaps.js';
import type { GrainCommitter } from './grain-committer.js';
import type { GrainGeometry, GrainSpan } from './grain-geometry.js';
import type { GrainCopier } from './grain-copier.js';
import { GrainLocks } from './grain-locks.js';
import type { GrainMover } from './worker-grain-mover.js';

export interface Batch {
  /** Grains locked for this batch (ascending). */
  grains: number[];
  /** Bytes of volume they cover (holes included: they count against the copy rate like data). */
  bytes: number;
  /** Where the next batch should start looking. */
  next: number;
}

export class CowEngine {
  readonly locks = new GrainLocks();

  constructor(
    readonly geometry: GrainGeometry,
    readonly bitmaps: GrainBitmaps,
    private readonly committer: GrainCommitter,
    /** Below the source layer: the source's current data. */
    readonly source: Volume,
    /** Below the target layer: the target's own blocks. */
    readonly target: Volume,
    /** Grain copies inside the I/O workers when both ends are plain worker-engine LUNs (worker-grain-mover.ts). */
    private readonly mover?: GrainMover,
  ) {}

  /** True when grain copies run inside the I/O workers (OP_COPY) rather than through the Volumes. */
  get copiesInWorkers(): boolean {
    return this.mover !== undefined;
  }

  /** Copy-on-write for a source write, trim or write-zeroes about to touch [offset, offset + length). */
  async beforeSourceWrite(offset: number, length: number): Promise<void> {
    const span = this.geometry.span(offset, length);
    if (span.count === 0) return;
    const changed = this.bitmaps.allChanged(span) ? undefined : span;
    if (this.bitmaps.allCopied(span)) {
      if (changed) await this.committer.commit({ changed });
      return;
    }
    const release = await this.locks.acquire(this.bitmaps.uncopiedIn(span), true);
    try {
      const todo = this.bitmaps.uncopiedIn(span);
      // 'power' with worker copies: each copy is FUA (fdatasynced in the worker's group commit
      // with the batch), so the round needs no separate target flush before the bits.
      const fua = this.mover !== undefined && this.committer.durability === 'power';
      await Promise.all(todo.map((g) => this.copyGrain(g, fua)));
      await this.committer.commit({ copied: todo, changed, flushTarget: !fua });
    } finally {
      release();
    }
  }

  async readTarget(offset: number, length: number, into?: Uint8Array): Promise<Uint8Array> {
    const span = this.geometry.span(offset, length);
    if (span.count === 0 || this.bitmaps.allCopied(span)) return this.target.read(offset, length, into);
    if (into && into.byteLength < length) throw new LunrigError('INVALID_ARGUMENT', `read buffer of ${into.byteLength} bytes is shorter than ${length}`);
    const out = into ?? new Uint8Array(length);
    const release = await this.locks.acquire(this.bitmaps.uncopiedIn(span), false);
    try {
      await Promise.all(this.runs(offset, length, span).map(([from, pos, n]) => from.read(pos, n, out.subarray(pos - offset, pos - offset + n))));
    } finally {
      release();
    }
    return out;
  }

  /** A target write, trim or write-zeroes (`apply`, on the target's own blocks) over [offset, offset + length). */
  async mutateTarget(offset: number, length: number, apply: () => Promise<void>): Promise<void> {
    const span = this.geometry.span(offset, length);
    if (span.count === 0) return apply();
    // Changed marks go first: for an already copied grain the write lands as soon as `apply` runs.
    if (!this.bitmaps.allChanged(span)) await this.committer.commit({ changed: span });
    if (this.bitmaps.allCopied(span)) return apply();
    const release = await this.locks.acquire(this.bitmaps.uncopiedIn(span), true);
    try {
      const todo = this.bitmaps.uncopiedIn(span);
      await Promise.all(todo.filter((g) => !this.geometry.covers(g, offset, length)).map((g) => this.copyGrain(g)));
      await apply();
      await this.committer.commit({ copied: todo, flushTarget: true });
    } finally {
      release();
    }
  }

  async blockStatusTarget(offset: number, length: number): Promise<Extent[]> {
    const span = this.geometry.span(offset, length);
    if (span.count === 0 || this.bitmaps.allCopied(span)) return this.target.blockStatus(offset, length);
    const release = await this.locks.acquire(this.bitmaps.uncopiedIn(span), false);
    try {
      const parts = await Promise.all(this.runs(offset, length, span).map(([from, pos, n]) => from.blockStatus(pos, n)));
      return mergeExtents(parts.flat());
    } finally {
      release();
    }
  }

  /**
   * Write the T0 image of grain g (the source's current data: the caller holds the grain) onto the target;
   * `fua`: durable when it resolves (worker copies only; the Volume path always needs the committer's flush).
   */
  async copyGrain(grain: number, fua = false): Promise<number> {
    const start = this.geometry.start(grain);
    const length = this.geometry.end(grain) - start;
    if (this.mover) {
      await this.mover.copy(start, length, fua);
      return length;
    }
    if (fua) throw new LunrigError('INTERNAL', 'copyGrain: FUA copies need the worker path');
    const data = await this.source.read(start, length);
    // A grain of zeros (a hole, usually) stays a hole on the target.
    if (isZero(data)) await this.target.writeZeroes(start, length);
    else await this.target.write(start, data);
    return length;
  }

  /**
   * Background copy, step 1 (synchronous, so concurrent steps never pick the
   * same grain): lock up to `maxGrains` uncopied grains from `from` on
   * (wrapping around once) that no request holds. Grains a request holds are
   * left for a later pass.
   */
  takeBatch(from: number, maxGrains: number): Batch {
    const grains: number[] = [];
    let g = this.bitmaps.nextUncopied(from);
    if (g < 0 && from > 0) g = this.bitmaps.nextUncopied(0);
    for (; g >= 0 && grains.length < maxGrains; g = this.bitmaps.nextUncopied(g + 1)) {
      if (this.locks.tryExclusive(g)) grains.push(g);
    }
    const last = grains[grains.length - 1];
    const bytes = grains.reduce((n, p) => n + this.geometry.end(p) - this.geometry.start(p), 0);
    return { grains, bytes, next: last === undefined || last + 1 >= this.geometry.grains ? 0 : last + 1 };
  }

  /** Background copy, step 2: copy the batch's grains with `copier`, commit their bits, unlock them. */
  async copyBatch(copier: GrainCopier, batch: Batch): Promise<void> {
    try {
      if (batch.grains.length === 0) return;
      await copier.copy(batch.grains);
      await this.committer.commit({ copied: batch.grains, flushTarget: !copier.durable });
    } finally {
      this.locks.releaseExclusive(batch.grains);
    }
  }

  /** Both steps at once. */
  async backgroundBatch(copier: GrainCopier, from: number, maxGrains: number): Promise<Batch> {
    const batch = this.takeBatch(from, maxGrains);
    await this.copyBatch(copier, batch);
    return batch;
  }

  /** A host FLUSH or FUA on either volume: every copy and bit so far durable (a no-op under 'power' durability). */
  sync(): Promise<void> {
    return this.committer.sync();
  }

  /** Resolves once every commit so far has settled (durable under 'power', written under 'process'). */
  idle(): Promise<void> {
    return this.committer.idle();
  }

  /** [volume, offset, length] pieces of [offset, offset + length): copied runs from the target, the rest from the source. */
  private runs(offset: number, length: number, span: GrainSpan): Array<[Volume, number, number]> {
    const end = offset + length;
    const coveredEnd = Math.min(end, this.geometry.size);
    const out: Array<[Volume, number, number]> = [];
    const limit = span.first + span.count;
    let pos = offset;
    let g = span.first;
    while (pos < coveredEnd) {
      const copied = this.bitmaps.isCopied(g);
      const h = this.bitmaps.runEnd(g, limit, copied);
      const stop = Math.min(h >= limit ? coveredEnd : this.geometry.start(h), coveredEnd);
      out.push([copied ? this.target : this.source, pos, stop - pos]);
      pos = stop;
      g = h;
    }
    if (coveredEnd < end) out.push([this.target, coveredEnd, end - coveredEnd]);
    return out;
  }
}

function isZero(data: Uint8Array): boolean {
  // Word-wise: a grain is up to 1 MiB and most grains are not zero, so this usually stops at once.
  const words = data.byteLength >>> 3;
  const view = new BigUint64Array(data.buffer, data.byteOffset, data.byteOffset % 8 === 0 ? words : 0);
  for (let i = 0; i < view.length; i++) if (view[i] !== 0n) return false;
  for (let i = view.length * 8; i < data.byteLength; i++) if (data[i] !== 0) return false;
  return true;
}

function mergeExtents(extents: Extent[]): Extent[] {
  const out: Extent[] = [];
  for (const e of extents) {
    const last = out[out.length - 1];
    if (last && last.kind === e.kind && last.offset + last.length === e.offset) last.length += e.length;
    else out.push({ ...e });
  }
  return out;
}
