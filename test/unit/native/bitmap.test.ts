/**
 * Bitmap routines: the addon and the TypeScript fallback against each other
 * and against a bit-by-bit reference, on random bitmaps (random, sparse,
 * dense, runs), random unaligned ranges and views with a non-zero byteOffset.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { native, nativeAddon, nativeLoadError, typescriptRoutines } from '../../../src/native/index.js';
import type { BitmapRoutines } from '../../../src/native/types.js';

const SEED = Number(process.env['LUNRIG_FC_SEED'] ?? 20240611);
const NUM_RUNS = Number(process.env['LUNRIG_FC_RUNS'] ?? 400);
console.log(`native bitmap properties: seed=${SEED} numRuns=${NUM_RUNS} (set LUNRIG_FC_SEED / LUNRIG_FC_RUNS to change)`);
const params = { seed: SEED, numRuns: NUM_RUNS };
// Arrays below say size: 'max': fast-check's default size caps them at ~10 items.

const impls: [string, BitmapRoutines][] = [['typescript', typescriptRoutines]];
if (nativeAddon) impls.push(['native', nativeAddon]);

/** The obvious, slow definitions. */
const reference = {
  get: (b: Uint8Array, i: number): boolean => ((b[i >> 3]! >> (i & 7)) & 1) === 1,
  put(b: Uint8Array, i: number, on: boolean): void {
    b[i >> 3] = on ? b[i >> 3]! | (1 << (i & 7)) : b[i >> 3]! & ~(1 << (i & 7));
  },
  find(b: Uint8Array, from: number, limit: number, want: boolean): number {
    for (let i = from; i < limit; i++) if (reference.get(b, i) === want) return i;
    return -1;
  },
  popcount(b: Uint8Array, start: number, count: number): number {
    let n = 0;
    for (let i = start; i < start + count; i++) if (reference.get(b, i)) n++;
    return n;
  },
};

// --- Placing bitmaps in memory ----------------------------------------------

const SENTINEL = 0xa5;
const GUARD = 9;

/** A copy of `bytes` at byteOffset `offset` of a larger buffer, sentinels around it. */
function place(bytes: Uint8Array, offset: number): { view: Uint8Array; storage: Uint8Array } {
  const storage = new Uint8Array(offset + bytes.length + GUARD).fill(SENTINEL);
  const view = storage.subarray(offset, offset + bytes.length);
  view.set(bytes);
  return { view, storage };
}

function expectGuardsIntact(storage: Uint8Array, view: Uint8Array): void {
  const before = storage.subarray(0, view.byteOffset);
  const after = storage.subarray(view.byteOffset + view.length);
  expect(before.every((v) => v === SENTINEL) && after.every((v) => v === SENTINEL)).toBe(true);
}

// --- Arbitraries --------------------------------------------------------------

const bitsToBytes = (bits: boolean[]): Uint8Array => {
  const out = new Uint8Array(Math.ceil(bits.length / 8));
  bits.forEach((on, i) => reference.put(out, i, on));
  return out;
};

/** Bitmaps with long runs as well as noise, so word loops and their exits are hit. */
const bytesArb: fc.Arbitrary<Uint8Array> = fc.oneof(
  fc.uint8Array({ maxLength: 160, size: 'max' }),
  fc
    .tuple(fc.integer({ min: 0, max: 400 }), fc.array(fc.nat(), { maxLength: 4, size: 'max' }), fc.boolean())
    .map(([len, positions, dense]) => {
      const b = new Uint8Array(len).fill(dense ? 0xff : 0);
      for (const p of positions) if (len > 0) reference.put(b, p % (len * 8), !dense);
      return b;
    }),
  fc
    .array(fc.record({ on: fc.boolean(), length: fc.integer({ min: 1, max: 700 }) }), { maxLength: 8, size: 'max' })
    .map((runs) => bitsToBytes(runs.flatMap(({ on, length }) => Array<boolean>(length).fill(on)))),
);

type Range = { start: number; count: number };

/** Unaligned ranges, with the edge cases weighted in. */
function rangeArb(bits: number): fc.Arbitrary<Range> {
  const anyIndex = fc.integer({ min: 0, max: bits });
  const options: fc.Arbitrary<Range>[] = [
    fc.tuple(anyIndex, anyIndex).map(([a, b]) => ({ start: Math.min(a, b), count: Math.abs(a - b) })),
    fc.constant({ start: 0, count: bits }),
    anyIndex.map((start) => ({ start, count: 0 })),
    anyIndex.map((start) => ({ start, count: bits - start })),
  ];
  if (bits > 0) options.push(fc.integer({ min: 0, max: bits - 1 }).map((start) => ({ start, count: 1 })));
  return fc.oneof(...options);
}

