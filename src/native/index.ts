/**
 * The bitmap, checksum and syscall routines, from the native addon when it
 * loads and from the pure TypeScript fallback otherwise (or when
 * LUNRIG_NO_NATIVE=1). A failed load is silent; `nativeLoadError` says why.
 */
import { bitmapRoutines } from './fallback-bitmap.js';
import { crc32c } from './fallback-crc32c.js';
import { loadAddon, type RawAddon } from './load-addon.js';
import type { NativeRoutines } from './types.js';

export type { BitmapRoutines, ChecksumRoutines, NativeRoutines, SyscallRoutines } from './types.js';

export const typescriptRoutines: NativeRoutines = Object.freeze({
  ...bitmapRoutines,
  crc32c,
  implementation: 'typescript',
  syscalls: undefined,
});

/** The addon's own functions, so calls pay no extra JS frame. */
function fromAddon(a: RawAddon): NativeRoutines {
  return Object.freeze({
    setRange: a.setRange,
    clearRange: a.clearRange,
    testBit: a.testBit,
    allSet: a.allSet,
    anySet: a.anySet,
    findNextSet: a.findNextSet,
    findNextClear: a.findNextClear,
    popcount: a.popcount,
    or: a.or,
    andNot: a.andNot,
    crc32c: a.crc32c,
    implementation: 'native',
    syscalls: Object.freeze({
      punchHole: a.punchHole,
      zeroRange: a.zeroRange,
      seekData: a.seekData,
      seekHole: a.seekHole,
      fdatasync: a.fdatasync,
      preadNowait: a.preadNowait,
      // Not in load-addon's EXPECTED list: an older build still loads, without it.
      ...(typeof a.copyFileRange === 'function' && { copyFileRange: a.copyFileRange }),
    }),
  });
}

/**
 * Crossing into the addon costs ~150 ns a call, about what the JS loop needs
 * for a few hundred bits (bench/native.bench.ts), so short ranges and single
 * bits (the per-I/O case) stay in JS. Results are identical either way.
 */
const JS_MAX_BITS = 256;

function preferJsWhenSmall(n: NativeRoutines): NativeRoutines {
  const ts = typescriptRoutines;
  return Object.freeze({
    ...n,
    setRange: (b, start, count) => (count <= JS_MAX_BITS ? ts.setRange(b, start, count) : n.setRange(b, start, count)),
    clearRange: (b, start, count) =>
      count <= JS_MAX_BITS ? ts.clearRange(b, start, count) : n.clearRange(b, start, count),
    testBit: ts.testBit,
    allSet: (b, start, count) => (count <= JS_MAX_BITS ? ts.allSet(b, start, count) : n.allSet(b, start, count)),
    anySet: (b, start, count) => (count <= JS_MAX_BITS ? ts.anySet(b, start, count) : n.anySet(b, start, count)),
    popcount: (b, start, count) => (count <= JS_MAX_BITS ? ts.popcount(b, start, count) : n.popcount(b, start, count)),
    findNextSet: (b, from, limit) =>
      limit - from <= JS_MAX_BITS ? ts.findNextSet(b, from, limit) : n.findNextSet(b, from, limit),
    findNextClear: (b, from, limit) =>
      limit - from <= JS_MAX_BITS ? ts.findNextClear(b, from, limit) : n.findNextClear(b, from, limit),
  } satisfies NativeRoutines);
}

const loaded = loadAddon();

/** The addon if it loaded, whatever LUNRIG_NO_NATIVE says (for comparisons). */
export const nativeAddon: NativeRoutines | undefined = loaded.addon && fromAddon(loaded.addon);

/** Why the addon did not load, for diagnostics. */
export const nativeLoadError: Error | undefined = loaded.error;

/** The implementation to use: the addon (short bitmap ranges in JS), else the fallback. */
export const native: NativeRoutines =
  process.env['LUNRIG_NO_NATIVE'] === '1' || nativeAddon === undefined ? typescriptRoutines : preferJsWhenSmall(nativeAddon);
