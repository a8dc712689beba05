/**
 * The routines the native addon provides (native/), and that the pure
 * TypeScript fallback (src/native/fallback-*.ts) provides too, bit for bit.
 * Bit i of a bitmap is bit (i & 7) of byte (i >> 3) (LSB first). Ranges are
 * [start, start + count) in bits and need not be byte-aligned.
 */
export interface BitmapRoutines {
  setRange(bitmap: Uint8Array, start: number, count: number): void;
  clearRange(bitmap: Uint8Array, start: number, count: number): void;
  testBit(bitmap: Uint8Array, index: number): boolean;
  /** True when every bit of the range is set (true for an empty range). */
  allSet(bitmap: Uint8Array, start: number, count: number): boolean;
  /** True when any bit of the range is set. */
  anySet(bitmap: Uint8Array, start: number, count: number): boolean;
  /** Index of the first set bit at or after `from` and below `limit`, or -1. */
  findNextSet(bitmap: Uint8Array, from: number, limit: number): number;
  /** Index of the first clear bit at or after `from` and below `limit`, or -1. */
  findNextClear(bitmap: Uint8Array, from: number, limit: number): number;
  popcount(bitmap: Uint8Array, start: number, count: number): number;
  /** dst |= src over the common length. */
  or(dst: Uint8Array, src: Uint8Array): void;
  /** dst &= ~src over the common length. */
  andNot(dst: Uint8Array, src: Uint8Array): void;
}

export interface ChecksumRoutines {
  /** CRC32C (Castagnoli), reflected, init/xorout 0xffffffff; `previous` chains calls. Unsigned result. */
  crc32c(data: Uint8Array, previous?: number): number;
}

/** Syscalls Node's fs lacks. Each throws a Node-style error (with `code`, e.g. 'EOPNOTSUPP') on failure. */
export interface SyscallRoutines {
  /** fallocate(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE). */
  punchHole(fd: number, offset: number, length: number): void;
  /** fallocate(FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE): zeroes, leaving the range allocated. */
  zeroRange(fd: number, offset: number, length: number): void;
  /** lseek(fd, offset, SEEK_DATA); -1 when there is no data at or after offset (ENXIO). */
  seekData(fd: number, offset: number): number;
  /** lseek(fd, offset, SEEK_HOLE); the file size counts as a hole, -1 on ENXIO (offset past the end). */
  seekHole(fd: number, offset: number): number;
  fdatasync(fd: number): void;
  /**
   * preadv2(RWF_NOWAIT) into `into` at `offset`: bytes read (short when only
   * part is cached or at end of file), or -1 when it would wait for the disk
   * or the filesystem cannot tell. Never blocks on I/O.
   */
  preadNowait(fd: number, into: Uint8Array, offset: number): number;
  /**
   * copy_file_range(2) of up to `length` bytes, fdIn at offsetIn to fdOut at
   * offsetOut, inside the kernel: bytes copied (short counts possible, 0 at
   * the input's end), or -1 when the kernel or filesystem pair cannot (copy
   * through a buffer instead). Optional: an addon built from older sources
   * lacks it (feature-test before use).
   */
  copyFileRange?(fdIn: number, offsetIn: number, fdOut: number, offsetOut: number, length: number): number;
}

export interface NativeRoutines extends BitmapRoutines, ChecksumRoutines {
  /** 'native' when the addon is loaded, 'typescript' for the fallback. */
  readonly implementation: 'native' | 'typescript';
  /** Present only with the addon: the fallback cannot make these syscalls. */
  readonly syscalls: SyscallRoutines | undefined;
}
