import { LunrigError } from '../errors.js';
import { DEFAULT_LSS, generatePoolId, generateSerial, uniqueId, volumeId } from '../store/identity.js';
import { checkRange } from './range-check.js';
import type { Extent, ExtentKind, Volume, VolumeIdentity, WriteOptions, WriteZeroesOptions } from './volume.js';

export interface MemoryVolumeOptions {
  /** Capacity in bytes. */
  size: number;
  /** Allocation grain in bytes, a power of two (default 64 KiB). Holes and zero extents are tracked per chunk. */
  chunkSize?: number;
  readOnly?: boolean;
  /** Identity fields; the rest are generated (a fresh uniqueId every time). */
  identity?: Partial<VolumeIdentity>;
  /** Whether writeZeroes honours `fastZero` (default true). False makes every fast-zero request fail with NOT_SUPPORTED. */
  fastZero?: boolean;
}

/** A chunk that was zeroed while staying allocated (write-zeroes with noHole). */
const ZERO_CHUNK = 'zero' as const;
type Chunk = Buffer | typeof ZERO_CHUNK;

let instanceCounter = 0;
const MEMORY_POOL_ID = generatePoolId();

/**
 * A Volume over sparse in-memory chunks. Unwritten chunks are holes; writes
 * allocate whole chunks; trim and write-zeroes release whole chunks (or mark
 * them allocated-zero under noHole) and zero partial ones. blockStatus reports
 * exactly that state, so it serves tests of base:allocation and simulators that
 * need a fast, honest Volume. Flush is a no-op: memory is as durable as it gets
 * here, and every caller sees one shared state (so multi-connection flush
 * semantics hold trivially).
 */
export class MemoryVolume implements Volume {
  readonly readOnly: boolean;
  readonly chunkSize: number;
  private _size: number;
  private readonly chunks = new Map<number, Chunk>();
  private readonly ident: VolumeIdentity;
  private readonly fastZero: boolean;
  private closed = false;

  constructor(options: MemoryVolumeOptions) {
    const chunkSize = options.chunkSize ?? 64 * 1024;
    if (!Number.isSafeInteger(chunkSize) || chunkSize < 512 || (chunkSize & (chunkSize - 1)) !== 0) {
      throw new LunrigError('INVALID_ARGUMENT', `chunkSize must be a power of two >= 512, got ${chunkSize}`);
    }
    if (!Number.isSafeInteger(options.size) || options.size < 0) {
      throw new LunrigError('INVALID_SIZE', `size must be a non-negative integer, got ${options.size}`);
    }
    this._size = options.size;
    this.chunkSize = chunkSize;
    this.readOnly = options.readOnly ?? false;
    this.fastZero = options.fastZero ?? true;
    const n = instanceCounter++;
    const serial = options.identity?.serial ?? generateSerial();
    const lss = options.identity?.lss ?? DEFAULT_LSS;
    this.ident = {
      name: options.identity?.name ?? `mem${n}`,
      volumeId: options.identity?.volumeId ?? volumeId(serial, lss, n % 256),
      uniqueId: options.identity?.uniqueId ?? uniqueId(MEMORY_POOL_ID, n),
      serial,
      lss,
    };
  }

  get size(): number {
    return this._size;
  }

  /** Bytes of memory held by allocated data chunks. */
  get allocatedBytes(): number {
    let n = 0;
    for (const c of this.chunks.values()) if (c !== ZERO_CHUNK) n += c.length;
    return n;
  }

  identity(): VolumeIdentity {
    return { ...this.ident };
  }

  /** Grow (never shrink) the volume; new space is a hole. */
  resize(newSize: number): void {
    if (!Number.isSafeInteger(newSize) || newSize < this._size) {
      throw new LunrigError('SHRINK_NOT_SUPPORTED', `cannot resize from ${this._size} to ${newSize}`);
    }
    this._size = newSize;
  }

  /** Make every later operation fail with CLOSED, as a deleted LUN does. */
  close(): void {
    this.closed = true;
    this.chunks.clear();
  }

  async read(offset: number, length: number, into?: Uint8Array): Promise<Uint8Array> {
    this.check(offset, length, 'read');
    if (into && into.length < length) throw new LunrigError('INVALID_ARGUMENT', `read: buffer of ${into.length} bytes is shorter than ${length}`);
    const out = into ?? new Uint8Array(length);
    const cs = this.chunkSize;
    let pos = 0;
    while (pos < length) {
      const abs = offset + pos;
      const index = Math.floor(abs / cs);
      const within = abs - index * cs;
      const n = Math.min(cs - within, length - pos);
      const chunk = this.chunks.get(index);
      if (chunk === undefined || chunk === ZERO_CHUNK) out.fill(0, pos, pos + n);
      else out.set(chunk.subarray(within, within + n), pos);
      pos += n;
    }
    return into ? into : out;
  }

