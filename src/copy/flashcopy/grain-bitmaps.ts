/**
 * A relationship's grain bitmaps over a persistent BitmapStore, read with the
 * native bitmap routines:
 *  - copied (always): bit g set = the target holds grain g itself (the T0
 *    image, possibly overwritten by target writes); clear = reads of the
 *    target's grain g come from the source.
 *  - changed (incremental relationships only): bit g set = grain g was
 *    written on the source or the target since T0, so a refresh copies it again.
 * Bits are only ever set here; a refresh replaces both bitmaps at once.
 */
import { native } from '../../native/index.js';
import type { BitmapSetRecord, BitmapStore } from '../../store/bitmap-journal.js';
import type { GrainSpan } from './grain-geometry.js';

export const COPIED = 0;
export const CHANGED = 1;

/** The bit counts a relationship's store holds. */
export function bitmapSizes(grains: number, incremental: boolean): number[] {
  return incremental ? [grains, grains] : [grains];
}

export class GrainBitmaps {
  constructor(
    readonly store: BitmapStore,
    readonly grains: number,
  ) {}

  get incremental(): boolean {
    return this.store.bitmaps.length > CHANGED;
  }

  private get copied(): Uint8Array {
    return this.store.bitmaps[COPIED]!;
  }

  isCopied(grain: number): boolean {
    return native.testBit(this.copied, grain);
  }

  allCopied(span: GrainSpan): boolean {
    return native.allSet(this.copied, span.first, span.count);
  }

  /** True also for a relationship that records no changes (nothing to record). */
  allChanged(span: GrainSpan): boolean {
    return !this.incremental || native.allSet(this.store.bitmaps[CHANGED]!, span.first, span.count);
  }

  /** Grains of the span not yet copied, ascending. */
  uncopiedIn(span: GrainSpan): number[] {
    const out: number[] = [];
    const limit = span.first + span.count;
    for (let g = native.findNextClear(this.copied, span.first, limit); g >= 0; g = native.findNextClear(this.copied, g + 1, limit)) out.push(g);
    return out;
  }

  /** First grain at or after `from` whose copied bit equals `copied`, or `limit` when none. */
  runEnd(from: number, limit: number, copied: boolean): number {
    const next = copied ? native.findNextClear(this.copied, from, limit) : native.findNextSet(this.copied, from, limit);
    return next < 0 ? limit : next;
  }

  /** First uncopied grain at or after `from`, or -1. */
  nextUncopied(from: number): number {
    return native.findNextClear(this.copied, from, this.grains);
  }

  copiedCount(): number {
    return native.popcount(this.copied, 0, this.grains);
  }

  remaining(): number {
    return this.grains - this.copiedCount();
  }

  changedCount(): number {
    return this.incremental ? native.popcount(this.store.bitmaps[CHANGED]!, 0, this.grains) : 0;
  }
}

/** Records setting the copied bit of each grain (ascending or not), consecutive grains merged. */
export function copiedRecords(grains: readonly number[]): BitmapSetRecord[] {
  const sorted = [...grains].sort((a, b) => a - b);
  const out: BitmapSetRecord[] = [];
  for (const g of sorted) {
    const last = out[out.length - 1];
    if (last && last.start + last.count === g) last.count++;
    else if (!last || last.start + last.count < g) out.push({ bitmap: COPIED, start: g, count: 1 });
  }
  return out;
}
