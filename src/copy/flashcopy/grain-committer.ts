/**
 * Group commit of a relationship's bits, in the order crash safety needs
 * (spec §2.3 invariant 4). Two durabilities (README "Durability of
 * copy-on-write"):
 *
 * 'power' (survives power loss): per round
 *   1. the target's copies of the grains are durable (one target flush),
 *   2. then their bits are durable (one journal write + fdatasync),
 *   3. only then does the caller let the source write that needed them go on.
 *
 * 'process' (survives a crash of lunrig, kill -9, at any instant; power loss
 * at host FLUSH/FUA points): per round
 *   1. the copies are written to the target (the caller awaited them),
 *   2. then their bits are written to the journal (one write, no fdatasync),
 *   3. then the source write goes on.
 * The OS keeps all three in order across a process crash (the page cache
 * outlives the process). `sync()` - called for every host FLUSH and FUA on
 * either volume - flushes the target, then fdatasyncs the journal, before the
 * host's own flush, so whatever a host made durable has its copies and bits
 * durable first.
 *
 * The caller holds the grains' locks until `commit` resolves. Requests that
 * arrive while a round is in flight form the next round, so a burst of first
 * writes shares one round.
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

export type CowDurability = 'process' | 'power';

interface Pending {
  records: BitmapSetRecord[];
  flushTarget: boolean;
  /** Make everything committed so far durable (a host FLUSH or FUA). */
  sync: boolean;
  resolve(): void;
  reject(err: unknown): void;
}

export interface CommitterStats {
  rounds: number;
  targetFlushes: number;
  requests: number;
  /** Rounds that made their bits durable (every round under 'power'; FLUSH/FUA rounds under 'process'). */
  syncs: number;
}

export class GrainCommitter {
  readonly stats: CommitterStats = { rounds: 0, targetFlushes: 0, requests: 0, syncs: 0 };
  private queue: Pending[] = [];
  private running: Promise<void> | undefined;
  /** 'process': copies or bits written since the last sync. */
  private dirty = false;

  constructor(
    private readonly bitmaps: GrainBitmaps,
    private readonly flushTarget: () => Promise<void>,
    readonly durability: CowDurability = 'power',
  ) {}

  commit(request: CommitRequest): Promise<void> {
    const records = copiedRecords(request.copied ?? []);
    if (request.changed && request.changed.count > 0 && this.bitmaps.incremental) {
      records.push({ bitmap: CHANGED, start: request.changed.first, count: request.changed.count });
    }
    if (records.length === 0) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ records, flushTarget: request.flushTarget === true && (request.copied?.length ?? 0) > 0, sync: false, resolve, reject });
      this.stats.requests++;
      // `running` is cleared by drain itself in the same turn it sees the queue empty, so no request is left behind.
      this.running ??= this.drain();
    });
  }

  /**
   * Make every commit so far durable (target flushed, then journal fdatasynced):
   * a no-op under 'power' (each round already was) and when nothing changed.
   */
  sync(): Promise<void> {
    if (this.durability === 'power' || (!this.dirty && this.queue.length === 0 && !this.running)) return this.idle();
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ records: [], flushTarget: false, sync: true, resolve, reject });
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
        const records = round.flatMap((p) => p.records);
        const copies = round.some((p) => p.flushTarget);
        if (this.durability === 'power' || round.some((p) => p.sync)) {
          // Copies durable before the bits that say they are there.
          if (copies || this.dirty) {
            this.stats.targetFlushes++;
            await this.flushTarget();
          }
          if (records.length > 0) await this.bitmaps.store.set(records);
          else await this.bitmaps.store.sync?.();
          this.dirty = false;
          this.stats.syncs++;
        } else {
          // Copies were written (awaited) before this; the bits follow them into the page cache.
          await this.bitmaps.store.set(records, { sync: false });
          this.dirty = true;
        }
        for (const p of round) p.resolve();
      } catch (err) {
        for (const p of round) p.reject(err);
      }
    }
  }
}
