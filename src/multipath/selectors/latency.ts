/**
 * Latency-aware selection (dm historical-service-time, VMware HPP LB-Latency):
 * the smallest expected wait, EWMA latency x (in flight + 1). A path without
 * a sample yet scores 0, so every path gets measured. Ties rotate.
 */
import type { Path } from '../path.js';
import { pickBest, type PathSelector } from './selector.js';

export class LatencySelector implements PathSelector {
  readonly name = 'latency';
  private last: Path | undefined;

  select(candidates: readonly Path[]): Path {
    const wait = (p: Path): number => (p.stats.ewmaMs ?? 0) * (p.inFlight + 1);
    this.last = pickBest(candidates, (a, b) => wait(a) - wait(b), this.last);
    return this.last;
  }
}
