/**
 * Quarantine of intermittently failing paths (spec §1.6): HDLM's intermittent
 * error monitoring, and dm's san_path_err_* in its simpler form. A path that
 * fails `errorCount` times within `windowMs` is quarantined: no automatic
 * recovery until an admin puts it online, or (dm) until `releaseAfterMs`.
 * HDLM starts a path's window when auto failback recovers it; dm counts from
 * any failure.
 */
import { LunrigError } from '../errors.js';
import type { Clock } from '../util/clock.js';
import type { Path } from './path.js';

export interface QuarantinePolicy {
  windowMs: number;
  errorCount: number;
  /** 'auto-failback': monitoring starts when auto failback recovers the path (HDLM); 'any-failure': a sliding window (dm). */
  startOn: 'auto-failback' | 'any-failure';
  /** Release a quarantined path for checking after this long (dm san_path_err_recovery_time); undefined: admin only. */
  releaseAfterMs?: number;
}

/**
 * HDLM's rule (KAPL01080-W): with iemnum >= 2 the monitoring interval must
 * cover iemnum auto-failback intervals, or the path could never reach the
 * count. Minutes, as HDLM takes them.
 */
export function validateIntermittentErrorMonitor(afbIntervalMin: number, iemIntervalMin: number, iemCount: number): void {
  if (iemCount >= 2 && iemIntervalMin < afbIntervalMin * iemCount) {
    throw new LunrigError(
      'INVALID_CONFIG',
      `KAPL01080-W: intermittent error monitoring interval ${iemIntervalMin} min is shorter than ` +
        `auto failback interval ${afbIntervalMin} min x ${iemCount} errors = ${afbIntervalMin * iemCount} min`,
      { afbIntervalMin, iemIntervalMin, iemCount },
    );
  }
}

interface Monitor {
  /** When the current window opened (auto-failback mode). */
  since: number | undefined;
  failures: number[];
}

export class QuarantineMonitor {
  private readonly monitors = new Map<Path, Monitor>();

  constructor(
    readonly policy: QuarantinePolicy,
    private readonly clock: Clock,
  ) {
    if (!(policy.windowMs > 0) || !Number.isSafeInteger(policy.errorCount) || policy.errorCount < 1) {
      throw new LunrigError('INVALID_CONFIG', `quarantine needs a positive window and error count, got ${policy.windowMs} ms / ${policy.errorCount}`);
    }
  }

  /** The path was recovered by a check; `autoFailback` when by HDLM auto failback. */
  onRecovered(path: Path, autoFailback: boolean): void {
    if (this.policy.startOn !== 'auto-failback' || !autoFailback) return;
    const m = this.monitor(path);
    if (m.since === undefined || this.clock.now() - m.since > this.policy.windowMs) {
      m.since = this.clock.now();
      m.failures = [];
    }
  }

  /** The path failed; true when that makes it intermittent (quarantine it). */
  onFailure(path: Path): boolean {
    const now = this.clock.now();
    const m = this.monitor(path);
    if (this.policy.startOn === 'auto-failback') {
      if (m.since === undefined) return false;
      if (now - m.since > this.policy.windowMs) {
        // The window closed without reaching the count: monitoring restarts at the next auto failback.
        m.since = undefined;
        m.failures = [];
        return false;
      }
    } else {
      m.failures = m.failures.filter((t) => now - t <= this.policy.windowMs);
    }
    m.failures.push(now);
    if (m.failures.length < this.policy.errorCount) return false;
    this.clear(path);
    return true;
  }

  /** Failures counted for `path` in its current window. */
  failures(path: Path): number {
    return this.monitors.get(path)?.failures.length ?? 0;
  }

  /** Forget the path's history (admin online, path removed). */
  clear(path: Path): void {
    this.monitors.delete(path);
  }

  private monitor(path: Path): Monitor {
    let m = this.monitors.get(path);
    if (!m) this.monitors.set(path, (m = { since: undefined, failures: [] }));
    return m;
  }
}
