/**
 * Failback: when I/O goes back to a better path group that became usable
 * again (spec §1.6).
 * - immediate: at once, i.e. at the check that reinstated the path (dm
 *   failback=immediate; AIX fail_over does it per I/O anyway);
 * - manual: never on its own; the device's failback() switches (dm default);
 * - deferred: `delayMs` after the group became usable again (dm failback=N);
 * - interval: HDLM auto failback: failed paths are checked every
 *   `intervalMs` and brought back, and I/O returns to them at once.
 */
import { LunrigError } from '../errors.js';
import type { Clock, ClockTimer } from '../util/clock.js';
import type { CheckCommand, CheckSchedule } from './health-checker.js';
import type { PathGroup } from './path-groups.js';

export type FailbackPolicy =
  | { mode: 'immediate' }
  | { mode: 'manual' }
  | { mode: 'deferred'; delayMs: number }
  | { mode: 'interval'; intervalMs: number };

export interface FailbackHost {
  active(): PathGroup | undefined;
  bestUsable(): PathGroup | undefined;
  switchTo(group: PathGroup, cause: 'failback' | 'manual'): void;
}

export function checkFailbackPolicy(policy: FailbackPolicy): void {
  const ms = policy.mode === 'deferred' ? policy.delayMs : policy.mode === 'interval' ? policy.intervalMs : 0;
  if (!Number.isFinite(ms) || ms < 0 || (policy.mode === 'interval' && ms === 0)) {
    throw new LunrigError('INVALID_CONFIG', `failback ${policy.mode}: bad interval ${ms}`, { policy });
  }
}

/** The auto-failback check an 'interval' policy runs over failed paths. */
export function failbackSchedules(policy: FailbackPolicy, command: CheckCommand): CheckSchedule[] {
  if (policy.mode !== 'interval') return [];
  return [{ name: 'afb', intervalMs: policy.intervalMs, mode: 'failed', command, recover: true, autoFailback: true }];
}

export class FailbackController {
  private timer: ClockTimer | undefined;

  constructor(
    readonly policy: FailbackPolicy,
    private readonly clock: Clock,
    private readonly host: FailbackHost,
  ) {
    checkFailbackPolicy(policy);
  }

  /** A path came back (state online); switch groups if the policy says so. */
  onReinstated(): void {
    if (!this.betterGroup()) return;
    switch (this.policy.mode) {
      case 'immediate':
      case 'interval':
        this.switchToBest('failback');
        return;
      case 'manual':
        return;
      case 'deferred':
        // The clock starts when the better group first became usable; later reinstatements do not restart it.
        this.timer ??= this.clock.setTimeout(() => {
          this.timer = undefined;
          if (this.betterGroup()) this.switchToBest('failback');
        }, this.policy.delayMs);
        return;
    }
  }

  /** Switch to the best usable group now (the manual failback command). */
  switchToBest(cause: 'failback' | 'manual'): boolean {
    const best = this.host.bestUsable();
    if (!best || best === this.host.active()) return false;
    this.cancel();
    this.host.switchTo(best, cause);
    return true;
  }

  cancel(): void {
    if (this.timer) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
  }

  private betterGroup(): PathGroup | undefined {
    const best = this.host.bestUsable();
    const active = this.host.active();
    return best && (!active || best.rank < active.rank) ? best : undefined;
  }
}
