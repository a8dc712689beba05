/**
 * Copy-on-write with grain copies inside the I/O workers (worker-grain-mover.ts,
 * OP_COPY): used when source and target are plain LUNs of one worker engine,
 * not otherwise; T0 kept on the target (holes as holes) under both
 * durabilities, with many concurrent first writes; the same results as the
 * copies through the Volumes. Needs dist/ (npm run build) for the workers.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { CowDurability } from '../../../src/copy/flashcopy/grain-committer.js';
import type { Relationship } from '../../../src/copy/flashcopy/relationship.js';
import type { FlashCopyManager } from '../../../src/copy/flashcopy/index.js';
import { seededRandom, testSeed } from '../../helpers/seeded-random.js';
import { BLOCK, KiB, MiB, closeRigs, patternBlock, readBuf, rig, uniform } from './harness.js';

afterEach(closeRigs);

const GRAIN = 64 * KiB;
const P = 1;
const Q = 2;

function copiesInWorkers(fc: FlashCopyManager, source: string): boolean | undefined {
  const rels = (fc as unknown as { rels: Map<string, Relationship> }).rels;
  const rel = [...rels.values()].find((r) => r.source === source);
  return rel?.attached?.engine.copiesInWorkers;
}

/** Source: pattern P in every even grain, odd grains left as holes. Target: pattern Q everywhere. */
async function prefill(r: Awaited<ReturnType<typeof rig>>, size: number): Promise<Buffer> {
  const s = r.pool.volume('s');
  const t = r.pool.volume('t');
  const t0 = Buffer.alloc(size);
  for (let g = 0; g < size / GRAIN; g += 2) {
    const data = Buffer.concat(Array.from({ length: GRAIN / BLOCK }, (_, i) => patternBlock(P, g * GRAIN + i * BLOCK)));
    await s.write(g * GRAIN, data);
    data.copy(t0, g * GRAIN);
  }
  for (let off = 0; off < size; off += MiB) await t.write(off, Buffer.concat(Array.from({ length: MiB / BLOCK }, (_, i) => patternBlock(Q, off + i * BLOCK))));
  await s.flush();
  await t.flush();
  return t0;
}

describe('FlashCopy copy-on-write inside the I/O workers', () => {
  it.each(['process', 'power'] as CowDurability[])("'%s': concurrent first writes keep T0 on the target, source holes stay holes", async (durability) => {
    const size = 8 * MiB;
    const r = await rig({ luns: [{ name: 's', size }, { name: 't', size }], engine: 'worker', manager: { cowDurability: durability } });
    const t0 = await prefill(r, size);
    await r.fc.establish('s', 't', { mode: 'nocopy', grainSize: '64K' });
    expect(copiesInWorkers(r.fc, 's')).toBe(true);
    const s = r.pool.volume('s');
    const t = r.pool.volume('t');
    const seed = testSeed(`fc worker copy ${durability}`, 0xfc01);
    const rnd = seededRandom(seed);
    const sourceNow = Buffer.from(t0);
    // 200 concurrent 4 KiB writes at random blocks (several per grain, some in hole grains), in 4 waves.
    for (let wave = 0; wave < 4; wave++) {
      const blocks = new Set<number>();
      while (blocks.size < 50) blocks.add(Math.floor(rnd() * (size / BLOCK)));
      await Promise.all(
        [...blocks].map((b) => {
          const data = uniform(0x40 + wave);
          data.copy(sourceNow, b * BLOCK);
          return s.write(b * BLOCK, data, { fua: rnd() < 0.1 });
        }),
      );
    }
    expect((await readBuf(s, 0, size)).equals(sourceNow), `source seed=${seed}`).toBe(true);
    expect((await readBuf(t, 0, size)).equals(t0), `target reads T0 seed=${seed}`).toBe(true);
    // After withdraw the target's own blocks of every copied grain hold T0 (holes for hole grains).
    const copied = r.fc.query('s').relationships[0]!.progress;
    expect(copied.copiedGrains).toBeGreaterThan(0);
    await r.fc.withdraw('s');
    const after = await readBuf(t, 0, size);
    const extents = await t.blockStatus(0, size);
    let copiedHoles = 0;
    for (let g = 0; g < size / GRAIN; g++) {
      const touched = !sourceNow.subarray(g * GRAIN, (g + 1) * GRAIN).equals(t0.subarray(g * GRAIN, (g + 1) * GRAIN));
      if (!touched) continue;
      expect(after.subarray(g * GRAIN, (g + 1) * GRAIN).equals(t0.subarray(g * GRAIN, (g + 1) * GRAIN)), `grain ${g}`).toBe(true);
      if (g % 2 === 1) {
        copiedHoles++;
        const e = extents.find((x) => x.offset <= g * GRAIN && g * GRAIN < x.offset + x.length);
        expect(e?.kind, `grain ${g} (a source hole) is a hole on the target`).not.toBe('data');
      }
    }
    expect(copiedHoles).toBeGreaterThan(0);
  });

  it('is not used with workerCopy: false, nor on the FsIoEngine; both give the same target as the worker copies', async () => {
    const size = 4 * MiB;
    const results: Buffer[] = [];
    for (const [engine, workerCopy, expected] of [
      ['worker', true, true],
      ['worker', false, false],
      ['fs', true, false],
    ] as const) {
      const r = await rig({ luns: [{ name: 's', size }, { name: 't', size }], engine, manager: { workerCopy } });
      const t0 = await prefill(r, size);
      await r.fc.establish('s', 't', { mode: 'nocopy', grainSize: '64K' });
      expect(copiesInWorkers(r.fc, 's'), `${engine} workerCopy=${workerCopy}`).toBe(expected);
      const s = r.pool.volume('s');
      await Promise.all(Array.from({ length: 32 }, (_, i) => s.write(i * 2 * GRAIN + GRAIN - BLOCK, uniform(9), { fua: i % 8 === 0 })));
      await r.fc.withdraw('s');
      const target = await readBuf(r.pool.volume('t'), 0, size);
      for (let i = 0; i < 32; i++) {
        const g = 2 * i; // each write lands in the last block of grain 2i
        expect(target.subarray(g * GRAIN, (g + 1) * GRAIN).equals(t0.subarray(g * GRAIN, (g + 1) * GRAIN))).toBe(true);
      }
      results.push(target);
    }
    expect(results[1]!.equals(results[0]!)).toBe(true);
    expect(results[2]!.equals(results[0]!)).toBe(true);
  });
});
