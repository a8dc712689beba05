/** FlashCopy: point-in-time copies by bitmap copy-on-write (spec/copy-services.md §2). */
export {
  FlashCopyManager,
  type EstablishOptions,
  type FlashCopyEvents,
  type FlashCopyManagerOptions,
  type FlashCopyPool,
  type GroupRequest,
  type PairRequest,
  type RecoveryReport,
  type VolumeQuery,
} from './manager.js';
export type { RelationshipInfo } from './relationship.js';
export type { GroupInfo } from './consistency-group.js';
export type { CopyProgress } from './progress.js';
export type { CopyMode } from './registry.js';
export type { FlashCopyState } from './state-machine.js';
export { RELAXATIONS, RELAXED_PROFILE, STRICT_PROFILE, type FlashCopyProfile, type Relaxation } from './profile.js';
export { DEFAULT_GRAIN_SIZE, MAX_GRAIN_SIZE, MIN_GRAIN_SIZE, parseGrainSize } from './grain-geometry.js';
export { essSize, rsQueryLines, summaryLine, type EssVolume, type FlashCopyRole, type PprcView } from './ess-query.js';
// The building blocks, for rigs that wire FlashCopy over their own Volumes (MemoryVolume, NBD clients).
export { CowEngine } from './cow-engine.js';
export { SourceLayer } from './source-layer.js';
export { TargetLayer } from './target-layer.js';
export { GrainGeometry } from './grain-geometry.js';
export { GrainBitmaps, bitmapSizes } from './grain-bitmaps.js';
export { GrainCommitter, type CowDurability } from './grain-committer.js';
export { VolumeGrainCopier, type GrainCopier } from './grain-copier.js';
