/**
 * What I/O does when no path can carry it (spec §1.6, §5.2): fail at once
 * (AIX; HDLM after its last path went Online(E)), queue until a path returns
 * (dm no_path_retry=queue, queue_if_no_path), or queue for N health-check
 * rounds and then fail (dm no_path_retry=N: N x polling_interval).
 */
import { LunrigError } from '../errors.js';
import type { Clock } from '../util/clock.js';

export type NoPathPolicy = { mode: 'fail' } | { mode: 'queue' } | { mode: 'queue-checks'; checks: number };

export interface NoPathHooks {
  onDown(): void;
  onRestored(downForMs: number): void;
  onExhausted(failed: number): void;
}

interface Waiter {
  resolve: () => void;
  /** Without an error: the policy's own no-path error. */
  reject: (err?: unknown) => void;
}

export class NoPathQueue {
  private downSince: number | undefined;
  private rounds = 0;
  private exhausted = false;
  private readonly waiters: Waiter[] = [];

  constructor(
    readonly policy: NoPathPolicy,
    private readonly clock: Clock,
    private readonly device: string,
    private readonly hooks: NoPathHooks,
  ) {
    if (policy.mode === 'queue-checks' && !(Number.isSafeInteger(policy.checks) && policy.checks >= 1)) {
      throw new LunrigError('INVALID_CONFIG', `no_path_retry needs a positive number of checks, got ${policy.checks}`);
    }
  }

  get down(): boolean {
    return this.downSince !== undefined;
  }

  /** I/Os waiting for a path. */
  get queued(): number {
    return this.waiters.length;
  }

  /** Every path is out of service. */
  allPathsDown(): void {
    if (this.downSince !== undefined) return;
    this.downSince = this.clock.now();
    this.rounds = 0;
    this.exhausted = false;
    this.hooks.onDown();
  }

  /** A path can carry I/O again: release the queue. */
  pathsAvailable(): void {
    if (this.downSince === undefined) return;
    const downFor = this.clock.now() - this.downSince;
    this.downSince = undefined;
    this.exhausted = false;
    for (const w of this.waiters.splice(0)) w.resolve();
    this.hooks.onRestored(downFor);
  }

  /** An I/O found no path: resolves when one returns, or rejects per the policy. */
  wait(lastError: unknown): Promise<void> {
    this.allPathsDown();
    if (this.policy.mode === 'fail' || this.exhausted) return Promise.reject(this.noPathError(lastError));
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject: (err) => reject(err ?? this.noPathError(lastError)) }));
  }

  /** A health-check round finished while paths were down. */
  onCheckRound(): void {
    if (this.downSince === undefined || this.policy.mode !== 'queue-checks' || this.exhausted) return;
    if (++this.rounds < this.policy.checks) return;
    this.exhausted = true;
    const failed = this.waiters.splice(0);
    for (const w of failed) w.reject();
    this.hooks.onExhausted(failed.length);
  }

  /** The device is closing: fail everything queued. */
  close(err: unknown): void {
    for (const w of this.waiters.splice(0)) w.reject(err);
  }

  private noPathError(cause: unknown): LunrigError {
    const details = { device: this.device, policy: this.policy.mode };
    return new LunrigError('UNREACHABLE', `${this.device}: no path can carry I/O`, details, cause === undefined ? undefined : { cause });
  }
}
