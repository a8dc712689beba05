/**
 * A byte-rate limit on an injectable clock (background copy rate, and a
 * bandwidth shared by every background copy: spec §2.10, FC-24). `acquire`
 * waits until the rate allows `bytes` more and reserves them in the same
 * step, so concurrent callers queue up behind each other; `refund` gives back
 * what a caller reserved but did not use. Rate 0 holds everyone until the
 * rate changes; undefined is unlimited.
 */
import type { Clock } from '../../util/clock.js';

export class RateLimiter {
  private nextAt = 0;
  private rateChanged: (() => void)[] = [];

  constructor(
    private readonly clock: Clock,
    private bytesPerSecond: number | undefined,
  ) {}

  get rate(): number | undefined {
    return this.bytesPerSecond;
  }

  set rate(bytesPerSecond: number | undefined) {
    this.bytesPerSecond = bytesPerSecond;
    this.nextAt = Math.min(this.nextAt, this.clock.now());
    for (const wake of this.rateChanged.splice(0)) wake();
  }

  /** Bytes worth sending in one go at this rate: about a quarter second's worth, within [min, max]. */
  chunk(min: number, max: number): number {
    const r = this.bytesPerSecond;
    return r === undefined ? max : Math.max(min, Math.min(max, Math.floor(r / 4)));
  }

  /** Wait until the rate allows `bytes` more, and reserve them. */
  async acquire(bytes: number, signal?: AbortSignal): Promise<void> {
    for (;;) {
      signal?.throwIfAborted();
      const r = this.bytesPerSecond;
      if (r === undefined) return;
      const now = this.clock.now();
      if (r > 0 && this.nextAt <= now) {
        this.nextAt = now + (bytes * 1000) / r;
        return;
      }
      await this.waitForChange(r === 0 ? undefined : this.nextAt - now, signal);
    }
  }

  /** Give back bytes reserved but not sent. */
  refund(bytes: number): void {
    const r = this.bytesPerSecond;
    if (r !== undefined && r > 0 && bytes > 0) this.nextAt -= (bytes * 1000) / r;
  }

  /** Until `ms` passed (never, when undefined) or the rate changed, whichever is first. */
  private async waitForChange(ms: number | undefined, signal?: AbortSignal): Promise<void> {
    const stop = new AbortController();
    const onAbort = (): void => stop.abort(signal!.reason);
    signal?.addEventListener('abort', onAbort, { once: true });
    let wake: (() => void) | undefined;
    const waits = [new Promise<void>((resolve) => (wake = resolve))];
    this.rateChanged.push(wake!);
    if (ms !== undefined) waits.push(this.clock.sleep(ms, stop.signal));
    const aborted = new Promise<never>((_, reject) => stop.signal.addEventListener('abort', () => reject(stop.signal.reason), { once: true }));
    try {
      await Promise.race([...waits, aborted]);
    } finally {
      signal?.removeEventListener('abort', onAbort);
      this.rateChanged = this.rateChanged.filter((w) => w !== wake);
      stop.abort();
      for (const p of [...waits, aborted]) p.catch(() => undefined);
    }
  }
}
