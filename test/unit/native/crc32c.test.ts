/**
 * CRC32C: the addon (each of its paths) and the TypeScript fallback against
 * published check values, a bit-at-a-time reference and each other, including
 * chaining and unaligned views.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { nativeAddon, typescriptRoutines } from '../../../src/native/index.js';
import { ADDON_RELATIVE_PATH, findPackageRoot, loadAddon } from '../../../src/native/load-addon.js';

const SEED = Number(process.env['LUNRIG_FC_SEED'] ?? 20240611);
const NUM_RUNS = Number(process.env['LUNRIG_FC_RUNS'] ?? 400);
console.log(`native crc32c properties: seed=${SEED} numRuns=${NUM_RUNS} (set LUNRIG_FC_SEED / LUNRIG_FC_RUNS to change)`);
const params = { seed: SEED, numRuns: NUM_RUNS };
// Arrays below say size: 'max': fast-check's default size caps them at ~10 items.

type Crc = (data: Uint8Array, previous?: number) => number;
const raw = loadAddon().addon;
const impls: [string, Crc][] = [['typescript', typescriptRoutines.crc32c]];
if (nativeAddon && raw) {
  impls.push(
    [`native (${raw.crc32cImplementation})`, nativeAddon.crc32c],
    ['native sse4.2 path', raw.crc32cSse42],
    ['native slicing-by-8', raw.crc32cSoftware],
  );
}
/** The vpclmulqdq path's shape (native/crc32c.cc): it takes buffers from 512 bytes, in rounds of 128 + 3 * 48. */
const FUSION_MIN = 512;
const FUSION_ROUND = 128 + 3 * 48;

/** One bit at a time, straight from the definition. */
function referenceCrc(data: Uint8Array, previous = 0): number {
  let crc = ~previous;
  for (const byte of data) {
    crc ^= byte;
    for (let k = 0; k < 8; k++) crc = crc & 1 ? (crc >>> 1) ^ 0x82f63b78 : crc >>> 1;
  }
  return ~crc >>> 0;
}

/** Deterministic filler, so large inputs cost no shrinking machinery. */
function pseudoRandomBytes(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length);
  let x = seed | 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

/** `bytes` copied to byteOffset `offset` of a larger buffer. */
function at(offset: number, bytes: Uint8Array): Uint8Array {
  const storage = new Uint8Array(offset + bytes.length + 3);
  storage.set(bytes, offset);
  return storage.subarray(offset, offset + bytes.length);
}

const ascii = (s: string): Uint8Array => new TextEncoder().encode(s);

describe.each(impls)('crc32c (%s)', (_name, crc32c) => {
  it('gives the published check values', () => {
    expect(crc32c(ascii('123456789'))).toBe(0xe3069283);
    expect(crc32c(new Uint8Array(0))).toBe(0);
    // RFC 3720 (iSCSI) B.4 vectors.
    expect(crc32c(new Uint8Array(32))).toBe(0x8a9136aa);
    expect(crc32c(new Uint8Array(32).fill(0xff))).toBe(0x62a8ab43);
    expect(crc32c(Uint8Array.from({ length: 32 }, (_, i) => i))).toBe(0x46dd794e);
    expect(crc32c(Uint8Array.from({ length: 32 }, (_, i) => 31 - i))).toBe(0x113fdb5c);
  });

  it('matches the bit-at-a-time reference on random unaligned input', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 2000, size: 'max' }), fc.integer({ min: 0, max: 15 }), (bytes, offset) => {
        expect(crc32c(at(offset, bytes))).toBe(referenceCrc(bytes));
      }),
      params,
    );
  });

  it('chains: crc(b, crc(a)) is the CRC of a then b', () => {
    const input = fc.tuple(fc.integer({ min: 0, max: 40_000 }), fc.integer(), fc.nat(), fc.nat());
    fc.assert(
      fc.property(input, ([length, seed, cut1, cut2]) => {
        const data = pseudoRandomBytes(length, seed);
        const [i, j] = [cut1 % (length + 1), cut2 % (length + 1)].sort((a, b) => a - b) as [number, number];
        const whole = crc32c(data);
        expect(crc32c(data.subarray(j), crc32c(data.subarray(i, j), crc32c(data.subarray(0, i))))).toBe(whole);
      }),
      { ...params, numRuns: Math.ceil(NUM_RUNS / 4) },
    );
  });

  it('matches the reference for any previous value', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300, size: 'max' }), fc.nat({ max: 0xffffffff }), (bytes, previous) => {
        expect(crc32c(bytes, previous)).toBe(referenceCrc(bytes, previous));
      }),
      params,
    );
  });

  it('matches the reference for any previous value on buffers long enough to fold', () => {
    const length = fc.integer({ min: FUSION_MIN - 8, max: 4000 });
    const input = fc.tuple(length, fc.integer(), fc.integer({ min: 0, max: 31 }), fc.nat({ max: 0xffffffff }));
    fc.assert(
      fc.property(input, ([length, seed, offset, previous]) => {
        const bytes = pseudoRandomBytes(length, seed);
        expect(crc32c(at(offset, bytes), previous)).toBe(referenceCrc(bytes, previous));
      }),
      { ...params, numRuns: Math.ceil(NUM_RUNS / 4) },
    );
  });

  it('checks its arguments', () => {
    const data = new Uint8Array(4);
    for (const bad of [-1, 2 ** 32, 1.5, NaN]) expect(() => crc32c(data, bad)).toThrow(RangeError);
    expect(() => crc32c(data, '1' as unknown as number)).toThrow(TypeError);
    expect(() => crc32c('abc' as unknown as Uint8Array)).toThrow(TypeError);
    expect(() => crc32c(new DataView(new ArrayBuffer(4)) as unknown as Uint8Array)).toThrow(TypeError);
    expect(crc32c(data, 0xffffffff)).toBe(referenceCrc(data, 0xffffffff));
  });
});

