/**
 * Abilities a path's Volume may have beyond the Volume interface. A path works
 * without them; with them it can reset a hung transport and probe with an
 * identification-only command.
 */
import type { NexusCommands } from '../hosts/reservation-types.js';
import type { Volume, VolumeIdentity } from '../volume/volume.js';

export interface PathTransport {
  /** Drop the connection: requests in flight fail and the next request reconnects (a target reset after a timeout). */
  reset?(): void;
  /** Identification only (SCSI INQUIRY): answers where I/O fails, e.g. on an ALUA standby port. */
  inquiry?(): Promise<VolumeIdentity>;
  /** The reservation commands of this path's I_T nexus (out of band over NBD), for reserve_policy. */
  readonly reservations?: NexusCommands;
}

export function transportOf(volume: Volume): PathTransport {
  return volume as Volume & PathTransport;
}
