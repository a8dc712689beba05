/**
 * An initiator port's link (AIX fscsi, spec §1.6 fc_err_recov, MP-18): the
 * host-side adapter port every path through it shares. After a link event
 * the adapter waits for the fabric to settle; what happens to I/O depends on
 * fc_err_recov:
 *
 * - fast_fail: I/O issued or held while the link is lost fails with
 *   UNREACHABLE once the settle time (about 15 s [IBM-FF]) has passed since
 *   the event, so the multipath layer fails over; from then on new I/O
 *   through the port fails at once, until the device rejoins the fabric.
 * - delayed_fail (the AIX default): I/O is held and retried until the link
 *   comes back; only the path's rw_timeout ends it (a lunrig setting:
 *   `delayedFailMs` bounds the wait, default none).
 *
 * Wrap each path's Volume with `port.wrap(volume)`; `lose()` / `rejoin()`
 * are the link events. Runs on the injected clock.
 */
import { EventEmitter } from 'node:events';
import { LunrigError } from '../errors.js';
import { systemClock, type Clock, type ClockTimer } from '../util/clock.js';
import { AdmissionLayer } from '../volume/admission-layer.js';
import type { Volume, VolumeIdentity } from '../volume/volume.js';
import type { PathTransport } from './transport.js';

export interface LinkRecoveryPolicy {
  mode: 'fast_fail' | 'delayed_fail';
  /** fast_fail: fabric settle time before I/O is failed (default 15 000 ms [IBM-FF]). */
  settleMs?: number;
  /** delayed_fail: give up on a held I/O after this long (default: never; rw_timeout decides). */
  delayedFailMs?: number;
}

/** up; lost (settling: I/O held); failing (fast_fail after the settle time: I/O fails at once). */
export type LinkPhase = 'up' | 'lost' | 'failing';

export interface InitiatorPortEvents {
  change: [phase: LinkPhase, at: number];
}

export const FAST_FAIL_SETTLE_MS = 15_000;

export class InitiatorPort extends EventEmitter<InitiatorPortEvents> {
  readonly name: string;
  readonly policy: Required<Pick<LinkRecoveryPolicy, 'mode' | 'settleMs'>> & Pick<LinkRecoveryPolicy, 'delayedFailMs'>;
  private phaseNow: LinkPhase = 'up';
  private settleTimer: ClockTimer | undefined;
  private held = new Set<{ resolve: () => void; reject: (e: LunrigError) => void; timer: ClockTimer | undefined }>();
  /** When the link was lost (undefined while up). */
  lostAt: number | undefined;

  constructor(options: { name: string; clock?: Clock; policy?: LinkRecoveryPolicy }) {
    super();
    this.name = options.name;
    this.clock = options.clock ?? systemClock;
    const p = options.policy ?? { mode: 'delayed_fail' };
    if (p.mode !== 'fast_fail' && p.mode !== 'delayed_fail') throw new LunrigError('INVALID_CONFIG', `fc_err_recov must be fast_fail or delayed_fail, got ${String(p.mode)}`);
    this.policy = { mode: p.mode, settleMs: p.settleMs ?? FAST_FAIL_SETTLE_MS, ...(p.delayedFailMs !== undefined && { delayedFailMs: p.delayedFailMs }) };
  }

  readonly clock: Clock;

  get phase(): LinkPhase {
    return this.phaseNow;
  }

  /** A link event: the target left the fabric (RSCN, cable pulled). */
  lose(): void {
    if (this.phaseNow !== 'up') return;
    this.lostAt = this.clock.now();
    this.setPhase('lost');
    if (this.policy.mode === 'fast_fail') {
      this.settleTimer = this.clock.setTimeout(() => {
        this.settleTimer = undefined;
        this.setPhase('failing');
        this.failHeld();
      }, this.policy.settleMs);
    }
  }

  /** The device rejoined the fabric: held I/O goes on, new I/O passes. */
  rejoin(): void {
    if (this.phaseNow === 'up') return;
    if (this.settleTimer) this.clock.clearTimeout(this.settleTimer);
    this.settleTimer = undefined;
    this.lostAt = undefined;
    this.setPhase('up');
    for (const h of [...this.held]) {
      this.held.delete(h);
      if (h.timer) this.clock.clearTimeout(h.timer);
      h.resolve();
    }
  }

  /** This port's view of a path's Volume. */
  wrap(below: Volume): Volume & PathTransport {
    return new LinkVolume(below, this);
  }

  /** Resolves when a request may go on; rejects with UNREACHABLE when the port fails it. */
  admit(): Promise<void> | undefined {
    if (this.phaseNow === 'up') return undefined;
    if (this.phaseNow === 'failing') return Promise.reject(this.unreachable());
    return new Promise<void>((resolve, reject) => {
      const entry = { resolve, reject, timer: undefined as ClockTimer | undefined };
      const limit = this.policy.mode === 'delayed_fail' ? this.policy.delayedFailMs : undefined;
      if (limit !== undefined) {
        entry.timer = this.clock.setTimeout(() => {
          this.held.delete(entry);
          reject(this.unreachable());
        }, limit);
      }
      this.held.add(entry);
    });
  }

  private failHeld(): void {
    for (const h of [...this.held]) {
      this.held.delete(h);
      if (h.timer) this.clock.clearTimeout(h.timer);
      h.reject(this.unreachable());
    }
  }

  private unreachable(): LunrigError {
    return new LunrigError('UNREACHABLE', `initiator port ${this.name}: link down (fc_err_recov=${this.policy.mode})`, { port: this.name });
  }

  private setPhase(p: LinkPhase): void {
    this.phaseNow = p;
    this.emit('change', p, this.clock.now());
  }
}

class LinkVolume extends AdmissionLayer implements PathTransport {
  constructor(
    below: Volume,
    private readonly port: InitiatorPort,
  ) {
    super(below);
  }

  get reservations(): PathTransport['reservations'] {
    return (this.below as Volume & PathTransport).reservations;
  }

  protected override admit(): Promise<void> | undefined {
    return this.port.admit();
  }

  async inquiry(): Promise<VolumeIdentity> {
    await this.port.admit();
    const t = this.below as Volume & PathTransport;
    return t.inquiry ? t.inquiry() : this.below.identity();
  }
}
