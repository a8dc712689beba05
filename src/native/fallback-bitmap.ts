/**
 * Bitmap routines in plain TypeScript, bit for bit the same as the addon's
 * (native/bitmap.cc). Bit i is bit (i & 7) of byte floor(i / 8), LSB first.
 * Edge bytes are masked; long middles go 32 bits at a time through an
 * Int32Array view of the aligned part. Word values are only compared with 0
 * and -1 or popcounted, never used to locate a bit, so host byte order
 * does not matter.
 */
import type { BitmapRoutines } from './types.js';
import { checkBitRange, checkBytes, checkInteger } from './validate.js';

/** Below this many middle bytes a word view costs more than it saves. */
const WORD_MIN_BYTES = 32;

const POP8 = new Uint8Array(256).map((_, v) => popcount32(v));

function popcount32(v: number): number {
  v -= (v >>> 1) & 0x55555555;
  v = (v & 0x33333333) + ((v >>> 2) & 0x33333333);
  return Math.imul((v + (v >>> 4)) & 0x0f0f0f0f, 0x01010101) >>> 24;
}

/** Byte index of a bit; `bit >>> 3` would wrap for bitmaps past 2^32 bits. */
const byteOf = (bit: number): number => Math.floor(bit / 8);
/** Bits [bit & 7, 8) of the byte holding `bit`. (`& 7` is exact for any safe integer.) */
const maskFrom = (bit: number): number => (0xff << (bit & 7)) & 0xff;
/** Bits [0, bit & 7] of the byte holding `bit`. */
const maskThrough = (bit: number): number => 0xff >>> (7 - (bit & 7));
/** Index of the lowest set bit of a non-zero byte. */
const lowestBit = (v: number): number => 31 - Math.clz32(v & -v);

/** Int32 view of the 4-byte-aligned words from byte `from` (itself aligned), `count` words long. */
function wordsAt(bytes: Uint8Array, from: number, count: number): Int32Array {
  return new Int32Array(bytes.buffer, bytes.byteOffset + from, count);
}

/** Bytes to step from `i` to the next 4-byte boundary of the underlying buffer. */
const toAlignment = (bytes: Uint8Array, i: number): number => -(bytes.byteOffset + i) & 3;

function applyRange(bitmap: Uint8Array, start: number, count: number, set: boolean): void {
  if (count === 0) return;
  const last = start + count - 1;
  const first = byteOf(start);
  const lastByte = byteOf(last);
  if (first === lastByte) {
    const m = maskFrom(start) & maskThrough(last);
    bitmap[first] = set ? bitmap[first]! | m : bitmap[first]! & ~m;
    return;
  }
  bitmap[first] = set ? bitmap[first]! | maskFrom(start) : bitmap[first]! & ~maskFrom(start);
  bitmap.fill(set ? 0xff : 0, first + 1, lastByte);
  bitmap[lastByte] = set ? bitmap[lastByte]! | maskThrough(last) : bitmap[lastByte]! & ~maskThrough(last);
}

function popcountBytes(bytes: Uint8Array, from: number, to: number): number {
  let total = 0;
  let i = from;
  if (to - from >= WORD_MIN_BYTES) {
    for (const aligned = i + toAlignment(bytes, i); i < aligned; i++) total += POP8[bytes[i]!]!;
    const n = Math.floor((to - i) / 4);
    const words = wordsAt(bytes, i, n);
    for (let w = 0; w < n; w++) total += popcount32(words[w]!);
    i += n * 4;
  }
  for (; i < to; i++) total += POP8[bytes[i]!]!;
  return total;
}

/** First byte index in [from, to) whose value XOR flip is non-zero, or `to`. */
function scanBytes(bytes: Uint8Array, from: number, to: number, flip: number): number {
  let i = from;
  if (to - from >= WORD_MIN_BYTES) {
    for (const aligned = i + toAlignment(bytes, i); i < aligned; i++) if ((bytes[i]! ^ flip) !== 0) return i;
    const n = Math.floor((to - i) / 4);
    const words = wordsAt(bytes, i, n);
    const boring = flip === 0 ? 0 : -1;
    let w = 0;
    while (w < n && words[w] === boring) w++;
    i += w * 4; // the byte loop below finds the hit inside word w, if any
  }
  for (; i < to; i++) if ((bytes[i]! ^ flip) !== 0) return i;
  return to;
}

