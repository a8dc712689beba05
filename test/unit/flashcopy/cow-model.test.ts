/**
 * Model test of the copy-on-write semantics (spec §2.3, FC-03..FC-08, FC-11):
 * random concurrent source and target reads, writes, trims and write-zeroes,
 * with background copy running alongside, and at every point
 *   target == source@T0 + target writes,   source == source writes.
 * Seeded; set LUNRIG_FC_SEED to replay a failure.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { refreshedBitmaps } from '../../../src/copy/flashcopy/incremental.js';
import type { Volume } from '../../../src/volume/volume.js';
import { seededRandom } from '../../helpers/seeded-random.js';
import { KiB, MiB, closeRigs, memoryPair, readBuf, rig } from './harness.js';

afterEach(closeRigs);

function fcSeed(label: string, fallback: number): number {
  const env = process.env.LUNRIG_FC_SEED;
  const seed = env ? Number.parseInt(env, 10) : fallback;
  console.log(`[${label}] seed=${seed} (set LUNRIG_FC_SEED to replay)`);
  return seed;
}

type Op =
  | { vol: 'source' | 'target'; kind: 'write'; offset: number; data: Buffer }
  | { vol: 'source' | 'target'; kind: 'zero' | 'trim'; offset: number; length: number }
  | { vol: 'source' | 'target'; kind: 'read'; offset: number; length: number }
  | { vol: 'copy'; kind: 'batch'; grains: number };

interface Model {
  source: Buffer;
  /** What the target must read: T0 image plus target writes. */
  target: Buffer;
}

interface Ends {
  source: Volume;
  target: Volume;
  /** Bytes the relationship covers (target bytes past it are the target's own). */
  size: number;
  background(grains: number): Promise<void>;
}

/** Random ops for one concurrent round: ops on one volume never overlap each other (so the model stays exact). */
function round(rand: () => number, sizes: { source: number; target: number }, n: number): Op[] {
  const taken = { source: [] as Array<[number, number]>, target: [] as Array<[number, number]> };
  const ops: Op[] = [];
  for (let i = 0; i < n; i++) {
    const r = rand();
    if (r < 0.1) {
      ops.push({ vol: 'copy', kind: 'batch', grains: 1 + Math.floor(rand() * 8) });
      continue;
    }
    const vol = rand() < 0.5 ? 'source' : 'target';
    const size = sizes[vol];
    const length = 1 + Math.floor(rand() ** 3 * 96 * KiB);
    const offset = Math.floor(rand() * (size - length));
    if (taken[vol].some(([a, b]) => offset < b && a < offset + length)) continue;
    taken[vol].push([offset, offset + length]);
    const k = rand();
    if (k < 0.4) ops.push({ vol, kind: 'read', offset, length });
    else if (k < 0.85) ops.push({ vol, kind: 'write', offset, data: Buffer.alloc(length, 1 + Math.floor(rand() * 255)) });
    else ops.push({ vol, kind: rand() < 0.5 ? 'zero' : 'trim', offset, length });
  }
  return ops;
}

async function run(op: Op, ends: Ends, model: Model): Promise<void> {
  if (op.vol === 'copy') return ends.background(op.grains);
  const v = ends[op.vol];
  const m = model[op.vol];
  switch (op.kind) {
    case 'read': {
      const got = await readBuf(v, op.offset, op.length);
      const want = m.subarray(op.offset, op.offset + op.length);
      if (!got.equals(want)) {
        const at = got.findIndex((b, i) => b !== want[i]);
        throw new Error(`${op.vol} read [${op.offset}, +${op.length}) differs at +${at}: got ${got[at]}, want ${want[at]}`);
      }
      return;
    }
    case 'write':
      await v.write(op.offset, op.data);
      op.data.copy(m, op.offset);
      return;
    case 'zero':
    case 'trim':
      await (op.kind === 'zero' ? v.writeZeroes(op.offset, op.length) : v.trim(op.offset, op.length));
      m.fill(0, op.offset, op.offset + op.length);
      return;
  }
}

async function checkAll(ends: Ends, model: Model, where: string): Promise<void> {
  for (const vol of ['source', 'target'] as const) {
    const got = await readBuf(ends[vol], 0, model[vol].length);
    if (!got.equals(model[vol])) throw new Error(`${where}: ${vol} differs from the model at byte ${got.findIndex((b, i) => b !== model[vol][i])}`);
  }
}

async function initial(v: Volume, size: number, rand: () => number): Promise<Buffer> {
  const content = Buffer.alloc(size);
  for (let o = 0; o < size; o += 16 * KiB) {
    if (rand() < 0.3) continue; // leave holes
    const n = Math.min(16 * KiB, size - o);
    content.fill(1 + Math.floor(rand() * 255), o, o + n);
    content[o] = 0xee; // not uniform: a whole-block zero check cannot be fooled
  }
  await v.write(0, content);
  return content;
}

