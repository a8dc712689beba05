/**
 * Runs one validated transmission request against the Volume and builds its
 * reply. Volume errors become NBD errno values through errno-map.ts; nothing
 * here throws.
 */
import * as C from './constants.js';
import { extentsToDescriptors } from './block-status.js';
import { errnoForError } from './errno-map.js';
import type { MetaContext } from './meta-context.js';
import { blockStatusReply, errorReply, readReply, successReply } from './reply-builder.js';
import type { RequestHeader } from './request-codec.js';
import type { Extent, Volume } from '../volume/volume.js';

export interface CommandContext {
  volume: Volume;
  structuredReplies: boolean;
  metaContexts: readonly MetaContext[];
  sparseReads: boolean;
  sparseReadMinLength: number;
}

export async function executeCommand(req: RequestHeader, payload: Uint8Array | undefined, ctx: CommandContext): Promise<Buffer[]> {
  const { volume } = ctx;
  const { cookie, offset, length, flags } = req;
  const fua = (flags & C.NBD_CMD_FLAG_FUA) !== 0;
  try {
    switch (req.type) {
      case C.NBD_CMD_READ:
        return await read(req, ctx);
      case C.NBD_CMD_WRITE:
        await volume.write(offset, payload ?? new Uint8Array(0), { fua });
        return successReply(cookie);
      case C.NBD_CMD_FLUSH:
        await volume.flush();
        return successReply(cookie);
      case C.NBD_CMD_TRIM:
        await volume.trim(offset, length, { fua });
        return successReply(cookie);
      case C.NBD_CMD_CACHE:
        // A prefetch hint: the Volume has no cache to warm, and the hint must not change semantics.
        return successReply(cookie);
      case C.NBD_CMD_WRITE_ZEROES:
        await volume.writeZeroes(offset, length, {
          fua,
          noHole: (flags & C.NBD_CMD_FLAG_NO_HOLE) !== 0,
          fastZero: (flags & C.NBD_CMD_FLAG_FAST_ZERO) !== 0,
        });
        return successReply(cookie);
      case C.NBD_CMD_BLOCK_STATUS: {
        const extents = await volume.blockStatus(offset, length);
        const reqOne = (flags & C.NBD_CMD_FLAG_REQ_ONE) !== 0;
        const descriptors = extentsToDescriptors(extents, offset, length, { reqOne });
        return blockStatusReply(
          cookie,
          ctx.metaContexts.map((c) => ({ id: c.id, descriptors })),
        );
      }
      default:
        return errorReply(ctx.structuredReplies, cookie, C.NBD_EINVAL, `unknown command ${req.type}`);
    }
  } catch (err) {
    return failureReply(req, err, ctx.structuredReplies);
  }
}

/** The error reply for a request whose Volume call failed with `err` (errno-map.ts). */
export function failureReply(req: RequestHeader, err: unknown, structuredReplies: boolean): Buffer[] {
  const errno = errnoForError(err, {
    isWrite: req.type === C.NBD_CMD_WRITE || req.type === C.NBD_CMD_WRITE_ZEROES,
    fastZero: (req.flags & C.NBD_CMD_FLAG_FAST_ZERO) !== 0,
  });
  const message = err instanceof Error ? err.message : String(err);
  return errorReply(structuredReplies, req.cookie, errno, message);
}

async function read(req: RequestHeader, ctx: CommandContext): Promise<Buffer[]> {
  const { offset, length, cookie, flags } = req;
  const sparse =
    ctx.structuredReplies && ctx.sparseReads && length >= ctx.sparseReadMinLength && length > 0 && (flags & C.NBD_CMD_FLAG_DF) === 0;
  let extents: Extent[] | undefined;
  if (sparse) extents = await ctx.volume.blockStatus(offset, length);
  const allZero = extents !== undefined && extents.length > 0 && extents.every((e) => e.kind !== 'data') && covers(extents, offset, length);
  const data = allZero ? undefined : await ctx.volume.read(offset, length);
  return readReply(ctx.structuredReplies, cookie, offset, length, data, extents);
}

/** The extents cover [offset, offset+length) without gaps (a Volume promises it; a wrong hole would lose data). */
function covers(extents: readonly Extent[], offset: number, length: number): boolean {
  let cursor = offset;
  for (const e of extents) {
    if (e.offset > cursor) return false;
    cursor = Math.max(cursor, e.offset + e.length);
  }
  return cursor >= offset + length;
}
