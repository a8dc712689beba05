/**
 * The buffers of one complete reply, simple or structured as negotiated
 * (spec/nbd.md §2.4). With structured replies READ is never answered with a
 * simple reply, errors go as NBD_REPLY_TYPE_ERROR chunks carrying a message,
 * and other successful commands use the cheaper simple reply (allowed: no payload).
 */
import * as C from './constants.js';
import {
  encodeBlockStatusChunk,
  encodeErrorChunk,
  encodeNoneChunk,
  encodeOffsetDataHeader,
  encodeOffsetHoleChunk,
  encodeSimpleReply,
  type BlockDescriptor,
} from './reply-codec.js';
import type { Extent } from '../volume/volume.js';

export function successReply(cookie: bigint): Buffer[] {
  return [encodeSimpleReply(C.NBD_SUCCESS, cookie)];
}

export function errorReply(structured: boolean, cookie: bigint, errno: number, message: string): Buffer[] {
  if (structured) return [encodeErrorChunk(C.NBD_REPLY_FLAG_DONE, cookie, errno, message)];
  return [encodeSimpleReply(errno, cookie)];
}

/** Most chunks one sparse read reply is split into; more fragmented reads go as one data chunk. */
const MAX_READ_CHUNKS = 64;

/**
 * A successful READ. `extents` (optional, structured only) marks holes and
 * zero runs to send as OFFSET_HOLE instead of data. `data` may be undefined
 * when the extents say the whole range reads as zeros.
 */
export function readReply(structured: boolean, cookie: bigint, offset: number, length: number, data: Uint8Array | undefined, extents?: readonly Extent[]): Buffer[] {
  if (!structured) return data && length > 0 ? [encodeSimpleReply(C.NBD_SUCCESS, cookie), asBuffer(data)] : [encodeSimpleReply(C.NBD_SUCCESS, cookie)];
  // OFFSET_DATA needs at least one byte; an empty read is just DONE.
  if (length === 0) return [encodeNoneChunk(cookie)];
  const runs = extents ? zeroRuns(extents, offset, length) : undefined;
  if (!runs || runs.length > MAX_READ_CHUNKS) {
    if (!data) return [encodeOffsetHoleChunk(C.NBD_REPLY_FLAG_DONE, cookie, offset, length)];
    return [encodeOffsetDataHeader(C.NBD_REPLY_FLAG_DONE, cookie, offset, length), asBuffer(data)];
  }
  const out: Buffer[] = [];
  runs.forEach((run, i) => {
    const flags = i === runs.length - 1 ? C.NBD_REPLY_FLAG_DONE : 0;
    const rel = run.offset - offset;
    if (run.zero || !data) out.push(encodeOffsetHoleChunk(flags, cookie, run.offset, run.length));
    else {
      out.push(encodeOffsetDataHeader(flags, cookie, run.offset, run.length));
      out.push(asBuffer(data).subarray(rel, rel + run.length));
    }
  });
  return out;
}

interface Run {
  offset: number;
  length: number;
  zero: boolean;
}

/** Split [offset, offset+length) into alternating data / reads-as-zero runs; undefined when extents do not cover it. */
function zeroRuns(extents: readonly Extent[], offset: number, length: number): Run[] | undefined {
  const end = offset + length;
  const runs: Run[] = [];
  let cursor = offset;
  for (const e of extents) {
    if (e.offset > cursor || e.offset + e.length <= cursor) return undefined;
    const stop = Math.min(e.offset + e.length, end);
    const zero = e.kind !== 'data';
    const prev = runs[runs.length - 1];
    if (prev && prev.zero === zero) prev.length += stop - cursor;
    else runs.push({ offset: cursor, length: stop - cursor, zero });
    cursor = stop;
    if (cursor >= end) break;
  }
  return cursor >= end ? runs : undefined;
}

/** One BLOCK_STATUS chunk per negotiated context; DONE on the last. */
export function blockStatusReply(cookie: bigint, perContext: readonly { id: number; descriptors: readonly BlockDescriptor[] }[]): Buffer[] {
  return perContext.map((c, i) => encodeBlockStatusChunk(i === perContext.length - 1 ? C.NBD_REPLY_FLAG_DONE : 0, cookie, c.id, c.descriptors));
}

function asBuffer(data: Uint8Array): Buffer {
  return Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}
