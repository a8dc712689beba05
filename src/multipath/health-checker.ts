/**
 * Periodic path health checks on the clock (spec §1.5). A device runs one or
 * more schedules: AIX hcheck_interval with its hcheck_mode, HDLM path health
 * checking (online paths) plus auto failback (failed paths), dm's
 * polling_interval over every path. The checker only probes and reports;
 * the device decides what a result does to the path.
 */
import type { Clock, ClockTimer } from '../util/clock.js';
import type { Path } from './path.js';

/**
 * Which paths a schedule probes:
 * - enabled: every path except admin_offline / quarantined / absent (AIX hcheck_mode=enabled);
 * - failed: failed paths only (AIX hcheck_mode=failed, HDLM auto failback);
 * - nonactive: failed paths, and usable paths with no I/O since the previous
 *   check (AIX default; with round_robin every Enabled path carries I/O, so
 *   effectively only failed ones);
 * - online: usable paths, I/O or not (HDLM path health checking);
 * - all: like enabled (dm polling).
 */
export type CheckMode = 'enabled' | 'failed' | 'nonactive' | 'online' | 'all';

/** test_unit_rdy / tur reads block 0 and fails wherever I/O fails; inquiry only identifies. */
export type CheckCommand = 'tur' | 'inquiry';

export interface CheckSchedule {
  /** For events and reports: 'hcheck', 'pchk', 'afb', 'polling'. */
  name: string;
  intervalMs: number;
  mode: CheckMode;
  command: CheckCommand;
  /** A successful check brings a failed path back (false: it only detects faults). */
  recover: boolean;
  /** Recoveries by this schedule are HDLM automatic failbacks (they start intermittent-error monitoring). */
  autoFailback?: boolean;
  /** Each completed round counts toward the all-paths-down policy's "queue for N checks" (dm polling). */
  countsForNoPath?: boolean;
}

export interface HealthCheckHost {
  paths(): readonly Path[];
  /** One probe finished; `error` undefined on success. */
  onProbe(path: Path, schedule: CheckSchedule, error: unknown): void;
  /** A round of `schedule` finished (all its probes settled). */
  onRound(schedule: CheckSchedule): void;
}

export class HealthChecker {
  private readonly timers = new Map<CheckSchedule, ClockTimer>();
  private readonly lastRound = new Map<CheckSchedule, number>();
  private running = false;

  constructor(
    private readonly clock: Clock,
    private readonly host: HealthCheckHost,
    readonly schedules: readonly CheckSchedule[],
  ) {}

  get active(): boolean {
    return this.running;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    const now = this.clock.now();
    for (const s of this.schedules) {
      if (!(s.intervalMs > 0)) continue; // an interval of 0 turns the schedule off (AIX hcheck_interval=0)
      this.lastRound.set(s, now);
      this.arm(s);
    }
  }

  /** Health checks stop with the device (MP-24: a closed device's failed path is never recovered). */
  stop(): void {
    this.running = false;
    for (const t of this.timers.values()) this.clock.clearTimeout(t);
    this.timers.clear();
  }

  /** Run one round of `schedule` now. */
  async runRound(schedule: CheckSchedule): Promise<void> {
    const since = this.lastRound.get(schedule) ?? Number.NEGATIVE_INFINITY;
    this.lastRound.set(schedule, this.clock.now());
    const probes = this.host
      .paths()
      .filter((p) => !p.probing && isTarget(schedule.mode, p, since))
      .map(async (p) => {
        p.probing = true;
        let error: unknown;
        try {
          await p.probe(schedule.command);
        } catch (err) {
          error = err ?? new Error('probe failed');
        } finally {
          p.probing = false;
        }
        if (this.running) this.host.onProbe(p, schedule, error);
      });
    await Promise.all(probes);
    if (this.running) this.host.onRound(schedule);
  }

  private arm(schedule: CheckSchedule): void {
    // Fixed rate: the next round is due one interval after this one started, however long its probes take.
    this.timers.set(
      schedule,
      this.clock.setTimeout(() => {
        if (!this.running) return;
        this.arm(schedule);
        void this.runRound(schedule);
      }, schedule.intervalMs),
    );
  }
}

function isTarget(mode: CheckMode, p: Path, since: number): boolean {
  const s = p.state;
  if (s === 'admin_offline' || s === 'quarantined' || s === 'absent') return false;
  switch (mode) {
    case 'failed':
      return s === 'failed';
    case 'online':
      return s !== 'failed';
    case 'nonactive':
      return s === 'failed' || (p.inFlight === 0 && (p.stats.lastIoAt === undefined || p.stats.lastIoAt < since));
    case 'enabled':
    case 'all':
      return true;
  }
}
