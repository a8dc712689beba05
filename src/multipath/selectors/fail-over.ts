/**
 * AIX fail_over (spec §1.3): every I/O goes to the valid path with the lowest
 * priority value, ties in configuration order. Chosen per I/O, so a better
 * path that comes back takes the next I/O (implicit failback).
 */
import type { Path } from '../path.js';
import { pickBest, type PathSelector } from './selector.js';

export class FailOverSelector implements PathSelector {
  readonly name = 'fail_over';

  select(candidates: readonly Path[]): Path {
    return pickBest(candidates, (a, b) => a.priority - b.priority, undefined);
  }
}
