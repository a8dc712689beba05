/**
 * Fewest I/Os in flight: AIX shortest_queue, HDLM lio (Least I/Os), dm
 * queue-length 0. Priority is ignored; ties rotate (spec §1.3).
 */
import type { Path } from '../path.js';
import { pickBest, type PathSelector } from './selector.js';

export class QueueLengthSelector implements PathSelector {
  readonly name = 'queue_length';
  private last: Path | undefined;

  select(candidates: readonly Path[]): Path {
    this.last = pickBest(candidates, (a, b) => a.inFlight - b.inFlight, this.last);
    return this.last;
  }
}
