/**
 * Fixed-newstyle handshake framing (spec/nbd.md §2.2): the greeting, client
 * flags, option requests, option replies and the NBD_OPT_EXPORT_NAME reply.
 */
import * as C from './constants.js';
import { NbdWireError, readU64, writeU64 } from './wire.js';

export interface Greeting {
  handshakeFlags: number;
}

export function encodeGreeting(handshakeFlags: number): Buffer {
  const b = Buffer.allocUnsafe(C.NBD_GREETING_SIZE);
  b.writeBigUInt64BE(C.NBD_INIT_PASSWD, 0);
  b.writeBigUInt64BE(C.NBD_OPTS_MAGIC, 8);
  b.writeUInt16BE(handshakeFlags, 16);
  return b;
}

export function decodeGreeting(b: Buffer): Greeting {
  if (b.readBigUInt64BE(0) !== C.NBD_INIT_PASSWD) throw new NbdWireError('not an NBD server (no NBDMAGIC)');
  const second = b.readBigUInt64BE(8);
  if (second === C.NBD_CLISERV_MAGIC) throw new NbdWireError('oldstyle negotiation is not supported');
  if (second !== C.NBD_OPTS_MAGIC) throw new NbdWireError('bad newstyle magic in greeting');
  return { handshakeFlags: b.readUInt16BE(16) };
}

export function encodeClientFlags(flags: number): Buffer {
  const b = Buffer.allocUnsafe(C.NBD_CLIENT_FLAGS_SIZE);
  b.writeUInt32BE(flags >>> 0, 0);
  return b;
}

export interface OptionHeader {
  option: number;
  length: number;
}

/** Parse the 16-byte option header; a bad magic is a hard protocol violation. */
export function decodeOptionHeader(b: Buffer): OptionHeader {
  if (b.readBigUInt64BE(0) !== C.NBD_OPTS_MAGIC) throw new NbdWireError('option does not start with IHAVEOPT');
  return { option: b.readUInt32BE(8), length: b.readUInt32BE(12) };
}

export function encodeOption(option: number, data: Uint8Array = Buffer.alloc(0)): Buffer {
  const b = Buffer.allocUnsafe(C.NBD_OPTION_HEADER_SIZE + data.length);
  b.writeBigUInt64BE(C.NBD_OPTS_MAGIC, 0);
  b.writeUInt32BE(option >>> 0, 8);
  b.writeUInt32BE(data.length, 12);
  b.set(data, C.NBD_OPTION_HEADER_SIZE);
  return b;
}

export interface OptionReplyHeader {
  option: number;
  type: number;
  length: number;
}

export function encodeOptionReply(option: number, type: number, data: Uint8Array = Buffer.alloc(0)): Buffer {
  const b = Buffer.allocUnsafe(C.NBD_OPTION_REPLY_HEADER_SIZE + data.length);
  b.writeBigUInt64BE(C.NBD_REP_MAGIC, 0);
  b.writeUInt32BE(option >>> 0, 8);
  b.writeUInt32BE(type >>> 0, 12);
  b.writeUInt32BE(data.length, 16);
  b.set(data, C.NBD_OPTION_REPLY_HEADER_SIZE);
  return b;
}

export function decodeOptionReplyHeader(b: Buffer): OptionReplyHeader {
  if (b.readBigUInt64BE(0) !== C.NBD_REP_MAGIC) throw new NbdWireError('bad option reply magic');
  return { option: b.readUInt32BE(8), type: b.readUInt32BE(12), length: b.readUInt32BE(16) };
}

export function isOptionReplyError(type: number): boolean {
  return (type & C.NBD_REP_FLAG_ERROR) !== 0;
}

/** Reply to a successful NBD_OPT_EXPORT_NAME: size, flags and 124 zero bytes unless C_NO_ZEROES. */
export function encodeExportNameReply(size: number, transmissionFlags: number, noZeroes: boolean): Buffer {
  const b = Buffer.alloc(C.NBD_EXPORT_NAME_REPLY_SIZE + (noZeroes ? 0 : C.NBD_EXPORT_NAME_ZEROES));
  writeU64(b, size, 0);
  b.writeUInt16BE(transmissionFlags, 8);
  return b;
}

export function decodeExportNameReply(b: Buffer): { size: number; transmissionFlags: number } {
  return { size: readU64(b, 0), transmissionFlags: b.readUInt16BE(8) };
}
