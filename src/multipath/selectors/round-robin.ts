/**
 * Round robin (AIX round_robin, HDLM rr, dm round-robin 0). Uniform weights
 * rotate strictly in configuration order; `weights: 'priority'` is smooth
 * weighted round robin with weight = priority, so AIX's higher priority value
 * gets the bigger share (spec §1.3 and MP-05, an [E] choice of algorithm).
 * `repeat` sends that many I/Os down a chosen path before choosing again (dm
 * rr_min_io_rq, HDLM -lbpathusetimes); `repeatByPriority` multiplies it by the
 * priority (dm rr_weight priorities).
 */
import type { Path } from '../path.js';
import { pickBest, type PathSelector } from './selector.js';

export interface RoundRobinOptions {
  weights?: 'uniform' | 'priority';
  repeat?: number;
  repeatByPriority?: boolean;
}

export class RoundRobinSelector implements PathSelector {
  readonly name = 'round_robin';
  private readonly current = new Map<Path, number>();
  private previous: readonly Path[] = [];
  private last: Path | undefined;
  private used = 0;
  private readonly weighted: boolean;
  private readonly repeat: number;
  private readonly repeatByPriority: boolean;

  constructor(options: RoundRobinOptions = {}) {
    this.weighted = options.weights === 'priority';
    this.repeat = Math.max(1, options.repeat ?? 1);
    this.repeatByPriority = options.repeatByPriority ?? false;
  }

  select(candidates: readonly Path[]): Path {
    const last = this.last;
    if (last && this.used < this.quota(last) && candidates.includes(last)) {
      this.used++;
      return last;
    }
    // A changed candidate set restarts the weights: stale credit of a path that left would skew the split.
    if (!sameList(candidates, this.previous)) {
      this.current.clear();
      this.previous = [...candidates];
    }
    let total = 0;
    for (const p of candidates) {
      const w = this.weight(p);
      total += w;
      this.current.set(p, (this.current.get(p) ?? 0) + w);
    }
    const chosen = pickBest(candidates, (a, b) => this.current.get(b)! - this.current.get(a)!, last);
    this.current.set(chosen, this.current.get(chosen)! - total);
    this.last = chosen;
    this.used = 1;
    return chosen;
  }

  private weight(p: Path): number {
    return this.weighted ? Math.max(1, p.priority) : 1;
  }

  private quota(p: Path): number {
    return this.repeatByPriority ? this.repeat * Math.max(1, p.priority) : this.repeat;
  }
}

function sameList(a: readonly Path[], b: readonly Path[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
