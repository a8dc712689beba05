/**
 * Hosts (initiators), LUN masking and SCSI reservations (spec/multipath.md
 * §1.7): the array side that every port and path of a LUN shares.
 */
export { HostRegistry, HOSTS_FILE, INITIATOR_KINDS, type CreateHostRequest, type HostInfo, type Initiator, type InitiatorKind, type MaskingMode } from './host-registry.js';
export { forgetDeletedLuns, type DeletedLunFollower } from './forget-deleted-luns.js';
export { MaskedExports, splitExportName, type MaskedExportsOptions } from './masked-exports.js';
export { LuReservations, type PersistedLuReservations } from './lu-reservations.js';
export { ReservationTable, RESERVATIONS_FILE } from './reservation-table.js';
export { ReservationGate } from './reservation-gate.js';
export {
  NO_KEY,
  PR_OUT_ACTIONS,
  PR_TYPES,
  PR_TYPE_NAMES,
  nexusKey,
  parseKey,
  parsePrType,
  type AccessKind,
  type Nexus,
  type NexusCommands,
  type PrOutRequest,
  type PrType,
  type Registration,
  type ReservationKey,
  type ReservationStatus,
} from './reservation-types.js';
