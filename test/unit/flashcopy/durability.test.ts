/**
 * Durability of copy-on-write (src/copy/flashcopy/README.md "Durability of
 * copy-on-write", spec §2.3 invariants 1 and 4): the order of grain copy, bit,
 * fdatasyncs and the source write, under both durabilities.
 */
import { describe, expect, it } from 'vitest';
import { CowEngine } from '../../../src/copy/flashcopy/cow-engine.js';
import { GrainBitmaps, bitmapSizes } from '../../../src/copy/flashcopy/grain-bitmaps.js';
import { GrainCommitter, type CowDurability } from '../../../src/copy/flashcopy/grain-committer.js';
import { GrainGeometry } from '../../../src/copy/flashcopy/grain-geometry.js';
import { SourceLayer } from '../../../src/copy/flashcopy/source-layer.js';
import { TargetLayer } from '../../../src/copy/flashcopy/target-layer.js';
import { MemoryBitmapStore, type BitmapSetOptions, type BitmapSetRecord } from '../../../src/store/bitmap-journal.js';
import { MemoryVolume } from '../../../src/volume/memory-volume.js';
import type { WriteOptions } from '../../../src/volume/volume.js';
import { KiB, uniform } from './harness.js';

/** Every step that matters for ordering, in the order it happened. */
async function rig(durability: CowDurability) {
  const log: string[] = [];
  const size = 256 * KiB;
  const grain = 64 * KiB;
  class Recorded extends MemoryVolume {
    constructor(private readonly tag: string) {
      super({ size, chunkSize: 4096 });
    }
    override async write(offset: number, data: Uint8Array, options?: WriteOptions): Promise<void> {
      log.push(`${this.tag}.write@${Math.floor(offset / grain)}${options?.fua ? '+fua' : ''}`);
      return super.write(offset, data, options);
    }
    override async flush(): Promise<void> {
      log.push(`${this.tag}.flush`);
      return super.flush();
    }
  }
  class RecordedStore extends MemoryBitmapStore {
    override async set(records: readonly BitmapSetRecord[], options?: BitmapSetOptions): Promise<void> {
      log.push(`bits.${options?.sync === false ? 'write' : 'write+fdatasync'}[${records.map((r) => r.start).join(',')}]`);
      return super.set(records, options);
    }
    override async sync(): Promise<void> {
      log.push('bits.fdatasync');
    }
  }
  const rawSource = new Recorded('source');
  const rawTarget = new Recorded('target');
  // T0 data that is not zero (a zero grain is copied as a hole, by writeZeroes).
  await rawSource.write(0, uniform(0x11, size));
  log.length = 0;
  const geometry = new GrainGeometry(grain, size);
  const bitmaps = new GrainBitmaps(new RecordedStore(bitmapSizes(geometry.grains, false)), geometry.grains);
  const committer = new GrainCommitter(bitmaps, () => rawTarget.flush(), durability);
  const engine = new CowEngine(geometry, bitmaps, committer, rawSource, rawTarget);
  return { log, grain, committer, source: new SourceLayer(rawSource, engine), target: new TargetLayer(rawTarget, engine) };
}

describe('durability of copy-on-write', () => {
  it("'power': every first write waits for copy -> target fdatasync -> bit fdatasync before the source write", async () => {
    const r = await rig('power');
    await r.source.write(r.grain, uniform(1));
    expect(r.log).toEqual(['target.write@1', 'target.flush', 'bits.write+fdatasync[1]', 'source.write@1']);
  });

  it("'process' (§2.3 invariant 1 for kill -9): copy written, then bit written, then the source write - no fdatasync on the way", async () => {
    const r = await rig('process');
    await r.source.write(r.grain, uniform(1));
    await r.source.write(2 * r.grain, uniform(2));
    await r.source.write(2 * r.grain + 4096, uniform(3)); // copied already: straight through
    expect(r.log).toEqual(['target.write@1', 'bits.write[1]', 'source.write@1', 'target.write@2', 'bits.write[2]', 'source.write@2', 'source.write@2']);
    expect(r.committer.stats).toMatchObject({ targetFlushes: 0, syncs: 0 });
  });

  it("'process' (§2.3 invariant 4 at FLUSH/FUA): a host flush or FUA write on either volume first flushes the target and fdatasyncs the bits", async () => {
    const r = await rig('process');
    await r.source.write(r.grain, uniform(1));
    r.log.length = 0;
    await r.source.flush();
    expect(r.log).toEqual(['target.flush', 'bits.fdatasync', 'source.flush']);
    r.log.length = 0;
    await r.source.flush(); // nothing new: no extra fdatasync
    expect(r.log).toEqual(['source.flush']);
    r.log.length = 0;
    await r.source.write(3 * r.grain, uniform(4), { fua: true });
    expect(r.log).toEqual(['target.write@3', 'bits.write[3]', 'target.flush', 'bits.fdatasync', 'source.write@3+fua']);
    r.log.length = 0;
    await r.target.write(0, uniform(5)); // target write into an uncopied grain: materialise, write, bit
    await r.target.flush();
    expect(r.log).toEqual(['target.write@0', 'target.write@0', 'bits.write[0]', 'target.flush', 'bits.fdatasync', 'target.flush']);
  });
});
