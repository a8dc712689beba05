/**
 * What happens when a pair cannot update its secondary (spec §3.6 X5, §3.9),
 * and the suspensions the manager orders itself (manual suspend, freeze):
 *  - the CRIT table (`crit.ts`) decides write-inhibit of primary / secondary;
 *  - in a consistency-group LSS new writes to the pair are held (not failed)
 *    until `release` or the LSS's consistency timeout;
 *  - a suspension is synchronous first (state, write-inhibit, hold, event),
 *    then persisted, then the secondary is told (best effort).
 * Split out of manager.ts; the manager owns the pairs, this owns the LSS
 * consistency timers.
 */
import type { Clock, ClockTimer } from '../../util/clock.js';
import { critDecision } from './crit.js';
import type { Link } from './links.js';
import { makeHold, type Failure, type Pair, type RunState } from './pair.js';
import type { LssSettings } from './registry.js';
import type { SecondaryEss } from './secondary-ess.js';

/** What the policy needs from its manager. */
export interface FailurePolicyHost {
  readonly clock: Clock;
  pairs(): Iterable<Pair>;
  lssSettings(lss: number): LssSettings;
  upLinks(pair: Pair): Link[];
  setState(pair: Pair, to: RunState, from: RunState | 'SIMPLEX', reason?: string): void;
  save(): Promise<void>;
  ess(serial: string): SecondaryEss;
}

export class FailurePolicy {
  private readonly lssTimers = new Map<string, ClockTimer>();

  constructor(private readonly host: FailurePolicyHost) {}

  /** X5: the pair could not update its secondary. CRIT table (§3.6), consistency group hold (§3.9). */
  async fail(pair: Pair, failure: Failure): Promise<void> {
    if (pair.state !== 'DUPLEX' && pair.state !== 'DUPLEX_PENDING') {
      await pair.suspensionSaved;
      return;
    }
    const settings = this.host.lssSettings(pair.record.primary.lss);
    const pathsLost = failure.kind === 'paths-lost' || this.host.upLinks(pair).length === 0;
    const decision = critDecision({ criticalVolume: pair.record.criticalVolume, criticalHeavy: settings.criticalHeavyActive, pathsLost });
    if (settings.consistencyGroup) {
      pair.hold ??= makeHold();
      this.armTimeout(pair.record.primary.lss);
    }
    this.suspendNow(pair, failure.kind === 'paths-lost' || (failure.kind === 'ack-timeout' && pathsLost) ? 'paths-lost' : failure.kind === 'ack-timeout' ? 'ack-timeout' : 'secondary-device', decision.primaryInhibited, decision.secondaryInhibited);
    // Stop, not await: the copier itself may be the caller. A stopped copier never clears a bit again.
    void pair.copier?.stop();
    pair.copier = undefined;
    await this.afterSuspend(pair, decision.secondaryInhibited);
  }

  /** The synchronous half of a suspension: state, write-inhibit, event. */
  suspendNow(pair: Pair, reason: string, primaryInhibited: boolean, secondaryInhibited: boolean): void {
    const from = pair.state;
    pair.record = { ...pair.record, suspendReason: reason, writeInhibited: primaryInhibited };
    pair.suspensionSaved = this.host.save().catch(() => undefined);
    pair.secondaryInhibited = secondaryInhibited;
    this.host.setState(pair, 'SUSPENDED', from, reason);
  }

  /** The rest: persisted, and the secondary told (best effort: it may be unreachable). */
  async afterSuspend(pair: Pair, secondaryInhibited = pair.secondaryInhibited ?? false): Promise<void> {
    await pair.suspensionSaved;
    try {
      await this.host.ess(pair.record.secondary.ess).setStatus(pair.record.secondary.volume, pair.id, {
        suspended: true,
        writeInhibited: secondaryInhibited,
        ...(pair.record.suspendReason !== undefined && { reason: pair.record.suspendReason }),
      });
    } catch {
      // The secondary learns when it notices itself (primaryLost) or on resync.
    }
  }

  /** Start the LSS's consistency timeout (consistency-group LSSs only; once). */
  armTimeout(lss: number): void {
    const key = String(lss);
    const settings = this.host.lssSettings(lss);
    if (!settings.consistencyGroup || this.lssTimers.has(key)) return;
    this.lssTimers.set(
      key,
      this.host.clock.setTimeout(() => {
        this.lssTimers.delete(key);
        this.releaseNow(new Set([lss]));
      }, settings.consistencyTimeoutSec * 1000),
    );
  }

  /** Release the writes held in these LSSs; returns the pairs released. */
  releaseNow(set: Set<number>): Pair[] {
    for (const n of set) {
      const t = this.lssTimers.get(String(n));
      if (t) this.host.clock.clearTimeout(t);
      this.lssTimers.delete(String(n));
    }
    const hit = [...this.host.pairs()].filter((p) => set.has(p.record.primary.lss) && p.hold);
    for (const pair of hit) {
      const hold = pair.hold!;
      pair.hold = undefined;
      hold.release();
    }
    return hit;
  }

  /** Cancel every consistency timeout (close). */
  close(): void {
    for (const t of this.lssTimers.values()) this.host.clock.clearTimeout(t);
    this.lssTimers.clear();
  }
}
