/**
 * How a relationship cuts its volumes into grains (the ESS's "tracks", whose
 * byte size the document never gives: spec §2.3 Granularity, §7 item 5).
 * Grain g covers [g * grainSize, min((g + 1) * grainSize, size)); `size` is the
 * part of the volumes the relationship covers (the source's size at T0).
 */
import { LunrigError } from '../../errors.js';
import { KiB, MiB, parseSize } from '../../util/size.js';

export const DEFAULT_GRAIN_SIZE = 64 * KiB;
export const MIN_GRAIN_SIZE = 4 * KiB;
export const MAX_GRAIN_SIZE = MiB;

/** '64K', 65536, ...: a power of two from 4 KiB to 1 MiB; undefined gives the default. */
export function parseGrainSize(input: number | string | undefined): number {
  if (input === undefined) return DEFAULT_GRAIN_SIZE;
  const size = parseSize(input);
  if (size < MIN_GRAIN_SIZE || size > MAX_GRAIN_SIZE || (size & (size - 1)) !== 0) {
    throw new LunrigError('INVALID_ARGUMENT', `grain size must be a power of two from 4K to 1M, got ${String(input)}`, { grainSize: input });
  }
  return size;
}

export interface GrainSpan {
  first: number;
  count: number;
}

export class GrainGeometry {
  readonly grains: number;

  constructor(
    readonly grainSize: number,
    readonly size: number,
  ) {
    this.grains = Math.ceil(size / grainSize);
  }

  start(grain: number): number {
    return grain * this.grainSize;
  }

  end(grain: number): number {
    return Math.min((grain + 1) * this.grainSize, this.size);
  }

  grainOf(offset: number): number {
    return Math.floor(offset / this.grainSize);
  }

  /** The grains [offset, offset + length) touches inside the covered part (count 0 when none). */
  span(offset: number, length: number): GrainSpan {
    const end = Math.min(offset + length, this.size);
    if (length === 0 || offset >= end) return { first: 0, count: 0 };
    const first = this.grainOf(offset);
    return { first, count: this.grainOf(end - 1) - first + 1 };
  }

  /** Whether [offset, offset + length) covers all of the grain. */
  covers(grain: number, offset: number, length: number): boolean {
    return offset <= this.start(grain) && offset + length >= this.end(grain);
  }

  /** Bytes in `count` grains from `first` (the last grain may be short). */
  bytes(first: number, count: number): number {
    return count === 0 ? 0 : this.end(first + count - 1) - this.start(first);
  }
}
