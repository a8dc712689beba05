/**
 * The work of one bulk task, run inside a piscina worker: checksum, copy or
 * compare a run of grains of LUN files. A task opens the segment files itself
 * (by path) and reads whole runs of consecutive grains per syscall; grains that
 * are holes (SEEK_DATA) are never read.
 * Grain g covers [g * grainSize, min((g + 1) * grainSize, size)).
 */
import fs from 'node:fs';
import { fromSystemError } from '../../errors.js';
import { native } from '../../native/index.js';
import { KIND_HOLE } from '../protocol.js';
import { blockStatusSync, copyRangeSync, fdatasyncSync, readSync, zeroSync, type SegmentedFile } from '../segmented-file.js';

/** The part of a LunBackendSpec a task needs (structured-clonable). */
export interface FileSpec {
  segments: string[];
  segmentSize: number;
  size: number;
}

export type GrainTask =
  | { kind: 'checksum'; spec: FileSpec; grainSize: number; grains: Float64Array }
  | { kind: 'copy'; src: FileSpec; dst: FileSpec; grainSize: number; grains: Float64Array; sync: boolean }
  | { kind: 'compare'; a: FileSpec; b: FileSpec; grainSize: number; grains: Float64Array };

export interface CopyTaskResult {
  grains: number;
  bytesCopied: number;
  bytesPunched: number;
}

/** Largest read a task makes at once (at least one grain). */
const RUN_BYTES = 8 * 1024 * 1024;

function runBuffer(grainSize: number): Buffer {
  return Buffer.allocUnsafe(Math.max(1, Math.floor(RUN_BYTES / grainSize)) * grainSize);
}

function openFile(spec: FileSpec, writable: boolean): SegmentedFile {
  const fds: number[] = [];
  try {
    for (const path of spec.segments) fds.push(fs.openSync(path, writable ? 'r+' : 'r'));
  } catch (err) {
    closeFile(fds);
    throw fromSystemError(err, 'bulk job: open LUN segment');
  }
  return { fds, segmentSize: spec.segmentSize, size: spec.size };
}

function closeFile(fds: readonly number[]): void {
  for (const fd of fds) {
    try {
      fs.closeSync(fd);
    } catch {
      // Closing a read-only or already-synced fd cannot lose data.
    }
  }
}

function withFiles<T>(specs: { spec: FileSpec; writable: boolean }[], body: (files: SegmentedFile[]) => T): T {
  const files: SegmentedFile[] = [];
  try {
    for (const s of specs) files.push(openFile(s.spec, s.writable));
    return body(files);
  } catch (err) {
    throw fromSystemError(err, 'bulk job');
  } finally {
    for (const f of files) closeFile(f.fds);
  }
}

interface GrainRun {
  /** First grain and grain count of a run of consecutive grains. */
  first: number;
  count: number;
  offset: number;
  length: number;
}

/** Groups sorted grain indices into runs of consecutive grains of at most RUN_BYTES. */
function* runsOf(grains: Float64Array, grainSize: number, size: number): Generator<GrainRun> {
  const perRun = Math.max(1, Math.floor(RUN_BYTES / grainSize));
  let i = 0;
  while (i < grains.length) {
    const first = grains[i]!;
    let count = 1;
    while (i + count < grains.length && count < perRun && grains[i + count] === first + count) count++;
    const offset = first * grainSize;
    const length = Math.min(count * grainSize, size - offset);
    yield { first, count, offset, length };
    i += count;
  }
}

/** For each grain of the run: does it hold any data (as opposed to only holes)? */
function dataGrains(file: SegmentedFile, run: GrainRun, grainSize: number): Uint8Array {
  const flags = new Uint8Array(run.count);
  let pos = run.offset;
  blockStatusSync(file, run.offset, run.length, (n, kind) => {
    if (kind !== KIND_HOLE) {
      const firstGrain = Math.floor((pos - run.offset) / grainSize);
      const lastGrain = Math.floor((pos + n - 1 - run.offset) / grainSize);
      flags.fill(1, firstGrain, lastGrain + 1);
    }
    pos += n;
    return true;
  });
  return flags;
}

