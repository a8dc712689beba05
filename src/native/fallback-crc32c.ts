/**
 * CRC32C (Castagnoli) in plain TypeScript: slicing-by-8, bit for bit the same
 * as the addon's crc32c. Used when the addon is missing and as its reference.
 */
import type { ChecksumRoutines } from './types.js';
import { checkBytes, checkInteger } from './validate.js';

const POLY = 0x82f63b78;

/**
 * Eight 256-entry tables in one Int32Array: table s maps a byte to its CRC
 * contribution when s more bytes follow it. Int32 (not Uint32) keeps every
 * entry a small integer for the JIT, so the hot loop never boxes doubles.
 */
const T = buildTables();

function buildTables(): Int32Array {
  const t = new Int32Array(8 * 256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ POLY : c >>> 1;
    t[i] = c;
  }
  for (let i = 0; i < 256; i++) {
    for (let s = 1; s < 8; s++) {
      const prev = t[(s - 1) * 256 + i]!;
      t[s * 256 + i] = (prev >>> 8) ^ t[prev & 0xff]!;
    }
  }
  return t;
}

/**
 * Advances the raw (uninverted) CRC register over data. Little-endian DataView
 * reads fetch 4 bytes at a time on any alignment and host byte order, nearly
 * twice as fast as assembling words from single bytes.
 */
function update(crc: number, data: Uint8Array): number {
  const n = data.length;
  const view = new DataView(data.buffer, data.byteOffset, n);
  let i = 0;
  for (const end = n - 8; i <= end; i += 8) {
    const lo = crc ^ view.getInt32(i, true);
    const hi = view.getInt32(i + 4, true);
    crc =
      T[0x700 + (lo & 0xff)]! ^
      T[0x600 + ((lo >>> 8) & 0xff)]! ^
      T[0x500 + ((lo >>> 16) & 0xff)]! ^
      T[0x400 + (lo >>> 24)]! ^
      T[0x300 + (hi & 0xff)]! ^
      T[0x200 + ((hi >>> 8) & 0xff)]! ^
      T[0x100 + ((hi >>> 16) & 0xff)]! ^
      T[hi >>> 24]!;
  }
  for (; i < n; i++) crc = (crc >>> 8) ^ T[(crc ^ data[i]!) & 0xff]!;
  return crc;
}

/** `previous` is a finished CRC: crc32c(b, crc32c(a)) is the CRC of a then b. */
export function crc32c(data: Uint8Array, previous?: number): number {
  checkBytes(data, 'data');
  if (previous !== undefined) checkInteger(previous, 'previous', 0xffffffff);
  return ~update(~(previous ?? 0), data) >>> 0;
}

export const checksumRoutines: ChecksumRoutines = { crc32c };