describe.runIf(nativeAddon)('crc32c: native and TypeScript agree', () => {
  const ts = typescriptRoutines.crc32c;
  const natives: [string, Crc][] = [
    ['crc32c', nativeAddon!.crc32c],
    ['crc32cSse42', raw!.crc32cSse42],
  ];

  it('dispatches to the fastest path this CPU has', () => {
    const flags = existsSync('/proc/cpuinfo') ? new Set(readFileSync('/proc/cpuinfo', 'utf8').split(/\s+/)) : new Set();
    const has = (...names: string[]): boolean => names.every((name) => flags.has(name));
    if (process.arch !== 'x64' || flags.size === 0) return;
    const want = has('vpclmulqdq', 'avx2', 'sse4_2', 'pclmulqdq')
      ? 'vpclmulqdq+sse4.2'
      : has('sse4_2', 'pclmulqdq')
        ? 'sse4.2+pclmul'
        : 'slicing-by-8';
    expect(raw!.crc32cImplementation).toBe(want);
  });

  it('around every block size of the hardware paths, at every alignment', () => {
    const lengths = new Set<number>();
    for (let n = 0; n <= 260; n++) lengths.add(n);
    // SSE4.2: blocks of 3 x {4096, 512, 64} bytes, then words, then bytes.
    for (const block of [192, 1536, 12288]) {
      for (const k of [1, 2, 3]) for (let d = -9; d <= 9; d++) lengths.add(block * k + d);
    }
    // VPCLMULQDQ: every length from just below its threshold through four
    // rounds (so every split of a remainder between its three crc32q streams
    // and its tail), then +-30 bytes around whole rounds further out.
    for (let n = FUSION_MIN - 32; n <= FUSION_MIN + 4 * FUSION_ROUND; n++) lengths.add(n);
    for (const k of [8, 15, 16, 31, 64]) {
      for (let d = -30; d <= 30; d++) lengths.add(k * FUSION_ROUND + d);
    }
    for (const size of [4096, 65536]) for (let d = -25; d <= 25; d++) lengths.add(size + d);
    lengths.add((1 << 20) + 13);
    const data = pseudoRandomBytes((1 << 20) + 64, 7);
    const failures: unknown[] = [];
    for (const length of lengths) {
      // 32-byte vector loads: every offset within one, and so every line split.
      for (let offset = 0; offset < 32; offset++) {
        const view = data.subarray(offset, offset + length);
        const want = ts(view);
        for (const [name, crc32c] of natives) {
          const got = crc32c(view);
          if (got !== want) failures.push({ name, length, offset, got, want });
        }
      }
    }
    expect(failures.slice(0, 5)).toEqual([]);
  });

  it('on random large input', () => {
    const input = fc.tuple(fc.integer({ min: 0, max: 200_000 }), fc.integer(), fc.integer({ min: 0, max: 31 }));
    fc.assert(
      fc.property(input, ([length, seed, offset]) => {
        const view = at(offset, pseudoRandomBytes(length, seed));
        const want = ts(view);
        for (const [, crc32c] of natives) expect(crc32c(view)).toBe(want);
      }),
      { ...params, numRuns: Math.ceil(NUM_RUNS / 8) },
    );
  });

  it('loads and computes in worker threads (context-aware addon)', async () => {
    const path = join(findPackageRoot(process.cwd()) ?? process.cwd(), ADDON_RELATIVE_PATH);
    const source = `
      const { parentPort, workerData } = require('node:worker_threads');
      const addon = require(workerData);
      parentPort.postMessage(addon.crc32c(Buffer.from('123456789')));`;
    const runOne = (): Promise<unknown> =>
      new Promise((resolve, reject) => {
        const worker = new Worker(source, { eval: true, workerData: path });
        worker.once('message', resolve);
        worker.once('error', reject);
      });
    expect(await Promise.all([runOne(), runOne()])).toEqual([0xe3069283, 0xe3069283]);
  });
});