/** First bit in [from, limit) that is set (flip 0) or clear (flip 0xff), or -1. */
function findFirst(bitmap: Uint8Array, from: number, limit: number, flip: number): number {
  if (from >= limit) return -1;
  const last = limit - 1;
  const first = byteOf(from);
  const lastByte = byteOf(last);
  let v = (bitmap[first]! ^ flip) & maskFrom(from);
  if (first === lastByte) v &= maskThrough(last);
  if (v !== 0) return first * 8 + lowestBit(v);
  if (first === lastByte) return -1;
  const hit = scanBytes(bitmap, first + 1, lastByte, flip);
  if (hit < lastByte) return hit * 8 + lowestBit(bitmap[hit]! ^ flip);
  v = (bitmap[lastByte]! ^ flip) & maskThrough(last);
  return v !== 0 ? lastByte * 8 + lowestBit(v) : -1;
}

function checkFindArgs(bitmap: Uint8Array, from: number, limit: number): void {
  checkBytes(bitmap, 'bitmap');
  checkInteger(from, 'from');
  checkInteger(limit, 'limit', bitmap.length * 8);
}

/**
 * dst op= src over n bytes. Views that overlap are resolved as if src were
 * copied first, as the addon does, so the loop order never shows.
 */
function merge(dst: Uint8Array, src: Uint8Array, clear: boolean): void {
  checkBytes(dst, 'dst');
  checkBytes(src, 'src');
  const n = Math.min(dst.length, src.length);
  if (n === 0) return;
  if (dst.buffer === src.buffer && dst.byteOffset < src.byteOffset + n && src.byteOffset < dst.byteOffset + n) {
    src = src.slice(0, n);
  }
  let i = 0;
  // Word loop when both views reach 4-byte alignment at the same index.
  if (n >= WORD_MIN_BYTES && toAlignment(dst, 0) === toAlignment(src, 0)) {
    for (const aligned = toAlignment(dst, 0); i < aligned; i++) {
      dst[i] = clear ? dst[i]! & ~src[i]! : dst[i]! | src[i]!;
    }
    const words = Math.floor((n - i) / 4);
    const d = wordsAt(dst, i, words);
    const s = wordsAt(src, i, words);
    if (clear) for (let w = 0; w < words; w++) d[w] = d[w]! & ~s[w]!;
    else for (let w = 0; w < words; w++) d[w] = d[w]! | s[w]!;
    i += words * 4;
  }
  for (; i < n; i++) dst[i] = clear ? dst[i]! & ~src[i]! : dst[i]! | src[i]!;
}

export const bitmapRoutines: BitmapRoutines = {
  setRange(bitmap, start, count) {
    checkBitRange(bitmap, start, count);
    applyRange(bitmap, start, count, true);
  },
  clearRange(bitmap, start, count) {
    checkBitRange(bitmap, start, count);
    applyRange(bitmap, start, count, false);
  },
  testBit(bitmap, index) {
    checkBytes(bitmap, 'bitmap');
    checkInteger(index, 'index');
    if (index >= bitmap.length * 8) {
      throw new RangeError(`index ${index} is past the bitmap's ${bitmap.length * 8} bits`);
    }
    return ((bitmap[byteOf(index)]! >>> (index & 7)) & 1) === 1;
  },
  allSet(bitmap, start, count) {
    checkBitRange(bitmap, start, count);
    return findFirst(bitmap, start, start + count, 0xff) < 0;
  },
  anySet(bitmap, start, count) {
    checkBitRange(bitmap, start, count);
    return findFirst(bitmap, start, start + count, 0) >= 0;
  },
  findNextSet(bitmap, from, limit) {
    checkFindArgs(bitmap, from, limit);
    return findFirst(bitmap, from, limit, 0);
  },
  findNextClear(bitmap, from, limit) {
    checkFindArgs(bitmap, from, limit);
    return findFirst(bitmap, from, limit, 0xff);
  },
  popcount(bitmap, start, count) {
    checkBitRange(bitmap, start, count);
    if (count === 0) return 0;
    const last = start + count - 1;
    const first = byteOf(start);
    const lastByte = byteOf(last);
    if (first === lastByte) return POP8[bitmap[first]! & maskFrom(start) & maskThrough(last)]!;
    return (
      POP8[bitmap[first]! & maskFrom(start)]! +
      popcountBytes(bitmap, first + 1, lastByte) +
      POP8[bitmap[lastByte]! & maskThrough(last)]!
    );
  },
  or(dst, src) {
    merge(dst, src, false);
  },
  andNot(dst, src) {
    merge(dst, src, true);
  },
};
