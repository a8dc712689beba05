/**
 * A LUN: the bottom Volume of every stack. It checks ranges and the read-only
 * switch, then hands the request to its per-LUN I/O queue (src/io/).
 */
import { LunrigError } from '../errors.js';
import type { LunBackend, QueueStats } from '../io/backend.js';
import type { SlotArena } from '../io/slot-arena.js';
import { WorkerLunBackend, type MirrorWriteOutcome } from '../io/worker-backend.js';
import { checkRange } from '../volume/range-check.js';
import type { Extent, Volume, VolumeIdentity, WriteOptions, WriteZeroesOptions } from '../volume/volume.js';
import { lssAddress, volumeId } from './identity.js';
import type { LunRecord } from './pool-metadata.js';

export interface LunInfo {
  name: string;
  size: number;
  lss: number;
  /** `2105:<serial>:<LL>` */
  lssAddress: string;
  volumeNumber: number;
  /** 8 characters, e.g. `000FCA24` */
  volumeId: string;
  /** 32 hex digits, NAA type 6 */
  uniqueId: string;
  readOnly: boolean;
  createdAt: string;
}

export function lunInfoOf(record: LunRecord, serial: string): LunInfo {
  return {
    name: record.name,
    size: record.size,
    lss: record.lss,
    lssAddress: lssAddress(serial, record.lss),
    volumeNumber: record.volumeNumber,
    volumeId: volumeId(serial, record.lss, record.volumeNumber),
    uniqueId: record.uniqueId,
    readOnly: record.readOnly,
    createdAt: record.createdAt,
  };
}

export class Lun implements Volume {
  private closed = false;

  /** @internal Pools create LUNs; callers get them from `pool.getLun(name)`. */
  constructor(
    private record: LunRecord,
    private readonly serial: string,
    private readonly backend: LunBackend,
  ) {}

  get size(): number {
    return this.record.size;
  }

  get readOnly(): boolean {
    return this.record.readOnly;
  }

  get name(): string {
    return this.record.name;
  }

  identity(): VolumeIdentity {
    return {
      name: this.record.name,
      volumeId: volumeId(this.serial, this.record.lss, this.record.volumeNumber),
      uniqueId: this.record.uniqueId,
      serial: this.serial,
      lss: this.record.lss,
    };
  }

  info(): LunInfo {
    return lunInfoOf(this.record, this.serial);
  }

  stats(): QueueStats {
    return this.backend.stats();
  }

  /**
   * For protocol servers (nbd/): the worker engine's slot arena when this LUN
   * runs on it, else undefined. A buffer from the arena given to read (`into`)
   * or write goes to the I/O workers in place, without a copy; ranges, the
   * read-only switch and closing are checked exactly as for any other buffer.
   */
  fastPath(): { arena: SlotArena } | undefined {
    return this.backend instanceof WorkerLunBackend ? { arena: this.backend.arena } : undefined;
  }

  async read(offset: number, length: number, into?: Uint8Array): Promise<Uint8Array> {
    this.checkOpen();
    checkRange(offset, length, this.record.size, `read of LUN ${this.name}`);
    if (into && into.byteLength < length) throw new LunrigError('INVALID_ARGUMENT', `read buffer of ${into.byteLength} bytes is shorter than ${length}`);
    return this.backend.read(offset, length, into);
  }

  /**
   * A local PPRC pair's mirror write in one I/O-worker request (copy/pprc/pair.ts):
   * `data` to `secondary`, then (only if that worked and `deadline`, Date.now()
   * ms, has not passed) here. Undefined when it cannot go that way: `secondary`
   * is not a LUN of the same worker engine, either LUN is closed or read-only,
   * or the range does not fit; the caller's ordinary route then reports any error.
   */
  mirrorWrite(secondary: Volume, offset: number, data: Uint8Array, fua: boolean, deadline: number): Promise<MirrorWriteOutcome> | undefined {
    if (!(secondary instanceof Lun) || !(this.backend instanceof WorkerLunBackend) || !(secondary.backend instanceof WorkerLunBackend)) return undefined;
    if (this.closed || secondary.closed || this.readOnly || secondary.readOnly) return undefined;
    const end = offset + data.byteLength;
    if (!Number.isSafeInteger(offset) || offset < 0 || end > this.size || end > secondary.size) return undefined;
    return this.backend.mirrorWrite(secondary.backend, offset, data, fua, deadline);
  }

  async write(offset: number, data: Uint8Array, options?: WriteOptions): Promise<void> {
    this.checkWritable();
    checkRange(offset, data.byteLength, this.record.size, `write to LUN ${this.name}`);
    if (data.byteLength === 0) return options?.fua ? this.backend.flush() : undefined;
    return this.backend.write(offset, data, options?.fua ?? false);
  }

  async writeZeroes(offset: number, length: number, options?: WriteZeroesOptions): Promise<void> {
    this.checkWritable();
    checkRange(offset, length, this.record.size, `write-zeroes to LUN ${this.name}`);
    if (length === 0) return;
    return this.backend.writeZeroes(offset, length, { noHole: options?.noHole ?? false, fua: options?.fua ?? false });
  }

  async trim(offset: number, length: number, options?: WriteOptions): Promise<void> {
    this.checkWritable();
    checkRange(offset, length, this.record.size, `trim of LUN ${this.name}`);
    if (length === 0) return;
    return this.backend.trim(offset, length, options?.fua ?? false);
  }

  async flush(): Promise<void> {
    this.checkOpen();
    return this.backend.flush();
  }

  async blockStatus(offset: number, length: number): Promise<Extent[]> {
    this.checkOpen();
    checkRange(offset, length, this.record.size, `block status of LUN ${this.name}`);
    if (length === 0) return [];
    return this.backend.blockStatus(offset, length);
  }

  /** @internal The pool changed the record (grow, read-only switch); the files are already resized. */
  async adopt(record: LunRecord, spec?: Parameters<LunBackend['resize']>[0]): Promise<void> {
    if (spec) await this.backend.resize(spec);
    this.record = record;
  }

  /** @internal Waits for in-flight requests; afterwards every call fails with CLOSED. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.backend.close();
  }

  private checkOpen(): void {
    if (this.closed) throw new LunrigError('CLOSED', `LUN ${this.name} is closed or deleted`, { lun: this.name });
  }

  private checkWritable(): void {
    this.checkOpen();
    if (this.record.readOnly) throw new LunrigError('READ_ONLY', `LUN ${this.name} is read-only`, { lun: this.name });
  }
}
