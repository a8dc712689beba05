/** Directed tests of the copy-on-write engine's ordering rules (spec §2.3 implementation invariants 1-4). */
import { describe, expect, it } from 'vitest';
import { CowEngine } from '../../../src/copy/flashcopy/cow-engine.js';
import { GrainBitmaps } from '../../../src/copy/flashcopy/grain-bitmaps.js';
import { GrainCommitter } from '../../../src/copy/flashcopy/grain-committer.js';
import { VolumeGrainCopier } from '../../../src/copy/flashcopy/grain-copier.js';
import { GrainGeometry } from '../../../src/copy/flashcopy/grain-geometry.js';
import { GrainLocks } from '../../../src/copy/flashcopy/grain-locks.js';
import { SourceLayer } from '../../../src/copy/flashcopy/source-layer.js';
import { TargetLayer } from '../../../src/copy/flashcopy/target-layer.js';
import { MemoryBitmapStore, type BitmapSetRecord } from '../../../src/store/bitmap-journal.js';
import { MemoryVolume } from '../../../src/volume/memory-volume.js';
import type { Volume } from '../../../src/volume/volume.js';
import { KiB, memoryPair, readBuf, uniform } from './harness.js';

const GRAIN = 16 * KiB;

const ticks = async (n = 20): Promise<void> => {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
};

/** Wrap a volume, logging each mutating call (and optionally holding the first read until released). */
function logged(below: Volume, name: string, log: string[], hold?: { next?: Promise<void> }): Volume {
  return Object.assign(Object.create(below) as Volume, {
    read: async (o: number, l: number, into?: Uint8Array) => {
      const gate = hold?.next;
      if (hold) hold.next = undefined;
      if (gate) await gate;
      return below.read(o, l, into);
    },
    write: async (o: number, d: Uint8Array) => {
      log.push(`${name} write ${o}`);
      return below.write(o, d);
    },
    writeZeroes: async (o: number, l: number) => {
      log.push(`${name} zero ${o}`);
      return below.writeZeroes(o, l);
    },
    flush: async () => {
      log.push(`${name} flush`);
      return below.flush();
    },
  });
}

function rig() {
  const log: string[] = [];
  const memS = new MemoryVolume({ size: 4 * GRAIN, chunkSize: 4096 });
  const memT = new MemoryVolume({ size: 4 * GRAIN, chunkSize: 4096 });
  const hold: { next?: Promise<void> } = {};
  const s = logged(memS, 'source', log, hold);
  const t = logged(memT, 'target', log);
  const geometry = new GrainGeometry(GRAIN, 4 * GRAIN);
  const store = new MemoryBitmapStore([geometry.grains]);
  const set = store.set.bind(store);
  store.set = async (records: readonly BitmapSetRecord[]) => {
    log.push(`bits ${records.map((r) => `${r.start}+${r.count}`).join(',')}`);
    return set(records);
  };
  const bitmaps = new GrainBitmaps(store, geometry.grains);
  const engine = new CowEngine(geometry, bitmaps, new GrainCommitter(bitmaps, () => t.flush()), s, t);
  return { log, memS, memT, engine, bitmaps, hold, source: new SourceLayer(s, engine), target: new TargetLayer(t, engine) };
}