const caseArb = fc
  .tuple(bytesArb, fc.integer({ min: 0, max: 7 }))
  .chain(([bytes, offset]) => rangeArb(bytes.length * 8).map((range) => ({ bytes, offset, ...range })));

// --- Tests ----------------------------------------------------------------------

describe('native addon', () => {
  it('loads (and is the chosen implementation unless LUNRIG_NO_NATIVE=1)', () => {
    expect(nativeLoadError?.message).toBeUndefined();
    expect(nativeAddon?.implementation).toBe('native');
    expect(native.implementation).toBe(process.env['LUNRIG_NO_NATIVE'] === '1' ? 'typescript' : 'native');
  });
});

describe.each(impls)('bitmap routines (%s) match the bit-by-bit reference', (_name, impl) => {
  it('query routines on random ranges', () => {
    fc.assert(
      fc.property(caseArb, ({ bytes, offset, start, count }) => {
        const { view } = place(bytes, offset);
        const end = start + count;
        expect(impl.popcount(view, start, count)).toBe(reference.popcount(bytes, start, count));
        expect(impl.allSet(view, start, count)).toBe(reference.find(bytes, start, end, false) < 0);
        expect(impl.anySet(view, start, count)).toBe(reference.find(bytes, start, end, true) >= 0);
        expect(impl.findNextSet(view, start, end)).toBe(reference.find(bytes, start, end, true));
        expect(impl.findNextClear(view, start, end)).toBe(reference.find(bytes, start, end, false));
        if (count > 0) expect(impl.testBit(view, start)).toBe(reference.get(bytes, start));
      }),
      params,
    );
  });

  it('setRange and clearRange touch exactly the range', () => {
    fc.assert(
      fc.property(caseArb, fc.boolean(), ({ bytes, offset, start, count }, set) => {
        const expected = bytes.slice();
        for (let i = start; i < start + count; i++) reference.put(expected, i, set);
        const { view, storage } = place(bytes, offset);
        if (set) impl.setRange(view, start, count);
        else impl.clearRange(view, start, count);
        expect(view).toEqual(expected);
        expectGuardsIntact(storage, view);
      }),
      params,
    );
  });

  it('or and andNot merge over the common length', () => {
    const merge = fc.tuple(bytesArb, bytesArb, fc.integer({ min: 0, max: 7 }), fc.integer({ min: 0, max: 7 }));
    fc.assert(
      fc.property(merge, fc.boolean(), ([a, b, offA, offB], clear) => {
        const expected = a.slice();
        for (let i = 0; i < Math.min(a.length, b.length) * 8; i++) {
          if (reference.get(b, i)) reference.put(expected, i, !clear);
        }
        const dst = place(a, offA);
        const src = place(b, offB);
        if (clear) impl.andNot(dst.view, src.view);
        else impl.or(dst.view, src.view);
        expect(dst.view).toEqual(expected);
        expect(src.view).toEqual(b);
        expectGuardsIntact(dst.storage, dst.view);
      }),
      params,
    );
  });

  it('or and andNot on overlapping views act as if src were copied first', () => {
    const overlap = fc.tuple(fc.uint8Array({ minLength: 1, maxLength: 200, size: 'max' }), fc.nat(199), fc.nat(199), fc.nat(200));
    fc.assert(
      fc.property(overlap, fc.boolean(), ([bytes, d, s, n], clear) => {
        const [dStart, sStart] = [d % bytes.length, s % bytes.length];
        const len = Math.min(n, bytes.length - dStart, bytes.length - sStart);
        const expected = bytes.slice();
        const srcCopy = bytes.slice(sStart, sStart + len);
        for (let i = 0; i < len; i++) {
          expected[dStart + i] = clear ? expected[dStart + i]! & ~srcCopy[i]! : expected[dStart + i]! | srcCopy[i]!;
        }
        const buf = bytes.slice();
        const op = clear ? impl.andNot : impl.or;
        op(buf.subarray(dStart, dStart + len), buf.subarray(sStart, sStart + len));
        expect(buf).toEqual(expected);
      }),
      params,
    );
  });

  it('never looks past either end of a range (exhaustive edge sweep)', () => {
    // Bits outside the range are the opposite of the bits inside, so reading one
    // byte or word too far, or masking an edge wrongly, changes an answer.
    // Plain comparisons, one expect at the end: 20k cases would be slow otherwise.
    const failures: unknown[] = [];
    for (let start = 0; start < 16; start++) {
      for (let count = 0; count <= 640; count++) {
        const end = start + count;
        for (const inside of [false, true]) {
          const pattern = new Uint8Array(Math.ceil(end / 8) + 2).fill(inside ? 0 : 0xff);
          for (let i = start; i < end; i++) reference.put(pattern, i, inside);
          const { view } = place(pattern, end & 7);
          const got = [
            impl.findNextSet(view, start, end),
            impl.findNextClear(view, start, end),
            impl.popcount(view, start, count),
            impl.anySet(view, start, count),
            impl.allSet(view, start, count),
          ];
          const first = count > 0 ? start : -1;
          const want = [inside ? first : -1, inside ? -1 : first, inside ? count : 0, inside && count > 0, inside || count === 0];
          if (count > 1) {
            // One odd bit out, at the far end of the range.
            reference.put(view, end - 1, !inside);
            got.push(inside ? impl.findNextClear(view, start + 1, end) : impl.findNextSet(view, start + 1, end));
            want.push(end - 1);
          }
          if (got.some((g, k) => g !== want[k])) failures.push({ start, count, inside, got, want });
        }
      }
    }
    expect(failures.slice(0, 5)).toEqual([]);
  });

  it('findNext* treats from >= limit as an empty range', () => {
    const b = new Uint8Array(4).fill(0x0f);
    expect(impl.findNextSet(b, 40, 32)).toBe(-1);
    expect(impl.findNextClear(b, 1e9, 32)).toBe(-1);
    expect(impl.findNextSet(b, 3, 3)).toBe(-1);
    expect(impl.findNextClear(b, 0, 0)).toBe(-1);
    expect(impl.findNextClear(b, 0, 32)).toBe(4);
  });

  it('handles bit indexes past 2^32 (a 512 MiB bitmap)', () => {
    const bitmap = new Uint8Array(2 ** 29 + 256); // zero pages: untouched memory costs nothing
    const bits = bitmap.length * 8;
    const at = 2 ** 32 + 13;
    impl.setRange(bitmap, at, 70);
    expect(impl.testBit(bitmap, at)).toBe(true);
    expect(impl.testBit(bitmap, at - 1)).toBe(false);
    expect(impl.findNextSet(bitmap, 2 ** 32 - 100, bits)).toBe(at);
    expect(impl.findNextClear(bitmap, at, bits)).toBe(at + 70);
    expect(impl.popcount(bitmap, 2 ** 32, 1000)).toBe(70);
    expect(impl.allSet(bitmap, at, 70)).toBe(true);
    impl.clearRange(bitmap, at + 1, 68);
    expect(impl.popcount(bitmap, at - 5, 100)).toBe(2);
    expect(impl.findNextSet(bitmap, at + 1, bits)).toBe(at + 69);
  });
});

