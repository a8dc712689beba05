/** FlashCopy data semantics (spec §2.3) through the pool's host-facing volumes, with copy paused where the statement says so. */
import { afterEach, describe, expect, it } from 'vitest';
import { BLOCK, GiB, KiB, MiB, closeRigs, drive, expectedPattern, fillPattern, nextEvent, patternBlock, readBuf, rig, spreadPattern, uniform, until } from './harness.js';

afterEach(closeRigs);

const P = 1; // source pattern
const Q = 2; // target's old pattern
const GRAIN = 64 * KiB;

describe('FlashCopy data semantics', () => {
  it('FC-01: right after establish (copy paused) every block of T reads as S, not as T\'s old data', async () => {
    const r = await rig({ luns: [{ name: 's', size: GiB }, { name: 't', size: GiB }] });
    const s = r.pool.volume('s');
    const t = r.pool.volume('t');
    const pOffsets = await spreadPattern(s, P, GiB, 256);
    const qOffsets = await spreadPattern(t, Q, GiB, 300);
    await r.fc.establish('s', 't', { rate: 0 });
    const pSet = new Set(pOffsets);
    for (const o of [...pOffsets, ...qOffsets, GiB - BLOCK]) {
      const want = pSet.has(o) ? patternBlock(P, o) : Buffer.alloc(BLOCK);
      expect((await readBuf(t, o, BLOCK)).equals(want), `T block at ${o}`).toBe(true);
    }
    // Reads spanning many grains, unaligned.
    const got = await readBuf(t, pOffsets[3]! - 1000, 3 * MiB);
    expect(got.subarray(1000, 1000 + BLOCK).equals(patternBlock(P, pOffsets[3]!))).toBe(true);
    expect(r.fc.query('t').relationships[0]!.progress.remainingGrains).toBe(GiB / GRAIN);
  });

  it('FC-03, FC-04: a source write to an uncopied track copies that whole track first, once; T keeps P', async () => {
    const size = 16 * MiB;
    const r = await rig({ luns: [{ name: 's', size }, { name: 't', size }] });
    const s = r.pool.volume('s');
    const t = r.pool.volume('t');
    await fillPattern(s, P, size);
    await fillPattern(t, Q, size);
    await r.fc.establish('s', 't', { rate: 0 });
    const total = size / GRAIN;
    const k = 37;
    const b = k * GRAIN + 5 * BLOCK;
    await s.write(b, uniform(0xd1));
    expect((await readBuf(s, b, BLOCK)).equals(uniform(0xd1))).toBe(true);
    expect((await readBuf(t, b, BLOCK)).equals(patternBlock(P, b))).toBe(true);
    // peek: T's physical track k holds P's track k.
    expect((await readBuf(r.pool.getLun('t'), k * GRAIN, GRAIN)).equals(expectedPattern(P, k * GRAIN, GRAIN))).toBe(true);
    expect(r.fc.query('s').remainingGrains).toBe(total - 1);
    // FC-04: another block of the same track: no second copy.
    await s.write(k * GRAIN + 9 * BLOCK, uniform(0xd2));
    expect(r.fc.query('s').remainingGrains).toBe(total - 1);
    expect((await readBuf(t, k * GRAIN, GRAIN)).equals(expectedPattern(P, k * GRAIN, GRAIN))).toBe(true);
    // Neighbouring tracks were not touched physically.
    expect((await readBuf(r.pool.getLun('t'), (k + 1) * GRAIN, GRAIN)).equals(expectedPattern(Q, (k + 1) * GRAIN, GRAIN))).toBe(true);
  });

  it('FC-05: once background copy has copied track k, a source write to k changes S only', async () => {
    const size = 4 * MiB;
    const r = await rig({ luns: [{ name: 's', size }, { name: 't', size }] });
    const s = r.pool.volume('s');
    await fillPattern(s, P, size);
    // One grain per second: the first batch (grain 0) goes at once, the next only when virtual time moves.
    const info = await r.fc.establish('s', 't', { rate: GRAIN });
    await until(() => r.fc.list()[0]!.progress.copiedGrains === 1, 'grain 0 copied');
    await s.write(100, uniform(0xd5, 512));
    expect(r.fc.list()[0]!.progress.copiedGrains).toBe(1);
    expect((await readBuf(r.pool.volume('t'), 0, GRAIN)).equals(expectedPattern(P, 0, GRAIN))).toBe(true);
    expect((await readBuf(s, 100, 512)).equals(uniform(0xd5, 512))).toBe(true);
    expect(info.progress.remainingGrains).toBe(size / GRAIN);
  });

  it('FC-06: during an active relationship, source reads always return the source\'s current data', async () => {
    const size = 4 * MiB;
    const r = await rig({ luns: [{ name: 's', size }, { name: 't', size }] });
    const s = r.pool.volume('s');
    await fillPattern(s, P, size);
    await r.fc.establish('s', 't', { mode: 'nocopy' });
    expect((await readBuf(s, 0, size)).equals(expectedPattern(P, 0, size))).toBe(true);
    await s.write(GRAIN - 10, uniform(3, 20));
    await s.trim(3 * GRAIN, GRAIN);
    await s.writeZeroes(5 * GRAIN + 7, 100);
    const want = expectedPattern(P, 0, size);
    want.fill(3, GRAIN - 10, GRAIN + 10);
    want.fill(0, 3 * GRAIN, 4 * GRAIN);
    want.fill(0, 5 * GRAIN + 7, 5 * GRAIN + 107);
    expect((await readBuf(s, 0, size)).equals(want)).toBe(true);
    expect((await readBuf(r.pool.volume('t'), 0, size)).equals(expectedPattern(P, 0, size))).toBe(true);
  });

  it('FC-07, FC-08: a target write to an uncopied track sticks: the rest of the track is P, S is unchanged, and neither background copy nor a later source write overwrites it', async () => {
    const size = 4 * MiB;
    const r = await rig({ luns: [{ name: 's', size }, { name: 't', size }] });
    const s = r.pool.volume('s');
    const t = r.pool.volume('t');
    await fillPattern(s, P, size);
    await fillPattern(t, Q, size);
    const info = await r.fc.establish('s', 't', { rate: 0 });
    const k = 9;
    const b = k * GRAIN + 2 * BLOCK;
    await t.write(b, uniform(0x58)); // X
    const track = expectedPattern(P, k * GRAIN, GRAIN);
    uniform(0x58).copy(track, 2 * BLOCK);
    expect((await readBuf(t, k * GRAIN, GRAIN)).equals(track)).toBe(true);
    expect((await readBuf(s, 0, size)).equals(expectedPattern(P, 0, size))).toBe(true);
    // FC-08: a source write to the same block does not reach T.
    await s.write(b, uniform(0x59)); // Y
    expect((await readBuf(s, b, BLOCK)).equals(uniform(0x59))).toBe(true);
    expect((await readBuf(t, b, BLOCK)).equals(uniform(0x58))).toBe(true);
    // Resume background copy and let it finish: X stays.
    const done = nextEvent(r.fc, 'completed', info.id);
    await r.fc.setRate('s', null);
    await done;
    expect((await readBuf(t, k * GRAIN, GRAIN)).equals(track)).toBe(true);
    await s.write(b, uniform(0x60));
    expect((await readBuf(t, b, BLOCK)).equals(uniform(0x58))).toBe(true);
  });

  it('target trims and write-zeroes on uncopied tracks read as zeros, the rest of the track as P', async () => {
    const size = MiB;
    const r = await rig({ luns: [{ name: 's', size }, { name: 't', size }] });
    await fillPattern(r.pool.volume('s'), P, size);
    await r.fc.establish('s', 't', { mode: 'nocopy' });
    const t = r.pool.volume('t');
    await t.trim(GRAIN + 512, 1024);
    await t.writeZeroes(3 * GRAIN, GRAIN);
    const want = expectedPattern(P, 0, size);
    want.fill(0, GRAIN + 512, GRAIN + 1536);
    want.fill(0, 3 * GRAIN, 4 * GRAIN);
    expect((await readBuf(t, 0, size)).equals(want)).toBe(true);
  });

  it('FC-11: with NOCOPY, T changes physically only by copy-on-write; tracks remaining drop only as new source tracks are written', async () => {
    const size = 8 * MiB;
    const r = await rig({ luns: [{ name: 's', size }, { name: 't', size }] });
    const s = r.pool.volume('s');
    await fillPattern(s, P, size);
    await fillPattern(r.pool.volume('t'), Q, size);
    await r.fc.establish('s', 't', { mode: 'nocopy' });
    const total = size / GRAIN;
    await r.clock.advance(60_000);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(r.fc.query('s').remainingGrains).toBe(total);
    expect((await readBuf(r.pool.getLun('t'), 0, size)).equals(expectedPattern(Q, 0, size))).toBe(true);
    for (const g of [3, 4, 3, 100]) await s.write(g * GRAIN + 7, uniform(1, 10));
    expect(r.fc.query('s').remainingGrains).toBe(total - 3);
    const physical = await readBuf(r.pool.getLun('t'), 0, size);
    for (let g = 0; g < total; g++) {
      const want = [3, 4, 100].includes(g) ? P : Q;
      expect(physical.subarray(g * GRAIN, (g + 1) * GRAIN).equals(expectedPattern(want, g * GRAIN, GRAIN)), `track ${g}`).toBe(true);
    }
    await s.read(0, size); // reads copy nothing
    expect(r.fc.query('s').remainingGrains).toBe(total - 3);
  });

  it('FC-14: withdrawing a COPY relationship half-way: copied tracks of T keep T0 data, uncopied ones show T\'s own data (Q, or zeros where T was never written)', async () => {
    const size = 2 * MiB;
    const r = await rig({ luns: [{ name: 's', size }, { name: 't', size }] });
    const s = r.pool.volume('s');
    const t = r.pool.volume('t');
    await fillPattern(s, P, size);
    await fillPattern(t, Q, size - 4 * GRAIN); // the last 4 tracks of T were never written
    const total = size / GRAIN;
    const info = await r.fc.establish('s', 't', { rate: 4 * GRAIN });
    await drive(r.clock, () => r.fc.list()[0]!.progress.copiedGrains >= total / 2, 'half copied');
    const [ended] = await r.fc.withdraw('s');
    expect(ended).toMatchObject({ id: info.id, state: 'none' });
    const copied = ended!.progress.copiedGrains;
    expect(copied).toBeGreaterThanOrEqual(total / 2);
    expect(copied).toBeLessThan(total);
    const after = await readBuf(t, 0, size);
    for (let g = 0; g < total; g++) {
      const want = g < copied ? expectedPattern(P, g * GRAIN, GRAIN) : g >= total - 4 ? Buffer.alloc(GRAIN) : expectedPattern(Q, g * GRAIN, GRAIN);
      expect(after.subarray(g * GRAIN, (g + 1) * GRAIN).equals(want), `track ${g} (copied ${copied})`).toBe(true);
    }
  });

  it('FC-17: with a target twice the source, T keeps its capacity, [0, size(S)) equals S@T0 and the rest keeps its old content after completion', async () => {
    const size = 2 * MiB;
    const r = await rig({ luns: [{ name: 's', size }, { name: 't', size: 2 * size }] });
    const s = r.pool.volume('s');
    const t = r.pool.volume('t');
    await fillPattern(s, P, size);
    await fillPattern(t, Q, 2 * size);
    const info = await r.fc.establish('s', 't');
    expect(info.size).toBe(size);
    const done = nextEvent(r.fc, 'completed', info.id);
    await s.write(0, uniform(9, size)); // after T0: must not show on T
    await done;
    expect(t.size).toBe(2 * size);
    const all = await readBuf(t, 0, 2 * size);
    expect(all.subarray(0, size).equals(expectedPattern(P, 0, size))).toBe(true);
    expect(all.subarray(size).equals(expectedPattern(Q, size, size))).toBe(true);
  });

  it('a source that grows after T0 keeps its T0 size in the relationship; the grown part is not copied', async () => {
    const size = MiB;
    const r = await rig({ luns: [{ name: 's', size }, { name: 't', size: 2 * size }] });
    await fillPattern(r.pool.volume('t'), Q, 2 * size);
    const info = await r.fc.establish('s', 't', { rate: 0 });
    await r.pool.growLun('s', 2 * size);
    await r.pool.volume('s').write(size, uniform(4, size));
    const done = nextEvent(r.fc, 'completed', info.id);
    await r.fc.setRate('s', null);
    await done;
    expect((await readBuf(r.pool.volume('t'), size, size)).equals(expectedPattern(Q, size, size))).toBe(true);
  });

  it('the worker I/O engine gives the same results (FC-03, FC-07 on worker threads)', async () => {
    const size = 2 * MiB;
    const r = await rig({ luns: [{ name: 's', size }, { name: 't', size }], engine: 'worker' });
    const s = r.pool.volume('s');
    const t = r.pool.volume('t');
    await fillPattern(s, P, size);
    await r.fc.establish('s', 't', { rate: 0 });
    await Promise.all([s.write(5 * GRAIN, uniform(1)), t.write(6 * GRAIN + BLOCK, uniform(2)), s.write(6 * GRAIN, uniform(3, 3 * BLOCK))]);
    const want = expectedPattern(P, 0, size);
    uniform(2).copy(want, 6 * GRAIN + BLOCK);
    expect((await readBuf(t, 0, size)).equals(want)).toBe(true);
  });
});
