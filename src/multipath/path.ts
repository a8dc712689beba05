/**
 * One path (an I_T_L nexus): a Volume that reaches the LU through one target
 * port, its state and its statistics. It issues I/O with in-flight accounting
 * done synchronously at issue (so selectors that read it are exact), an
 * optional per-path queue depth, and a per-request timeout on the clock (how
 * a hung port is detected: NbdClient has no timeout of its own).
 */
import { LunrigError } from '../errors.js';
import type { Clock } from '../util/clock.js';
import type { Volume } from '../volume/volume.js';
import type { PathCause } from './events.js';
import type { CheckCommand } from './health-checker.js';
import type { IoDescriptor } from './io-descriptor.js';
import { canTransition, type PathState } from './path-states.js';
import { PathStats } from './path-stats.js';
import { QueueDepthLimiter } from './queue-depth.js';
import { transportOf } from './transport.js';

export interface PathSpec {
  /** Unique within the device, e.g. 'hdisk3:vscsi0' or 'sdb'. */
  name: string;
  volume: Volume;
  /**
   * AIX/dm path priority (default 1). AIX fail_over prefers the lowest value,
   * AIX round_robin gives higher values a bigger share, dm groups prefer the
   * highest: each selector and grouping policy says which.
   */
  priority?: number;
  /** HDLM owner path (default true); non-owner paths carry I/O only when no owner path is online. */
  owner?: boolean;
  /** Group label for the 'explicit' grouping policy. */
  group?: string;
  /** dm service-time relative throughput (default 1). */
  throughput?: number;
  /** Labels of what the path shares with others (HBA, switch, port, controller, VIOS), for reports. */
  fateGroups?: readonly string[];
  /** Per-path queue depth; more I/Os wait at the path (default: no cap). */
  queueDepth?: number;
}

export interface PathContext {
  clock: Clock;
  /** Per-request timeout (AIX rw_timeout); undefined or 0: none. */
  requestTimeoutMs: number | undefined;
  onTransition(path: Path, from: PathState, to: PathState, cause: PathCause, error?: unknown): void;
}

export interface PathTransition {
  from: PathState;
  to: PathState;
  cause: PathCause;
  at: number;
}

export class Path {
  readonly name: string;
  readonly volume: Volume;
  readonly priority: number;
  readonly owner: boolean;
  readonly group: string | undefined;
  readonly throughput: number;
  readonly fateGroups: readonly string[];
  readonly stats: PathStats;
  private _state: PathState = 'online';
  private _lastTransition: PathTransition | undefined;
  private readonly limiter: QueueDepthLimiter | undefined;
  /** A probe is running: checks do not stack up on a slow path. */
  probing = false;

  constructor(
    spec: PathSpec,
    /** Configuration order: tie-breaks and rotation follow it. */
    readonly order: number,
    private readonly ctx: PathContext,
  ) {
    this.name = spec.name;
    this.volume = spec.volume;
    this.priority = spec.priority ?? 1;
    this.owner = spec.owner ?? true;
    this.group = spec.group;
    this.throughput = spec.throughput ?? 1;
    this.fateGroups = [...(spec.fateGroups ?? [])];
    if (!Number.isSafeInteger(this.priority) || this.priority < 0) {
      throw new LunrigError('INVALID_CONFIG', `path ${this.name}: priority must be a non-negative integer, got ${spec.priority}`);
    }
    if (!(this.throughput > 0)) throw new LunrigError('INVALID_CONFIG', `path ${this.name}: throughput must be positive, got ${spec.throughput}`);
    this.limiter = spec.queueDepth === undefined ? undefined : new QueueDepthLimiter(spec.queueDepth);
    this.stats = new PathStats(this._state, ctx.clock.now());
  }

  get state(): PathState {
    return this._state;
  }

  get lastTransition(): PathTransition | undefined {
    return this._lastTransition;
  }

  get inFlight(): number {
    return this.stats.inFlight;
  }

  get inFlightBytes(): number {
    return this.stats.inFlightBytes;
  }

  /**
   * Issue one I/O. Counted in flight before the first await, so a selector
   * running right after sees it. Rejects with TIMEOUT when the request
   * timeout passes first; the transport is then reset so a late answer can
   * never land after the I/O was retried elsewhere.
   */
  async run<T>(io: IoDescriptor, op: (volume: Volume) => Promise<T>): Promise<T> {
    const clock = this.ctx.clock;
    this.stats.begin(io, clock.now());
    let latency: number | undefined;
    try {
      if (this.limiter && !this.limiter.tryAcquire()) await this.limiter.acquire();
      try {
        const t0 = clock.now();
        const result = await this.withTimeout(invoke(op, this.volume), io.kind);
        latency = clock.now() - t0;
        return result;
      } finally {
        this.limiter?.release();
      }
    } finally {
      this.stats.end(io, latency);
    }
  }

  /** A health check: 'tur' reads the first block (fails wherever I/O fails); 'inquiry' only identifies. */
  async probe(command: CheckCommand): Promise<void> {
    this.stats.probes++;
    try {
      const t = transportOf(this.volume);
      if (command === 'inquiry') {
        if (t.inquiry) await this.withTimeout(t.inquiry(), 'inquiry');
        else this.volume.identity();
      } else {
        await this.withTimeout(invoke((v) => v.read(0, Math.min(512, v.size)), this.volume), 'test unit ready');
      }
    } catch (err) {
      this.stats.probeFailures++;
      throw err;
    }
  }

  /** Move to `to`; false when already there. Illegal moves are bugs in the caller. */
  setState(to: PathState, cause: PathCause, error?: unknown): boolean {
    const from = this._state;
    if (from === to) return false;
    if (!canTransition(from, to)) throw new LunrigError('INTERNAL', `path ${this.name}: no transition ${from} -> ${to}`, { from, to, cause });
    const at = this.ctx.clock.now();
    this._state = to;
    this.stats.enterState(to, at);
    this._lastTransition = { from, to, cause, at };
    this.ctx.onTransition(this, from, to, cause, error);
    return true;
  }

  private withTimeout<T>(p: Promise<T>, what: string): Promise<T> {
    const ms = this.ctx.requestTimeoutMs;
    if (!ms) return p;
    const clock = this.ctx.clock;
    return new Promise<T>((resolve, reject) => {
      const timer = clock.setTimeout(() => {
        this.stats.timeouts++;
        reject(new LunrigError('TIMEOUT', `path ${this.name}: ${what} not answered within ${ms} ms`, { path: this.name, timeoutMs: ms }));
        transportOf(this.volume).reset?.();
      }, ms);
      p.then(
        (v) => {
          clock.clearTimeout(timer);
          resolve(v);
        },
        (e: unknown) => {
          clock.clearTimeout(timer);
          reject(e);
        },
      );
    });
  }
}

/** Call an operation, turning a synchronous throw into a rejection. */
function invoke<T>(op: (volume: Volume) => Promise<T>, volume: Volume): Promise<T> {
  try {
    return op(volume);
  } catch (err) {
    return Promise.reject(err);
  }
}
