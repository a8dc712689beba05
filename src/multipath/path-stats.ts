/**
 * Per-path statistics (spec/multipath.md §5.1 item 3): I/Os and bytes, in
 * flight, errors by class, a latency histogram with an EWMA, probes, and time
 * in each state. Times come from the device's clock.
 */
import { ERROR_CLASSES, type ErrorClass } from './error-classifier.js';
import type { IoDescriptor } from './io-descriptor.js';
import { PATH_STATES, type PathState } from './path-states.js';

/** Upper bounds of the latency buckets in ms; one more bucket holds everything slower. */
export const LATENCY_BUCKETS_MS: readonly number[] = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10_000, 30_000, 60_000];

/** Weight of the newest sample in the latency EWMA (what a latency-aware selector reads). */
const EWMA_ALPHA = 0.25;

export interface LatencyHistogram {
  /** Counts per bucket: `le` is the bucket's upper bound in ms (Infinity for the last). */
  buckets: { le: number; count: number }[];
  count: number;
  sumMs: number;
  maxMs: number;
}

export interface PathStatsSnapshot {
  /** I/Os issued to the path (attempts, whatever their outcome). */
  ios: number;
  /** I/Os that completed successfully. */
  completed: number;
  reads: number;
  writes: number;
  bytesRead: number;
  bytesWritten: number;
  inFlight: number;
  inFlightBytes: number;
  peakInFlight: number;
  errors: Record<ErrorClass, number>;
  timeouts: number;
  probes: number;
  probeFailures: number;
  latency: LatencyHistogram;
  /** Exponentially weighted mean latency of successful I/Os; undefined before the first. */
  ewmaMs: number | undefined;
  /** Milliseconds spent in each state, the current one included up to `now`. */
  timeInState: Record<PathState, number>;
  lastIoAt: number | undefined;
}

export class PathStats {
  ios = 0;
  completed = 0;
  reads = 0;
  writes = 0;
  bytesRead = 0;
  bytesWritten = 0;
  inFlight = 0;
  inFlightBytes = 0;
  peakInFlight = 0;
  timeouts = 0;
  probes = 0;
  probeFailures = 0;
  ewmaMs: number | undefined;
  lastIoAt: number | undefined;
  readonly errors: Record<ErrorClass, number> = Object.fromEntries(ERROR_CLASSES.map((c) => [c, 0])) as Record<ErrorClass, number>;
  private readonly bucketCounts = new Array<number>(LATENCY_BUCKETS_MS.length + 1).fill(0);
  private latencyCount = 0;
  private latencySum = 0;
  private latencyMax = 0;
  private readonly stateTime = Object.fromEntries(PATH_STATES.map((s) => [s, 0])) as Record<PathState, number>;
  private state: PathState;
  private stateSince: number;

  constructor(state: PathState, now: number) {
    this.state = state;
    this.stateSince = now;
  }

  /** An I/O was issued to the path. */
  begin(io: IoDescriptor, now: number): void {
    this.ios++;
    this.inFlight++;
    this.inFlightBytes += io.bytes;
    if (this.inFlight > this.peakInFlight) this.peakInFlight = this.inFlight;
    this.lastIoAt = now;
  }

  /** It finished (or the path gave up on it); `latencyMs` only for a success. */
  end(io: IoDescriptor, latencyMs: number | undefined): void {
    this.inFlight--;
    this.inFlightBytes -= io.bytes;
    if (latencyMs === undefined) return;
    this.completed++;
    if (io.kind === 'read') {
      this.reads++;
      this.bytesRead += io.bytes;
    } else if (io.kind === 'write') {
      this.writes++;
      this.bytesWritten += io.bytes;
    }
    let b = LATENCY_BUCKETS_MS.findIndex((le) => latencyMs <= le);
    if (b < 0) b = LATENCY_BUCKETS_MS.length;
    this.bucketCounts[b]!++;
    this.latencyCount++;
    this.latencySum += latencyMs;
    if (latencyMs > this.latencyMax) this.latencyMax = latencyMs;
    this.ewmaMs = this.ewmaMs === undefined ? latencyMs : this.ewmaMs + EWMA_ALPHA * (latencyMs - this.ewmaMs);
  }

  error(cls: ErrorClass): void {
    this.errors[cls]++;
  }

  enterState(state: PathState, now: number): void {
    this.stateTime[this.state] += now - this.stateSince;
    this.state = state;
    this.stateSince = now;
  }

  snapshot(now: number): PathStatsSnapshot {
    const timeInState = { ...this.stateTime };
    timeInState[this.state] += now - this.stateSince;
    return {
      ios: this.ios,
      completed: this.completed,
      reads: this.reads,
      writes: this.writes,
      bytesRead: this.bytesRead,
      bytesWritten: this.bytesWritten,
      inFlight: this.inFlight,
      inFlightBytes: this.inFlightBytes,
      peakInFlight: this.peakInFlight,
      errors: { ...this.errors },
      timeouts: this.timeouts,
      probes: this.probes,
      probeFailures: this.probeFailures,
      latency: {
        buckets: this.bucketCounts.map((count, i) => ({ le: LATENCY_BUCKETS_MS[i] ?? Number.POSITIVE_INFINITY, count })),
        count: this.latencyCount,
        sumMs: this.latencySum,
        maxMs: this.latencyMax,
      },
      ewmaMs: this.ewmaMs,
      timeInState,
      lastIoAt: this.lastIoAt,
    };
  }
}
