/**
 * The host-side multipath device: a Volume over N paths to one LU (spec
 * §1). Each I/O goes to a path the selector picks among the active group's
 * online paths. A path error fails the path and the I/O is sent again
 * elsewhere, so the caller sees nothing; a device error goes back to the
 * caller and the path stays up. Health checks, failback, quarantine, the
 * all-paths-down policy and queue depth follow the config (profiles.ts).
 * Every timing rule runs on the injected clock. Path Volumes belong to the
 * caller: close() stops the device, not the transports.
 */
import { EventEmitter } from 'node:events';
import { LunrigError } from '../errors.js';
import { systemClock, type Clock, type ClockTimer } from '../util/clock.js';
import { checkRange } from '../volume/range-check.js';
import type { Extent, Volume, VolumeIdentity, WriteOptions, WriteZeroesOptions } from '../volume/volume.js';
import type { ErrorClass } from './error-classifier.js';
import { summarizeError, type GroupSwitchEvent, type MultipathEvent, type MultipathEventMap, type PathCause } from './events.js';
import { FailbackController } from './failback.js';
import { HealthChecker, type CheckSchedule } from './health-checker.js';
import { describeIo, type IoDescriptor } from './io-descriptor.js';
import { NoPathQueue } from './no-path-policy.js';
import { Path, type PathSpec } from './path.js';
import { PathGroups, type PathGroup } from './path-groups.js';
import { carriesIo, stateName, type PathState } from './path-states.js';
import type { PathStatsSnapshot } from './path-stats.js';
import { allSchedules, resolveConfig, type MultipathConfig } from './profiles.js';
import { QuarantineMonitor } from './quarantine.js';
import { QueueDepthLimiter } from './queue-depth.js';
import { DeviceReservations, checkReservationConfig } from './reservation-policy.js';
import { createSelector, type PathSelector } from './selectors/index.js';

export interface MultipathDeviceOptions {
  /** For events and errors (default: the LU's identity name). */
  name?: string;
  /** At least one; every path must report the same LU identity. */
  paths: readonly PathSpec[];
  /** A profile by name with its defaults, or a full config (default: 'aix'). */
  config?: 'aix' | 'hdlm' | 'dm' | MultipathConfig;
  clock?: Clock;
}

/** One row of an lspath / dlnkmgr view -path / multipath -ll style listing. */
export interface PathReport {
  name: string;
  state: PathState;
  /** The profile's name for the state (Enabled, Online(E), active ghost...). */
  stateName: string;
  priority: number;
  owner: boolean;
  group: string | undefined;
  /** In the group that carries I/O now. */
  activeGroup: boolean;
  fateGroups: readonly string[];
  stats: PathStatsSnapshot;
}

export class MultipathDevice extends EventEmitter<MultipathEventMap> implements Volume {
  readonly name: string;
  readonly config: MultipathConfig;
  readonly clock: Clock;
  private readonly ident: VolumeIdentity;
  private readonly initialSize: number;
  private readonly list: Path[] = [];
  private nextOrder = 0;
  private readonly groups: PathGroups;
  private readonly selector: PathSelector;
  private readonly limiter: QueueDepthLimiter;
  private readonly quarantine: QuarantineMonitor | undefined;
  private readonly noPath: NoPathQueue;
  private readonly failbackCtl: FailbackController;
  private readonly checker: HealthChecker;
  private readonly releaseTimers = new Map<Path, ClockTimer>();
  private readonly countedRounds: (s: CheckSchedule) => boolean;
  private readonly reservations: DeviceReservations;
  private closed = false;

