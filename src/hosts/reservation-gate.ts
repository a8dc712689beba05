/**
 * The reservation layer of one LU as one I_T nexus sees it: every request
 * asks the ReservationTable first (RESERVATION_CONFLICT when the nexus may
 * not), then goes to the Volume below. It also carries the nexus's
 * reservation commands as a path transport ability (`reservations`), so a
 * MultipathDevice over such paths can apply reserve_policy. Over NBD the
 * same check runs in the server's command path, keyed by the session's host
 * (masked-exports.ts).
 */
import { AdmissionLayer } from '../volume/admission-layer.js';
import type { Volume, VolumeIdentity } from '../volume/volume.js';
import type { ReservationTable } from './reservation-table.js';
import type { AccessKind, Nexus, NexusCommands } from './reservation-types.js';

export class ReservationGate extends AdmissionLayer {
  readonly reservations: NexusCommands;
  private readonly lu: string;

  constructor(
    below: Volume,
    private readonly table: ReservationTable,
    readonly nexus: Nexus,
  ) {
    super(below);
    this.lu = below.identity().uniqueId;
    this.reservations = table.nexus(this.lu, nexus);
  }

  /** Identification is never refused by a reservation (INQUIRY is allowed, MP-25). */
  async inquiry(): Promise<VolumeIdentity> {
    const t = this.below as Volume & { inquiry?: () => Promise<VolumeIdentity> };
    return t.inquiry ? t.inquiry() : this.below.identity();
  }

  protected override admit(kind: AccessKind): Promise<never> | undefined {
    const err = this.table.check(this.lu, this.nexus, kind);
    return err ? Promise.reject(err) : undefined;
  }
}
