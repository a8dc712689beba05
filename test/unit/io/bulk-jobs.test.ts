/** BulkJobs (piscina): checksum, copyGrains and compare against straightforward computations on the files. */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { LunBackendSpec } from '../../../src/io/backend.js';
import { BulkJobs } from '../../../src/io/bulk/bulk-jobs.js';
import { native } from '../../../src/native/index.js';
import { makeLunSpec } from '../../helpers/lun-spec.js';
import { pattern } from '../../helpers/patterns.js';
import { tempDirs } from '../../helpers/temp-dir.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const GRAIN = 64 * KiB;

function writeAt(spec: LunBackendSpec, offset: number, data: Buffer): void {
  for (let done = 0; done < data.length; ) {
    const pos = offset + done;
    const seg = Math.floor(pos / spec.segmentSize);
    const within = pos - seg * spec.segmentSize;
    const n = Math.min(data.length - done, spec.segmentSize - within);
    const fd = fs.openSync(spec.segments[seg]!, 'r+');
    fs.writeSync(fd, data, done, n, within);
    fs.closeSync(fd);
    done += n;
  }
}

function contents(spec: LunBackendSpec): Buffer {
  return Buffer.concat(spec.segments.map((f) => fs.readFileSync(f))).subarray(0, spec.size);
}

function allocated(spec: LunBackendSpec): number {
  return spec.segments.reduce((sum, f) => sum + fs.statSync(f).blocks * 512, 0);
}

/** Grains g where [g*GRAIN, (g+1)*GRAIN) gets data; the others stay holes. */
function fill(spec: LunBackendSpec, grains: number[], seed: number): void {
  for (const g of grains) {
    const len = Math.min(GRAIN, spec.size - g * GRAIN);
    writeAt(spec, g * GRAIN, pattern(len, seed + g));
  }
}