  constructor(options: MultipathDeviceOptions) {
    super();
    const first = options.paths[0];
    if (!first) throw new LunrigError('INVALID_CONFIG', 'a multipath device needs at least one path');
    this.config = resolveConfig(options.config);
    checkReservationConfig(this.config.reservation, this.config.selector.kind);
    this.clock = options.clock ?? systemClock;
    this.ident = first.volume.identity();
    this.initialSize = first.volume.size;
    this.name = options.name ?? this.ident.name;
    this.groups = new PathGroups(this.config.grouping);
    this.selector = createSelector(this.config.selector);
    this.limiter = new QueueDepthLimiter(this.config.queueDepth ?? Number.POSITIVE_INFINITY);
    this.quarantine = this.config.quarantine && new QuarantineMonitor(this.config.quarantine, this.clock);
    this.noPath = new NoPathQueue(this.config.noPath, this.clock, this.name, {
      onDown: () => this.emitEvent({ type: 'all-paths-down', at: this.clock.now(), device: this.name }),
      onRestored: (downForMs) => this.emitEvent({ type: 'paths-restored', at: this.clock.now(), device: this.name, downForMs }),
      onExhausted: (failed) => this.emitEvent({ type: 'queue-exhausted', at: this.clock.now(), device: this.name, failed }),
    });
    this.failbackCtl = new FailbackController(this.config.failback, this.clock, {
      active: () => this.groups.active,
      bestUsable: () => this.groups.bestUsable(),
      switchTo: (group, cause) => this.switchGroup(group, cause),
    });
    this.reservations = new DeviceReservations(this.config.reservation, {
      name: this.name,
      paths: () => this.list,
      onAction: (path, action) =>
        this.emitEvent({ type: 'reservation', at: this.clock.now(), device: this.name, path: path.name, action, policy: this.reservations.policy }),
    });
    for (const spec of options.paths) this.attach(spec);
    this.groups.rebuild(this.list);
    const best = this.groups.bestUsable();
    if (best) this.groups.setActive(best); // before any listener can attach: read it from activeGroup
    const schedules = allSchedules(this.config);
    // dm counts no_path_retry in polling rounds; with no schedule marked, every round counts.
    const marked = schedules.some((s) => s.countsForNoPath);
    this.countedRounds = (s) => !marked || s.countsForNoPath === true;
    this.checker = new HealthChecker(
      this.clock,
      {
        paths: () => this.list,
        onProbe: (path, schedule, error) => this.onProbe(path, schedule, error),
        onRound: (schedule) => {
          if (this.countedRounds(schedule)) this.noPath.onCheckRound();
        },
      },
      schedules,
    );
    this.checker.start();
  }

  // --- Volume operations, in the order every layer keeps.

  get size(): number {
    return this.list[0]?.volume.size ?? this.initialSize;
  }

  get readOnly(): boolean {
    return this.list[0]?.volume.readOnly ?? true;
  }

  identity(): VolumeIdentity {
    return { ...this.ident };
  }

  read(offset: number, length: number, into?: Uint8Array): Promise<Uint8Array> {
    return this.execute(describeIo('read', offset, length), (v) => v.read(offset, length, into));
  }

  write(offset: number, data: Uint8Array, options?: WriteOptions): Promise<void> {
    return this.execute(describeIo('write', offset, data.length), (v) => v.write(offset, data, options));
  }

  writeZeroes(offset: number, length: number, options?: WriteZeroesOptions): Promise<void> {
    return this.execute(describeIo('writeZeroes', offset, length), (v) => v.writeZeroes(offset, length, options));
  }

  trim(offset: number, length: number, options?: WriteOptions): Promise<void> {
    return this.execute(describeIo('trim', offset, length), (v) => v.trim(offset, length, options));
  }

  flush(): Promise<void> {
    return this.execute(describeIo('flush', 0, 0), (v) => v.flush());
  }

  blockStatus(offset: number, length: number): Promise<Extent[]> {
    return this.execute(describeIo('blockStatus', offset, length), (v) => v.blockStatus(offset, length));
  }

  // --- Paths and admin commands.

  paths(): readonly Path[] {
    return this.list;
  }

  path(name: string): Path {
    const p = this.list.find((x) => x.name === name);
    if (!p) throw new LunrigError('MP_PATH_NOT_FOUND', `${this.name}: no path '${name}'`, { device: this.name, path: name });
    return p;
  }

  /** The group carrying I/O now. */
  get activeGroup(): string | undefined {
    return this.groups.active?.key;
  }

  /** I/Os waiting for a path under a queueing all-paths-down policy. */
  get queuedForPath(): number {
    return this.noPath.queued;
  }