function grainLength(run: GrainRun, k: number, grainSize: number): number {
  return Math.min(grainSize, run.length - k * grainSize);
}

export function checksumTask(spec: FileSpec, grainSize: number, grains: Float64Array): Uint32Array {
  return withFiles([{ spec, writable: false }], ([file]) => {
    const out = new Uint32Array(grains.length);
    const buffer = runBuffer(grainSize);
    const zeroCrc = new Map<number, number>();
    const crcOfZeros = (n: number): number => {
      let crc = zeroCrc.get(n);
      if (crc === undefined) {
        crc = native.crc32c(new Uint8Array(n));
        zeroCrc.set(n, crc);
      }
      return crc;
    };
    let index = 0;
    for (const run of runsOf(grains, grainSize, file!.size)) {
      const data = dataGrains(file!, run, grainSize);
      if (data.includes(1)) readSync(file!, run.offset, buffer, 0, run.length);
      for (let k = 0; k < run.count; k++) {
        const n = grainLength(run, k, grainSize);
        out[index++] = data[k] ? native.crc32c(buffer.subarray(k * grainSize, k * grainSize + n)) : crcOfZeros(n);
      }
    }
    return out;
  });
}

export function copyTask(src: FileSpec, dst: FileSpec, grainSize: number, grains: Float64Array, sync: boolean): CopyTaskResult {
  return withFiles(
    [
      { spec: src, writable: false },
      { spec: dst, writable: true },
    ],
    ([from, to]) => {
      const result: CopyTaskResult = { grains: 0, bytesCopied: 0, bytesPunched: 0 };
      const touched = new Set<number>();
      const mark = (fd: number): void => void touched.add(fd);
      for (const run of runsOf(grains, grainSize, Math.min(from!.size, to!.size))) {
        // Copy data extents, punch hole extents: the target keeps the source's holes.
        let pos = run.offset;
        const extents: [number, number, number][] = [];
        blockStatusSync(from!, run.offset, run.length, (n, kind) => {
          extents.push([pos, n, kind]);
          pos += n;
          return true;
        });
        for (const [offset, length, kind] of extents) {
          if (kind === KIND_HOLE) {
            zeroSync(to!, offset, length, 'punch', mark);
            result.bytesPunched += length;
            continue;
          }
          // In the kernel (copy_file_range) where it can, through a buffer where not.
          copyRangeSync(from!, offset, to!, offset, length, { touched: mark });
          result.bytesCopied += length;
        }
        result.grains += run.count;
      }
      if (sync) for (const fd of touched) fdatasyncSync(fd);
      return result;
    },
  );
}

export function compareTask(a: FileSpec, b: FileSpec, grainSize: number, grains: Float64Array): Float64Array {
  return withFiles(
    [
      { spec: a, writable: false },
      { spec: b, writable: false },
    ],
    ([fa, fb]) => {
      const differing: number[] = [];
      const bufA = runBuffer(grainSize);
      const bufB = runBuffer(grainSize);
      for (const run of runsOf(grains, grainSize, Math.min(fa!.size, fb!.size))) {
        const dataA = dataGrains(fa!, run, grainSize);
        const dataB = dataGrains(fb!, run, grainSize);
        const anyA = dataA.includes(1);
        const anyB = dataB.includes(1);
        if (!anyA && !anyB) continue;
        if (anyA) readSync(fa!, run.offset, bufA, 0, run.length);
        else bufA.fill(0, 0, run.length);
        if (anyB) readSync(fb!, run.offset, bufB, 0, run.length);
        else bufB.fill(0, 0, run.length);
        for (let k = 0; k < run.count; k++) {
          if (!dataA[k] && !dataB[k]) continue;
          const start = k * grainSize;
          const end = start + grainLength(run, k, grainSize);
          if (bufA.compare(bufB, start, end, start, end) !== 0) differing.push(run.first + k);
        }
      }
      return Float64Array.from(differing);
    },
  );
}
