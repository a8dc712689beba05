/**
 * The one place LunrigError codes become NBD errno values and back (DESIGN.md
 * rules; spec/nbd.md §2.5). A total Record: adding a code to ERROR_CODES fails
 * the type check until it is mapped here.
 */
import { LunrigError, type ErrorCode } from '../errors.js';
import * as C from './constants.js';

export const NBD_ERRNO: Readonly<Record<ErrorCode, number>> = {
  INVALID_ARGUMENT: C.NBD_EINVAL,
  INVALID_SIZE: C.NBD_EINVAL,
  // Reads, trims and block status past the end are EINVAL; writes are ENOSPC (see errnoForError).
  OUT_OF_RANGE: C.NBD_EINVAL,
  INVALID_CONFIG: C.NBD_EINVAL,
  // The LUN behind the export was deleted while the connection was open: the export is going away.
  LUN_NOT_FOUND: C.NBD_ESHUTDOWN,
  LUN_EXISTS: C.NBD_EINVAL,
  LSS_NOT_FOUND: C.NBD_EINVAL,
  LSS_FULL: C.NBD_ENOSPC,
  SHRINK_NOT_SUPPORTED: C.NBD_EINVAL,
  READ_ONLY: C.NBD_EPERM,
  // NBD has no EAGAIN/EBUSY; a fenced or busy volume is an I/O error to the client.
  POOL_LOCKED: C.NBD_EIO,
  POOL_CORRUPT: C.NBD_EIO,
  // FlashCopy control operations never answer an NBD request; should one surface there, it is a refused request.
  FC_DIFFERENT_LSS: C.NBD_EINVAL,
  FC_TARGET_TOO_SMALL: C.NBD_EINVAL,
  FC_VOLUME_IN_RELATIONSHIP: C.NBD_EINVAL,
  FC_NOT_FIXED_BLOCK: C.NBD_EINVAL,
  FC_TARGET_ONLINE: C.NBD_EINVAL,
  FC_NOT_LICENSED: C.NBD_EPERM,
  FC_SAME_VOLUME: C.NBD_EINVAL,
  FC_TARGET_NO_SPACE: C.NBD_ENOSPC,
  FC_UNSUPPORTED_COMBINATION: C.NBD_EINVAL,
  FC_NO_RELATIONSHIP: C.NBD_EINVAL,
  FC_NOT_INCREMENTAL: C.NBD_EINVAL,
  FC_GROUP_EXISTS: C.NBD_EINVAL,
  FC_GROUP_NOT_FOUND: C.NBD_EINVAL,
  // PPRC control refusals never answer an NBD request; should one surface there, it is a refused request.
  PPRC_NO_PATH: C.NBD_EINVAL,
  PPRC_SAME_LSS: C.NBD_EINVAL,
  PPRC_TARGET_TOO_SMALL: C.NBD_EINVAL,
  PPRC_TARGET_ONLINE: C.NBD_EINVAL,
  PPRC_VOLUME_IN_PAIR: C.NBD_EINVAL,
  PPRC_NOT_IN_PAIR: C.NBD_EINVAL,
  PPRC_INVALID_COPY_MODE: C.NBD_EINVAL,
  PPRC_TOO_MANY_SECONDARIES: C.NBD_EINVAL,
  PPRC_TOO_MANY_LINKS: C.NBD_EINVAL,
  PPRC_TOO_MANY_PATHS: C.NBD_EINVAL,
  PPRC_DISTANCE_TOO_LONG: C.NBD_EINVAL,
  PPRC_ESS_NOT_FOUND: C.NBD_EINVAL,
  PPRC_LINK_NOT_FOUND: C.NBD_EINVAL,
  PPRC_PATH_NOT_FOUND: C.NBD_EINVAL,
  // The ESS locks a paired secondary ("data protect"): a permission refusal, not a dead device.
  PPRC_SECONDARY_NOT_ACCESSIBLE: C.NBD_EPERM,
  PPRC_WRITE_INHIBITED: C.NBD_EPERM,
  // W2: the application receives an I/O error.
  PPRC_ACK_TIMEOUT: C.NBD_EIO,
  RELATIONSHIP_NOT_ESTABLISHED: C.NBD_EINVAL,
  TASK_NOT_FOUND: C.NBD_EINVAL,
  TASK_EXISTS: C.NBD_EINVAL,
  TASK_IN_GROUP: C.NBD_EINVAL,
  TASK_GROUP_NESTED: C.NBD_EINVAL,
  TASK_NOT_RUNNING: C.NBD_EINVAL,
  HOST_NOT_FOUND: C.NBD_EINVAL,
  HOST_EXISTS: C.NBD_EINVAL,
  LUN_NOT_MAPPED: C.NBD_EINVAL,
  CLOSED: C.NBD_ESHUTDOWN,
  BUSY: C.NBD_EIO,
  // ENOTSUP is reserved for FAST_ZERO; anything else unsupported is EINVAL (see errnoForError).
  NOT_SUPPORTED: C.NBD_ENOTSUP,
  NO_SPACE: C.NBD_ENOSPC,
  IO_ERROR: C.NBD_EIO,
  INTERNAL: C.NBD_EIO,
  ROUTE_NOT_FOUND: C.NBD_EINVAL,
  UNSUPPORTED_MEDIA_TYPE: C.NBD_EINVAL,
  PAYLOAD_TOO_LARGE: C.NBD_EOVERFLOW,
  // A layer below (a remote PPRC secondary, a multipath device with no path) could not be reached.
  UNREACHABLE: C.NBD_EIO,
  // NBD's errno space has no sense data: a medium error, an ALUA standby port and a timeout are all EIO on the wire.
  MEDIUM_ERROR: C.NBD_EIO,
  // The initiator is fenced from this LU: a permission refusal, which a client must not treat as a dead path.
  RESERVATION_CONFLICT: C.NBD_EPERM,
  NOT_READY: C.NBD_EIO,
  TIMEOUT: C.NBD_EIO,
  // Host-side multipath refusals never answer an NBD request; should one surface there, it is a refused request.
  MP_LAST_PATH: C.NBD_EINVAL,
  MP_PATH_NOT_FOUND: C.NBD_EINVAL,
};

