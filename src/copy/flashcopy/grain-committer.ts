/**
 * Group commit of a relationship's bits, in the order crash safety needs
 * (spec §2.3 invariant 4):
 *   1. the target's copies of the grains are durable (one target flush),
 *   2. then their bits are durable (one journal write + fdatasync),
 *   3. only then does the caller let the source write that needed them go on
 *      (it still holds the grains' locks until `commit` resolves).
 * Requests that arrive while a round is in flight form the next round, so a
 * burst of first writes costs two fsyncs per round, not per write.
 */
import type { BitmapSetRecord } from '../../store/bitmap-journal.js';
import { CHANGED, GrainBitmaps, copiedRecords } from './grain-bitmaps.js';
import type { GrainSpan } from './grain-geometry.js';

export interface CommitRequest {
  /** Grains whose target copies were just written. */
  copied?: readonly number[];
  /** Grains to record as changed (incremental relationships). */
  changed?: GrainSpan;
  /** The copies went through the target Volume and still need a flush (bulk copies arrive durable). */
  flushTarget?: boolean;
}

interface Pending {
  records: BitmapSetRecord[];
  flushTarget: boolean;
  resolve(): void;
  reject(err: unknown): void;
}

export interface CommitterStats {
  rounds: number;
  targetFlushes: number;
  requests: number;
}

export class GrainCommitter {
  readonly stats: CommitterStats = { rounds: 0, targetFlushes: 0, requests: 0 };
  private queue: Pending[] = [];
  private running: Promise<void> | undefined;

  constructor(
    private readonly bitmaps: GrainBitmaps,
    private readonly flushTarget: () => Promise<void>,
  ) {}

  commit(request: CommitRequest): Promise<void> {
    const records = copiedRecords(request.copied ?? []);
    if (request.changed && request.changed.count > 0 && this.bitmaps.incremental) {
      records.push({ bitmap: CHANGED, start: request.changed.first, count: request.changed.count });
    }
    if (records.length === 0) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ records, flushTarget: request.flushTarget === true && (request.copied?.length ?? 0) > 0, resolve, reject });
      this.stats.requests++;
      // `running` is cleared by drain itself in the same turn it sees the queue empty, so no request is left behind.
      this.running ??= this.drain();
    });
  }

  /** Resolves when every commit requested so far has settled. */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  private async drain(): Promise<void> {
    await Promise.resolve();
    for (;;) {
      if (this.queue.length === 0) {
        this.running = undefined;
        return;
      }
      const round = this.queue;
      this.queue = [];
      this.stats.rounds++;
      try {
        if (round.some((p) => p.flushTarget)) {
          this.stats.targetFlushes++;
          await this.flushTarget();
        }
        await this.bitmaps.store.set(round.flatMap((p) => p.records));
        for (const p of round) p.resolve();
      } catch (err) {
        for (const p of round) p.reject(err);
      }
    }
  }
}
