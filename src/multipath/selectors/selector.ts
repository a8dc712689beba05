/**
 * What every path selector implements, and the one tie-break they share.
 * Selection runs synchronously right before the I/O is issued, in one place
 * (the device), so in-flight counts it reads are exact (spec §5.1 item 5).
 */
import type { IoDescriptor } from '../io-descriptor.js';
import type { Path } from '../path.js';

export interface PathSelector {
  readonly name: string;
  /** Pick one of `candidates` (non-empty, in configuration order) for `io`. */
  select(candidates: readonly Path[], io: IoDescriptor): Path;
}

/**
 * The best candidate by `compare` (negative: `a` is better). Ties go to the
 * first tied path after `last` in configuration order, so under light load
 * tied paths rotate instead of piling onto the first (spec §1.3, an [E] rule).
 */
export function pickBest(candidates: readonly Path[], compare: (a: Path, b: Path) => number, last: Path | undefined): Path {
  let best: Path[] = [];
  for (const p of candidates) {
    const c = best.length === 0 ? -1 : compare(p, best[0]!);
    if (c < 0) best = [p];
    else if (c === 0) best.push(p);
  }
  if (best.length === 1 || last === undefined) return best[0]!;
  return best.find((p) => p.order > last.order) ?? best[0]!;
}
