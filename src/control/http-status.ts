/**
 * The one place LunrigError codes become HTTP status codes (DESIGN.md rules).
 * A total Record: adding a code to ERROR_CODES fails the type check until it
 * is mapped here. The control API sends `HTTP_STATUS[code]` for every error,
 * and the client maps a body's code back to the same LunrigError.
 */
import type { ErrorCode } from '../errors.js';

export const HTTP_STATUS: Readonly<Record<ErrorCode, number>> = {
  INVALID_ARGUMENT: 400,
  INVALID_SIZE: 400,
  OUT_OF_RANGE: 400,
  INVALID_CONFIG: 400,
  LUN_NOT_FOUND: 404,
  LUN_EXISTS: 409,
  LSS_NOT_FOUND: 404,
  // The LSS has no free volume number: the request is fine, the array's state refuses it.
  LSS_FULL: 409,
  // Depends on the LUN's current size, so a conflict with state rather than a malformed request.
  SHRINK_NOT_SUPPORTED: 409,
  READ_ONLY: 409,
  POOL_LOCKED: 409,
  POOL_CORRUPT: 500,
  // FlashCopy refusals depend on the volumes' state and roles: conflicts, except the few below.
  FC_DIFFERENT_LSS: 409,
  FC_TARGET_TOO_SMALL: 409,
  FC_VOLUME_IN_RELATIONSHIP: 409,
  FC_NOT_FIXED_BLOCK: 409,
  FC_TARGET_ONLINE: 409,
  FC_NOT_LICENSED: 403,
  // Naming one volume twice is wrong whatever the array holds.
  FC_SAME_VOLUME: 400,
  FC_TARGET_NO_SPACE: 507,
  FC_UNSUPPORTED_COMBINATION: 409,
  FC_NO_RELATIONSHIP: 404,
  FC_NOT_INCREMENTAL: 409,
  FC_GROUP_EXISTS: 409,
  FC_GROUP_NOT_FOUND: 404,
  // PPRC refusals depend on the array's paths and pair states: conflicts, except lookups.
  PPRC_NO_PATH: 409,
  PPRC_SAME_LSS: 409,
  PPRC_TARGET_TOO_SMALL: 409,
  PPRC_TARGET_ONLINE: 409,
  PPRC_VOLUME_IN_PAIR: 409,
  PPRC_NOT_IN_PAIR: 409,
  PPRC_INVALID_COPY_MODE: 409,
  PPRC_TOO_MANY_SECONDARIES: 409,
  PPRC_TOO_MANY_LINKS: 409,
  PPRC_TOO_MANY_PATHS: 409,
  PPRC_DISTANCE_TOO_LONG: 400,
  PPRC_ESS_NOT_FOUND: 404,
  PPRC_LINK_NOT_FOUND: 404,
  PPRC_PATH_NOT_FOUND: 404,
  PPRC_SECONDARY_NOT_ACCESSIBLE: 409,
  PPRC_WRITE_INHIBITED: 409,
  PPRC_ACK_TIMEOUT: 504,
  RELATIONSHIP_NOT_ESTABLISHED: 409,
  TASK_NOT_FOUND: 404,
  TASK_EXISTS: 409,
  TASK_IN_GROUP: 409,
  TASK_GROUP_NESTED: 409,
  TASK_NOT_RUNNING: 409,
  HOST_NOT_FOUND: 404,
  HOST_EXISTS: 409,
  // The LUN is masked from this host: as if it did not exist.
  LUN_NOT_MAPPED: 404,
  CLOSED: 503,
  BUSY: 409,
  NOT_SUPPORTED: 501,
  NO_SPACE: 507,
  IO_ERROR: 500,
  INTERNAL: 500,
  ROUTE_NOT_FOUND: 404,
  UNSUPPORTED_MEDIA_TYPE: 415,
  PAYLOAD_TOO_LARGE: 413,
  // Never produced by the server itself; a proxy in front of it would say 502/503.
  UNREACHABLE: 503,
  MEDIUM_ERROR: 500,
  RESERVATION_CONFLICT: 409,
  NOT_READY: 503,
  TIMEOUT: 504,
  // HDLM refuses to take the last Online path of an LU offline: a conflict with the device's state.
  MP_LAST_PATH: 409,
  MP_PATH_NOT_FOUND: 404,
};

export function httpStatusFor(code: ErrorCode): number {
  return HTTP_STATUS[code];
}
