/**
 * The reservation layer of one LU as one I_T nexus sees it: every request
 * asks the ReservationTable first (RESERVATION_CONFLICT when the nexus may
 * not), then goes to the Volume below. It also carries the nexus's
 * reservation commands as a path transport ability (`reservations`), so a
 * MultipathDevice over such paths can apply reserve_policy. Over NBD the
 * same check runs in the server's command path, keyed by the session's host
 * (masked-exports.ts).
 */
import type { Extent, Volume, VolumeIdentity, WriteOptions, WriteZeroesOptions } from '../volume/volume.js';
import type { ReservationTable } from './reservation-table.js';
import type { AccessKind, Nexus, NexusCommands } from './reservation-types.js';

export class ReservationGate implements Volume {
  readonly reservations: NexusCommands;
  private readonly lu: string;

  constructor(
    readonly below: Volume,
    private readonly table: ReservationTable,
    readonly nexus: Nexus,
  ) {
    this.lu = below.identity().uniqueId;
    this.reservations = table.nexus(this.lu, nexus);
  }

  get size(): number {
    return this.below.size;
  }

  get readOnly(): boolean {
    return this.below.readOnly;
  }

  identity(): VolumeIdentity {
    return this.below.identity();
  }

  read(offset: number, length: number, into?: Uint8Array): Promise<Uint8Array> {
    return this.gate('read') ?? this.below.read(offset, length, into);
  }

  write(offset: number, data: Uint8Array, options?: WriteOptions): Promise<void> {
    return this.gate('write') ?? this.below.write(offset, data, options);
  }

  writeZeroes(offset: number, length: number, options?: WriteZeroesOptions): Promise<void> {
    return this.gate('write') ?? this.below.writeZeroes(offset, length, options);
  }

  trim(offset: number, length: number, options?: WriteOptions): Promise<void> {
    return this.gate('write') ?? this.below.trim(offset, length, options);
  }

  flush(): Promise<void> {
    return this.gate('write') ?? this.below.flush();
  }

  blockStatus(offset: number, length: number): Promise<Extent[]> {
    return this.gate('read') ?? this.below.blockStatus(offset, length);
  }

  /** Identification is never refused by a reservation (INQUIRY is allowed, MP-25). */
  async inquiry(): Promise<VolumeIdentity> {
    const t = this.below as Volume & { inquiry?: () => Promise<VolumeIdentity> };
    return t.inquiry ? t.inquiry() : this.below.identity();
  }

  private gate(kind: AccessKind): Promise<never> | undefined {
    const err = this.table.check(this.lu, this.nexus, kind);
    return err ? Promise.reject(err) : undefined;
  }
}
