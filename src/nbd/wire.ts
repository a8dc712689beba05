/** Big-endian helpers for the NBD wire and the error thrown on malformed messages. */

const TWO_32 = 0x1_0000_0000;

/** A message that does not parse. The server answers NBD_REP_ERR_INVALID or disconnects; a client drops the connection. */
export class NbdWireError extends Error {
  override readonly name = 'NbdWireError';
}

/**
 * Read a u64 as a number. Values past 2^53 come out inexact but still larger
 * than any export size, which is all the range checks need.
 */
export function readU64(buf: Uint8Array, at: number): number {
  const view = buf as Buffer;
  return view.readUInt32BE(at) * TWO_32 + view.readUInt32BE(at + 4);
}

/** Write a non-negative safe integer as a u64. */
export function writeU64(buf: Buffer, value: number, at: number): void {
  buf.writeUInt32BE(Math.floor(value / TWO_32), at);
  buf.writeUInt32BE(value % TWO_32, at + 4);
}

/** Decode a protocol string (UTF-8, at most `max` bytes). */
export function decodeString(buf: Buffer, max: number, what: string): string {
  if (buf.length > max) throw new NbdWireError(`${what} is ${buf.length} bytes, longer than ${max}`);
  return buf.toString('utf8');
}

/** Encode a protocol string, refusing one longer than `max` bytes. */
export function encodeString(s: string, max: number, what: string): Buffer {
  const b = Buffer.from(s, 'utf8');
  if (b.length > max) throw new NbdWireError(`${what} is ${b.length} bytes, longer than ${max}`);
  return b;
}