describe('BulkJobs', () => {
  let jobs: BulkJobs;
  let dir: string;

  beforeAll(() => {
    // Small tasks so a few MiB of test data still spread over several piscina tasks.
    jobs = new BulkJobs({ maxThreads: 2, taskBytes: 1 * MiB });
  });
  afterAll(async () => {
    await jobs.close();
  });
  const tmp = tempDirs('lunrig-io-bulk-');
  beforeEach(() => {
    dir = tmp.make();
  });
  afterEach(() => {
    tmp.cleanup();
  });

  it('checksum equals CRC32C of every grain read from the files, holes included', async () => {
    const size = 6 * MiB + 10 * KiB; // a short last grain
    const spec = makeLunSpec(dir, 'c', size, 2 * MiB);
    const grains = Math.ceil(size / GRAIN);
    const written = [0, 1, 5, 31, 32, 33, 64, grains - 1];
    fill(spec, written, 11);
    writeAt(spec, 40 * GRAIN + 100, Buffer.from('partial grain')); // a grain half data, half hole
    const sums = await jobs.checksum(spec, GRAIN);
    const data = contents(spec);
    const expected = Array.from({ length: grains }, (_, g) => native.crc32c(data.subarray(g * GRAIN, Math.min((g + 1) * GRAIN, size))));
    expect(Array.from(sums)).toEqual(expected);
    // A sub-range.
    const part = await jobs.checksum(spec, GRAIN, { start: 30, count: 12 });
    expect(Array.from(part)).toEqual(expected.slice(30, 42));
    await expect(jobs.checksum(spec, GRAIN, { start: grains - 1, count: 2 })).rejects.toMatchObject({ code: 'OUT_OF_RANGE' });
    await expect(jobs.checksum(spec, 0)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });

  it('copyGrains copies exactly the selected grains and keeps source holes as holes', async () => {
    const size = 8 * MiB;
    const src = makeLunSpec(dir, 's', size, 2 * MiB);
    const dst = makeLunSpec(dir, 'd', size, 2 * MiB);
    const grains = size / GRAIN;
    const srcData = Array.from({ length: grains }, (_, g) => g).filter((g) => g % 3 !== 0); // every third grain a hole
    fill(src, srcData, 100);
    fill(dst, Array.from({ length: grains }, (_, g) => g), 200); // target fully written with other data
    const before = contents(dst);
    const allocatedBefore = allocated(dst);

    const selected = [0, 1, 2, 3, 30, 31, 32, 33, 34, 90, 127]; // holes at 0, 3, 30, 33, 90
    const result = await jobs.copyGrains(src, dst, [...selected].reverse(), GRAIN);
    expect(result.grains).toBe(selected.length);
    const holes = selected.filter((g) => g % 3 === 0);
    expect(result.bytesPunched).toBe(holes.length * GRAIN);
    expect(result.bytesCopied).toBe((selected.length - holes.length) * GRAIN);

    const after = contents(dst);
    const source = contents(src);
    for (let g = 0; g < grains; g++) {
      const range = [g * GRAIN, (g + 1) * GRAIN] as const;
      const want = selected.includes(g) ? source.subarray(...range) : before.subarray(...range);
      expect(after.subarray(...range).equals(want), `grain ${g}`).toBe(true);
    }
    expect(allocated(dst)).toBe(allocatedBefore - holes.length * GRAIN);
  });

  it('copyGrains takes a bitmap range', async () => {
    const size = 4 * MiB;
    const src = makeLunSpec(dir, 's', size, 4 * MiB);
    const dst = makeLunSpec(dir, 'd', size, 4 * MiB);
    const grains = size / GRAIN;
    fill(src, Array.from({ length: grains }, (_, g) => g), 1);
    const bitmap = new Uint8Array(grains / 8);
    native.setRange(bitmap, 3, 5); // grains 3..7
    native.setRange(bitmap, 40, 1);
    native.setRange(bitmap, 60, 4); // 60..63, but the range stops at 62
    const result = await jobs.copyGrains(src, dst, { bitmap, start: 4, count: 58 }, GRAIN, { sync: false });
    const copied = [4, 5, 6, 7, 40, 60, 61];
    expect(result.grains).toBe(copied.length);
    const s = contents(src);
    const d = contents(dst);
    for (let g = 0; g < grains; g++) {
      const range = [g * GRAIN, (g + 1) * GRAIN] as const;
      const want = copied.includes(g) ? s.subarray(...range) : Buffer.alloc(GRAIN);
      expect(d.subarray(...range).equals(want), `grain ${g}`).toBe(true);
    }
  });

  it('compare finds exactly the differing grains', async () => {
    const size = 5 * MiB + 4 * KiB;
    const a = makeLunSpec(dir, 'a', size, MiB);
    const b = makeLunSpec(dir, 'b', size, MiB);
    const grains = Math.ceil(size / GRAIN);
    const both = [0, 2, 10, 16, 17, 50, grains - 1];
    fill(a, both, 7);
    fill(b, both, 7);
    expect(await jobs.compare(a, b, GRAIN)).toEqual([]);
    // One byte changed; data vs hole; hole vs data; zeros written over a hole (equal: both read as zeros).
    writeAt(b, 16 * GRAIN + 777, Buffer.from([0xee ^ contents(a)[16 * GRAIN + 777]!]));
    fill(a, [20], 3);
    fill(b, [70], 4);
    writeAt(a, 30 * GRAIN, Buffer.alloc(GRAIN));
    writeAt(b, (grains - 1) * GRAIN, Buffer.from('tail'));
    expect(await jobs.compare(a, b, GRAIN)).toEqual([16, 20, 70, grains - 1]);
    expect(await jobs.compare(a, b, GRAIN, { start: 17, count: 60 })).toEqual([20, 70]);
  });

  it('reports missing files as typed errors', async () => {
    const spec: LunBackendSpec = { segments: [path.join(dir, 'missing')], segmentSize: MiB, size: MiB, readOnly: false };
    await expect(jobs.checksum(spec, GRAIN)).rejects.toMatchObject({ name: 'LunrigError', code: 'IO_ERROR' });
    await expect(jobs.copyGrains(spec, { ...spec, readOnly: true }, [0], GRAIN)).rejects.toMatchObject({ code: 'READ_ONLY' });
  });
});
