/**
 * Synchronous I/O over a LUN's segment files (segment i holds bytes
 * [i * segmentSize, (i + 1) * segmentSize)). Used by the I/O workers and the
 * bulk-job workers; requests crossing a segment boundary are split here.
 * Functions throw Node-style errors; callers map them with fromSystemError.
 */
import fs from 'node:fs';
import { native } from '../native/index.js';
import { KIND_DATA, KIND_HOLE } from './protocol.js';

export interface SegmentedFile {
  fds: number[];
  segmentSize: number;
  size: number;
}

const ZERO_CHUNK = 1024 * 1024;
let zeroChunk: Uint8Array | undefined;
function zeros(): Uint8Array {
  zeroChunk ??= new Uint8Array(ZERO_CHUNK);
  return zeroChunk;
}

function segmentFd(file: SegmentedFile, segment: number): number {
  const fd = file.fds[segment];
  if (fd === undefined) {
    throw Object.assign(new Error(`segment ${segment} is not open (LUN has ${file.fds.length})`), { code: 'EBADF' });
  }
  return fd;
}

/**
 * Calls `piece(fd, fileOffset, bufferOffset, length)` for each segment piece of
 * [offset, offset + length), in order.
 */
export function forEachPiece(
  file: SegmentedFile,
  offset: number,
  length: number,
  piece: (fd: number, fileOffset: number, bufferOffset: number, length: number) => void,
): void {
  const seg = file.segmentSize;
  let done = 0;
  while (done < length) {
    const pos = offset + done;
    const segment = Math.floor(pos / seg);
    const within = pos - segment * seg;
    const n = Math.min(length - done, seg - within);
    piece(segmentFd(file, segment), within, done, n);
    done += n;
  }
}

/** Reads into target[at, at + length); bytes past a segment file's end read as zeros. */
export function readSync(file: SegmentedFile, offset: number, target: Uint8Array, at = 0, length = target.length - at): void {
  const seg = file.segmentSize;
  let done = 0;
  while (done < length) {
    const pos = offset + done;
    const segment = Math.floor(pos / seg);
    const within = pos - segment * seg;
    const n = Math.min(length - done, seg - within);
    const fd = segmentFd(file, segment);
    let got = 0;
    while (got < n) {
      const r = fs.readSync(fd, target, at + done + got, n - got, within + got);
      if (r === 0) {
        target.fill(0, at + done + got, at + done + n);
        break;
      }
      got += r;
    }
    done += n;
  }
}

/** Writes data[at, at + length); `touched` hears each fd written (for FUA group commit). */
export function writeSync(
  file: SegmentedFile,
  offset: number,
  data: Uint8Array,
  at = 0,
  length = data.length - at,
  touched?: (fd: number) => void,
): void {
  const seg = file.segmentSize;
  let done = 0;
  while (done < length) {
    const pos = offset + done;
    const segment = Math.floor(pos / seg);
    const within = pos - segment * seg;
    const n = Math.min(length - done, seg - within);
    const fd = segmentFd(file, segment);
    writeAllSync(fd, data, at + done, n, within);
    touched?.(fd);
    done += n;
  }
}

function writeAllSync(fd: number, data: Uint8Array, at: number, length: number, fileOffset: number): void {
  let put = 0;
  while (put < length) put += fs.writeSync(fd, data, at + put, length - put, fileOffset + put);
}

function writeZerosSync(fd: number, fileOffset: number, length: number): void {
  const z = zeros();
  let put = 0;
  while (put < length) {
    const n = Math.min(z.length, length - put);
    writeAllSync(fd, z, 0, n, fileOffset + put);
    put += n;
  }
}

function isUnsupported(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return code === 'EOPNOTSUPP' || code === 'ENOTSUP';
}

/**
 * Makes the range read as zeros. 'punch' deallocates it (trim, write-zeroes
 * without NO_HOLE); 'allocate' keeps it allocated (write-zeroes with NO_HOLE).
 * Without the native addon, or where the filesystem refuses, zeros are written.
 */
export function zeroSync(file: SegmentedFile, offset: number, length: number, mode: 'punch' | 'allocate', touched?: (fd: number) => void): void {
  const sys = native.syscalls;
  forEachPiece(file, offset, length, (fd, fileOffset, _at, n) => {
    touched?.(fd);
    if (sys) {
      try {
        if (mode === 'punch') sys.punchHole(fd, fileOffset, n);
        else sys.zeroRange(fd, fileOffset, n);
        return;
      } catch (err) {
        if (!isUnsupported(err)) throw err;
      }
    }
    writeZerosSync(fd, fileOffset, n);
  });
}

/** Where a segment piece of [offset, offset + length) is: fd, offset in that file, bytes up to the segment's end. */
function locate(file: SegmentedFile, pos: number): { fd: number; within: number; room: number } {
  const segment = Math.floor(pos / file.segmentSize);
  const within = pos - segment * file.segmentSize;
  return { fd: segmentFd(file, segment), within, room: file.segmentSize - within };
}

/** Scratch buffer of the buffered copy path (one per thread: the callers are synchronous). */
const COPY_CHUNK = 1024 * 1024;
let copyScratch: Uint8Array | undefined;

