/**
 * Payloads of individual options and option replies (spec/nbd.md §2.2):
 * GO/INFO requests, meta-context queries, NBD_REP_INFO items, NBD_REP_SERVER
 * and NBD_REP_META_CONTEXT. Decoders throw NbdWireError on any inconsistency.
 */
import * as C from './constants.js';
import { NbdWireError, decodeString, encodeString, readU64, writeU64 } from './wire.js';

// --- NBD_OPT_GO / NBD_OPT_INFO: u32 namelen, name, u16 n, n x u16 info type.

export interface GoRequest {
  exportName: string;
  infoRequests: number[];
}

export function encodeGoRequest(req: GoRequest): Buffer {
  const name = encodeString(req.exportName, C.NBD_MAX_STRING, 'export name');
  const b = Buffer.allocUnsafe(4 + name.length + 2 + 2 * req.infoRequests.length);
  b.writeUInt32BE(name.length, 0);
  name.copy(b, 4);
  let at = 4 + name.length;
  b.writeUInt16BE(req.infoRequests.length, at);
  at += 2;
  for (const t of req.infoRequests) {
    b.writeUInt16BE(t, at);
    at += 2;
  }
  return b;
}

export function decodeGoRequest(b: Buffer): GoRequest {
  if (b.length < 6) throw new NbdWireError('GO/INFO data shorter than 6 bytes');
  const nameLength = b.readUInt32BE(0);
  if (nameLength > b.length - 6) throw new NbdWireError('GO/INFO export name length exceeds the option');
  const exportName = decodeString(b.subarray(4, 4 + nameLength), C.NBD_MAX_STRING, 'export name');
  let at = 4 + nameLength;
  const n = b.readUInt16BE(at);
  at += 2;
  if (b.length !== at + 2 * n) throw new NbdWireError(`GO/INFO carries ${n} info requests but ${b.length - at} bytes`);
  const infoRequests: number[] = [];
  for (let i = 0; i < n; i++) infoRequests.push(b.readUInt16BE(at + 2 * i));
  return { exportName, infoRequests };
}

// --- NBD_OPT_LIST_META_CONTEXT / NBD_OPT_SET_META_CONTEXT: u32 namelen, name, u32 n, n x (u32 len, query).

export interface MetaContextRequest {
  exportName: string;
  queries: string[];
}

export function encodeMetaContextRequest(req: MetaContextRequest): Buffer {
  const name = encodeString(req.exportName, C.NBD_MAX_STRING, 'export name');
  const queries = req.queries.map((q) => encodeString(q, C.NBD_MAX_STRING, 'meta context query'));
  const b = Buffer.allocUnsafe(4 + name.length + 4 + queries.reduce((n, q) => n + 4 + q.length, 0));
  b.writeUInt32BE(name.length, 0);
  name.copy(b, 4);
  let at = 4 + name.length;
  b.writeUInt32BE(queries.length, at);
  at += 4;
  for (const q of queries) {
    b.writeUInt32BE(q.length, at);
    q.copy(b, at + 4);
    at += 4 + q.length;
  }
  return b;
}

export function decodeMetaContextRequest(b: Buffer): MetaContextRequest {
  if (b.length < 8) throw new NbdWireError('meta context data shorter than 8 bytes');
  const nameLength = b.readUInt32BE(0);
  if (nameLength > b.length - 8) throw new NbdWireError('meta context export name length exceeds the option');
  const exportName = decodeString(b.subarray(4, 4 + nameLength), C.NBD_MAX_STRING, 'export name');
  let at = 4 + nameLength;
  const n = b.readUInt32BE(at);
  at += 4;
  // Each query takes at least 4 bytes: refuse counts the data cannot hold before looping.
  if (n > (b.length - at) / 4) throw new NbdWireError(`meta context request claims ${n} queries in ${b.length - at} bytes`);
  const queries: string[] = [];
  for (let i = 0; i < n; i++) {
    if (at + 4 > b.length) throw new NbdWireError('meta context query truncated');
    const len = b.readUInt32BE(at);
    at += 4;
    if (len > b.length - at) throw new NbdWireError('meta context query length exceeds the option');
    queries.push(decodeString(b.subarray(at, at + len), C.NBD_MAX_STRING, 'meta context query'));
    at += len;
  }
  if (at !== b.length) throw new NbdWireError('trailing bytes after meta context queries');
  return { exportName, queries };
}

// --- NBD_REP_INFO items: u16 type + payload, one item per reply.

export interface BlockSizeConstraints {
  minimum: number;
  preferred: number;
  maximum: number;
}

export type InfoItem =
  | { type: typeof C.NBD_INFO_EXPORT; size: number; transmissionFlags: number }
  | { type: typeof C.NBD_INFO_NAME; name: string }
  | { type: typeof C.NBD_INFO_DESCRIPTION; description: string }
  | ({ type: typeof C.NBD_INFO_BLOCK_SIZE } & BlockSizeConstraints)
  | { type: 'unknown'; infoType: number };