describe('CowEngine ordering', () => {
  it('invariant 1 and 4: a source write to an uncopied grain goes out only after the T0 copy, its flush and its bit', async () => {
    const r = rig();
    await r.memS.write(0, uniform(7, 4 * GRAIN));
    await r.source.write(GRAIN + 100, uniform(9, 10));
    expect(r.log).toEqual([`target write ${GRAIN}`, 'target flush', 'bits 1+1', `source write ${GRAIN + 100}`]);
    expect((await readBuf(r.memS, GRAIN + 100, 10)).every((b) => b === 9)).toBe(true);
    expect((await readBuf(r.memT, GRAIN, GRAIN)).every((b) => b === 7)).toBe(true);
  });

  it('invariant 2: a source write waits while a target read of the same uncopied grain is reading the source', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const r = rig();
    await r.memS.write(0, uniform(7, 4 * GRAIN));
    r.hold.next = gate;
    const read = r.target.read(0, GRAIN);
    await ticks();
    let written = false;
    const write = r.source.write(0, uniform(9, GRAIN)).then(() => (written = true));
    await ticks();
    expect(written).toBe(false); // held behind the reader's shared lock
    release();
    expect(Buffer.from(await read).every((b) => b === 7)).toBe(true);
    await write;
    expect((await readBuf(r.target, 0, GRAIN)).every((b) => b === 7)).toBe(true);
    expect((await readBuf(r.source, 0, GRAIN)).every((b) => b === 9)).toBe(true);
  });

  it('invariant 3: two source writes into one uncopied grain copy it once', async () => {
    const r = rig();
    await r.memS.write(0, uniform(7, 4 * GRAIN));
    await Promise.all([r.source.write(2 * GRAIN, uniform(1, 512)), r.source.write(2 * GRAIN + 8192, uniform(2, 512))]);
    expect(r.log.filter((l) => l.startsWith('target write'))).toEqual([`target write ${2 * GRAIN}`]);
    expect((await readBuf(r.target, 2 * GRAIN, GRAIN)).every((b) => b === 7)).toBe(true);
  });

  it('a partial target write materialises the T0 grain first; a whole-grain one does not read the source', async () => {
    const r = rig();
    await r.memS.write(0, uniform(7, 4 * GRAIN));
    await r.target.write(100, uniform(3, 10));
    expect(r.log).toEqual(['target write 0', 'target write 100', 'target flush', 'bits 0+1']);
    r.log.length = 0;
    await r.target.write(GRAIN, uniform(4, GRAIN));
    expect(r.log).toEqual([`target write ${GRAIN}`, 'target flush', 'bits 1+1']);
    const t = await readBuf(r.target, 0, 2 * GRAIN);
    expect(t.subarray(100, 110).every((b) => b === 3)).toBe(true);
    expect(t.subarray(0, 100).every((b) => b === 7)).toBe(true);
    expect(t.subarray(GRAIN).every((b) => b === 4)).toBe(true);
  });

  it('a grain of zeros is copied as write-zeroes (stays sparse on the target)', async () => {
    const r = rig();
    await r.source.write(0, uniform(5, 512));
    expect(r.log[0]).toBe('target zero 0');
  });

  it('background copy skips grains a request holds and never overwrites a target-written grain', async () => {
    const p = memoryPair({ size: 4 * GRAIN, grainSize: GRAIN });
    await p.rawSource.write(0, uniform(7, 4 * GRAIN));
    const held = await p.engine.locks.acquire([1], true);
    const batch = await p.engine.backgroundBatch(p.copier, 0, 10);
    expect(batch.grains).toEqual([0, 2, 3]);
    expect(p.bitmaps.uncopiedIn({ first: 0, count: 4 })).toEqual([1]);
    held();
    await p.target.write(GRAIN, uniform(8, GRAIN));
    expect((await p.engine.backgroundBatch(p.copier, 0, 10)).grains).toEqual([]);
    expect((await readBuf(p.target, GRAIN, GRAIN)).every((b) => b === 8)).toBe(true);
  });

  it('group commit: concurrent first writes share target flushes and bitmap writes', async () => {
    const r = rig();
    await r.memS.write(0, uniform(7, 4 * GRAIN));
    await Promise.all([0, 1, 2, 3].map((g) => r.source.write(g * GRAIN, uniform(1, 512))));
    expect(r.log.filter((l) => l === 'target flush').length).toBeLessThan(4);
    expect(r.log.filter((l) => l.startsWith('bits')).length).toBeLessThan(4);
    expect(r.bitmaps.remaining()).toBe(0);
  });

  it('target block status shows the source for uncopied grains and the target for copied ones', async () => {
    const p = memoryPair({ size: 4 * GRAIN, grainSize: GRAIN });
    await p.rawSource.write(0, uniform(7, GRAIN)); // grain 0 data, grains 1..3 holes on the source
    await p.rawTarget.write(0, uniform(1, 4 * GRAIN)); // the target's old content everywhere
    await p.target.write(3 * GRAIN, uniform(2, GRAIN)); // grain 3 copied (written)
    const extents = await p.target.blockStatus(0, 4 * GRAIN);
    expect(extents).toEqual([
      { offset: 0, length: GRAIN, kind: 'data' },
      { offset: GRAIN, length: 2 * GRAIN, kind: 'hole' },
      { offset: 3 * GRAIN, length: GRAIN, kind: 'data' },
    ]);
  });
});

describe('GrainLocks', () => {
  it('shares among readers, excludes writers, serves waiters in order and tries without waiting', async () => {
    const locks = new GrainLocks();
    const events: string[] = [];
    const r1 = await locks.acquire([1, 2], false);
    const r2 = await locks.acquire([2], false);
    const w = locks.acquire([2, 3], true).then((release) => {
      events.push('writer');
      return release;
    });
    const r3 = locks.acquire([2], false).then((release) => {
      events.push('late reader');
      return release;
    });
    expect(locks.tryExclusive(1)).toBe(false);
    expect(locks.tryExclusive(5)).toBe(true);
    await ticks(3);
    expect(events).toEqual([]);
    r1();
    r2();
    const releaseW = await w;
    await ticks(3);
    expect(events).toEqual(['writer']); // the late reader queued behind the writer
    releaseW();
    (await r3)();
    locks.releaseExclusive([5]);
    expect(locks.size).toBe(0);
  });
});

it('VolumeGrainCopier copies through the volumes and reports bytes', async () => {
  const p = memoryPair({ size: 2 * GRAIN + 100, grainSize: GRAIN });
  await p.rawSource.write(0, uniform(3, 2 * GRAIN + 100));
  expect(await new VolumeGrainCopier((g) => p.engine.copyGrain(g)).copy([0, 2])).toBe(GRAIN + 100);
});
