/**
 * A pair's two track bitmaps over one BitmapStore (store/bitmap-journal.ts):
 *  - OOS (out of sync): tracks the secondary may lack. Set durably before the
 *    write it marks is applied or acknowledged (suspended; failed mirror
 *    writes); cleared by the copier once the track is on both sides.
 *  - HOT: tracks with a mirrored write possibly in flight (dm-log "region"
 *    style). Set durably before a mirror write leaves; cleared lazily, in
 *    batches, once both sides were flushed. Recovery adds HOT to OOS: a write
 *    in flight at a crash may be on the secondary only.
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
 * A bit already set here is not written again (a write to a HOT track costs
 * nothing); one call's ranges go to the store as one `set` (one record each).
 */
import { native } from '../../native/index.js';
import type { BitmapStore } from '../../store/bitmap-journal.js';

export const OOS = 0;
export const HOT = 1;

export class TrackBitmaps {
  readonly oos: Uint8Array;
  readonly hot: Uint8Array;
  /** Mirror writes in flight per track (HOT bits of other tracks may be cleared). */
  private readonly inFlight = new Map<number, number>();
  /** Durable-set promises not yet resolved, per bitmap and track. */
  private readonly pending = [new Map<number, Promise<void>>(), new Map<number, Promise<void>>()];
  private idleHot = 0;
  private chain: Promise<void> = Promise.resolve();
  private queued: Promise<void> | undefined;

  constructor(
    readonly store: BitmapStore,
    readonly tracks: number,
    /** fdatasync each mark before it resolves ('power'); false: written, synced by `sync()` ('process'). */
    readonly syncMarks = true,
  ) {
    this.oos = Uint8Array.from(store.bitmaps[OOS]!);
    this.hot = Uint8Array.from(store.bitmaps[HOT]!);
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

  /** Mark tracks hot (as `markOos`) and count a write in flight on each; pair with `endHot`, even when it rejects. */
  async beginHot(first: number, last: number): Promise<void> {
    for (let t = first; t <= last; t++) this.inFlight.set(t, (this.inFlight.get(t) ?? 0) + 1);
    await this.mark(HOT, this.hot, first, last);
  }

  /** Make every mark written so far durable (fdatasync of the journal; nothing to do when none is pending). */
  sync(): Promise<void> {
    return this.store.sync?.() ?? Promise.resolve();
  }

  endHot(first: number, last: number): void {
    for (let t = first; t <= last; t++) {
      const n = (this.inFlight.get(t) ?? 1) - 1;
      if (n <= 0) {
        this.inFlight.delete(t);
        this.idleHot++;
      } else this.inFlight.set(t, n);
    }
  }

  /** HOT bits of tracks with no write in flight, worth a lazy clear. */
  get idleHotCount(): number {
    return this.idleHot;
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
    await this.persistClears();
  }

  /** HOT tracks with no mirror write in flight now: flush both sides, then `clearHot` them. */
  idleHotTracks(): number[] {
    const out: number[] = [];
    for (let t = native.findNextSet(this.hot, 0, this.tracks); t >= 0 && t < this.tracks; t = native.findNextSet(this.hot, t + 1, this.tracks)) {
      if (!this.inFlight.has(t)) out.push(t);
    }
    this.idleHot = 0;
    return out;
  }

  /** Clear HOT bits of tracks whose writes are now on both sides (skipping any written again since), in the journal. */
  clearHot(tracks: readonly number[]): Promise<void> {
    const cleared = tracks.filter((t) => !this.inFlight.has(t));
    for (const t of cleared) native.clearRange(this.hot, t, 1);
    return this.commitClears(HOT, cleared);
  }

  /**
   * Make bits cleared in memory (`clearOos`, `clearHot`) stick: 'process'
   * appends clear records (no fdatasync, no checkpoint: a write of a few
   * bytes); 'power', or a store without `clear`, replaces the bitmaps durably.
   */
  commitClears(bitmap: number, tracks: readonly number[]): Promise<void> {
    if (this.syncMarks || !this.store.clear) return this.persistClears();
    const records: Array<{ bitmap: number; start: number; count: number }> = [];
    for (const t of [...tracks].sort((a, b) => a - b)) {
      const last = records[records.length - 1];
      if (last && last.start + last.count === t) last.count++;
      else if (!last || last.start + last.count < t) records.push({ bitmap, start: t, count: 1 });
    }
    return this.store.clear(records, { sync: false });
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
