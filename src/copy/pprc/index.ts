/** PPRC (synchronous mirroring, spec §3): the library API. */
export {
  PprcManager,
  flashCopyHooks,
  type AuditReport,
  type EstablishRequest,
  type PairInfo,
  type PprcEvents,
  type PprcManagerOptions,
  type PprcRole,
  type PprcVolumeQuery,
  type RecoveryReport as PprcRecoveryReport,
  type StateChange,
} from './manager.js';
export type { AddLinkRequest, LinkFault, LinkInfo } from './links.js';
export type { EstablishPathRequest, PathRecord } from './paths.js';
export type { CopyMode as PprcCopyMode, LssSettings, PairState } from './registry.js';
export type { RunState } from './pair.js';
export { critDecision, type CritDecision, type CritInput } from './crit.js';
export { InProcessSecondaryEss, type PrimaryPeer, type SecondaryListing } from './secondary-side.js';
// The remote SecondaryEss (HTTP control client + NBD client: no fastify at run time).
export { RemoteSecondaryEss, type RemoteSecondaryOptions } from './remote/remote-secondary.js';
export type { SecondaryBinding, SecondaryEss, SecondaryStatus, SecondaryVolumeFacts } from './secondary-ess.js';
