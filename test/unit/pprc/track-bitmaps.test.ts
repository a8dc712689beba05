/**
 * The journal records behind 'process' durability (store/bitmap-journal.ts
 * `clear`, TrackBitmaps.commitClears): clear records replay in order with the
 * sets around them, across a reopen and a checkpoint; a torn clear record is
 * cut off like a torn set.
 */
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { HOT, OOS, TrackBitmaps } from '../../../src/copy/pprc/track-bitmaps.js';
import { BitmapJournal } from '../../../src/store/bitmap-journal.js';
import { native } from '../../../src/native/index.js';
import { tempDirs } from '../../helpers/temp-dir.js';

const temp = tempDirs('lunrig-pprc-bitmaps-');
afterEach(() => temp.cleanup());

const bits = (b: Uint8Array, n: number): number[] => Array.from({ length: n }, (_, i) => i).filter((i) => native.testBit(b, i));

describe('PPRC track bitmaps over the journal', () => {
  it("clear records replay in order with sets ('process': no checkpoint, no fdatasync), across reopen and checkpoint", async () => {
    const base = path.join(temp.make(), 'pair');
    let j = await BitmapJournal.open(base, [64, 64]);
    const tb = new TrackBitmaps(j, 64, { syncMarks: false });
    await tb.beginHot(1, 4);
    tb.endHot(1, 4);
    await tb.markOos(10, 12);
    await tb.clearHot([2, 3]);
    tb.clearOos([11]);
    await tb.commitClears(OOS, [11]);
    await tb.beginHot(3, 3); // set again after its clear: the later record wins
    tb.endHot(3, 3);
    expect(j.stats.checkpoints).toBe(0);
    expect(bits(tb.hot, 64)).toEqual([1, 3, 4]);
    expect(bits(tb.oos, 64)).toEqual([10, 12]);
    // A crash without close: reopen replays the journal as written.
    const again = await BitmapJournal.open(base, [64, 64]);
    expect(bits(again.bitmaps[HOT]!, 64)).toEqual([1, 3, 4]);
    expect(bits(again.bitmaps[OOS]!, 64)).toEqual([10, 12]);
    expect(again.stats.tornBytes).toBe(0);
    await again.close();
    // A checkpoint folds the clears in.
    await j.checkpoint();
    await j.close();
    j = await BitmapJournal.open(base, [64, 64]);
    expect(bits(j.bitmaps[HOT]!, 64)).toEqual([1, 3, 4]);
    expect(bits(j.bitmaps[OOS]!, 64)).toEqual([10, 12]);
    await j.close();
  });

  it('a torn clear record at the tail is cut off: the bits it would have cleared stay set (the safe side)', async () => {
    const dir = temp.make();
    const j = await BitmapJournal.open(path.join(dir, 'a'), [32, 32]);
    await j.set([{ bitmap: HOT, start: 0, count: 8 }], { sync: false });
    await j.clear([{ bitmap: HOT, start: 2, count: 2 }], { sync: false });
    expect(bits(j.bitmaps[HOT]!, 32)).toEqual([0, 1, 4, 5, 6, 7]);
    // The journal as a crash in the middle of the clear record's write would leave it.
    const written = await readFile(BitmapJournal.files(path.join(dir, 'a')).journal);
    expect(written.length).toBe(64);
    await writeFile(BitmapJournal.files(path.join(dir, 'b')).journal, written.subarray(0, 32 + 20));
    const torn = await BitmapJournal.open(path.join(dir, 'b'), [32, 32]);
    expect(torn.stats.tornBytes).toBe(20);
    expect(bits(torn.bitmaps[HOT]!, 32)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    await torn.close();
    await j.close();
  });
});
