/**
 * The one interface every layer speaks (DESIGN.md). A LUN, a FlashCopy target,
 * a PPRC secondary reached over NBD and a multipath device are all Volumes; a
 * layer wraps the Volume below it and delegates whatever it does not change.
 *
 * Offsets and lengths are bytes with any alignment. A request reaching outside
 * [0, size) fails with LunrigError('OUT_OF_RANGE') and changes nothing.
 * Operations keep the same order in every implementation:
 * read, write, writeZeroes, trim, flush, blockStatus.
 */

export interface WriteOptions {
  /** Force unit access: resolve only once the data is durable. */
  fua?: boolean;
}

export interface WriteZeroesOptions extends WriteOptions {
  /** The range must stay allocated (NBD_CMD_FLAG_NO_HOLE). */
  noHole?: boolean;
  /** Fail with NOT_SUPPORTED rather than write zeroes slowly (NBD_CMD_FLAG_FAST_ZERO). */
  fastZero?: boolean;
}

/**
 * A run of bytes with the same allocation state. `hole` reads as zeros and is
 * unallocated; `zero` reads as zeros but is allocated; `data` is anything else.
 */
export type ExtentKind = 'data' | 'hole' | 'zero';

export interface Extent {
  offset: number;
  length: number;
  kind: ExtentKind;
}

export interface VolumeIdentity {
  /** Human name (the LUN name), unique within its array. */
  name: string;
  /** ESS-style 8-character volume id: LSS index digit, 2-digit volume number, 5-char serial. */
  volumeId: string;
  /** 16-byte NAA-like unique id as 32 lowercase hex digits; never reused. */
  uniqueId: string;
  /** Storage server serial (5 characters). */
  serial: string;
  /** Logical subsystem number (0x10..0x1f for open-systems LSSs). */
  lss: number;
}

export interface Volume {
  /** Current capacity in bytes (a LUN can grow). */
  readonly size: number;
  /** True when writes, trims and write-zeroes are refused. */
  readonly readOnly: boolean;
  identity(): VolumeIdentity;

  /** Read `length` bytes at `offset`. When `into` is given the data lands there and it is returned. */
  read(offset: number, length: number, into?: Uint8Array): Promise<Uint8Array>;
  write(offset: number, data: Uint8Array, options?: WriteOptions): Promise<void>;
  writeZeroes(offset: number, length: number, options?: WriteZeroesOptions): Promise<void>;
  /** Discard: the range reads as zeros afterwards and its space is released where possible. */
  trim(offset: number, length: number, options?: WriteOptions): Promise<void>;
  /** Make every write completed before this call durable. */
  flush(): Promise<void>;
  /** Allocation map of [offset, offset+length), contiguous and covering the range (clipped at size). */
  blockStatus(offset: number, length: number): Promise<Extent[]>;
}