describe('copy-on-write model (property test)', () => {
  for (const grainSize of [4 * KiB, 16 * KiB, 64 * KiB]) {
    it(`FC-03..FC-08: target == source@T0 + target writes under random concurrent I/O and background copy (${grainSize / KiB}K grains, memory volumes)`, async () => {
      const seed = fcSeed(`cow-model-${grainSize}`, 0xfc00 + grainSize);
      const rand = seededRandom(seed);
      const size = MiB + 12 * KiB; // a short last grain
      const targetSize = size + 40 * KiB; // and a larger target
      const pair = memoryPair({ size, targetSize, grainSize, jitter: seededRandom(seed + 1) });
      const s0 = await initial(pair.rawSource, size, rand);
      await pair.rawTarget.write(0, Buffer.alloc(targetSize, 0x51)); // the target's old content Q
      const model: Model = { source: Buffer.from(s0), target: Buffer.concat([s0, Buffer.alloc(targetSize - size, 0x51)]) };
      let cursor = 0;
      const ends: Ends = {
        source: pair.source,
        target: pair.target,
        size,
        background: async (grains) => {
          cursor = (await pair.engine.backgroundBatch(pair.copier, cursor, grains)).next;
        },
      };
      for (let i = 0; i < 150; i++) {
        await Promise.all(round(rand, { source: size, target: targetSize }, 1 + Math.floor(rand() * 10)).map((op) => run(op, ends, model)));
        if (i % 25 === 0) await checkAll(ends, model, `round ${i}`);
      }
      await checkAll(ends, model, 'end');
      expect(pair.engine.locks.size).toBe(0);
    });
  }

  it('incremental: after a refresh the target equals the source at the refresh, under the same random I/O (memory volumes)', async () => {
    const seed = fcSeed('cow-model-incremental', 0xfc1c);
    const rand = seededRandom(seed);
    const size = 512 * KiB;
    const pair = memoryPair({ size, grainSize: 16 * KiB, incremental: true, jitter: seededRandom(seed + 1) });
    const s0 = await initial(pair.rawSource, size, rand);
    const model: Model = { source: Buffer.from(s0), target: Buffer.from(s0) };
    let cursor = 0;
    const ends: Ends = {
      source: pair.source,
      target: pair.target,
      size,
      background: async (grains) => {
        cursor = (await pair.engine.backgroundBatch(pair.copier, cursor, grains)).next;
      },
    };
    for (let i = 0; i < 120; i++) {
      await Promise.all(round(rand, { source: size, target: size }, 1 + Math.floor(rand() * 8)).map((op) => run(op, ends, model)));
      if (i % 30 === 29) {
        // A refresh at a quiet moment: new T0 = the source now.
        await pair.engine.idle();
        await pair.bitmaps.store.replace(refreshedBitmaps(pair.bitmaps.store));
        model.target = Buffer.from(model.source);
        await checkAll(ends, model, `after refresh ${i}`);
      }
    }
    await checkAll(ends, model, 'end');
  });

  for (const copyEngine of ['bulk', 'volume'] as const) {
    it(`FC-26 groundwork: the same invariant on pool LUNs with the journal and ${copyEngine} background copy running freely`, async () => {
      const seed = fcSeed(`cow-model-pool-${copyEngine}`, 0xfc26);
      const rand = seededRandom(seed);
      const size = 4 * MiB;
      const r = await rig({
        luns: [
          { name: 's', size },
          { name: 't', size: size + 64 * KiB },
        ],
        manager: { copyEngine, maxBatchBytes: 256 * KiB },
      });
      const s0 = await initial(r.pool.volume('s'), size, rand);
      await r.pool.volume('t').write(0, Buffer.alloc(size + 64 * KiB, 0x51));
      await r.fc.establish('s', 't', { grainSize: '16K', rate: '2M' });
      const model: Model = { source: Buffer.from(s0), target: Buffer.concat([s0, Buffer.alloc(64 * KiB, 0x51)]) };
      const ends: Ends = { source: r.pool.volume('s'), target: r.pool.volume('t'), size, background: async () => undefined };
      const copied = () => r.fc.list()[0]?.progress.copiedGrains ?? Infinity;
      let rounds = 0;
      // Let virtual time run so the rate-limited copier keeps going while the host I/O races it.
      while (copied() < 128 && rounds < 400) {
        await Promise.all(round(rand, { source: size, target: size + 64 * KiB }, 1 + Math.floor(rand() * 8)).map((op) => run(op, ends, model)));
        await r.clock.advance(50);
        rounds++;
      }
      await checkAll(ends, model, `after ${rounds} rounds`);
      const completed = new Promise((resolve) => r.fc.once('completed', resolve));
      await r.fc.setRate('s', null);
      await completed;
      expect(r.fc.query('t').role).toBe('none');
      await checkAll(ends, model, 'after completion');
    });
  }
});
