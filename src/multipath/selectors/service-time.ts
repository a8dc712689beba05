/**
 * Fewest bytes in flight per unit of throughput: dm service-time 0 picks the
 * smallest (in_flight_bytes + this_io_bytes) / relative_throughput, ties to
 * the higher throughput. With `useThroughput: false` it is HDLM lbk (Least
 * Blocks): the fewest bytes being processed. Remaining ties rotate.
 */
import type { IoDescriptor } from '../io-descriptor.js';
import type { Path } from '../path.js';
import { pickBest, type PathSelector } from './selector.js';

export interface ServiceTimeOptions {
  /** Weigh by the paths' relative throughput (default true; false gives HDLM Least Blocks). */
  useThroughput?: boolean;
}

export class ServiceTimeSelector implements PathSelector {
  readonly name: string;
  private last: Path | undefined;
  private readonly useThroughput: boolean;

  constructor(options: ServiceTimeOptions = {}) {
    this.useThroughput = options.useThroughput ?? true;
    this.name = this.useThroughput ? 'service_time' : 'least_blocks';
  }

  select(candidates: readonly Path[], io: IoDescriptor): Path {
    const tp = (p: Path): number => (this.useThroughput ? p.throughput : 1);
    const cost = (p: Path): number => (p.inFlightBytes + io.bytes) / tp(p);
    this.last = pickBest(candidates, (a, b) => cost(a) - cost(b) || tp(b) - tp(a), this.last);
    return this.last;
  }
}
