/**
 * The multipath event stream: every path state change and group switch with
 * its cause and virtual timestamp, so tests and simulators assert on the
 * sequence instead of polling (spec/multipath.md §5.1 item 4).
 */
import { isLunrigError } from '../errors.js';
import type { ErrorClass } from './error-classifier.js';
import type { PathState } from './path-states.js';

export type PathCause =
  | 'io_error' // a path-class error on an I/O
  | 'io_timeout' // an I/O outlived the path's request timeout
  | 'io_ok' // a successful I/O on an Online(E) path
  | 'check_ok' // a health check (or auto failback check) succeeded
  | 'check_failed'
  | 'standby_reported' // the target answered NOT READY (ALUA standby)
  | 'last_path' // HDLM: the last usable path went Online(E) instead of Offline(E)
  | 'admin' // online / offline / enable / disable by command
  | 'iem_quarantine' // intermittent-error monitor excluded the path from auto recovery
  | 'quarantine_released' // the quarantine policy's timer let the path be checked again
  | 'removed';

export interface ErrorSummary {
  code: string;
  message: string;
}

export interface PathStateEvent {
  type: 'path-state';
  at: number;
  device: string;
  path: string;
  from: PathState;
  to: PathState;
  /** The profile's names for from / to (Enabled, Offline(E), active ghost...). */
  fromName: string;
  toName: string;
  cause: PathCause;
  error?: ErrorSummary;
}

export interface GroupSwitchEvent {
  type: 'group-switch';
  at: number;
  device: string;
  from: string | undefined;
  to: string;
  /** failover: the active group lost its last online path; failback / manual: see failback.ts. */
  cause: 'failover' | 'failback' | 'manual';
}

/** An I/O failed on a path and was sent again (another path, or the same one for retry-class errors). */
export interface IoRetryEvent {
  type: 'io-retry';
  at: number;
  device: string;
  path: string;
  errorClass: ErrorClass;
  error: ErrorSummary;
}

export interface PathsDownEvent {
  type: 'all-paths-down';
  at: number;
  device: string;
}

export interface PathsRestoredEvent {
  type: 'paths-restored';
  at: number;
  device: string;
  downForMs: number;
}

/** The all-paths-down policy gave up: queued I/O failed and new I/O fails until a path returns. */
export interface QueueExhaustedEvent {
  type: 'queue-exhausted';
  at: number;
  device: string;
  failed: number;
}

/** reserve_policy at work (reservation-policy.ts): a reserve, a reset that broke one (BDR, MP-32), a key registered on a path (MP-38), a release. */
export interface ReservationEvent {
  type: 'reservation';
  at: number;
  device: string;
  path: string;
  action: 'reserve' | 'reset' | 'register' | 'release';
  policy: string;
}

export type MultipathEvent = PathStateEvent | GroupSwitchEvent | IoRetryEvent | PathsDownEvent | PathsRestoredEvent | QueueExhaustedEvent | ReservationEvent;

export interface MultipathEventMap {
  event: [event: MultipathEvent];
}

export function summarizeError(err: unknown): ErrorSummary {
  if (isLunrigError(err)) return { code: err.code, message: err.message };
  return { code: 'UNKNOWN', message: err instanceof Error ? err.message : String(err) };
}
