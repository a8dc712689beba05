/**
 * A pair's two track bitmaps over one BitmapStore (store/bitmap-journal.ts):
 *  - OOS (out of sync): tracks the secondary may lack. Set durably before the
 *    write it marks is applied or acknowledged (suspended; failed mirror
 *    writes); cleared by the copier once the track is on both sides.
 *  - HOT: tracks with a mirrored write possibly in flight (dm-log "region"
 *    style). Set durably before a mirror write leaves, for the whole region
 *    of `regionTracks` tracks around it; cleared lazily, a region at a time,
 *    once it has had no mirror write for a while (the manager's sweep, after
 *    flushing both sides with 'power'). Recovery adds HOT to OOS: a write in
 *    flight at a crash may be on the secondary only. Regions and a quiet
 *    period make the journal record per write rare (a region stays hot while
 *    it is being written), at the price of copying whole regions after a
 *    crash: measured on 4 KiB random writes, a record per write cost a
 *    quarter of a local pair's IOPS.
 *
 * How durable a mark is before the write it covers goes ahead is the pair's
 * durability (README "Durability of the marks"): 'power' fdatasyncs every
 * mark (group-committed); 'process' writes the journal record (the page cache
 * survives a kill -9) and leaves the fdatasync to `sync()`, which the write
 * path calls for FUA / fsyncOnAck writes and the mirror layer for host flushes.
 *
 * The store only sets bits (`set`) or replaces all at once. The in-memory
 * copies here are the truth and always a subset of what is in the journal:
 * a bit is set here and handed to the store in the same tick, so a
 * `replace` computed from these copies can never drop a set still queued.
 * A bit already set here is not written again (a write to a HOT region costs
 * nothing); one call's ranges go to the store as one `set` (one record each).
 */
import { native } from '../../native/index.js';
import type { BitmapStore } from '../../store/bitmap-journal.js';

export const OOS = 0;
export const HOT = 1;

export interface TrackBitmapsOptions {
  /** fdatasync each mark before it resolves ('power'); false: written, synced by `sync()` ('process'). Default true. */
  syncMarks?: boolean;
  /** Tracks per HOT region (default 1). */
  regionTracks?: number;
  /** Time for the regions' quiet periods (milliseconds). */
  now?: () => number;
}

export class TrackBitmaps {
  readonly oos: Uint8Array;
  readonly hot: Uint8Array;
  readonly syncMarks: boolean;
  readonly regionTracks: number;
  private readonly now: () => number;
  /** Mirror writes in flight per HOT region. */
  private readonly inFlight = new Map<number, number>();
  /** HOT regions with no write in flight, and when their last write ended (-Infinity: hot since the bitmaps opened). */
  private readonly quietSince = new Map<number, number>();
  /** Durable-set promises not yet resolved, per bitmap and track. */
  private readonly pending = [new Map<number, Promise<void>>(), new Map<number, Promise<void>>()];
  private chain: Promise<void> = Promise.resolve();
  private queued: Promise<void> | undefined;

  constructor(
    readonly store: BitmapStore,
    readonly tracks: number,
    options: TrackBitmapsOptions = {},
  ) {
    this.syncMarks = options.syncMarks ?? true;
    this.regionTracks = options.regionTracks ?? 1;
    if (!Number.isSafeInteger(this.regionTracks) || this.regionTracks < 1) throw new RangeError(`regionTracks must be a positive integer, got ${this.regionTracks}`);
    this.now = options.now ?? Date.now;
    this.oos = Uint8Array.from(store.bitmaps[OOS]!);
    this.hot = Uint8Array.from(store.bitmaps[HOT]!);
    for (let t = native.findNextSet(this.hot, 0, this.tracks); t >= 0 && t < this.tracks; t = native.findNextSet(this.hot, t + 1, this.tracks)) {
      this.quietSince.set(Math.floor(t / this.regionTracks), -Infinity);
    }
  }

  oosCount(): number {
    return native.popcount(this.oos, 0, this.tracks);
  }

  isOos(track: number): boolean {
    return native.testBit(this.oos, track);
  }

  /** Mark tracks [first, last] out of sync; resolves once in the journal (synced with `syncMarks`). */
  markOos(first: number, last: number): Promise<void> {
    return this.mark(OOS, this.oos, first, last);
  }

  /**
   * Mark the regions of tracks [first, last] hot (as `markOos`) and count a
   * write in flight on each; pair with `endHot`, even when it rejects.
   * Undefined (nothing to wait for) when they are hot already and their
   * marks are in the journal: the common case, kept free of promises.
   */
  beginHot(first: number, last: number): Promise<void> | undefined {
    const r0 = Math.floor(first / this.regionTracks);
    const r1 = Math.floor(last / this.regionTracks);
    for (let r = r0; r <= r1; r++) {
      this.inFlight.set(r, (this.inFlight.get(r) ?? 0) + 1);
      this.quietSince.delete(r);
    }
    const from = r0 * this.regionTracks;
    const to = Math.min(this.tracks, (r1 + 1) * this.regionTracks) - 1;
    if (this.pending[HOT]!.size === 0 && native.allSet(this.hot, from, to - from + 1)) return undefined;
    return this.mark(HOT, this.hot, from, to);
  }

  /** Make every mark written so far durable (fdatasync of the journal; nothing to do when none is pending). */
  sync(): Promise<void> {
    return this.store.sync?.() ?? Promise.resolve();
  }

