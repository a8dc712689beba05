/**
 * The addon's syscalls on a real sparse file in os.tmpdir(): SEEK_DATA /
 * SEEK_HOLE, hole punching, zeroing, fdatasync and Node-style errors.
 */
import { closeSync, fstatSync, mkdtempSync, openSync, readSync, rmSync, writeSync } from 'node:fs';
import { constants, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { nativeAddon } from '../../../src/native/index.js';
import type { SyscallRoutines } from '../../../src/native/types.js';

const MiB = 1024 * 1024;
/** Surely not an open descriptor: far above any process's fd table. */
const BAD_FD = 1_000_000;

function readAt(fd: number, offset: number, length: number): Buffer {
  const buf = Buffer.alloc(length);
  expect(readSync(fd, buf, 0, length, offset)).toBe(length);
  return buf;
}

const isZero = (buf: Buffer): boolean => buf.every((v) => v === 0);

describe.runIf(nativeAddon?.syscalls)('native syscalls', () => {
  const sys = nativeAddon!.syscalls as SyscallRoutines;
  let dir: string;
  let fd: number;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'lunrig-native-'));
    fd = openSync(join(dir, 'lun.img'), 'w+');
  });

  afterEach(() => {
    closeSync(fd);
    rmSync(dir, { recursive: true, force: true });
  });

  it('seekData and seekHole find data written at three far-apart offsets', () => {
    const size = 256 * MiB;
    const extents = [4 * MiB, 100 * MiB, 200 * MiB];
    const block = Buffer.alloc(64 * 1024, 0x5a);
    for (const at of extents) writeSync(fd, block, 0, block.length, at);
    writeSync(fd, Buffer.alloc(1), 0, 1, size - 1); // sets the size; its block is data too

    expect(sys.seekData(fd, 0)).toBe(extents[0]);
    let offset = 0;
    const found: number[] = [];
    for (;;) {
      const data = sys.seekData(fd, offset);
      if (data < 0) break;
      const hole = sys.seekHole(fd, data);
      found.push(data, hole);
      offset = hole;
      if (hole >= size) break;
    }
    const dataEnds = extents.map((at) => at + block.length);
    const lastBlock = size - fstatSync(fd).blksize;
    expect(found).toEqual([extents[0], dataEnds[0], extents[1], dataEnds[1], extents[2], dataEnds[2], lastBlock, size]);
    expect(sys.seekHole(fd, 0)).toBe(0);
    expect(sys.seekHole(fd, extents[1]! + 10)).toBe(dataEnds[1]);
  });

  it('seekData and seekHole return -1 at or past the end (ENXIO)', () => {
    writeSync(fd, Buffer.alloc(4096, 1), 0, 4096, 0);
    expect(sys.seekData(fd, 4096)).toBe(-1);
    expect(sys.seekData(fd, 10 * MiB)).toBe(-1);
    expect(sys.seekHole(fd, 4096)).toBe(-1);
    expect(sys.seekHole(fd, 4095)).toBe(4096); // the end of file counts as a hole
  });

  it('punchHole reads back zeros, frees blocks and keeps the size', () => {
    const data = Buffer.alloc(4 * MiB, 0xc3);
    writeSync(fd, data, 0, data.length, 0);
    sys.fdatasync(fd); // allocate for real, so the block count is settled
    const before = fstatSync(fd);
    expect(before.blocks * 512).toBeGreaterThanOrEqual(4 * MiB);

    sys.punchHole(fd, MiB, 2 * MiB);
    const after = fstatSync(fd);
    expect(after.size).toBe(before.size);
    expect((before.blocks - after.blocks) * 512).toBeGreaterThanOrEqual(2 * MiB);
    expect(isZero(readAt(fd, MiB, 2 * MiB))).toBe(true);
    expect(readAt(fd, MiB - 4096, 4096).every((v) => v === 0xc3)).toBe(true);
    expect(readAt(fd, 3 * MiB, 4096).every((v) => v === 0xc3)).toBe(true);
    expect(sys.seekHole(fd, 0)).toBe(MiB);
    expect(sys.seekData(fd, MiB)).toBe(3 * MiB);
  });

  it('zeroRange zeroes an unaligned range and keeps the size', (ctx) => {
    const data = Buffer.alloc(256 * 1024, 0xab);
    writeSync(fd, data, 0, data.length, 0);
    try {
      sys.zeroRange(fd, 1000, 70_000);
    } catch (err) {
      // Some filesystems (tmpfs) lack FALLOC_FL_ZERO_RANGE; that must surface as EOPNOTSUPP.
      expect((err as NodeJS.ErrnoException).code).toBe('EOPNOTSUPP');
      ctx.skip();
    }
    expect(fstatSync(fd).size).toBe(data.length);
    const back = readAt(fd, 0, data.length);
    expect(back.subarray(0, 1000).every((v) => v === 0xab)).toBe(true);
    expect(isZero(back.subarray(1000, 71_000))).toBe(true);
    expect(back.subarray(71_000).every((v) => v === 0xab)).toBe(true);
  });

  it('zero-length punchHole and zeroRange do nothing', () => {
    writeSync(fd, Buffer.alloc(8192, 7), 0, 8192, 0);
    sys.punchHole(fd, 0, 0);
    sys.zeroRange(fd, 4096, 0);
    expect(readAt(fd, 0, 8192).every((v) => v === 7)).toBe(true);
  });

  it('fdatasync succeeds on a written file', () => {
    writeSync(fd, Buffer.from('hello'), 0, 5, 0);
    expect(() => sys.fdatasync(fd)).not.toThrow();
  });

  it.each([
    ['punchHole', () => sys.punchHole(BAD_FD, 0, 4096), 'fallocate'],
    ['zeroRange', () => sys.zeroRange(BAD_FD, 0, 4096), 'fallocate'],
    ['seekData', () => sys.seekData(BAD_FD, 0), 'lseek'],
    ['seekHole', () => sys.seekHole(BAD_FD, 0), 'lseek'],
    ['fdatasync', () => sys.fdatasync(BAD_FD), 'fdatasync'],
  ] as const)('%s on a bad fd throws a Node-style EBADF error', (_name, call, syscall) => {
    let error: unknown;
    try {
      call();
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(Error);
    expect(error).toMatchObject({ code: 'EBADF', errno: -constants.errno.EBADF, syscall });
    expect((error as Error).message).toMatch(/^EBADF: .+, /);
  });

  it.runIf(nativeAddon?.syscalls?.copyFileRange)('copyFileRange copies between files in the kernel, short at the end of the input', () => {
    const copy = sys.copyFileRange!;
    const data = Buffer.alloc(3 * 65536);
    for (let i = 0; i < data.length; i++) data[i] = (i * 13 + (i >> 10)) & 0xff;
    writeSync(fd, data, 0, data.length, 4096);
    const out = openSync(join(dir, 'out.img'), 'w+');
    try {
      expect(copy(fd, 4096 + 100, out, 65536, 2 * 65536)).toBe(2 * 65536);
      expect(readAt(out, 65536, 2 * 65536).equals(data.subarray(100, 100 + 2 * 65536))).toBe(true);
      // The input ends 100 bytes into the last 200: a short count, then 0 at the end.
      const end = 4096 + data.length;
      expect(copy(fd, end - 100, out, 0, 200)).toBe(100);
      expect(copy(fd, end, out, 0, 200)).toBe(0);
      expect(copy(fd, 0, out, 0, 0)).toBe(0);
      expect(() => copy(BAD_FD, 0, out, 0, 10)).toThrow(expect.objectContaining({ code: 'EBADF', syscall: 'copy_file_range' }) as Error);
      expect(() => copy(fd, -1, out, 0, 10)).toThrow(RangeError);
      expect(() => copy(fd, 0, out, 0, 1.5)).toThrow(RangeError);
    } finally {
      closeSync(out);
    }
  });

  it('rejects malformed arguments before making a syscall', () => {
    expect(() => sys.punchHole(-1, 0, 4096)).toThrow(RangeError);
    expect(() => sys.punchHole(fd, -1, 4096)).toThrow(RangeError);
    expect(() => sys.zeroRange(fd, 0, 1.5)).toThrow(RangeError);
    expect(() => sys.seekData(fd, 2 ** 53)).toThrow(RangeError);
    expect(() => sys.seekHole(2 ** 31, 0)).toThrow(RangeError);
    expect(() => sys.fdatasync('3' as unknown as number)).toThrow(TypeError);
  });
});
