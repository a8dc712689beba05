/**
 * A queue-depth cap: at most `limit` holders at once, the rest wait in FIFO
 * order (AIX queue_depth on the device, a per-path cap on Linux / HP-UX).
 */
import { LunrigError } from '../errors.js';

export class QueueDepthLimiter {
  private held = 0;
  private maxHeld = 0;
  private readonly waiters: { resolve: () => void; reject: (err: unknown) => void }[] = [];

  constructor(readonly limit = Number.POSITIVE_INFINITY) {
    if (!(limit >= 1) || (Number.isFinite(limit) && !Number.isSafeInteger(limit))) {
      throw new LunrigError('INVALID_CONFIG', `queue depth must be a positive integer, got ${limit}`, { limit });
    }
  }

  /** Holders now. */
  get active(): number {
    return this.held;
  }

  get waiting(): number {
    return this.waiters.length;
  }

  /** Most holders at once so far. */
  get peak(): number {
    return this.maxHeld;
  }

  /** Take a slot if one is free now (no waiting, no promise). */
  tryAcquire(): boolean {
    if (this.held >= this.limit) return false;
    this.take();
    return true;
  }

  /** Resolves once a slot is held; give it back with release(). */
  acquire(): Promise<void> {
    if (this.held < this.limit) {
      this.take();
      return Promise.resolve();
    }
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  release(): void {
    const next = this.waiters.shift();
    if (next) return next.resolve(); // the slot passes straight on, still counted
    this.held--;
  }

  /** Fail every waiter (the device is closing). */
  rejectWaiting(err: unknown): void {
    for (const w of this.waiters.splice(0)) w.reject(err);
  }

  private take(): void {
    this.held++;
    if (this.held > this.maxHeld) this.maxHeld = this.held;
  }
}