/** What the failed command was, for the two rules that depend on it. */
export interface ErrnoContext {
  /** NBD_CMD_WRITE or NBD_CMD_WRITE_ZEROES: out-of-range is ENOSPC (spec §4). */
  isWrite?: boolean;
  /** NBD_CMD_FLAG_FAST_ZERO was set: NOT_SUPPORTED is ENOTSUP, otherwise EINVAL (spec §2.5). */
  fastZero?: boolean;
}

/** The errno to put on the wire for any error a Volume threw. */
export function errnoForError(err: unknown, ctx: ErrnoContext = {}): number {
  if (!(err instanceof LunrigError)) return C.NBD_EIO;
  if (err.code === 'OUT_OF_RANGE' && ctx.isWrite) return C.NBD_ENOSPC;
  if (err.code === 'NOT_SUPPORTED' && !ctx.fastZero) return C.NBD_EINVAL;
  return NBD_ERRNO[err.code];
}

/** The LunrigError code a client reports for an errno it received (unknown values count as EINVAL, per spec). */
export function errorCodeForErrno(errno: number): ErrorCode {
  switch (errno) {
    case C.NBD_EPERM:
      return 'READ_ONLY';
    case C.NBD_EIO:
    case C.NBD_ENOMEM:
      return 'IO_ERROR';
    case C.NBD_ENOSPC:
      return 'NO_SPACE';
    case C.NBD_EOVERFLOW:
      return 'PAYLOAD_TOO_LARGE';
    case C.NBD_ENOTSUP:
      return 'NOT_SUPPORTED';
    case C.NBD_ESHUTDOWN:
      return 'CLOSED';
    case C.NBD_EINVAL:
    default:
      return 'INVALID_ARGUMENT';
  }
}