  endHot(first: number, last: number): void {
    const now = this.now();
    for (let r = Math.floor(first / this.regionTracks); r <= Math.floor(last / this.regionTracks); r++) {
      const n = (this.inFlight.get(r) ?? 1) - 1;
      if (n <= 0) {
        this.inFlight.delete(r);
        this.quietSince.set(r, now);
      } else this.inFlight.set(r, n);
    }
  }

  /** HOT regions (of the tracks written) with no mirror write in flight. */
  get quietHotRegions(): number {
    return this.quietSince.size;
  }

  /** HOT regions whose last mirror write ended at or before `cutoff`, none in flight: flush both sides, then `clearHot` them. */
  quietHotRegionsSince(cutoff: number): number[] {
    const out: number[] = [];
    for (const [r, since] of this.quietSince) if (since <= cutoff) out.push(r);
    return out;
  }

  /**
   * Clear the HOT bits of `regions` in the journal, skipping any written
   * again after `cutoff` (its write may not be on both sides, or not flushed).
   */
  clearHot(regions: readonly number[], cutoff = Infinity): Promise<void> {
    const cleared: number[] = [];
    for (const r of regions) {
      const since = this.quietSince.get(r);
      if (since === undefined || since > cutoff) continue;
      this.quietSince.delete(r);
      const start = r * this.regionTracks;
      native.clearRange(this.hot, start, Math.min(this.tracks, start + this.regionTracks) - start);
      cleared.push(r);
    }
    cleared.sort((a, b) => a - b);
    const tracks: Array<{ start: number; count: number }> = [];
    for (const r of cleared) {
      const start = r * this.regionTracks;
      const count = Math.min(this.tracks, start + this.regionTracks) - start;
      const last = tracks[tracks.length - 1];
      if (last && last.start + last.count === start) last.count += count;
      else tracks.push({ start, count });
    }
    return this.commitRanges(HOT, tracks);
  }

  /** Clear OOS bits in memory (the copier, after copying); durable on the next `persistClears`. */
  clearOos(tracks: readonly number[]): void {
    for (const t of tracks) native.clearRange(this.oos, t, 1);
  }

  /** Every track out of sync (COPY_ENTIRE, full resync). */
  async setAllOos(): Promise<void> {
    native.setRange(this.oos, 0, this.tracks);
    await this.persistClears();
  }

  /** Nothing out of sync (NO_COPY with force). */
  async clearAllOos(): Promise<void> {
    native.clearRange(this.oos, 0, this.tracks);
    await this.persistClears();
  }

  /** Recovery: whatever was hot may be on one side only. */
  async foldHotIntoOos(): Promise<void> {
    native.or(this.oos, this.hot);
    this.hot.fill(0);
    this.quietSince.clear();
    await this.persistClears();
  }

  /**
   * Make bits cleared in memory (`clearOos`, `clearHot`) stick: 'process'
   * appends clear records (no fdatasync, no checkpoint: a write of a few
   * bytes); 'power', or a store without `clear`, replaces the bitmaps durably.
   */
  commitClears(bitmap: number, tracks: readonly number[]): Promise<void> {
    const ranges: Array<{ start: number; count: number }> = [];
    for (const t of [...tracks].sort((a, b) => a - b)) {
      const last = ranges[ranges.length - 1];
      if (last && last.start + last.count === t) last.count++;
      else if (!last || last.start + last.count < t) ranges.push({ start: t, count: 1 });
    }
    return this.commitRanges(bitmap, ranges);
  }

  private commitRanges(bitmap: number, ranges: ReadonlyArray<{ start: number; count: number }>): Promise<void> {
    if (this.syncMarks || !this.store.clear) return this.persistClears();
    return this.store.clear(
      ranges.map((r) => ({ bitmap, start: r.start, count: r.count })),
      { sync: false },
    );
  }

  /**
   * Make cleared bits durable: one replace of the bitmaps as in memory when it
   * starts; callers arriving while one runs share the next one.
   */
  persistClears(): Promise<void> {
    this.queued ??= this.chain.then(() => {
      this.queued = undefined;
      return this.store.replace([Uint8Array.from(this.oos), Uint8Array.from(this.hot)]);
    });
    this.chain = this.queued.catch(() => undefined);
    return this.queued;
  }

  private async mark(bitmap: number, bits: Uint8Array, first: number, last: number): Promise<void> {
    const waits: Promise<void>[] = [];
    const ranges: Array<{ start: number; end: number }> = [];
    let start = -1;
    for (let t = first; t <= last; t++) {
      if (native.testBit(bits, t)) {
        if (start >= 0) ranges.push({ start, end: t });
        start = -1;
        // Set here already: its record may still be on its way to the journal.
        const p = this.pending[bitmap]!.get(t);
        if (p) waits.push(p);
      } else if (start < 0) start = t;
    }
    if (start >= 0) ranges.push({ start, end: last + 1 });
    if (ranges.length > 0) {
      for (const r of ranges) native.setRange(bits, r.start, r.end - r.start);
      const p = this.store.set(
        ranges.map((r) => ({ bitmap, start: r.start, count: r.end - r.start })),
        { sync: this.syncMarks },
      );
      const pending = this.pending[bitmap]!;
      for (const r of ranges) for (let t = r.start; t < r.end; t++) pending.set(t, p);
      void p.then(
        () => {
          for (const r of ranges) for (let t = r.start; t < r.end; t++) if (pending.get(t) === p) pending.delete(t);
        },
        () => undefined,
      );
      waits.push(p);
    }
    await Promise.all(waits);
  }
}

