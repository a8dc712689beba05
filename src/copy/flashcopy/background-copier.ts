/**
 * Background copy of a COPY relationship (spec §2.3 "Background copy"): copy
 * the grains not yet copied, in batches, as fast as the rate limits allow,
 * until none is left. Two batches are in flight at once, so one copies while
 * the other waits for its flushes. Grains a host request holds are skipped
 * and picked up on a later pass. Stopping waits for the batches in flight, so
 * no copy outlives a withdraw.
 */
import { setTimeout as delay } from 'node:timers/promises';
import type { CowEngine } from './cow-engine.js';
import type { GrainCopier } from './grain-copier.js';
import type { RateLimiter } from './rate-limiter.js';

export type CopierOutcome = { kind: 'complete' } | { kind: 'stopped' } | { kind: 'failed'; error: unknown };

export interface BackgroundCopierOptions {
  /** The relationship's own rate first, then any bandwidth shared with other copies. */
  limiters: readonly RateLimiter[];
  /** Largest batch (one bulk task), default 8 MiB; a low rate makes batches smaller. */
  maxBatchBytes?: number;
  /** Batches in flight at once (default 2). */
  lanes?: number;
  onBatch?(grains: number, bytes: number): void;
}

const DEFAULT_MAX_BATCH = 8 * 1024 * 1024;

export class BackgroundCopier {
  private readonly abort = new AbortController();
  private running: Promise<CopierOutcome> | undefined;
  private cursor = 0;

  constructor(
    private readonly engine: CowEngine,
    private readonly copier: GrainCopier,
    private readonly options: BackgroundCopierOptions,
  ) {}

  /** Start (once); resolves when copying is complete, stopped or failed. */
  start(): Promise<CopierOutcome> {
    this.running ??= this.run();
    return this.running;
  }

  async stop(): Promise<void> {
    this.abort.abort();
    await this.running;
  }

  private async run(): Promise<CopierOutcome> {
    const lanes = Array.from({ length: this.options.lanes ?? 2 }, () => this.lane());
    const outcomes = await Promise.all(lanes);
    const failed = outcomes.find((o) => o.kind === 'failed');
    if (failed) return failed;
    if (this.abort.signal.aborted) return { kind: 'stopped' };
    return outcomes.every((o) => o.kind === 'complete') ? { kind: 'complete' } : { kind: 'stopped' };
  }

  private async lane(): Promise<CopierOutcome> {
    const signal = this.abort.signal;
    const { geometry, bitmaps } = this.engine;
    const maxBatch = this.options.maxBatchBytes ?? DEFAULT_MAX_BATCH;
    try {
      while (!signal.aborted) {
        if (bitmaps.remaining() === 0) return { kind: 'complete' };
        const grains = Math.max(1, Math.floor(Math.min(...this.options.limiters.map((l) => l.chunk(geometry.grainSize, maxBatch)), maxBatch) / geometry.grainSize));
        const planned = grains * geometry.grainSize;
        for (const limiter of this.options.limiters) await limiter.acquire(planned, signal);
        // Taking a batch is synchronous: the lanes share the cursor and never pick the same grain.
        const batch = this.engine.takeBatch(this.cursor, grains);
        this.cursor = batch.next;
        for (const limiter of this.options.limiters) limiter.refund(planned - batch.bytes);
        await this.engine.copyBatch(this.copier, batch);
        if (batch.grains.length > 0) this.options.onBatch?.(batch.grains.length, batch.bytes);
        // Every grain left is held by a host request or the other lane right now: let those finish.
        else if (bitmaps.remaining() > 0) await delay(1);
      }
      return { kind: 'stopped' };
    } catch (err) {
      // Stop the other lane too: one failure ends this run.
      if (signal.aborted) return { kind: 'stopped' };
      this.abort.abort();
      return { kind: 'failed', error: err };
    }
  }
}
