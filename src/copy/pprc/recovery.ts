/**
 * The restart rule (README "Recovery"), split out of manager.ts: every pair
 * the registry holds comes back with its bitmaps, its mirror layer on the
 * primary's VolumeStack, and HOT folded into OOS (a mirror write in flight at
 * the crash may be on one side only). A pair that was DUPLEX or
 * DUPLEX_PENDING comes back SUSPENDED with reason 'restart', never duplex; a
 * pair whose primary LUN is gone (or is another LUN of the same name) is
 * dropped with its bitmap files.
 */
import { BitmapJournal, type BitmapJournalOptions } from '../../store/bitmap-journal.js';
import type { Pool } from '../../store/pool.js';
import { MirrorLayer } from './mirror-layer.js';
import { Pair, type PairContext } from './pair.js';
import type { PairRecord, PprcRegistry } from './registry.js';
import { TrackBitmaps, type TrackBitmapsOptions } from './track-bitmaps.js';

export interface RecoveryReport {
  /** Pairs that came back suspended because they were duplex or pending. */
  suspended: string[];
  /** Pairs whose primary LUN was gone: forgotten. */
  dropped: string[];
}

export interface RecoveryDeps {
  pool: Pick<Pool, 'lunInfo' | 'volume'>;
  registry: Pick<PprcRegistry, 'bitmapBase'>;
  ctx: PairContext;
  journalOptions: BitmapJournalOptions;
  /** How the pairs' TrackBitmaps mark (durability, HOT regions, clock). */
  bitmapOptions: TrackBitmapsOptions;
  /** Take the pair into the manager (before its layer goes on the primary). */
  adopt(pair: Pair): void;
}

/** Bring the persisted pairs back under the restart rule; fills `report`. */
export async function recoverPairs(records: readonly PairRecord[], deps: RecoveryDeps, report: RecoveryReport): Promise<void> {
  for (const record of records) {
    let lun;
    try {
      lun = deps.pool.lunInfo(record.primary.name);
    } catch {
      lun = undefined;
    }
    if (!lun || lun.uniqueId !== record.primary.uniqueId) {
      report.dropped.push(record.id);
      await BitmapJournal.remove(deps.registry.bitmapBase(record.id));
      continue;
    }
    const tracks = Math.ceil(record.size / record.trackSize);
    const bitmaps = new TrackBitmaps(await BitmapJournal.open(deps.registry.bitmapBase(record.id), [tracks, tracks], deps.journalOptions), tracks, deps.bitmapOptions);
    await bitmaps.foldHotIntoOos();
    let next = record;
    if (record.state !== 'SUSPENDED') {
      next = { ...record, state: 'SUSPENDED', suspendReason: 'restart' };
      report.suspended.push(record.id);
    }
    const pair = new Pair(next, bitmaps, deps.ctx);
    deps.adopt(pair);
    await deps.pool.volume(pair.primary).restack((top) => {
      pair.layer = new MirrorLayer(top, pair);
      return pair.layer;
    });
  }
}