  async write(offset: number, data: Uint8Array, _options?: WriteOptions): Promise<void> {
    this.check(offset, data.length, 'write');
    this.checkWritable('write');
    const cs = this.chunkSize;
    let pos = 0;
    while (pos < data.length) {
      const abs = offset + pos;
      const index = Math.floor(abs / cs);
      const within = abs - index * cs;
      const n = Math.min(cs - within, data.length - pos);
      let chunk = this.chunks.get(index);
      if (chunk === undefined || chunk === ZERO_CHUNK) {
        chunk = Buffer.alloc(cs);
        this.chunks.set(index, chunk);
      }
      chunk.set(data.subarray(pos, pos + n), within);
      pos += n;
    }
  }

  async writeZeroes(offset: number, length: number, options?: WriteZeroesOptions): Promise<void> {
    this.check(offset, length, 'writeZeroes');
    this.checkWritable('writeZeroes');
    if (options?.fastZero && !this.fastZero) {
      throw new LunrigError('NOT_SUPPORTED', 'writeZeroes: fast zeroing is not available on this volume');
    }
    this.zeroRange(offset, length, options?.noHole ? ZERO_CHUNK : undefined);
  }

  async trim(offset: number, length: number, _options?: WriteOptions): Promise<void> {
    this.check(offset, length, 'trim');
    this.checkWritable('trim');
    this.zeroRange(offset, length, undefined);
  }

  async flush(): Promise<void> {
    this.checkOpen();
  }

  async blockStatus(offset: number, length: number): Promise<Extent[]> {
    this.check(offset, length, 'blockStatus');
    const end = offset + length;
    const extents: Extent[] = [];
    if (length === 0) return extents;
    const cs = this.chunkSize;
    const first = Math.floor(offset / cs);
    const last = Math.floor((end - 1) / cs);
    const push = (start: number, stop: number, kind: ExtentKind): void => {
      const s = Math.max(start, offset);
      const e = Math.min(stop, end);
      if (e <= s) return;
      const prev = extents[extents.length - 1];
      if (prev && prev.kind === kind && prev.offset + prev.length === s) prev.length += e - s;
      else extents.push({ offset: s, length: e - s, kind });
    };
    // Walk only the allocated chunks when the range is much larger than the allocation.
    const span = last - first + 1;
    let indices: number[];
    if (span <= 4 * this.chunks.size + 16) {
      indices = [];
      for (let i = first; i <= last; i++) if (this.chunks.has(i)) indices.push(i);
    } else {
      indices = [...this.chunks.keys()].filter((i) => i >= first && i <= last).sort((a, b) => a - b);
    }
    let cursor = offset;
    for (const i of indices) {
      const start = i * cs;
      if (start > cursor) push(cursor, start, 'hole');
      push(start, start + cs, this.chunks.get(i) === ZERO_CHUNK ? 'zero' : 'data');
      cursor = Math.max(cursor, start + cs);
    }
    if (cursor < end) push(cursor, end, 'hole');
    return extents;
  }

  /** Zero [offset, offset+length): whole chunks become holes (or `whole` markers), partial chunks are zero-filled. */
  private zeroRange(offset: number, length: number, whole: typeof ZERO_CHUNK | undefined): void {
    const cs = this.chunkSize;
    const end = offset + length;
    let pos = offset;
    while (pos < end) {
      const index = Math.floor(pos / cs);
      const start = index * cs;
      const stop = Math.min(start + cs, end);
      const chunk = this.chunks.get(index);
      if (pos === start && stop === start + cs) {
        if (whole) this.chunks.set(index, whole);
        else this.chunks.delete(index);
      } else if (chunk !== undefined && chunk !== ZERO_CHUNK) {
        chunk.fill(0, pos - start, stop - start);
      } else if (chunk === undefined && whole) {
        // A partial noHole zero of a hole must leave the range allocated.
        const buf = Buffer.alloc(cs);
        this.chunks.set(index, buf);
      }
      pos = stop;
    }
  }

  private check(offset: number, length: number, what: string): void {
    this.checkOpen();
    checkRange(offset, length, this._size, what);
  }

  private checkOpen(): void {
    if (this.closed) throw new LunrigError('CLOSED', `volume ${this.ident.name} is closed`);
  }

  private checkWritable(what: string): void {
    if (this.readOnly) throw new LunrigError('READ_ONLY', `${what}: volume ${this.ident.name} is read-only`);
  }
}
