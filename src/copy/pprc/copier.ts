/**
 * The initial copy / resync of a pair in DUPLEX_PENDING (spec §3.7, X3, W4):
 * batches of out-of-sync tracks, each track locked exclusively (try only:
 * a track a host write holds is skipped until a later pass), read from the
 * primary's layers below PPRC (its LOGICAL content: a FlashCopy target
 * primary resolves uncopied grains from its source, CB-01), written to the
 * secondary over an up link, then the bits cleared. With 'power' durability
 * both sides are flushed and the bitmaps replaced durably after every batch;
 * with 'process' a copied track is in both sides' page cache once its write
 * completed, so there is no flush and the clears go to the journal as clear
 * records (TrackBitmaps.commitClears). A failure suspends the pair
 * (PairContext.fail) and ends the copy; OOS only ever falls while it runs.
 */
import type { Volume } from '../../volume/volume.js';
import { native } from '../../native/index.js';
import type { Pair, PairContext } from './pair.js';
import { OOS } from './track-bitmaps.js';

export interface CopierHooks {
  /**
   * The volume under the primary's mirror layer. Not the VolumeStack: a host
   * write in the stack may wait for a track the copier holds, and a restack
   * waiting for that write would then hold the copier's read: deadlock.
   */
  primary(): Volume;
  /** Tracks per batch (default 16). */
  batchTracks?: number;
  onBatch(pair: Pair, tracks: number): void;
  /** OOS reached 0 while still DUPLEX_PENDING. */
  done(pair: Pair): Promise<void>;
}

export class Copier {
  private stopped = false;
  private readonly running: Promise<void>;

  constructor(
    private readonly pair: Pair,
    private readonly ctx: PairContext,
    private readonly hooks: CopierHooks,
  ) {
    this.running = this.run();
  }

  stop(): Promise<void> {
    this.stopped = true;
    return this.running;
  }

  private active(): boolean {
    return !this.stopped && this.pair.state === 'DUPLEX_PENDING';
  }

  private async run(): Promise<void> {
    const pair = this.pair;
    const { oos } = pair.bitmaps;
    const batchTracks = this.hooks.batchTracks ?? 16;
    const power = this.ctx.durability === 'power';
    let cursor = 0;
    while (this.active()) {
      const batch: number[] = [];
      let t = cursor;
      for (;;) {
        t = native.findNextSet(oos, t, pair.tracks);
        if (t < 0 || t >= pair.tracks || batch.length >= batchTracks) break;
        if (pair.locks.tryExclusive(t)) batch.push(t);
        t++;
      }
      cursor = t < 0 || t >= pair.tracks ? 0 : t;
      if (batch.length === 0) {
        if (pair.bitmaps.oosCount() === 0) break;
        // Every remaining track is busy with a host write: let it finish.
        await new Promise((resolve) => setImmediate(resolve));
        continue;
      }
      try {
        const ok = await this.copy(batch, power);
        if (!ok) return;
        pair.bitmaps.clearOos(batch);
      } finally {
        pair.locks.releaseExclusive(batch);
      }
      await pair.bitmaps.commitClears(OOS, batch);
      this.hooks.onBatch(pair, batch.length);
    }
    if (!this.stopped && pair.state === 'DUPLEX_PENDING' && pair.bitmaps.oosCount() === 0) await this.hooks.done(pair);
  }

  /** Copy the tracks (and flush both sides with 'power'); false when the pair failed. */
  private async copy(batch: readonly number[], flush: boolean): Promise<boolean> {
    const pair = this.pair;
    const { trackSize, size } = pair.record;
    const results = await Promise.all(
      batch.map(async (t) => {
        const offset = t * trackSize;
        const length = Math.min(trackSize, size - offset);
        const data = await this.hooks.primary().read(offset, length);
        const failure = await pair.remote(length, (ch) => ch.write(offset, data, this.ctx.fsyncOnAck ? { fua: true } : undefined));
        if (!failure) pair.copiedTracks++;
        return failure;
      }),
    );
    let failure = results.find((f) => f !== undefined);
    if (!failure && flush) failure = await pair.remote(0, (ch) => ch.flush());
    if (failure) {
      await this.ctx.fail(pair, failure);
      return false;
    }
    if (flush) await this.hooks.primary().flush().catch(() => undefined);
    return this.active();
  }
}
