/**
 * Where the primary side's PPRC state survives a restart: <pool>/pprc/pprc.json
 * (links, paths, LSS settings, pairs; written atomically via store/persist.ts,
 * one write at a time, always the latest state) and each pair's track bitmaps
 * as <pool>/pprc/pair-<id>.ckpt + .journal (store/bitmap-journal.ts).
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { fromSystemError } from '../../errors.js';
import { readJsonFile, removeStaleTempFiles, writeJsonAtomic } from '../../store/persist.js';
import type { LinkRecord } from './links.js';
import type { PathRecord } from './paths.js';

export const PPRC_DIR = 'pprc';

export type CopyMode = 'copy-entire' | 'no-copy' | 'out-of-sync-only';
export type PairState = 'DUPLEX_PENDING' | 'DUPLEX' | 'SUSPENDED';

export interface PairRecord {
  id: string;
  primary: { name: string; uniqueId: string; lss: number };
  secondary: { ess: string; volume: string; lss: number; volumeId: string };
  criticalVolume: boolean;
  state: PairState;
  suspendReason?: string;
  writeInhibited: boolean;
  /** Bytes mirrored (the primary's size at establish) and the track size. */
  size: number;
  trackSize: number;
  establishedAt: string;
}

export interface LssSettings {
  /** Critical Heavy as configured (takes effect at the next power cycle, PP-28). */
  criticalHeavy: boolean;
  /** Critical Heavy in effect. */
  criticalHeavyActive: boolean;
  consistencyGroup: boolean;
  consistencyTimeoutSec: number;
}

export interface PprcState {
  nextPair: number;
  links: LinkRecord[];
  paths: PathRecord[];
  lss: Record<string, LssSettings>;
  pairs: PairRecord[];
}

export class PprcRegistry {
  private saving: Promise<void> = Promise.resolve();

  private constructor(
    readonly dir: string,
    readonly initial: PprcState,
  ) {}

  static async open(poolDir: string): Promise<PprcRegistry> {
    const dir = path.join(poolDir, PPRC_DIR);
    await fsp.mkdir(dir, { recursive: true }).catch((err: unknown) => {
      throw fromSystemError(err, `creating ${dir}`);
    });
    await removeStaleTempFiles(dir);
    const raw = (await readJsonFile(path.join(dir, 'pprc.json'))) as Partial<PprcState> | undefined;
    return new PprcRegistry(dir, { nextPair: raw?.nextPair ?? 1, links: raw?.links ?? [], paths: raw?.paths ?? [], lss: raw?.lss ?? {}, pairs: raw?.pairs ?? [] });
  }

  bitmapBase(pairId: string): string {
    return path.join(this.dir, `pair-${pairId}`);
  }

  /** Write the state `snapshot()` returns when this write's turn comes (one at a time, latest wins). */
  save(snapshot: () => PprcState): Promise<void> {
    const run = this.saving.then(() => writeJsonAtomic(path.join(this.dir, 'pprc.json'), snapshot()));
    this.saving = run.catch(() => undefined);
    return run;
  }
}
