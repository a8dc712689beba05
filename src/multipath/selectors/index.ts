/** Path selectors by name: the data a profile holds, and the factory that makes a fresh selector per device. */
import { LunrigError } from '../../errors.js';
import { ExtendedSelector, type ExtendedOptions } from './extended.js';
import { FailOverSelector } from './fail-over.js';
import { LatencySelector } from './latency.js';
import { QueueLengthSelector } from './queue-length.js';
import { RoundRobinSelector, type RoundRobinOptions } from './round-robin.js';
import type { PathSelector } from './selector.js';
import { ServiceTimeSelector, type ServiceTimeOptions } from './service-time.js';

export type SelectorSpec = (
  | { kind: 'fail_over' }
  | ({ kind: 'round_robin' } & RoundRobinOptions)
  | { kind: 'queue_length' }
  | ({ kind: 'service_time' } & ServiceTimeOptions)
  | { kind: 'latency' }
) & {
  /** HDLM extended variant: stick to a path for sequential runs. */
  extended?: ExtendedOptions;
};

export function createSelector(spec: SelectorSpec): PathSelector {
  const base = baseSelector(spec);
  if (!spec.extended) return base;
  const { sequentialLimit, randomRepeat } = spec.extended;
  if (!(sequentialLimit >= 1) || !(randomRepeat >= 1)) {
    throw new LunrigError('INVALID_CONFIG', `extended selector counts must be >= 1, got ${sequentialLimit} / ${randomRepeat}`);
  }
  return new ExtendedSelector(base, spec.extended);
}

function baseSelector(spec: SelectorSpec): PathSelector {
  switch (spec.kind) {
    case 'fail_over':
      return new FailOverSelector();
    case 'round_robin':
      return new RoundRobinSelector(spec);
    case 'queue_length':
      return new QueueLengthSelector();
    case 'service_time':
      return new ServiceTimeSelector(spec);
    case 'latency':
      return new LatencySelector();
  }
}

export type { PathSelector } from './selector.js';
export { pickBest } from './selector.js';
export { ExtendedSelector, type ExtendedOptions } from './extended.js';
export { FailOverSelector } from './fail-over.js';
export { LatencySelector } from './latency.js';
export { QueueLengthSelector } from './queue-length.js';
export { RoundRobinSelector, type RoundRobinOptions } from './round-robin.js';
export { ServiceTimeSelector, type ServiceTimeOptions } from './service-time.js';
