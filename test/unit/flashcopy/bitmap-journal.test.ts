/** The persistent bitmap journal FlashCopy keeps its grain bitmaps in (src/store/bitmap-journal.ts). */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { native } from '../../../src/native/index.js';
import { BitmapJournal, MemoryBitmapStore } from '../../../src/store/bitmap-journal.js';
import { seededRandom, testSeed } from '../../helpers/seeded-random.js';
import { tempDirs } from '../../helpers/temp-dir.js';
import { expectCode } from './harness.js';

const temp = tempDirs('lunrig-journal-');
afterEach(() => temp.cleanup());

function base(): string {
  return path.join(temp.make(), 'bm');
}

function setBits(bitmap: Uint8Array): number[] {
  const out: number[] = [];
  for (let i = native.findNextSet(bitmap, 0, bitmap.length * 8); i >= 0; i = native.findNextSet(bitmap, i + 1, bitmap.length * 8)) out.push(i);
  return out;
}

describe('BitmapJournal', () => {
  it("set({ sync: false }) (FlashCopy's 'process' durability): the records are in the file at once, for a replay after kill -9; sync() then fdatasyncs only when something is pending", async () => {
    const b = base();
    const j = await BitmapJournal.open(b, [64]);
    await j.set([{ bitmap: 0, start: 3, count: 2 }], { sync: false });
    expect(setBits(j.bitmaps[0]!)).toEqual([3, 4]);
    // Another instance replays the same file without any close or fdatasync: what a restart after kill -9 sees.
    const replay = await BitmapJournal.open(b, [64]);
    expect(setBits(replay.bitmaps[0]!)).toEqual([3, 4]);
    const commits = j.stats.commits;
    await j.sync();
    expect(j.stats.commits).toBe(commits + 1);
    await j.sync(); // nothing pending: no round at all
    expect(j.stats.commits).toBe(commits + 1);
    await j.set([{ bitmap: 0, start: 10, count: 1 }]); // the default still fdatasyncs
    expect(setBits(j.bitmaps[0]!)).toEqual([3, 4, 10]);
    await j.close();
    await replay.destroy();
  });

  it('a new journal is all clear and writes no checkpoint; set bits survive reopen', async () => {
    const b = base();
    const j = await BitmapJournal.open(b, [1000, 77]);
    expect(j.bitmaps.map((m) => m.byteLength)).toEqual([125, 10]);
    await expect(fsp.stat(`${b}.ckpt`)).rejects.toMatchObject({ code: 'ENOENT' });
    await j.set([{ bitmap: 0, start: 5, count: 10 }]);
    await j.set([{ bitmap: 1, start: 76, count: 1 }, { bitmap: 0, start: 999, count: 1 }]);
    expect(setBits(j.bitmaps[0]!)).toEqual([5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 999]);
    // Without close: replay from the journal alone, as after kill -9.
    const again = await BitmapJournal.open(b, [1000, 77]);
    expect(setBits(again.bitmaps[0]!)).toEqual(setBits(j.bitmaps[0]!));
    expect(setBits(again.bitmaps[1]!)).toEqual([76]);
    expect(again.stats.replayed).toBe(3);
    await again.close();
    await j.close();
  });

  it('bits become visible only once durable, and concurrent sets share one write + fdatasync (group commit)', async () => {
    const j = await BitmapJournal.open(base(), [4096]);
    const first = j.set([{ bitmap: 0, start: 0, count: 1 }]);
    const rest = [1, 2, 3].map((g) => j.set([{ bitmap: 0, start: g, count: 1 }]));
    expect(native.testBit(j.bitmaps[0]!, 0)).toBe(false);
    await first;
    expect(native.testBit(j.bitmaps[0]!, 0)).toBe(true);
    await Promise.all(rest);
    expect(j.stats.commits).toBe(1);
    expect(j.stats.records).toBe(4);
    // Sets arriving while a round is in flight form the next round.
    const inFlight = j.set([{ bitmap: 0, start: 10, count: 1 }]);
    await new Promise((r) => setImmediate(r));
    await Promise.all([inFlight, ...[11, 12].map((g) => j.set([{ bitmap: 0, start: g, count: 1 }]))]);
    expect(j.stats.commits).toBe(3);
    await j.close();
  });

  it('a torn tail record is cut off on open and the journal keeps working', async () => {
    const b = base();
    const k = await BitmapJournal.open(b, [256]);
    await k.set([{ bitmap: 0, start: 1, count: 1 }]);
    await k.set([{ bitmap: 0, start: 2, count: 1 }]);
    // Simulate a crash in the middle of appending a third record: 20 of its 32 bytes reached the file.
    const journal = `${b}.journal`;
    const whole = await fsp.readFile(journal);
    await fsp.appendFile(journal, whole.subarray(0, 20));
    const again = await BitmapJournal.open(b, [256]);
    expect(again.stats.tornBytes).toBe(20);
    expect(setBits(again.bitmaps[0]!)).toEqual([1, 2]);
    expect((await fsp.stat(journal)).size).toBe(64);
    await again.set([{ bitmap: 0, start: 200, count: 3 }]);
    const third = await BitmapJournal.open(b, [256]);
    expect(setBits(third.bitmaps[0]!)).toEqual([1, 2, 200, 201, 202]);
    for (const x of [k, again, third]) await x.close();
  });

  it('a record with a bad CRC ends replay there (nothing after it is trusted)', async () => {
    const b = base();
    const j = await BitmapJournal.open(b, [256]);
    for (const g of [10, 20, 30]) await j.set([{ bitmap: 0, start: g, count: 1 }]);
    const journal = `${b}.journal`;
    const bytes = await fsp.readFile(journal);
    bytes[32 + 14] = bytes[32 + 14]! ^ 0xff; // corrupt the second record's start field
    await fsp.writeFile(journal, bytes);
    const again = await BitmapJournal.open(b, [256]);
    expect(setBits(again.bitmaps[0]!)).toEqual([10]);
    expect(again.stats.tornBytes).toBe(64);
    await again.close();
    await j.close();
  });

  it('folds into a checkpoint when the journal outgrows its limit; stale records of the old generation are ignored', async () => {
    const b = base();
    const j = await BitmapJournal.open(b, [1 << 16], { checkpointBytes: 32 * 4 });
    for (let g = 0; g < 10; g++) await j.set([{ bitmap: 0, start: g * 100, count: 50 }]);
    expect(j.stats.checkpoints).toBeGreaterThanOrEqual(2);
    expect(j.journalBytes).toBeLessThan(32 * 4);
    const journal = `${b}.journal`;
    // A crash between writing the checkpoint and truncating the journal leaves old-generation records behind.
    const stale = Buffer.alloc(32);
    const fresh = await BitmapJournal.open(path.join(path.dirname(b), 'other'), [1 << 16]);
    await fresh.set([{ bitmap: 0, start: 60000, count: 5 }]);
    (await fsp.readFile(`${path.join(path.dirname(b), 'other')}.journal`)).copy(stale);
    await fsp.writeFile(journal, Buffer.concat([stale, await fsp.readFile(journal)]));
    const again = await BitmapJournal.open(b, [1 << 16]);
    expect(again.stats.stale).toBe(1);
    const expected = Array.from({ length: 10 }, (_, g) => Array.from({ length: 50 }, (_, i) => g * 100 + i)).flat();
    expect(setBits(again.bitmaps[0]!)).toEqual(expected);
    for (const x of [j, fresh, again]) await x.close();
  });

  it('replace clears bits durably (a new checkpoint); close folds the journal in', async () => {
    const b = base();
    const j = await BitmapJournal.open(b, [64, 64]);
    await j.set([{ bitmap: 0, start: 0, count: 64 }, { bitmap: 1, start: 3, count: 1 }]);
    const next = [new Uint8Array(8), new Uint8Array(8)];
    native.setRange(next[0]!, 10, 2);
    await j.replace(next);
    expect(setBits(j.bitmaps[0]!)).toEqual([10, 11]);
    expect(setBits(j.bitmaps[1]!)).toEqual([]);
    await j.set([{ bitmap: 1, start: 63, count: 1 }]);
    await j.close();
    expect((await fsp.stat(`${b}.journal`)).size).toBe(0);
    const again = await BitmapJournal.open(b, [64, 64]);
    expect(setBits(again.bitmaps[0]!)).toEqual([10, 11]);
    expect(setBits(again.bitmaps[1]!)).toEqual([63]);
    await again.close();
  });

  it('refuses records outside the bitmaps and a checkpoint of other sizes', async () => {
    const b = base();
    const j = await BitmapJournal.open(b, [100]);
    await expectCode(j.set([{ bitmap: 0, start: 99, count: 2 }]), 'INVALID_ARGUMENT');
    await expectCode(j.set([{ bitmap: 1, start: 0, count: 1 }]), 'INVALID_ARGUMENT');
    await j.checkpoint();
    await j.close();
    await expectCode(BitmapJournal.open(b, [101]), 'POOL_CORRUPT');
    const bytes = await fsp.readFile(`${b}.ckpt`);
    bytes[bytes.length - 8] = bytes[bytes.length - 8]! ^ 1;
    await fsp.writeFile(`${b}.ckpt`, bytes);
    await expectCode(BitmapJournal.open(b, [100]), 'POOL_CORRUPT');
  });

  it('replays to exactly the union of what was acknowledged (random ranges, seeded)', async () => {
    const seed = testSeed('bitmap-journal');
    const rand = seededRandom(seed);
    const bits = 5000;
    const b = base();
    const j = await BitmapJournal.open(b, [bits], { checkpointBytes: 32 * 40 });
    const model = new Uint8Array(bits);
    const pending: Promise<void>[] = [];
    for (let i = 0; i < 300; i++) {
      const start = Math.floor(rand() * bits);
      const count = Math.min(bits - start, 1 + Math.floor(rand() * 20));
      model.fill(1, start, start + count);
      pending.push(j.set([{ bitmap: 0, start, count }]));
      if (rand() < 0.2) await Promise.all(pending.splice(0));
    }
    await Promise.all(pending);
    const again = await BitmapJournal.open(b, [bits]);
    const want = [...model.keys()].filter((i) => model[i]);
    expect(setBits(again.bitmaps[0]!)).toEqual(want);
    expect(setBits(j.bitmaps[0]!)).toEqual(want);
    await again.close();
    await j.close();
  });
});

describe('MemoryBitmapStore', () => {
  it('sets and replaces like the journal, without files', async () => {
    const s = new MemoryBitmapStore([20]);
    await s.set([{ bitmap: 0, start: 2, count: 3 }]);
    expect(setBits(s.bitmaps[0]!)).toEqual([2, 3, 4]);
    await s.replace([new Uint8Array(3)]);
    expect(setBits(s.bitmaps[0]!)).toEqual([]);
    await expectCode(s.set([{ bitmap: 0, start: 19, count: 2 }]), 'INVALID_ARGUMENT');
  });
});