  /** Outstanding I/Os counted against the device queue depth, and the most there ever were. */
  get queueDepthUse(): { active: number; waiting: number; peak: number } {
    return { active: this.limiter.active, waiting: this.limiter.waiting, peak: this.limiter.peak };
  }

  /** Add a path (it must lead to the same LU); it starts online. */
  addPath(spec: PathSpec): Path {
    this.checkOpen();
    if (this.list.some((p) => p.name === spec.name)) throw new LunrigError('INVALID_ARGUMENT', `${this.name}: path '${spec.name}' exists`, { path: spec.name });
    const id = spec.volume.identity();
    if (id.uniqueId !== this.ident.uniqueId) {
      throw new LunrigError('INVALID_ARGUMENT', `${this.name}: path '${spec.name}' leads to a different LU (${id.uniqueId}, not ${this.ident.uniqueId})`, {
        path: spec.name,
        uniqueId: id.uniqueId,
      });
    }
    const p = this.attach(spec);
    this.groups.rebuild(this.list);
    this.noPath.pathsAvailable();
    this.failbackCtl.onReinstated();
    // PR policies register the key on the new path now (MP-38); its first I/O waits for that anyway.
    this.reservations.onPathAdded(p).catch(() => undefined);
    return p;
  }

  /** Remove a path; I/O already on it finishes. */
  removePath(name: string): void {
    const p = this.path(name);
    p.setState('absent', 'removed');
    this.list.splice(this.list.indexOf(p), 1);
    this.forgetQuarantine(p);
    this.groups.rebuild(this.list);
  }

  /**
   * Take a path out of service by command (AIX chpath -s disable, HDLM
   * offline, dm fail path); no check brings it back. With protectLastPath
   * (HDLM) the last Online path is refused with MP_LAST_PATH.
   */
  offline(name: string): void {
    const p = this.path(name);
    if (p.state === 'admin_offline') return;
    const online = (x: Path): boolean => x.state === 'online' || x.state === 'online_degraded';
    if (this.config.protectLastPath && online(p) && !this.list.some((o) => o !== p && online(o))) {
      throw new LunrigError('MP_LAST_PATH', `${this.name}: '${name}' is the last Online path and cannot be placed offline`, { device: this.name, path: name });
    }
    this.forgetQuarantine(p);
    p.setState('admin_offline', 'admin');
  }

  /**
   * Put a path back in service by command (AIX chpath -s enable, HDLM online,
   * dm reinstate): it is checked first and goes online only if I/O works.
   * Clears a quarantine. Resolves with the resulting state.
   */
  async online(name: string): Promise<PathState> {
    this.checkOpen();
    const p = this.path(name);
    if (p.state === 'online') return p.state;
    try {
      await p.probe('tur');
    } catch (err) {
      if (p.state === 'admin_offline' || p.state === 'absent') p.setState('failed', 'admin', err);
      return p.state;
    }
    this.forgetQuarantine(p);
    p.setState('online', 'admin');
    this.failbackCtl.onReinstated();
    return p.state;
  }

  /**
   * Open the device as AIX does: apply reserve_policy (spec §1.7). single_path
   * reserves through the path the selector would use; PR_exclusive/PR_shared
   * register the key on every path and reserve. A device never opened does
   * no reservation work. Idempotent.
   */
  async open(): Promise<void> {
    this.checkOpen();
    if (this.reservations.isOpen) return;
    const c = this.groups.candidates(new Set());
    const first = c.paths.length > 0 ? this.selector.select(c.paths, describeIo('read', 0, 0)) : undefined;
    await this.reservations.open(first);
  }

  /** reserve_policy as applied: the policy, and the path holding a single_path reserve. */
  get reservation(): { policy: string; open: boolean; path: string | undefined } {
    return { policy: this.reservations.policy, open: this.reservations.isOpen, path: this.reservations.reservingPath?.name };
  }

  /** Manual failback: move I/O to the best usable group. False when it already has it. */
  failback(): boolean {
    return this.failbackCtl.switchToBest('manual');
  }

