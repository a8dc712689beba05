/**
 * One FlashCopy relationship at run time: its persisted record, its state,
 * and once established its bitmaps, copy-on-write engine, the two layers and
 * the background copier. The manager drives it; this file only assembles the
 * parts and describes it.
 */
import type { BitmapStore } from '../../store/bitmap-journal.js';
import type { Clock } from '../../util/clock.js';
import type { Volume } from '../../volume/volume.js';
import type { BackgroundCopier } from './background-copier.js';
import { CowEngine } from './cow-engine.js';
import type { GrainMover } from './worker-grain-mover.js';
import { GrainBitmaps } from './grain-bitmaps.js';
import { GrainCommitter, type CowDurability } from './grain-committer.js';
import { GrainGeometry } from './grain-geometry.js';
import { profileName, type Relaxation } from './profile.js';
import { PaceMeter, copyProgress, type CopyProgress } from './progress.js';
import { RateLimiter } from './rate-limiter.js';
import type { CopyMode, RelationshipRecord } from './registry.js';
import { SourceLayer } from './source-layer.js';
import type { FlashCopyState } from './state-machine.js';
import { TargetLayer } from './target-layer.js';

/** A relationship as queries, events and the control API show it. */
export interface RelationshipInfo {
  id: string;
  source: string;
  target: string;
  mode: CopyMode;
  incremental: boolean;
  state: FlashCopyState;
  grainSize: number;
  /** Bytes covered (the source's size at T0). */
  size: number;
  /** ISO 8601: the establish, or the last refresh. */
  t0: string;
  establishedAt: string;
  /** Background copy rate in bytes per second; null = unlimited, 0 = paused. */
  rate: number | null;
  permitIfTargetOnline: boolean;
  /** 'relaxed' when any ESS rule was relaxed for this relationship, listed in `relaxed`. */
  profile: 'strict' | 'relaxed';
  relaxed: Relaxation[];
  group: string | null;
  progress: CopyProgress;
  /** Incremental only: grains written on either side since T0 (what a refresh copies again). */
  changedGrains?: number;
}

export interface Attached {
  store: BitmapStore;
  bitmaps: GrainBitmaps;
  engine: CowEngine;
  source: SourceLayer;
  target: TargetLayer;
}

export class Relationship {
  state: FlashCopyState = 'establishing';
  attached: Attached | undefined;
  copier: BackgroundCopier | undefined;
  readonly limiter: RateLimiter;
  readonly pace: PaceMeter;
  readonly geometry: GrainGeometry;
  lastProgressAt = Number.NEGATIVE_INFINITY;

  constructor(
    public record: RelationshipRecord,
    clock: Clock,
  ) {
    this.limiter = new RateLimiter(clock, record.rate ?? undefined);
    this.pace = new PaceMeter(clock);
    this.geometry = new GrainGeometry(record.grainSize, record.size);
  }

  get id(): string {
    return this.record.id;
  }

  get source(): string {
    return this.record.source.name;
  }

  get target(): string {
    return this.record.target.name;
  }

  involves(volume: string): boolean {
    return this.source === volume || this.target === volume;
  }

  /**
   * Wire the engine between the Volumes currently on top of the source and
   * target (called with both stacks held); the layers become the new tops.
   */
  attach(store: BitmapStore, sourceBelow: Volume, targetBelow: Volume, durability: CowDurability = 'power', mover?: GrainMover): Attached {
    const bitmaps = new GrainBitmaps(store, this.geometry.grains);
    const committer = new GrainCommitter(bitmaps, () => targetBelow.flush(), durability);
    const engine = new CowEngine(this.geometry, bitmaps, committer, sourceBelow, targetBelow, mover);
    this.attached = { store, bitmaps, engine, source: new SourceLayer(sourceBelow, engine), target: new TargetLayer(targetBelow, engine) };
    return this.attached;
  }

  info(): RelationshipInfo {
    const r = this.record;
    const bitmaps = this.attached?.bitmaps;
    const copiedGrains = bitmaps?.copiedCount() ?? 0;
    const grains = this.geometry.grains;
    const copying = this.state === 'copying' && this.limiter.rate !== 0;
    const pace = this.pace.bytesPerSecond ?? this.limiter.rate;
    return {
      id: r.id,
      source: r.source.name,
      target: r.target.name,
      mode: r.mode,
      incremental: r.incremental,
      state: this.state,
      grainSize: r.grainSize,
      size: r.size,
      t0: r.t0,
      establishedAt: r.establishedAt,
      rate: r.rate,
      permitIfTargetOnline: r.permitIfTargetOnline,
      profile: profileName(r.relax),
      relaxed: [...r.relax],
      group: r.group,
      progress: copyProgress({
        grains,
        copiedGrains,
        grainSize: r.grainSize,
        size: r.size,
        lastGrainCopied: grains > 0 && (bitmaps?.isCopied(grains - 1) ?? false),
        copying,
        pace: pace === undefined ? undefined : Math.min(pace, this.limiter.rate ?? Infinity),
      }),
      ...(r.incremental && { changedGrains: bitmaps?.changedCount() ?? 0 }),
    };
  }
}
