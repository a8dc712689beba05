/**
 * copyRangeSync (segmented-file.ts), the worker side of OP_COPY, on real files:
 * copy_file_range when the addon has it, the buffered path otherwise, the same
 * bytes either way, holes kept, pieces split at both files' segment boundaries.
 */
import fs from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { copyRangeSync, type SegmentedFile } from '../../../src/io/segmented-file.js';
import { native } from '../../../src/native/index.js';
import { makeLunSpec } from '../../helpers/lun-spec.js';
import { pattern } from '../../helpers/patterns.js';
import { seededRandom, testSeed } from '../../helpers/seeded-random.js';
import { tempDirs } from '../../helpers/temp-dir.js';

const KiB = 1024;
const MiB = 1024 * KiB;

function openFile(dir: string, name: string, size: number, segmentSize: number): SegmentedFile & { paths: string[] } {
  const spec = makeLunSpec(dir, name, size, segmentSize);
  return { fds: spec.segments.map((p) => fs.openSync(p, 'r+')), segmentSize, size, paths: spec.segments };
}

function contents(f: SegmentedFile & { paths: string[] }): Buffer {
  const out = Buffer.alloc(f.size);
  f.paths.forEach((p, i) => fs.readFileSync(p).copy(out, i * f.segmentSize));
  return out;
}

function allocated(f: { paths: string[] }): number {
  return f.paths.reduce((n, p) => n + fs.statSync(p).blocks * 512, 0);
}

function writeAt(f: SegmentedFile, offset: number, data: Buffer): void {
  for (let done = 0; done < data.length; ) {
    const seg = Math.floor((offset + done) / f.segmentSize);
    const within = offset + done - seg * f.segmentSize;
    const n = Math.min(data.length - done, f.segmentSize - within);
    fs.writeSync(f.fds[seg]!, data, done, n, within);
    done += n;
  }
}

describe.each([
  { path: 'copy_file_range', kernelCopy: true },
  { path: 'buffered', kernelCopy: false },
])('copyRangeSync ($path)', ({ kernelCopy }) => {
  const tmp = tempDirs('lunrig-copy-range-');
  let dir: string;
  const opened: SegmentedFile[] = [];
  beforeEach(() => {
    dir = tmp.make();
  });
  afterEach(() => {
    for (const f of opened.splice(0)) for (const fd of f.fds) fs.closeSync(fd);
    tmp.cleanup();
  });
  const file = (name: string, size: number, segmentSize: number): ReturnType<typeof openFile> => {
    const f = openFile(dir, name, size, segmentSize);
    opened.push(f);
    return f;
  };

  it('matches a model over random ranges crossing both files\' segment boundaries', () => {
    const seed = testSeed(`copyRangeSync ${kernelCopy}`, 0xc0de);
    const rnd = seededRandom(seed);
    const size = 3 * MiB + 5000;
    const src = file('s', size, MiB);
    const dst = file('d', size, 700 * KiB);
    const srcModel = Buffer.alloc(size);
    // Data with 128 KiB holes between 192 KiB runs.
    for (let off = 0; off < size; off += 320 * KiB) {
      const data = pattern(Math.min(192 * KiB, size - off), seed + off);
      writeAt(src, off, data);
      data.copy(srcModel, off);
    }
    const dstModel = pattern(size, seed + 1);
    writeAt(dst, 0, dstModel);
    let kernelBytes = 0;
    for (let i = 0; i < 40; i++) {
      const length = 1 + Math.floor(rnd() * (rnd() < 0.3 ? 2 * MiB : 100 * KiB));
      const from = Math.floor(rnd() * (size - length));
      const to = Math.floor(rnd() * (size - length));
      const touched = new Set<number>();
      const stats = copyRangeSync(src, from, dst, to, length, { kernelCopy, touched: (fd) => touched.add(fd) });
      srcModel.copy(dstModel, to, from, from + length);
      expect(stats.kernelBytes + stats.bufferedBytes + stats.holeBytes).toBe(length);
      // Every target segment the range touches was reported (for FUA group commit).
      const firstSeg = Math.floor(to / dst.segmentSize);
      const lastSeg = Math.floor((to + length - 1) / dst.segmentSize);
      expect([...touched].sort()).toEqual(dst.fds.slice(firstSeg, lastSeg + 1).sort());
      kernelBytes += stats.kernelBytes;
    }
    expect(contents(dst).equals(dstModel), `seed=${seed}`).toBe(true);
    // The kernel path is taken when asked for and available (ext4, tmpfs and most others since Linux 5.3).
    if (!kernelCopy || !native.syscalls?.copyFileRange) expect(kernelBytes).toBe(0);
    else expect(kernelBytes).toBeGreaterThan(0);
  });

  it.runIf(native.syscalls)('keeps source holes as holes on the target; a range running past a short file copies zeros', () => {
    const src = file('s', 2 * MiB, MiB);
    const dst = file('d', 2 * MiB, MiB);
    writeAt(src, 0, pattern(256 * KiB, 1));
    writeAt(dst, 0, pattern(2 * MiB, 2));
    const before = allocated(dst);
    const stats = copyRangeSync(src, MiB, dst, 512 * KiB, 512 * KiB, { kernelCopy });
    expect(stats).toEqual({ kernelBytes: 0, bufferedBytes: 0, holeBytes: 512 * KiB });
    expect(allocated(dst)).toBe(before - 512 * KiB);
    const want = pattern(2 * MiB, 2);
    want.fill(0, 512 * KiB, MiB);
    expect(contents(dst).equals(want)).toBe(true);
    // Partly data: copied, the data part exactly.
    const mixed = copyRangeSync(src, 128 * KiB, dst, MiB, 256 * KiB, { kernelCopy });
    expect(mixed.holeBytes + mixed.kernelBytes + mixed.bufferedBytes).toBe(256 * KiB);
    pattern(256 * KiB, 1).copy(want, MiB, 128 * KiB);
    want.fill(0, MiB + 128 * KiB, MiB + 256 * KiB);
    expect(contents(dst).equals(want)).toBe(true);
    // A source segment file shorter than its segment: past its end the range reads, and copies, as zeros.
    fs.ftruncateSync(src.fds[1]!, 100 * KiB);
    const tail = pattern(100 * KiB, 3);
    writeAt(src, MiB, tail);
    copyRangeSync(src, MiB + 50 * KiB, dst, 0, 150 * KiB, { kernelCopy });
    tail.copy(want, 0, 50 * KiB);
    want.fill(0, 50 * KiB, 150 * KiB);
    expect(contents(dst).equals(want)).toBe(true);
  });
});
