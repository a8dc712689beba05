/** Which grains a bulk job touches, and how they are cut into piscina tasks. */
import { LunrigError } from '../../errors.js';
import { native } from '../../native/index.js';

/**
 * Grain indices (any order, duplicates ignored), or the set bits of a bitmap
 * (bit i = grain i, LSB first) within [start, start + count).
 */
export type GrainSelection = ArrayLike<number> | { bitmap: Uint8Array; start?: number; count?: number };

export interface GrainRange {
  start: number;
  count: number;
}

export function checkGrainSize(grainSize: number): void {
  if (!Number.isSafeInteger(grainSize) || grainSize <= 0) {
    throw new LunrigError('INVALID_ARGUMENT', `grainSize must be a positive integer, got ${grainSize}`);
  }
}

export function grainCount(size: number, grainSize: number): number {
  return Math.ceil(size / grainSize);
}

/** The range, defaulting to every grain, checked against the grain count. */
export function resolveRange(range: GrainRange | undefined, grains: number): GrainRange {
  const r = range ?? { start: 0, count: grains };
  if (!Number.isSafeInteger(r.start) || !Number.isSafeInteger(r.count) || r.start < 0 || r.count < 0 || r.start + r.count > grains) {
    throw new LunrigError('OUT_OF_RANGE', `grain range [${r.start}, ${r.start + r.count}) is outside [0, ${grains})`);
  }
  return r;
}

/** Sorted, distinct grain indices of the selection, all below `grains`. */
export function selectedGrains(selection: GrainSelection, grains: number): Float64Array {
  if ('bitmap' in selection) {
    const { bitmap } = selection;
    const start = selection.start ?? 0;
    const limit = Math.min(grains, selection.count === undefined ? bitmap.length * 8 : start + selection.count, bitmap.length * 8);
    const out: number[] = [];
    for (let i = native.findNextSet(bitmap, start, limit); i >= 0; i = native.findNextSet(bitmap, i + 1, limit)) out.push(i);
    return Float64Array.from(out);
  }
  const sorted = Float64Array.from(selection).sort();
  let n = 0;
  for (let i = 0; i < sorted.length; i++) {
    const g = sorted[i]!;
    if (!Number.isSafeInteger(g) || g < 0 || g >= grains) {
      throw new LunrigError('OUT_OF_RANGE', `grain ${g} is outside [0, ${grains})`);
    }
    if (n === 0 || sorted[n - 1] !== g) sorted[n++] = g;
  }
  return sorted.slice(0, n);
}

export function rangeGrains(range: GrainRange): Float64Array {
  const out = new Float64Array(range.count);
  for (let i = 0; i < range.count; i++) out[i] = range.start + i;
  return out;
}

/** Cuts sorted grains into task-sized pieces (copies: cloning a view would clone its whole buffer). */
export function chunk(grains: Float64Array, grainsPerTask: number): Float64Array[] {
  const out: Float64Array[] = [];
  for (let i = 0; i < grains.length; i += grainsPerTask) out.push(grains.slice(i, i + grainsPerTask));
  return out;
}