describe.runIf(nativeAddon)('native and TypeScript agree', () => {
  const addon = nativeAddon!;
  const ts = typescriptRoutines;

  it('on every routine over random cases (no reference in the loop, so larger bitmaps)', () => {
    const big = fc.tuple(fc.uint8Array({ minLength: 0, maxLength: 4096, size: 'max' }), fc.integer({ min: 0, max: 7 }));
    const bigCase = big.chain(([bytes, offset]) =>
      fc.tuple(rangeArb(bytes.length * 8), fc.boolean()).map(([range, sparse]) => {
        // Sparse variant: keep only every 97th byte, so long clear runs appear.
        const b = sparse ? bytes.map((v, i) => (i % 97 === 0 ? v : 0)) : bytes;
        return { bytes: b, offset, ...range };
      }),
    );
    fc.assert(
      fc.property(bigCase, ({ bytes, offset, start, count }) => {
        const [a, t] = [place(bytes, offset).view, place(bytes, offset).view];
        const end = start + count;
        expect(addon.popcount(a, start, count)).toBe(ts.popcount(t, start, count));
        expect(addon.findNextSet(a, start, end)).toBe(ts.findNextSet(t, start, end));
        expect(addon.findNextClear(a, start, end)).toBe(ts.findNextClear(t, start, end));
        expect(addon.allSet(a, start, count)).toBe(ts.allSet(t, start, count));
        expect(addon.anySet(a, start, count)).toBe(ts.anySet(t, start, count));
        addon.setRange(a, start, count >> 1);
        ts.setRange(t, start, count >> 1);
        addon.clearRange(a, start + (count >> 1), count - (count >> 1));
        ts.clearRange(t, start + (count >> 1), count - (count >> 1));
        expect(a).toEqual(t);
      }),
      { ...params, numRuns: Math.ceil(NUM_RUNS / 2) },
    );
  });
});

