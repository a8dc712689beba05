/**
 * The seam between a primary ESS's PPRC and the ESS that holds its
 * secondaries (spec/copy-services.md §3.2, §3.4). The primary side never
 * touches a secondary LUN directly: it asks this interface to give a volume
 * the secondary role (host reads and writes refused from then on, PP-07),
 * to record the pair's status there (suspended, write-inhibited), to end the
 * role (terminate), and for a data channel over one physical link that
 * bypasses the host gate while the volume is bound to that pair.
 *
 * Implementations:
 *  - in process (the same pool, or another pool of this process): the
 *    secondary side of that pool's PprcManager;
 *  - remote (another `lunrig serve`): control calls over its HTTP API and one
 *    NBD client connection per physical link (src/copy/pprc/remote/).
 */
import type { Volume, VolumeIdentity } from '../../volume/volume.js';

/** Who the primary of a pair is, as the secondary records it. */
export interface SecondaryBinding {
  /** Unique id of the pair (the primary chooses it; stable across restarts). */
  pairId: string;
  primary: { serial: string; lss: number; volume: string; volumeId: string };
  /** Critical Heavy on the primary LSS at establish time: a failure write-inhibits the secondary too (PP-23). */
  criticalHeavy?: boolean;
}

/** What the primary needs to know of a would-be or current secondary volume. */
export interface SecondaryVolumeFacts {
  name: string;
  identity: VolumeIdentity;
  size: number;
  /** Held online by a host (spec §3.3 "permit if target is online"). */
  online: boolean;
  /** Its PPRC role on its own ESS. */
  role: 'simplex' | 'source' | 'target';
  /** The pair it is bound to when role is 'target'. */
  pairId?: string;
  /** Its FlashCopy role there (CB-03/04/06/07). */
  fcRole?: 'source' | 'target' | 'none';
  /** A FlashCopy relationship of it is still establishing (CB-06). */
  fcEstablishing?: boolean;
}

/** The pair's status as the secondary holds it (rsQuery on the secondary ESS). */
export interface SecondaryStatus {
  suspended: boolean;
  /** Critical Heavy: the secondary is write-inhibited as well. */
  writeInhibited: boolean;
  reason?: string;
}

export interface SecondaryEss {
  /** 5-character serial of the ESS that holds the secondaries. */
  readonly serial: string;
  /** Identification works on a paired secondary too (PP-07). LUN_NOT_FOUND when absent. */
  describe(volume: string): Promise<SecondaryVolumeFacts>;
  /** Give `volume` the secondary role for this pair; idempotent for the same pairId, PPRC_VOLUME_IN_PAIR for another. */
  bind(volume: string, binding: SecondaryBinding): Promise<void>;
  setStatus(volume: string, pairId: string, status: SecondaryStatus): Promise<void>;
  /** Back to simplex (terminate); a no-op when the volume is no longer bound to pairId. */
  unbind(volume: string, pairId: string): Promise<void>;
  /**
   * The secondary volume as the mirror writes it, over physical link
   * `linkIndex` (0-based, as the primary numbers its links to this ESS).
   * Only valid while bound to pairId: afterwards its requests fail with
   * PPRC_NOT_IN_PAIR. The channel is not closed by the ESS; the caller closes
   * it with `closeChannel`.
   */
  channel(volume: string, pairId: string, linkIndex: number): Promise<Volume>;
  closeChannel(channel: Volume): Promise<void>;
  /** Release connections; the secondary roles stay (they persist on that ESS). */
  close(): Promise<void>;
}