export function encodeInfoItem(item: InfoItem): Buffer {
  switch (item.type) {
    case C.NBD_INFO_EXPORT: {
      const b = Buffer.allocUnsafe(C.NBD_INFO_EXPORT_LENGTH);
      b.writeUInt16BE(C.NBD_INFO_EXPORT, 0);
      writeU64(b, item.size, 2);
      b.writeUInt16BE(item.transmissionFlags, 10);
      return b;
    }
    case C.NBD_INFO_NAME:
    case C.NBD_INFO_DESCRIPTION: {
      const text = item.type === C.NBD_INFO_NAME ? item.name : item.description;
      const s = encodeString(text, C.NBD_MAX_STRING, 'info string');
      const b = Buffer.allocUnsafe(2 + s.length);
      b.writeUInt16BE(item.type, 0);
      s.copy(b, 2);
      return b;
    }
    case C.NBD_INFO_BLOCK_SIZE: {
      const b = Buffer.allocUnsafe(C.NBD_INFO_BLOCK_SIZE_LENGTH);
      b.writeUInt16BE(C.NBD_INFO_BLOCK_SIZE, 0);
      b.writeUInt32BE(item.minimum, 2);
      b.writeUInt32BE(item.preferred, 6);
      b.writeUInt32BE(item.maximum, 10);
      return b;
    }
    default:
      throw new NbdWireError('cannot encode an unknown info item');
  }
}

export function decodeInfoItem(b: Buffer): InfoItem {
  if (b.length < 2) throw new NbdWireError('NBD_REP_INFO shorter than 2 bytes');
  const type = b.readUInt16BE(0);
  switch (type) {
    case C.NBD_INFO_EXPORT:
      if (b.length !== C.NBD_INFO_EXPORT_LENGTH) throw new NbdWireError(`NBD_INFO_EXPORT of ${b.length} bytes, expected 12`);
      return { type, size: readU64(b, 2), transmissionFlags: b.readUInt16BE(10) };
    case C.NBD_INFO_NAME:
      return { type, name: decodeString(b.subarray(2), C.NBD_MAX_STRING, 'NBD_INFO_NAME') };
    case C.NBD_INFO_DESCRIPTION:
      return { type, description: decodeString(b.subarray(2), C.NBD_MAX_STRING, 'NBD_INFO_DESCRIPTION') };
    case C.NBD_INFO_BLOCK_SIZE:
      if (b.length !== C.NBD_INFO_BLOCK_SIZE_LENGTH) throw new NbdWireError(`NBD_INFO_BLOCK_SIZE of ${b.length} bytes, expected 14`);
      return { type, minimum: b.readUInt32BE(2), preferred: b.readUInt32BE(6), maximum: b.readUInt32BE(10) };
    default:
      return { type: 'unknown', infoType: type };
  }
}

// --- NBD_REP_SERVER: u32 namelen, name, optional human-readable details.

export interface ExportListing {
  name: string;
  description: string;
}

export function encodeServerReply(listing: ExportListing): Buffer {
  const name = encodeString(listing.name, C.NBD_MAX_STRING, 'export name');
  const desc = encodeString(listing.description, C.NBD_MAX_STRING, 'export description');
  const b = Buffer.allocUnsafe(4 + name.length + desc.length);
  b.writeUInt32BE(name.length, 0);
  name.copy(b, 4);
  desc.copy(b, 4 + name.length);
  return b;
}

export function decodeServerReply(b: Buffer): ExportListing {
  if (b.length < 4) throw new NbdWireError('NBD_REP_SERVER shorter than 4 bytes');
  const n = b.readUInt32BE(0);
  if (n > b.length - 4) throw new NbdWireError('NBD_REP_SERVER name length exceeds the reply');
  return {
    name: decodeString(b.subarray(4, 4 + n), C.NBD_MAX_STRING, 'export name'),
    description: decodeString(b.subarray(4 + n), C.NBD_MAX_STRING, 'export description'),
  };
}

// --- NBD_REP_META_CONTEXT: u32 context id, name.

export interface MetaContextReply {
  id: number;
  name: string;
}

export function encodeMetaContextReply(reply: MetaContextReply): Buffer {
  const name = encodeString(reply.name, C.NBD_MAX_STRING, 'meta context name');
  const b = Buffer.allocUnsafe(4 + name.length);
  b.writeUInt32BE(reply.id >>> 0, 0);
  name.copy(b, 4);
  return b;
}

export function decodeMetaContextReply(b: Buffer): MetaContextReply {
  if (b.length < 4) throw new NbdWireError('NBD_REP_META_CONTEXT shorter than 4 bytes');
  return { id: b.readUInt32BE(0), name: decodeString(b.subarray(4), C.NBD_MAX_STRING, 'meta context name') };
}

/** An error reply's optional message, cut to the protocol's string limit on a character boundary. */
export function encodeErrorMessage(message: string): Buffer {
  return truncateUtf8(message, C.NBD_MAX_STRING);
}

/** UTF-8 bytes of `s`, at most `max` of them, never splitting a character. */
export function truncateUtf8(s: string, max: number): Buffer {
  const b = Buffer.from(s, 'utf8');
  if (b.length <= max) return b;
  let end = max;
  while (end > 0 && (b[end]! & 0xc0) === 0x80) end--;
  return b.subarray(0, end);
}
