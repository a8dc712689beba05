/**
 * A target port's fault switch (spec §5.1 item 1): the faults injected on the
 * port, evaluated on the clock and with an injectable random source, so a
 * rate or a latency distribution replays exactly from a seed. FaultyVolume
 * (faulty-volume.ts) asks it what to do with each request; TargetPort follows
 * its link state to drop and restore the NBD listener. One switch serves
 * every LUN behind the port; FateGroup (fate-group.ts) drives several.
 */
import { EventEmitter } from 'node:events';
import { LunrigError, type ErrorCode } from '../errors.js';
import { systemClock, type Clock, type ClockTimer } from '../util/clock.js';

/** Milliseconds: fixed, or drawn per request. */
export type LatencySpec =
  | number
  | { dist: 'uniform'; min: number; max: number }
  | { dist: 'exponential'; mean: number }
  | { dist: 'normal'; mean: number; stddev: number };

/** Which requests a latency or error fault hits: reads (and block status), writes (and zero, trim, flush), or all. */
export type FaultOps = 'all' | 'read' | 'write';

export type Fault =
  /** Connection refused / reset; in-process, requests fail with UNREACHABLE at once. */
  | { kind: 'down' }
  /** Requests are never answered; held ones fail when the hang ends (they never touched the LU). */
  | { kind: 'hang' }
  /** ALUA standby: identification answers, I/O fails with NOT_READY. */
  | { kind: 'standby' }
  | { kind: 'latency'; ms: LatencySpec; ops?: FaultOps }
  /** A fraction of requests fails, with IO_ERROR (EIO) unless another code is given (MEDIUM_ERROR, RESERVATION_CONFLICT, BUSY...). */
  | { kind: 'error'; rate: number; code?: ErrorCode; ops?: FaultOps }
  /** Up for duty x period, then `fault` (default down) for the rest, repeating from the moment it was set. */
  | { kind: 'flap'; periodMs: number; duty: number; fault?: 'down' | 'hang' | 'error' };

export type LinkState = 'up' | 'down' | 'hang' | 'standby';

/** What a request class is: inquiry sees only down and hang. */
export type RequestClass = 'read' | 'write' | 'inquiry';

export type FaultDecision =
  | { action: 'pass'; delayMs: number }
  | { action: 'error'; delayMs: number; code: ErrorCode }
  | { action: 'down' | 'hang' | 'standby' };

export interface FaultSwitchOptions {
  /** For error messages and reports. */
  name?: string;
  clock?: Clock;
  /** Uniform [0, 1) source; pass a seeded one for replayable runs (default Math.random). */
  random?: () => number;
}

export interface FaultSwitchStats {
  requests: number;
  injectedErrors: number;
  refused: number;
  held: number;
  delayedMs: number;
}

export interface FaultSwitchEvents {
  /** The link state changed (set/clear, or a flap phase boundary). */
  change: [state: LinkState, previous: LinkState];
}

/** Something faults can be set on: a switch, or a fate group of switches. */
export interface FaultTarget {
  set(...faults: Fault[]): void;
  clear(): void;
}

interface ActiveFault {
  fault: Fault;
  since: number;
}

export class FaultSwitch extends EventEmitter<FaultSwitchEvents> implements FaultTarget {
  readonly name: string;
  readonly clock: Clock;
  private readonly random: () => number;
  private active: ActiveFault[] = [];
  private current: LinkState = 'up';
  private flapTimer: ClockTimer | undefined;
  private readonly holds = new Set<(err: LunrigError) => void>();
  private readonly counters: FaultSwitchStats = { requests: 0, injectedErrors: 0, refused: 0, held: 0, delayedMs: 0 };

  constructor(options: FaultSwitchOptions = {}) {
    super();
    this.name = options.name ?? 'port';
    this.clock = options.clock ?? systemClock;
    this.random = options.random ?? Math.random;
  }

  get faults(): readonly Fault[] {
    return this.active.map((a) => a.fault);
  }

  get state(): LinkState {
    return this.current;
  }

  get stats(): Readonly<FaultSwitchStats> {
    return { ...this.counters };
  }

  /** Replace the active faults (none: healthy). */
  set(...faults: Fault[]): void {
    for (const f of faults) checkFault(f);
    const now = this.clock.now();
    this.active = faults.map((fault) => ({ fault, since: now }));
    this.update();
  }

  /** Add one fault to those active. */
  add(fault: Fault): void {
    checkFault(fault);
    this.active.push({ fault, since: this.clock.now() });
    this.update();
  }

  clear(): void {
    this.set();
  }

  /** What to do with one request now. Draws from the random source only for rates and distributions. */
  decide(cls: RequestClass): FaultDecision {
    this.counters.requests++;
    const now = this.clock.now();
    const link = this.linkAt(now);
    if (link === 'down' || link === 'hang') return { action: link };
    if (cls === 'inquiry') return { action: 'pass', delayMs: 0 };
    if (link === 'standby') return { action: 'standby' };
    let delayMs = 0;
    let code: ErrorCode | undefined;
    for (const { fault, since } of this.active) {
      if (fault.kind === 'latency' && hits(fault.ops, cls)) delayMs += this.sample(fault.ms);
      else if (fault.kind === 'error' && hits(fault.ops, cls) && code === undefined && this.draw(fault.rate)) code = fault.code ?? 'IO_ERROR';
      else if (fault.kind === 'flap' && fault.fault === 'error' && code === undefined && !flapUp(fault, since, now)) code = 'IO_ERROR';
    }
    this.counters.delayedMs += delayMs;
    return code === undefined ? { action: 'pass', delayMs } : { action: 'error', delayMs, code };
  }

