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
import type { GrainMover } from '../../../src/copy/flashcopy/worker-grain-mover.js';
import { MemoryBitmapStore, type BitmapSetOptions, type BitmapSetRecord } from '../../../src/store/bitmap-journal.js';
import { MemoryVolume } from '../../../src/volume/memory-volume.js';
import type { WriteOptions } from '../../../src/volume/volume.js';
import { KiB, uniform } from './harness.js';

/** Every step that matters for ordering, in the order it happened. */
async function rig(durability: CowDurability, options: { workerCopy?: boolean } = {}) {
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
  // Stands in for OP_COPY (worker-grain-mover.ts): copies on its own (not through the target
  // Volume's write), resolving a few turns later, durable on completion when asked for FUA.
  const mover: GrainMover | undefined = options.workerCopy
    ? {
        async copy(offset, length, fua) {
          const data = await MemoryVolume.prototype.read.call(rawSource, offset, length);
          await new Promise((resolve) => setTimeout(resolve, 2));
          await MemoryVolume.prototype.write.call(rawTarget, offset, data);
          log.push(`target.copy@${Math.floor(offset / grain)}${fua ? '+fua' : ''}`);
        },
      }
    : undefined;
  const engine = new CowEngine(geometry, bitmaps, committer, rawSource, rawTarget, mover);
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

  describe('with grain copies inside the I/O workers (OP_COPY)', () => {
    it("'power': the copy is FUA (durable when it resolves), then the bit is fdatasynced, then the source write - no separate target flush", async () => {
      const r = await rig('power', { workerCopy: true });
      await r.source.write(r.grain, uniform(1));
      await Promise.all([r.source.write(2 * r.grain, uniform(2)), r.source.write(3 * r.grain, uniform(3))]);
      expect(r.log.slice(0, 3)).toEqual(['target.copy@1+fua', 'bits.write+fdatasync[1]', 'source.write@1']);
      // Concurrent first writes: both copies durable before their bits, bits before either source write.
      const rest = r.log.slice(3);
      const at = (e: string): number => rest.findIndex((x) => x.startsWith(e));
      for (const g of [2, 3]) {
        expect(at(`target.copy@${g}+fua`)).toBeGreaterThanOrEqual(0);
        const bits = rest.findIndex((x) => x.startsWith('bits.write+fdatasync[') && x.includes(String(g)));
        expect(bits).toBeGreaterThan(at(`target.copy@${g}+fua`));
        expect(at(`source.write@${g}`)).toBeGreaterThan(bits);
      }
      expect(r.committer.stats.targetFlushes).toBe(0);
      expect(r.log).not.toContain('target.flush');
    });

    it("'process': copy written (not FUA), then bit written, then the source write; a host flush still flushes the target first", async () => {
      const r = await rig('process', { workerCopy: true });
      await r.source.write(r.grain, uniform(1));
      expect(r.log).toEqual(['target.copy@1', 'bits.write[1]', 'source.write@1']);
      r.log.length = 0;
      await r.source.write(3 * r.grain, uniform(4), { fua: true });
      expect(r.log).toEqual(['target.copy@3', 'bits.write[3]', 'target.flush', 'bits.fdatasync', 'source.write@3+fua']);
      r.log.length = 0;
      // A target write into an uncopied grain it does not cover: materialise (copy), write, bit.
      await r.target.write(0, uniform(5));
      await r.target.flush();
      expect(r.log).toEqual(['target.copy@0', 'target.write@0', 'bits.write[0]', 'target.flush', 'bits.fdatasync', 'target.flush']);
    });
  });
});
