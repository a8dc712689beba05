/** The 28-byte compact request header (spec/nbd.md §2.4). */
import * as C from './constants.js';
import { NbdWireError, readU64, writeU64 } from './wire.js';

export interface RequestHeader {
  /** Command flags (NBD_CMD_FLAG_*). */
  flags: number;
  /** Command type (NBD_CMD_*). */
  type: number;
  /** Opaque; echoed in every reply. */
  cookie: bigint;
  /** May exceed 2^53 on the wire; then it is inexact but still past any export's end. */
  offset: number;
  length: number;
}

export function decodeRequestHeader(b: Buffer): RequestHeader {
  const magic = b.readUInt32BE(0);
  if (magic !== C.NBD_REQUEST_MAGIC) throw new NbdWireError(`bad request magic 0x${magic.toString(16)}`);
  return {
    flags: b.readUInt16BE(4),
    type: b.readUInt16BE(6),
    cookie: b.readBigUInt64BE(8),
    offset: readU64(b, 16),
    length: b.readUInt32BE(24),
  };
}

export function encodeRequestHeader(req: RequestHeader, into: Buffer = Buffer.allocUnsafe(C.NBD_REQUEST_SIZE), at = 0): Buffer {
  into.writeUInt32BE(C.NBD_REQUEST_MAGIC, at);
  into.writeUInt16BE(req.flags, at + 4);
  into.writeUInt16BE(req.type, at + 6);
  into.writeBigUInt64BE(req.cookie, at + 8);
  writeU64(into, req.offset, at + 16);
  into.writeUInt32BE(req.length, at + 24);
  return into;
}