export interface CopyRangeOptions {
  /** Hears each fd written (for FUA group commit). */
  touched?: (fd: number) => void;
  /** Use copy_file_range(2) when the addon has it (default true; false: always through a buffer). */
  kernelCopy?: boolean;
}

export interface CopyRangeStats {
  /** Bytes moved by copy_file_range. */
  kernelBytes: number;
  /** Bytes moved through the buffer. */
  bufferedBytes: number;
  /** Bytes of source holes made holes (or zeros) on the target. */
  holeBytes: number;
}

/**
 * Copies [srcOffset, srcOffset + length) of `src` to [dstOffset, …) of `dst`,
 * split at both files' segment boundaries. Each piece: a source hole (no data
 * per SEEK_DATA) is punched on the target (zeros written where punching is not
 * possible); otherwise copy_file_range(2) copies it in the kernel, falling back
 * to pread/pwrite through a buffer where the kernel or filesystem cannot (or
 * without the addon, where an all-zero chunk is zeroed like a hole). Bytes past
 * a source segment file's end copy as zeros, as readSync reads them.
 */
export function copyRangeSync(
  src: SegmentedFile,
  srcOffset: number,
  dst: SegmentedFile,
  dstOffset: number,
  length: number,
  options: CopyRangeOptions = {},
): CopyRangeStats {
  const sys = native.syscalls;
  const kernel = options.kernelCopy !== false ? sys?.copyFileRange : undefined;
  const stats: CopyRangeStats = { kernelBytes: 0, bufferedBytes: 0, holeBytes: 0 };
  let done = 0;
  while (done < length) {
    const from = locate(src, srcOffset + done);
    const to = locate(dst, dstOffset + done);
    const n = Math.min(length - done, from.room, to.room);
    options.touched?.(to.fd);
    if (sys) {
      const data = sys.seekData(from.fd, from.within);
      if (data < 0 || data >= from.within + n) {
        zeroSync(dst, dstOffset + done, n, 'punch');
        stats.holeBytes += n;
        done += n;
        continue;
      }
    }
    let copied = 0;
    if (kernel) {
      while (copied < n) {
        const r = kernel(from.fd, from.within + copied, to.fd, to.within + copied, n - copied);
        if (r < 0) break; // not possible here: the buffer does the rest
        if (r === 0) {
          // Source file ends inside the piece: the rest reads as zeros.
          writeZerosSync(to.fd, to.within + copied, n - copied);
          stats.holeBytes += n - copied;
          copied = n;
          break;
        }
        copied += r;
        stats.kernelBytes += r;
      }
    }
    while (copied < n) {
      copyScratch ??= new Uint8Array(COPY_CHUNK);
      const m = Math.min(copyScratch.length, n - copied);
      readSync(src, srcOffset + done + copied, copyScratch, 0, m);
      if (!sys && isZeroBytes(copyScratch, m)) {
        zeroSync(dst, dstOffset + done + copied, m, 'punch');
        stats.holeBytes += m;
      } else {
        writeAllSync(to.fd, copyScratch, 0, m, to.within + copied);
        stats.bufferedBytes += m;
      }
      copied += m;
    }
    done += n;
  }
  return stats;
}

function isZeroBytes(data: Uint8Array, length: number): boolean {
  const words = length >>> 3;
  const view = new Float64Array(data.buffer, data.byteOffset, data.byteOffset % 8 === 0 ? words : 0);
  for (let i = 0; i < view.length; i++) if (view[i] !== 0 || Object.is(view[i], -0)) return false;
  for (let i = view.length * 8; i < length; i++) if (data[i] !== 0) return false;
  return true;
}

export function fdatasyncSync(fd: number): void {
  const sys = native.syscalls;
  if (sys) sys.fdatasync(fd);
  else fs.fdatasyncSync(fd);
}

/**
 * Reports the allocation of [offset, offset + length) as runs of (length, kind),
 * merged across segment boundaries, in order. `emit` returns false to stop early
 * (output full); the function then returns the number of bytes described.
 */
export function blockStatusSync(
  file: SegmentedFile,
  offset: number,
  length: number,
  emit: (length: number, kind: number) => boolean,
): number {
  const sys = native.syscalls;
  if (!sys) {
    emit(length, KIND_DATA);
    return length;
  }
  let runKind = -1;
  let runLength = 0;
  let described = 0;
  let stopped = false;
  const add = (n: number, kind: number): void => {
    if (stopped || n === 0) return;
    if (kind === runKind) {
      runLength += n;
      return;
    }
    if (runLength > 0 && !emit(runLength, runKind)) {
      stopped = true;
      return;
    }
    described += runLength;
    runKind = kind;
    runLength = n;
  };
  forEachPiece(file, offset, length, (fd, start, _at, n) => {
    const end = start + n;
    let pos = start;
    while (pos < end && !stopped) {
      const data = sys.seekData(fd, pos);
      if (data < 0 || data >= end) {
        add(end - pos, KIND_HOLE);
        break;
      }
      if (data > pos) add(data - pos, KIND_HOLE);
      const hole = sys.seekHole(fd, data);
      const dataEnd = hole < 0 ? end : Math.min(hole, end);
      add(dataEnd - data, KIND_DATA);
      pos = dataEnd;
    }
  });
  if (!stopped && runLength > 0) {
    if (emit(runLength, runKind)) described += runLength;
  }
  return described;
}