  /** lspath-style listing in the profile's state names. */
  describe(): PathReport[] {
    const now = this.clock.now();
    const active = this.groups.active;
    return this.list.map((p) => ({
      name: p.name,
      state: p.state,
      stateName: stateName(this.config.profile, p.state),
      priority: p.priority,
      owner: p.owner,
      group: this.groups.groupOf(p)?.key,
      activeGroup: active !== undefined && active.paths.includes(p),
      fateGroups: p.fateGroups,
      stats: p.stats.snapshot(now),
    }));
  }

  /** Release an opened reservation, stop health checks and timers; queued and later I/O fails with CLOSED. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    await this.reservations.release().catch(() => undefined);
    this.closed = true;
    this.checker.stop();
    this.failbackCtl.cancel();
    for (const t of this.releaseTimers.values()) this.clock.clearTimeout(t);
    this.releaseTimers.clear();
    const err = new LunrigError('CLOSED', `multipath device ${this.name} is closed`);
    this.noPath.close(err);
    this.limiter.rejectWaiting(err);
  }

  // --- The I/O path.

  private async execute<T>(io: IoDescriptor, op: (v: Volume) => Promise<T>): Promise<T> {
    this.checkOpen();
    checkRange(io.offset, io.length, this.size, io.kind);
    if (!this.limiter.tryAcquire()) await this.limiter.acquire();
    try {
      return await this.dispatch(io, op);
    } finally {
      this.limiter.release();
    }
  }

  private async dispatch<T>(io: IoDescriptor, op: (v: Volume) => Promise<T>): Promise<T> {
    const tried = new Set<Path>(); // standby paths that already said NOT READY to this I/O
    const timedOut = new Set<Path>(); // retry_path: one more try on the same path
    let pinned: Path | undefined;
    let retries = 0;
    let lastError: unknown;
    for (;;) {
      this.checkOpen();
      let path: Path;
      if (pinned && carriesIo(pinned.state)) {
        path = pinned;
      } else {
        const c = this.groups.candidates(tried);
        if (c.paths.length === 0) {
          await this.noPath.wait(lastError);
          tried.clear();
          continue;
        }
        if (c.group && c.group !== this.groups.active) this.switchGroup(c.group, 'failover');
        path = this.selector.select(c.paths, io);
      }
      pinned = undefined;
      try {
        // Synchronous when there is nothing to do, so the I/O is issued (and its timeout armed) at once.
        const gate = this.reservations.beforeIo(path);
        if (gate) await gate;
        const result = await path.run(io, op);
        if (path.state === 'online_degraded' || path.state === 'standby') this.reinstate(path, 'io_ok');
        return result;
      } catch (err) {
        lastError = err;
        const cls = this.config.classifier(err);
        path.stats.error(cls);
        if (this.closed) throw err;
        if (cls === 'device') throw err;
        if (cls === 'retry') {
          if (++retries > this.config.retryLimit) throw err;
          pinned = path;
        } else if (cls === 'standby') {
          tried.add(path);
          if (carriesIo(path.state)) path.setState('standby', 'standby_reported', err);
        } else {
          const timeout = err instanceof LunrigError && err.code === 'TIMEOUT';
          if (timeout && this.config.timeoutPolicy === 'retry_path' && !timedOut.has(path)) {
            timedOut.add(path);
            pinned = path;
          } else {
            this.pathError(path, err, timeout ? 'io_timeout' : 'io_error');
            // HDLM: the last path stays Online(E) and the caller gets the error; nothing else could carry it.
            if (path.state === 'online_degraded') throw err;
          }
        }
        this.emitEvent({ type: 'io-retry', at: this.clock.now(), device: this.name, path: path.name, errorClass: cls, error: summarizeError(err) });
      }
    }
  }

  /** A path-class failure (I/O or check): Failed, or Online(E) for HDLM's last path, or quarantined, or Disabled on timeout. */
  private pathError(path: Path, err: unknown, cause: PathCause): void {
    if (!carriesIo(path.state)) return;
    if (cause === 'io_timeout' && this.config.timeoutPolicy === 'disable_path') {
      path.setState('admin_offline', cause, err);
      return;
    }
    if (this.config.lastPath === 'degrade' && !this.list.some((p) => p !== path && p.state === 'online')) {
      path.setState('online_degraded', 'last_path', err);
      return;
    }
    if (this.quarantine?.onFailure(path)) {
      path.setState('quarantined', 'iem_quarantine', err);
      this.armRelease(path);
      return;
    }
    path.setState('failed', cause, err);
  }

