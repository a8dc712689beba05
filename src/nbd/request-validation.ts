/**
 * Transmission-phase request validation (spec/nbd.md §4, after nbdkit's
 * validate_request). Runs before a request touches the volume; a rejected
 * WRITE still has its payload consumed by the caller, so the stream never
 * desynchronises.
 */
import * as C from './constants.js';
import type { BlockSizeConstraints } from './option-data-codec.js';
import { commandName } from './protocol-names.js';
import type { RequestHeader } from './request-codec.js';

export interface RequestContext {
  size: number;
  transmissionFlags: number;
  structuredReplies: boolean;
  /** At least one meta context was negotiated. */
  hasMetaContext: boolean;
  blockSize: BlockSizeConstraints;
}

export interface Rejection {
  errno: number;
  message: string;
}

const KNOWN_FLAGS = C.NBD_CMD_FLAG_FUA | C.NBD_CMD_FLAG_NO_HOLE | C.NBD_CMD_FLAG_DF | C.NBD_CMD_FLAG_REQ_ONE | C.NBD_CMD_FLAG_FAST_ZERO;

/** Commands that modify the export. */
export function isWriteCommand(type: number): boolean {
  return type === C.NBD_CMD_WRITE || type === C.NBD_CMD_TRIM || type === C.NBD_CMD_WRITE_ZEROES;
}

/** Which transmission flag exposes each command that needs one. */
const COMMAND_FLAG: Partial<Record<number, number>> = {
  [C.NBD_CMD_FLUSH]: C.NBD_FLAG_SEND_FLUSH,
  [C.NBD_CMD_TRIM]: C.NBD_FLAG_SEND_TRIM,
  [C.NBD_CMD_WRITE_ZEROES]: C.NBD_FLAG_SEND_WRITE_ZEROES,
  [C.NBD_CMD_CACHE]: C.NBD_FLAG_SEND_CACHE,
};

/** Why `req` must be refused, or undefined when it may run. NBD_CMD_DISC is not validated (it has no reply). */
export function validateRequest(req: RequestHeader, ctx: RequestContext): Rejection | undefined {
  const { type, flags, offset, length } = req;
  const name = commandName(type);
  const tf = ctx.transmissionFlags;
  const reject = (errno: number, message: string): Rejection => ({ errno, message: `${name}: ${message}` });

  if (type > C.NBD_CMD_BLOCK_STATUS || type === C.NBD_CMD_DISC) return { errno: C.NBD_EINVAL, message: `unknown or unsupported command ${type}` };
  if ((tf & C.NBD_FLAG_READ_ONLY) !== 0 && isWriteCommand(type)) return reject(C.NBD_EPERM, 'the export is read-only');

  if ((flags & ~KNOWN_FLAGS) !== 0) return reject(C.NBD_EINVAL, `unknown command flags 0x${(flags & ~KNOWN_FLAGS).toString(16)}`);
  if (flags & C.NBD_CMD_FLAG_FUA && !(tf & C.NBD_FLAG_SEND_FUA)) return reject(C.NBD_EINVAL, 'FUA was not negotiated');
  if (flags & C.NBD_CMD_FLAG_NO_HOLE && type !== C.NBD_CMD_WRITE_ZEROES) return reject(C.NBD_EINVAL, 'NO_HOLE applies to WRITE_ZEROES only');
  if (flags & C.NBD_CMD_FLAG_FAST_ZERO) {
    if (type !== C.NBD_CMD_WRITE_ZEROES) return reject(C.NBD_EINVAL, 'FAST_ZERO applies to WRITE_ZEROES only');
    if (!(tf & C.NBD_FLAG_SEND_FAST_ZERO)) return reject(C.NBD_EINVAL, 'FAST_ZERO was not negotiated');
  }
  if (flags & C.NBD_CMD_FLAG_DF) {
    if (type !== C.NBD_CMD_READ) return reject(C.NBD_EINVAL, 'DF applies to READ only');
    if (!(tf & C.NBD_FLAG_SEND_DF)) return reject(C.NBD_EINVAL, 'DF needs structured replies');
  }
  if (flags & C.NBD_CMD_FLAG_REQ_ONE && type !== C.NBD_CMD_BLOCK_STATUS) return reject(C.NBD_EINVAL, 'REQ_ONE applies to BLOCK_STATUS only');

  const needed = COMMAND_FLAG[type];
  if (needed !== undefined && !(tf & needed)) return reject(C.NBD_EINVAL, 'the command was not advertised');
  if (type === C.NBD_CMD_BLOCK_STATUS) {
    if (!ctx.structuredReplies) return reject(C.NBD_EINVAL, 'structured replies were not negotiated');
    if (!ctx.hasMetaContext) return reject(C.NBD_EINVAL, 'no metadata context was negotiated');
  }

  if (type === C.NBD_CMD_FLUSH) {
    if (offset !== 0 || length !== 0) return reject(C.NBD_EINVAL, 'offset and length must be 0');
    return undefined;
  }

  if ((type === C.NBD_CMD_READ || type === C.NBD_CMD_WRITE) && length > ctx.blockSize.maximum) {
    return reject(C.NBD_EINVAL, `length ${length} exceeds the maximum payload ${ctx.blockSize.maximum}`);
  }
  const min = ctx.blockSize.minimum;
  if (min > 1 && (offset % min !== 0 || length % min !== 0)) return reject(C.NBD_EINVAL, `offset and length must be multiples of ${min}`);
  if (offset + length > ctx.size) {
    // Writes past the end are ENOSPC; everything else (read, trim, cache, block status) is EINVAL.
    const errno = type === C.NBD_CMD_WRITE || type === C.NBD_CMD_WRITE_ZEROES ? C.NBD_ENOSPC : C.NBD_EINVAL;
    return reject(errno, `[${offset}, ${offset + length}) reaches past the end of the export (${ctx.size} bytes)`);
  }
  if (type === C.NBD_CMD_BLOCK_STATUS && length === 0) return reject(C.NBD_EINVAL, 'length must not be 0');
  return undefined;
}