describe('the chosen implementation (addon, with short ranges in JS)', () => {
  it('matches the reference on either side of the JS/addon cut-over', () => {
    const sizes = fc.tuple(fc.uint8Array({ minLength: 0, maxLength: 200, size: 'max' }), fc.integer({ min: 0, max: 7 }));
    const cases = sizes.chain(([bytes, offset]) =>
      fc.tuple(rangeArb(bytes.length * 8), fc.boolean()).map(([range, set]) => ({ bytes, offset, set, ...range })),
    );
    fc.assert(
      fc.property(cases, ({ bytes, offset, set, start, count }) => {
        const { view } = place(bytes, offset);
        const end = start + count;
        expect(native.popcount(view, start, count)).toBe(reference.popcount(bytes, start, count));
        expect(native.findNextSet(view, start, end)).toBe(reference.find(bytes, start, end, true));
        expect(native.findNextClear(view, start, end)).toBe(reference.find(bytes, start, end, false));
        expect(native.allSet(view, start, count)).toBe(reference.find(bytes, start, end, false) < 0);
        expect(native.anySet(view, start, count)).toBe(reference.find(bytes, start, end, true) >= 0);
        if (count > 0) expect(native.testBit(view, start)).toBe(reference.get(bytes, start));
        const expected = bytes.slice();
        for (let i = start; i < end; i++) reference.put(expected, i, set);
        (set ? native.setRange : native.clearRange)(view, start, count);
        expect(view).toEqual(expected);
      }),
      params,
    );
  });
});

describe.each(impls)('bitmap argument checks (%s)', (_name, impl) => {
  const b = new Uint8Array(8); // 64 bits
  const ranged = ['setRange', 'clearRange', 'allSet', 'anySet', 'popcount'] as const;

  it.each(ranged)('%s throws RangeError for a range past the end or a bad index', (name) => {
    const fn = impl[name] as (b: Uint8Array, s: number, c: number) => unknown;
    for (const [start, count] of [
      [0, 65],
      [64, 1],
      [63, 2],
      [-1, 1],
      [1.5, 1],
      [0, NaN],
      [0, Infinity],
      [2 ** 53, 0],
    ] as const) {
      expect(() => fn(b, start, count), `${name}(${start}, ${count})`).toThrow(RangeError);
    }
    expect(() => fn(b, 64, 0)).not.toThrow();
    expect(() => fn(b, '1' as unknown as number, 1)).toThrow(TypeError);
    expect(() => fn([0, 0] as unknown as Uint8Array, 0, 1)).toThrow(TypeError);
    expect(() => fn(new Uint16Array(4) as unknown as Uint8Array, 0, 1)).toThrow(TypeError);
  });

  it('testBit and findNext* check their indexes', () => {
    expect(() => impl.testBit(b, 64)).toThrow(RangeError);
    expect(() => impl.testBit(new Uint8Array(0), 0)).toThrow(RangeError);
    expect(() => impl.testBit(b, -1)).toThrow(RangeError);
    expect(() => impl.findNextSet(b, 0, 65)).toThrow(RangeError);
    expect(() => impl.findNextClear(b, -1, 10)).toThrow(RangeError);
    expect(() => impl.findNextSet(b, 0, undefined as unknown as number)).toThrow(TypeError);
  });

  it('or and andNot want Uint8Arrays', () => {
    expect(() => impl.or(b, 'x' as unknown as Uint8Array)).toThrow(TypeError);
    expect(() => impl.andNot(null as unknown as Uint8Array, b)).toThrow(TypeError);
  });

  it('accepts a Buffer with a non-zero byteOffset', () => {
    const buf = Buffer.alloc(32).subarray(5, 21);
    impl.setRange(buf, 3, 100);
    expect(impl.popcount(buf, 0, 128)).toBe(100);
  });
});