  private onProbe(path: Path, schedule: CheckSchedule, error: unknown): void {
    if (!this.list.includes(path)) return;
    if (error === undefined) {
      const s = path.state;
      if (s === 'failed' && schedule.recover) {
        this.reinstate(path, 'check_ok');
        this.quarantine?.onRecovered(path, schedule.autoFailback === true);
      } else if (s === 'online_degraded' || (s === 'standby' && schedule.command === 'tur')) {
        this.reinstate(path, 'check_ok');
      }
      return;
    }
    if (!carriesIo(path.state)) return;
    const cls: ErrorClass = this.config.classifier(error);
    if (cls === 'path') this.pathError(path, error, 'check_failed');
    else if (cls === 'standby') path.setState('standby', 'standby_reported', error);
    // A device-class answer (e.g. RESERVATION CONFLICT to a TUR) says nothing about the path.
  }

  private reinstate(path: Path, cause: PathCause): void {
    if (path.setState('online', cause)) this.failbackCtl.onReinstated();
  }

  private attach(spec: PathSpec): Path {
    const [min, max] = this.config.priorityRange;
    const priority = spec.priority ?? Math.max(1, min);
    if (!Number.isSafeInteger(priority) || priority < min || priority > max) {
      throw new LunrigError('INVALID_CONFIG', `path ${spec.name}: priority ${priority} is outside ${min}-${max}`, { path: spec.name, priority });
    }
    const id = spec.volume.identity();
    if (id.uniqueId !== this.ident.uniqueId) {
      throw new LunrigError('INVALID_CONFIG', `path ${spec.name} leads to a different LU (${id.uniqueId}, not ${this.ident.uniqueId})`, { path: spec.name });
    }
    if (this.list.some((p) => p.name === spec.name)) throw new LunrigError('INVALID_CONFIG', `path name '${spec.name}' used twice`);
    const path = new Path({ ...spec, priority, queueDepth: spec.queueDepth ?? this.config.pathQueueDepth }, this.nextOrder++, {
      clock: this.clock,
      requestTimeoutMs: this.config.requestTimeoutMs,
      onTransition: (p, from, to, cause, error) => this.onTransition(p, from, to, cause, error),
    });
    this.list.push(path);
    return path;
  }

  private onTransition(path: Path, from: PathState, to: PathState, cause: PathCause, error: unknown): void {
    const profile = this.config.profile;
    this.emitEvent({
      type: 'path-state',
      at: this.clock.now(),
      device: this.name,
      path: path.name,
      from,
      to,
      fromName: stateName(profile, from),
      toName: stateName(profile, to),
      cause,
      ...(error === undefined ? {} : { error: summarizeError(error) }),
    });
    if (carriesIo(from) === carriesIo(to)) return;
    if (this.list.some((p) => carriesIo(p.state))) this.noPath.pathsAvailable();
    else this.noPath.allPathsDown();
  }

  private switchGroup(group: PathGroup, cause: GroupSwitchEvent['cause']): void {
    const from = this.groups.active?.key;
    this.groups.setActive(group);
    this.emitEvent({ type: 'group-switch', at: this.clock.now(), device: this.name, from, to: group.key, cause });
  }

  private armRelease(path: Path): void {
    const after = this.config.quarantine?.releaseAfterMs;
    if (after === undefined) return;
    this.releaseTimers.set(
      path,
      this.clock.setTimeout(() => {
        this.releaseTimers.delete(path);
        if (path.state === 'quarantined') path.setState('failed', 'quarantine_released');
      }, after),
    );
  }

  private forgetQuarantine(path: Path): void {
    this.quarantine?.clear(path);
    const t = this.releaseTimers.get(path);
    if (t) this.clock.clearTimeout(t);
    this.releaseTimers.delete(path);
  }

  private emitEvent(event: MultipathEvent): void {
    this.emit('event', event);
  }

  private checkOpen(): void {
    if (this.closed) throw new LunrigError('CLOSED', `multipath device ${this.name} is closed`);
  }
}
