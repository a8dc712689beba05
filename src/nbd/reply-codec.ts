/**
 * Transmission-phase replies (spec/nbd.md §2.4): the 16-byte simple reply and
 * structured reply chunks (20-byte header + payload). Encoders return headers
 * only; bulk data travels as its own buffer so it is never copied.
 */
import * as C from './constants.js';
import { truncateUtf8 } from './option-data-codec.js';
import { NbdWireError, readU64, writeU64 } from './wire.js';

export function encodeSimpleReply(error: number, cookie: bigint): Buffer {
  const b = Buffer.allocUnsafe(C.NBD_SIMPLE_REPLY_SIZE);
  b.writeUInt32BE(C.NBD_SIMPLE_REPLY_MAGIC, 0);
  b.writeUInt32BE(error >>> 0, 4);
  b.writeBigUInt64BE(cookie, 8);
  return b;
}

export interface ChunkHeader {
  flags: number;
  type: number;
  cookie: bigint;
  length: number;
}

function writeChunkHeader(b: Buffer, flags: number, type: number, cookie: bigint, length: number): void {
  b.writeUInt32BE(C.NBD_STRUCTURED_REPLY_MAGIC, 0);
  b.writeUInt16BE(flags, 4);
  b.writeUInt16BE(type, 6);
  b.writeBigUInt64BE(cookie, 8);
  b.writeUInt32BE(length, 16);
}

export function encodeChunkHeader(h: ChunkHeader): Buffer {
  const b = Buffer.allocUnsafe(C.NBD_STRUCTURED_REPLY_SIZE);
  writeChunkHeader(b, h.flags, h.type, h.cookie, h.length);
  return b;
}

/** NBD_REPLY_TYPE_NONE with DONE: the final chunk of a reply that carried everything already (or nothing). */
export function encodeNoneChunk(cookie: bigint): Buffer {
  return encodeChunkHeader({ flags: C.NBD_REPLY_FLAG_DONE, type: C.NBD_REPLY_TYPE_NONE, cookie, length: 0 });
}

/** Header of an NBD_REPLY_TYPE_OFFSET_DATA chunk (chunk header + u64 offset); `dataLength` bytes follow. */
export function encodeOffsetDataHeader(flags: number, cookie: bigint, offset: number, dataLength: number): Buffer {
  const b = Buffer.allocUnsafe(C.NBD_STRUCTURED_REPLY_SIZE + 8);
  writeChunkHeader(b, flags, C.NBD_REPLY_TYPE_OFFSET_DATA, cookie, 8 + dataLength);
  writeU64(b, offset, C.NBD_STRUCTURED_REPLY_SIZE);
  return b;
}

export function encodeOffsetHoleChunk(flags: number, cookie: bigint, offset: number, holeSize: number): Buffer {
  const b = Buffer.allocUnsafe(C.NBD_STRUCTURED_REPLY_SIZE + 12);
  writeChunkHeader(b, flags, C.NBD_REPLY_TYPE_OFFSET_HOLE, cookie, 12);
  writeU64(b, offset, C.NBD_STRUCTURED_REPLY_SIZE);
  b.writeUInt32BE(holeSize, C.NBD_STRUCTURED_REPLY_SIZE + 8);
  return b;
}

/** One NBD block descriptor: u32 extent length, u32 status flags. */
export interface BlockDescriptor {
  length: number;
  flags: number;
}

export function encodeBlockStatusChunk(flags: number, cookie: bigint, contextId: number, descriptors: readonly BlockDescriptor[]): Buffer {
  const payload = 4 + 8 * descriptors.length;
  const b = Buffer.allocUnsafe(C.NBD_STRUCTURED_REPLY_SIZE + payload);
  writeChunkHeader(b, flags, C.NBD_REPLY_TYPE_BLOCK_STATUS, cookie, payload);
  let at = C.NBD_STRUCTURED_REPLY_SIZE;
  b.writeUInt32BE(contextId >>> 0, at);
  at += 4;
  for (const d of descriptors) {
    b.writeUInt32BE(d.length >>> 0, at);
    b.writeUInt32BE(d.flags >>> 0, at + 4);
    at += 8;
  }
  return b;
}

/** Longest message put in an error chunk: short enough to be cheap, long enough to say why. */
export const MAX_ERROR_MESSAGE = 1024;

/** NBD_REPLY_TYPE_ERROR (or ERROR_OFFSET when `offset` is given): u32 error, u16 msglen, msg [, u64 offset]. */
export function encodeErrorChunk(flags: number, cookie: bigint, error: number, message: string, offset?: number): Buffer {
  const msg = truncateUtf8(message, MAX_ERROR_MESSAGE);
  const withOffset = offset !== undefined;
  const payload = 6 + msg.length + (withOffset ? 8 : 0);
  const b = Buffer.allocUnsafe(C.NBD_STRUCTURED_REPLY_SIZE + payload);
  writeChunkHeader(b, flags, withOffset ? C.NBD_REPLY_TYPE_ERROR_OFFSET : C.NBD_REPLY_TYPE_ERROR, cookie, payload);
  let at = C.NBD_STRUCTURED_REPLY_SIZE;
  b.writeUInt32BE(error >>> 0, at);
  b.writeUInt16BE(msg.length, at + 4);
  msg.copy(b, at + 6);
  at += 6 + msg.length;
  if (withOffset) writeU64(b, offset, at);
  return b;
}

// --- Decoders (client side).

export function decodeSimpleReply(b: Buffer): { error: number; cookie: bigint } {
  return { error: b.readUInt32BE(4), cookie: b.readBigUInt64BE(8) };
}

export function decodeChunkHeader(b: Buffer): ChunkHeader {
  return { flags: b.readUInt16BE(4), type: b.readUInt16BE(6), cookie: b.readBigUInt64BE(8), length: b.readUInt32BE(16) };
}

export function decodeOffsetHole(payload: Buffer): { offset: number; length: number } {
  if (payload.length !== 12) throw new NbdWireError(`OFFSET_HOLE payload of ${payload.length} bytes, expected 12`);
  return { offset: readU64(payload, 0), length: payload.readUInt32BE(8) };
}

export function decodeBlockStatusPayload(payload: Buffer): { contextId: number; descriptors: BlockDescriptor[] } {
  if (payload.length < 12 || (payload.length - 4) % 8 !== 0) throw new NbdWireError(`BLOCK_STATUS payload of ${payload.length} bytes`);
  const contextId = payload.readUInt32BE(0);
  const descriptors: BlockDescriptor[] = [];
  for (let at = 4; at < payload.length; at += 8) descriptors.push({ length: payload.readUInt32BE(at), flags: payload.readUInt32BE(at + 4) });
  return { contextId, descriptors };
}

export function decodeErrorPayload(type: number, payload: Buffer): { error: number; message: string; offset?: number } {
  if (payload.length < 6) throw new NbdWireError(`error chunk payload of ${payload.length} bytes`);
  const error = payload.readUInt32BE(0);
  const msgLength = payload.readUInt16BE(4);
  const expected = 6 + msgLength + (type === C.NBD_REPLY_TYPE_ERROR_OFFSET ? 8 : 0);
  if (payload.length !== expected) throw new NbdWireError(`error chunk payload of ${payload.length} bytes, expected ${expected}`);
  const message = payload.subarray(6, 6 + msgLength).toString('utf8');
  if (type === C.NBD_REPLY_TYPE_ERROR_OFFSET) return { error, message, offset: readU64(payload, 6 + msgLength) };
  return { error, message };
}

export function isErrorChunkType(type: number): boolean {
  return (type & C.NBD_REPLY_TYPE_ERROR_BIT) !== 0;
}