  /** Count a refused or failed request (FaultyVolume reports what it did). */
  noteRefused(): void {
    this.counters.refused++;
  }

  noteInjectedError(): void {
    this.counters.injectedErrors++;
  }

  /** A hung request: never resolves; rejects when the hang ends (UNREACHABLE if the port went down, IO_ERROR otherwise). */
  hold(): Promise<never> {
    this.counters.held++;
    return new Promise<never>((_resolve, reject) => this.holds.add(reject));
  }

  /** Requests held by a hang right now. */
  get holding(): number {
    return this.holds.size;
  }

  /** Recompute the link state; emit on change, release held requests when a hang ends, re-arm flap timers. */
  private update(): void {
    if (this.flapTimer) this.clock.clearTimeout(this.flapTimer);
    this.flapTimer = undefined;
    const now = this.clock.now();
    const next = this.linkAt(now);
    const prev = this.current;
    this.current = next;
    if (prev === 'hang' && next !== 'hang') {
      const err =
        next === 'down'
          ? new LunrigError('UNREACHABLE', `port ${this.name}: connection reset`, { port: this.name })
          : new LunrigError('IO_ERROR', `port ${this.name}: request aborted when the port recovered from a hang`, { port: this.name });
      const rejects = [...this.holds];
      this.holds.clear();
      for (const r of rejects) r(err);
    }
    const boundary = this.nextFlapBoundary(now);
    if (boundary !== undefined) this.flapTimer = this.clock.setTimeout(() => this.update(), boundary - now);
    if (next !== prev) this.emit('change', next, prev);
  }

  private linkAt(now: number): LinkState {
    let down = false;
    let hang = false;
    let standby = false;
    for (const { fault, since } of this.active) {
      if (fault.kind === 'down') down = true;
      else if (fault.kind === 'hang') hang = true;
      else if (fault.kind === 'standby') standby = true;
      else if (fault.kind === 'flap' && !flapUp(fault, since, now)) {
        if ((fault.fault ?? 'down') === 'down') down = true;
        else if (fault.fault === 'hang') hang = true;
      }
    }
    return down ? 'down' : hang ? 'hang' : standby ? 'standby' : 'up';
  }

  private nextFlapBoundary(now: number): number | undefined {
    let next: number | undefined;
    for (const { fault, since } of this.active) {
      if (fault.kind !== 'flap') continue;
      const upFor = fault.periodMs * fault.duty;
      const phase = (now - since) % fault.periodMs;
      const start = now - phase;
      const at = phase < upFor ? start + upFor : start + fault.periodMs;
      if (next === undefined || at < next) next = at;
    }
    return next;
  }

  private draw(rate: number): boolean {
    if (rate <= 0) return false;
    if (rate >= 1) return true;
    return this.random() < rate;
  }

  private sample(spec: LatencySpec): number {
    if (typeof spec === 'number') return spec;
    switch (spec.dist) {
      case 'uniform':
        return spec.min + this.random() * (spec.max - spec.min);
      case 'exponential':
        return -spec.mean * Math.log(1 - this.random());
      case 'normal': {
        // Box-Muller; a delay cannot be negative.
        const u = 1 - this.random();
        const v = this.random();
        return Math.max(0, spec.mean + spec.stddev * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v));
      }
    }
  }
}

function hits(ops: FaultOps | undefined, cls: RequestClass): boolean {
  return ops === undefined || ops === 'all' || ops === cls;
}

function flapUp(f: Extract<Fault, { kind: 'flap' }>, since: number, now: number): boolean {
  return (now - since) % f.periodMs < f.periodMs * f.duty;
}

function checkFault(f: Fault): void {
  const bad = (what: string): never => {
    throw new LunrigError('INVALID_ARGUMENT', `fault ${f.kind}: ${what}`, { fault: f });
  };
  switch (f.kind) {
    case 'down':
    case 'hang':
    case 'standby':
      return;
    case 'latency': {
      const s = f.ms;
      const ok =
        typeof s === 'number'
          ? s >= 0
          : s.dist === 'uniform'
            ? s.min >= 0 && s.max >= s.min
            : s.dist === 'exponential'
              ? s.mean >= 0
              : s.dist === 'normal'
                ? s.mean >= 0 && s.stddev >= 0
                : false;
      if (!ok) bad('latency must be a non-negative number or a valid distribution');
      return;
    }
    case 'error':
      if (!(f.rate >= 0 && f.rate <= 1)) bad(`rate must be within 0..1, got ${f.rate}`);
      return;
    case 'flap':
      if (!(f.periodMs > 0)) bad(`periodMs must be positive, got ${f.periodMs}`);
      if (!(f.duty >= 0 && f.duty <= 1)) bad(`duty must be within 0..1, got ${f.duty}`);
      return;
    default:
      bad('unknown kind');
  }
}
