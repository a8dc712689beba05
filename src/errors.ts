/**
 * Typed errors with stable codes. Every failure lunrig reports carries one of
 * these codes; the NBD server maps codes to errno values (src/nbd/errno-map.ts)
 * and the control API maps them to HTTP status (src/control/http-status.ts),
 * each in exactly one place.
 */

export const ERROR_CODES = [
  // Caller mistakes: the request is malformed or out of range.
  'INVALID_ARGUMENT',
  'INVALID_SIZE',
  'OUT_OF_RANGE',
  'INVALID_CONFIG',
  // Array model.
  'LUN_NOT_FOUND',
  'LUN_EXISTS',
  'LSS_NOT_FOUND',
  'LSS_FULL',
  'SHRINK_NOT_SUPPORTED',
  'READ_ONLY',
  'POOL_LOCKED',
  'POOL_CORRUPT',
  // FlashCopy (spec/copy-services.md §2.2 F-P1..F-P10, §2.5): each refused establish names its rule.
  'FC_DIFFERENT_LSS',
  'FC_TARGET_TOO_SMALL',
  'FC_VOLUME_IN_RELATIONSHIP',
  'FC_NOT_FIXED_BLOCK',
  'FC_TARGET_ONLINE',
  'FC_NOT_LICENSED',
  'FC_SAME_VOLUME',
  'FC_TARGET_NO_SPACE',
  'FC_UNSUPPORTED_COMBINATION',
  'FC_NO_RELATIONSHIP',
  'FC_NOT_INCREMENTAL',
  'FC_GROUP_EXISTS',
  'FC_GROUP_NOT_FOUND',
  // PPRC (spec/copy-services.md §3.2-§3.11): refused control operations, then what a host sees.
  'PPRC_NO_PATH',
  'PPRC_SAME_LSS',
  'PPRC_TARGET_TOO_SMALL',
  'PPRC_TARGET_ONLINE',
  'PPRC_VOLUME_IN_PAIR',
  'PPRC_NOT_IN_PAIR',
  'PPRC_INVALID_COPY_MODE',
  'PPRC_TOO_MANY_SECONDARIES',
  'PPRC_TOO_MANY_LINKS',
  'PPRC_TOO_MANY_PATHS',
  'PPRC_DISTANCE_TOO_LONG',
  'PPRC_ESS_NOT_FOUND',
  'PPRC_LINK_NOT_FOUND',
  'PPRC_PATH_NOT_FOUND',
  /** A host read or write of a paired secondary (PP-07). */
  'PPRC_SECONDARY_NOT_ACCESSIBLE',
  /** A write to a write-inhibited volume (CRIT, PP-22/23). */
  'PPRC_WRITE_INHIBITED',
  /** The secondary did not acknowledge a synchronous write in time (W2, PP-26). */
  'PPRC_ACK_TIMEOUT',
  /** Combining copy relationships while the first is still establishing (CB-06). */
  'RELATIONSHIP_NOT_ESTABLISHED',
  // Copy Services tasks and task groups (spec §4.2).
  'TASK_NOT_FOUND',
  'TASK_EXISTS',
  'TASK_IN_GROUP',
  'TASK_GROUP_NESTED',
  'TASK_NOT_RUNNING',
  // Hosts and LUN masking.
  'HOST_NOT_FOUND',
  'HOST_EXISTS',
  'LUN_NOT_MAPPED',
  // Runtime state.
  'CLOSED',
  'BUSY',
  'NOT_SUPPORTED',
  'NO_SPACE',
  'IO_ERROR',
  'INTERNAL',
  // Transport: a control API request the server could not take, or a server that could not be reached.
  'ROUTE_NOT_FOUND',
  'UNSUPPORTED_MEDIA_TYPE',
  'PAYLOAD_TOO_LARGE',
  'UNREACHABLE',
  // Multipath (spec/multipath.md §1.4): device errors the target reports, and the host side's refusals.
  'MEDIUM_ERROR',
  'RESERVATION_CONFLICT',
  'NOT_READY',
  'TIMEOUT',
  'MP_LAST_PATH',
  'MP_PATH_NOT_FOUND',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

export class LunrigError extends Error {
  override readonly name = 'LunrigError';
  readonly code: ErrorCode;
  readonly details: Readonly<Record<string, unknown>> | undefined;

  constructor(code: ErrorCode, message: string, details?: Record<string, unknown>, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.details = details;
  }

  toJSON(): { code: ErrorCode; message: string; details?: Record<string, unknown> } {
    return this.details ? { code: this.code, message: this.message, details: { ...this.details } } : { code: this.code, message: this.message };
  }
}

export function isLunrigError(err: unknown, code?: ErrorCode): err is LunrigError {
  return err instanceof LunrigError && (code === undefined || err.code === code);
}

/** Map a Node system error (errno code string) to a LunrigError, keeping the cause. */
export function fromSystemError(err: unknown, context: string): LunrigError {
  if (err instanceof LunrigError) return err;
  const sys = err as NodeJS.ErrnoException | undefined;
  const errno = sys?.code;
  const message = `${context}: ${sys?.message ?? String(err)}`;
  switch (errno) {
    case 'ENOSPC':
    case 'EDQUOT':
    case 'EFBIG': // past the filesystem's file size limit: out of space, as nbdkit reports it
      return new LunrigError('NO_SPACE', message, { errno }, { cause: err });
    case 'EROFS':
    case 'EPERM':
    case 'EACCES':
      return new LunrigError('READ_ONLY', message, { errno }, { cause: err });
    case 'EINVAL':
      return new LunrigError('INVALID_ARGUMENT', message, { errno }, { cause: err });
    case 'EOPNOTSUPP':
    case 'ENOTSUP':
      return new LunrigError('NOT_SUPPORTED', message, { errno }, { cause: err });
    default:
      return new LunrigError('IO_ERROR', message, errno ? { errno } : undefined, { cause: err });
  }
}
