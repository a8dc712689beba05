/**
 * Persistent bitmaps for copy services (FlashCopy copied/changed grains, PPRC
 * out-of-sync tracks): the bitmaps live in memory; every change is made
 * durable before it becomes visible there.
 *
 * On disk, beside each other:
 *   <base>.ckpt     the whole bitmaps, replaced atomically (persist.ts), with a
 *                   generation number and a CRC32C; absent = all bits clear
 *   <base>.journal  append-only 32-byte records "set bits [start, start+count)
 *                   of bitmap b", each with its generation and a CRC32C
 *
 * Writers call `set`; concurrent calls share one write and one fdatasync
 * (group commit), and the bits appear in `bitmaps` only once that returned.
 * `set(records, { sync: false })` skips the fdatasync (the records are in the
 * file, so they survive a crash of this process, not of the machine) until
 * `sync()` or the next synced set; FlashCopy's 'process' durability uses it.
 * `clear` appends "clear bits" records the same way (replayed in order with
 * the sets): bits cleared without a checkpoint; PPRC's 'process' durability.
 * When the journal outgrows the bitmaps it is folded into a new checkpoint
 * (generation + 1) and truncated; records of an older generation are ignored
 * on replay, so a crash between the two steps is harmless. Replay stops at the
 * first record that is short or fails its CRC (a torn tail) and cuts it off.
 */
import { constants as fsc, promises as fsp, writeSync } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { LunrigError, fromSystemError } from '../errors.js';
import { native } from '../native/index.js';
import { fsyncDir, writeFileAtomic } from './persist.js';

export interface BitmapSetRecord {
  /** Index of the bitmap (in the order given at open). */
  bitmap: number;
  start: number;
  count: number;
}

/** A journal record: set (default) or clear a range. */
interface JournalRecord extends BitmapSetRecord {
  clear?: boolean;
}

export interface BitmapSetOptions {
  /** fdatasync before resolving (default true). */
  sync?: boolean;
}

/** A set of bitmaps whose changes are durable before they are visible. */
export interface BitmapStore {
  /** Bit count of each bitmap. */
  readonly bits: readonly number[];
  /** The bitmaps as last made durable: read freely, change only through the store. */
  readonly bitmaps: readonly Uint8Array[];
  /**
   * Set the ranges; resolves once durable, and only then are the bits set in `bitmaps`.
   * With `{ sync: false }` it resolves once the records are written to the file
   * (they survive a crash of this process, not of the machine) until `sync`.
   */
  set(records: readonly BitmapSetRecord[], options?: BitmapSetOptions): Promise<void>;
  /** Make every record written so far durable (fdatasync); a no-op when nothing is pending. */
  sync?(): Promise<void>;
  /**
   * Clear the ranges with journal records (no checkpoint), in order with the
   * sets around them; resolves as `set` does, and only then are the bits clear in `bitmaps`.
   */
  clear?(records: readonly BitmapSetRecord[], options?: BitmapSetOptions): Promise<void>;
  /** Replace every bitmap at once, durably (clears bits, unlike `set`). */
  replace(next: readonly Uint8Array[]): Promise<void>;
  /** Finish queued work and release the files, keeping them. */
  close(): Promise<void>;
  /** Finish queued work, release and delete the files (the owner forgot the bitmaps). */
  destroy(): Promise<void>;
}

export function bitmapBytes(bits: number): number {
  return Math.ceil(bits / 8);
}

function checkRecords(bits: readonly number[], records: readonly BitmapSetRecord[]): void {
  for (const r of records) {
    const limit = bits[r.bitmap];
    if (limit === undefined || !Number.isSafeInteger(r.start) || !Number.isSafeInteger(r.count) || r.start < 0 || r.count < 0 || r.start + r.count > limit) {
      throw new LunrigError('INVALID_ARGUMENT', `bitmap record ${JSON.stringify(r)} is outside the bitmaps (${bits.join(', ')} bits)`);
    }
  }
}

function checkReplacement(bits: readonly number[], next: readonly Uint8Array[]): void {
  if (next.length !== bits.length || next.some((b, i) => b.byteLength !== bitmapBytes(bits[i]!))) {
    throw new LunrigError('INVALID_ARGUMENT', `replacement bitmaps do not match the store's sizes (${bits.join(', ')} bits)`);
  }
}

/** Not persistent: for volumes that do not outlive the process (MemoryVolume rigs, tests). */
export class MemoryBitmapStore implements BitmapStore {
  readonly bitmaps: Uint8Array[];

  constructor(readonly bits: readonly number[]) {
    this.bitmaps = bits.map((n) => new Uint8Array(bitmapBytes(n)));
  }

  async set(records: readonly BitmapSetRecord[], _options?: BitmapSetOptions): Promise<void> {
    checkRecords(this.bits, records);
    for (const r of records) native.setRange(this.bitmaps[r.bitmap]!, r.start, r.count);
  }

  async clear(records: readonly BitmapSetRecord[], _options?: BitmapSetOptions): Promise<void> {
    checkRecords(this.bits, records);
    for (const r of records) native.clearRange(this.bitmaps[r.bitmap]!, r.start, r.count);
  }

  async replace(next: readonly Uint8Array[]): Promise<void> {
    checkReplacement(this.bits, next);
    next.forEach((b, i) => this.bitmaps[i]!.set(b));
  }

  async sync(): Promise<void> {}

  async close(): Promise<void> {}

  async destroy(): Promise<void> {}
}

const RECORD_BYTES = 32;
const RECORD_MAGIC = 0x4a52424c; // 'LBRJ' little-endian
const OP_SET = 1;
const OP_CLEAR = 2;
const CKPT_MAGIC = 0x4b43424c; // 'LBCK'
const CKPT_VERSION = 1;
const TWO32 = 2 ** 32;

export interface BitmapJournalOptions {
  /** Fold the journal into a checkpoint once it is this long (default: the bitmaps' size, at least 1 MiB). */
  checkpointBytes?: number;
}

export interface BitmapJournalStats {
  /** Write + fdatasync rounds (each may carry many callers' records). */
  commits: number;
  records: number;
  checkpoints: number;
  /** Records found on open: applied, skipped as an older generation, and bytes of torn tail cut off. */
  replayed: number;
  stale: number;
  tornBytes: number;
}

type Op =
  | { kind: 'set'; records: readonly JournalRecord[]; sync: boolean; done: Settle }
  | { kind: 'replace'; next: readonly Uint8Array[]; done: Settle }
  | { kind: 'checkpoint'; done: Settle };

interface Settle {
  resolve(): void;
  reject(err: unknown): void;
}

export class BitmapJournal implements BitmapStore {
  readonly stats: BitmapJournalStats = { commits: 0, records: 0, checkpoints: 0, replayed: 0, stale: 0, tornBytes: 0 };
  private readonly queue: Op[] = [];
  private running: Promise<void> | undefined;
  private failed: LunrigError | undefined;
  private closed = false;
  /** Records written without fdatasync since the last one. */
  private unsynced = false;

  private constructor(
    readonly base: string,
    readonly bits: readonly number[],
    readonly bitmaps: Uint8Array[],
    private handle: FileHandle,
    private length: number,
    private generation: number,
    private readonly checkpointBytes: number,
  ) {}

  static files(base: string): { journal: string; checkpoint: string } {
    return { journal: `${base}.journal`, checkpoint: `${base}.ckpt` };
  }

  /** Open (creating when absent: all bits clear, nothing written but an empty journal) and replay. */
  static async open(base: string, bits: readonly number[], options: BitmapJournalOptions = {}): Promise<BitmapJournal> {
    const files = BitmapJournal.files(base);
    const bitmaps = bits.map((n) => new Uint8Array(bitmapBytes(n)));
    const generation = await readCheckpoint(files.checkpoint, bits, bitmaps);
    const handle = await openJournal(files.journal);
    try {
      const stats = { replayed: 0, stale: 0, tornBytes: 0 };
      const length = await replay(handle, files.journal, generation, bits, bitmaps, stats);
      const total = bitmaps.reduce((n, b) => n + b.byteLength, 0);
      const journal = new BitmapJournal(base, bits, bitmaps, handle, length, generation, options.checkpointBytes ?? Math.max(1 << 20, total));
      Object.assign(journal.stats, stats);
      return journal;
    } catch (err) {
      await handle.close().catch(() => undefined);
      throw err;
    }
  }

  /** Remove both files (after the owner forgot the bitmaps in its own metadata). */
  static async remove(base: string): Promise<void> {
    const files = BitmapJournal.files(base);
    await Promise.all([fsp.rm(files.journal, { force: true }), fsp.rm(files.checkpoint, { force: true })]);
  }

  get journalBytes(): number {
    return this.length;
  }

  set(records: readonly BitmapSetRecord[], options: BitmapSetOptions = {}): Promise<void> {
    try {
      checkRecords(this.bits, records);
    } catch (err) {
      return Promise.reject(err);
    }
    if (records.length === 0) return Promise.resolve();
    return this.enqueue((done) => ({ kind: 'set', records, sync: options.sync ?? true, done }));
  }

  /** Clear the ranges with journal records, in order with queued sets (see BitmapStore.clear). */
  clear(records: readonly BitmapSetRecord[], options: BitmapSetOptions = {}): Promise<void> {
    try {
      checkRecords(this.bits, records);
    } catch (err) {
      return Promise.reject(err);
    }
    if (records.length === 0) return Promise.resolve();
    const cleared: JournalRecord[] = records.map((r) => ({ bitmap: r.bitmap, start: r.start, count: r.count, clear: true }));
    return this.enqueue((done) => ({ kind: 'set', records: cleared, sync: options.sync ?? true, done }));
  }

  /** fdatasync the records written with `{ sync: false }` (shares a round with queued sets). */
  sync(): Promise<void> {
    if (!this.unsynced && this.queue.length === 0 && !this.running) return Promise.resolve();
    return this.enqueue((done) => ({ kind: 'set', records: [], sync: true, done }));
  }

  replace(next: readonly Uint8Array[]): Promise<void> {
    try {
      checkReplacement(this.bits, next);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.enqueue((done) => ({ kind: 'replace', next: next.map((b) => b.slice()), done }));
  }

  /** Fold the journal into a checkpoint once the queued changes are in (also done automatically). */
  checkpoint(): Promise<void> {
    return this.enqueue((done) => ({ kind: 'checkpoint', done }));
  }

  /** Finish queued work, fold a non-empty journal into a checkpoint, and close. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    if (this.length > 0 && !this.failed) await this.checkpoint().catch(() => undefined);
    this.closed = true;
    await this.running;
    await this.handle.close().catch(() => undefined);
  }

  /** Close without a final checkpoint and delete both files. */
  async destroy(): Promise<void> {
    this.closed = true;
    await this.running;
    await this.handle.close().catch(() => undefined);
    await BitmapJournal.remove(this.base);
  }

  private enqueue(make: (done: Settle) => Op): Promise<void> {
    if (this.closed) return Promise.reject(new LunrigError('CLOSED', `bitmap journal ${this.base} is closed`));
    if (this.failed) return Promise.reject(this.failed);
    return new Promise<void>((resolve, reject) => {
      this.queue.push(make({ resolve, reject }));
      // `running` is cleared by drain itself in the same turn it sees the queue empty, so no op is ever left behind.
      this.running ??= this.drain();
    });
  }

  /** One op at a time; runs of `set`s go out together as one write and one fdatasync. */
  private async drain(): Promise<void> {
    await Promise.resolve();
    for (;;) {
      if (this.queue.length === 0) {
        this.running = undefined;
        return;
      }
      const first = this.queue[0]!;
      const batch = first.kind === 'set' ? takeSets(this.queue) : [this.queue.shift()!];
      try {
        if (this.failed) throw this.failed;
        if (first.kind === 'replace') await this.writeCheckpoint(first.next);
        else if (first.kind === 'checkpoint') await this.writeCheckpoint(this.bitmaps);
        else await this.append(batch.flatMap((op) => (op.kind === 'set' ? op.records : [])), batch.some((op) => op.kind === 'set' && op.sync));
        if (this.length >= this.checkpointBytes) await this.writeCheckpoint(this.bitmaps);
        for (const op of batch) op.done.resolve();
      } catch (err) {
        // After a failed write or fdatasync the file's state is unknown: refuse everything from now on.
        this.failed ??= fromSystemError(err, `bitmap journal ${this.base}`);
        for (const op of batch) op.done.reject(this.failed);
      }
    }
  }

  private async append(records: readonly JournalRecord[], sync: boolean): Promise<void> {
    if (records.length > 0) {
      const buf = Buffer.alloc(records.length * RECORD_BYTES);
      records.forEach((r, i) => encodeRecord(buf, i * RECORD_BYTES, this.generation, r));
      // Without an fdatasync to wait for, a few records into the page cache cost microseconds:
      // write them from this thread rather than queue a thread-pool job.
      if (sync) await this.handle.write(buf, 0, buf.length, this.length);
      else writeAllSync(this.handle.fd, buf, this.length);
      this.length += buf.length;
      this.unsynced = true;
    }
    if (sync && this.unsynced) {
      await this.handle.datasync();
      this.unsynced = false;
    }
    this.stats.commits++;
    this.stats.records += records.length;
    for (const r of records) {
      if (r.clear) native.clearRange(this.bitmaps[r.bitmap]!, r.start, r.count);
      else native.setRange(this.bitmaps[r.bitmap]!, r.start, r.count);
    }
  }

  /** New generation: checkpoint first (atomic), then the now-stale journal goes. */
  private async writeCheckpoint(next: readonly Uint8Array[]): Promise<void> {
    const generation = this.generation + 1;
    await writeFileAtomic(BitmapJournal.files(this.base).checkpoint, encodeCheckpoint(generation, this.bits, next));
    this.generation = generation;
    if (next !== this.bitmaps) next.forEach((b, i) => this.bitmaps[i]!.set(b));
    await this.handle.truncate(0);
    await this.handle.datasync();
    this.unsynced = false;
    this.length = 0;
    this.stats.checkpoints++;
  }
}

function writeAllSync(fd: number, buf: Buffer, position: number): void {
  for (let done = 0; done < buf.length; ) done += writeSync(fd, buf, done, buf.length - done, position + done);
}

function takeSets(queue: Op[]): Op[] {
  let n = 0;
  while (n < queue.length && queue[n]!.kind === 'set') n++;
  return queue.splice(0, n);
}

function encodeRecord(buf: Buffer, at: number, generation: number, r: JournalRecord): void {
  buf.writeUInt32LE(RECORD_MAGIC, at);
  buf.writeUInt32LE(generation, at + 4);
  buf.writeUInt16LE(r.bitmap, at + 8);
  buf.writeUInt16LE(r.clear ? OP_CLEAR : OP_SET, at + 10);
  buf.writeUInt32LE(r.start % TWO32, at + 12);
  buf.writeUInt32LE(Math.floor(r.start / TWO32), at + 16);
  buf.writeUInt32LE(r.count % TWO32, at + 20);
  buf.writeUInt32LE(Math.floor(r.count / TWO32), at + 24);
  buf.writeUInt32LE(native.crc32c(buf.subarray(at, at + 28)), at + 28);
}

type Decoded = { generation: number; record: JournalRecord } | undefined;

function decodeRecord(buf: Buffer, at: number): Decoded {
  if (buf.readUInt32LE(at) !== RECORD_MAGIC) return undefined;
  if (native.crc32c(buf.subarray(at, at + 28)) !== buf.readUInt32LE(at + 28)) return undefined;
  const op = buf.readUInt16LE(at + 10);
  if (op !== OP_SET && op !== OP_CLEAR) return undefined;
  return {
    generation: buf.readUInt32LE(at + 4),
    record: {
      ...(op === OP_CLEAR && { clear: true }),
      bitmap: buf.readUInt16LE(at + 8),
      start: buf.readUInt32LE(at + 12) + buf.readUInt32LE(at + 16) * TWO32,
      count: buf.readUInt32LE(at + 20) + buf.readUInt32LE(at + 24) * TWO32,
    },
  };
}

async function openJournal(file: string): Promise<FileHandle> {
  try {
    return await fsp.open(file, fsc.O_RDWR);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw fromSystemError(err, `opening ${file}`);
  }
  try {
    const handle = await fsp.open(file, fsc.O_RDWR | fsc.O_CREAT | fsc.O_EXCL, 0o644);
    // The name must survive a crash as surely as the records later synced into the file.
    await fsyncDir(path.dirname(file));
    return handle;
  } catch (err) {
    throw fromSystemError(err, `creating ${file}`);
  }
}

/** Apply the journal's valid records; cut off a torn tail. Returns the valid length. */
async function replay(
  handle: FileHandle,
  file: string,
  generation: number,
  bits: readonly number[],
  bitmaps: Uint8Array[],
  stats: { replayed: number; stale: number; tornBytes: number },
): Promise<number> {
  const buf = await handle.readFile();
  let at = 0;
  for (; at + RECORD_BYTES <= buf.length; at += RECORD_BYTES) {
    const decoded = decodeRecord(buf, at);
    if (!decoded) break;
    if (decoded.generation !== generation) {
      stats.stale++;
      continue;
    }
    const r = decoded.record;
    const limit = bits[r.bitmap];
    if (limit === undefined || r.start + r.count > limit) {
      throw new LunrigError('POOL_CORRUPT', `${file}: record at ${at} is outside the bitmaps`, { file });
    }
    if (r.clear) native.clearRange(bitmaps[r.bitmap]!, r.start, r.count);
    else native.setRange(bitmaps[r.bitmap]!, r.start, r.count);
    stats.replayed++;
  }
  if (at < buf.length) {
    stats.tornBytes = buf.length - at;
    try {
      await handle.truncate(at);
      await handle.datasync();
    } catch (err) {
      throw fromSystemError(err, `cutting the torn tail of ${file}`);
    }
  }
  return at;
}

function encodeCheckpoint(generation: number, bits: readonly number[], bitmaps: readonly Uint8Array[]): Buffer {
  const header = 16 + bits.length * 8;
  const body = bitmaps.reduce((n, b) => n + b.byteLength, 0);
  const buf = Buffer.alloc(header + body + 4);
  buf.writeUInt32LE(CKPT_MAGIC, 0);
  buf.writeUInt32LE(CKPT_VERSION, 4);
  buf.writeUInt32LE(generation, 8);
  buf.writeUInt32LE(bits.length, 12);
  bits.forEach((n, i) => {
    buf.writeUInt32LE(n % TWO32, 16 + i * 8);
    buf.writeUInt32LE(Math.floor(n / TWO32), 20 + i * 8);
  });
  let at = header;
  for (const b of bitmaps) {
    buf.set(b, at);
    at += b.byteLength;
  }
  buf.writeUInt32LE(native.crc32c(buf.subarray(0, at)), at);
  return buf;
}

/** Load the checkpoint into `bitmaps`; its generation, or 0 when there is none. */
async function readCheckpoint(file: string, bits: readonly number[], bitmaps: Uint8Array[]): Promise<number> {
  let buf: Buffer;
  try {
    buf = await fsp.readFile(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw fromSystemError(err, `reading ${file}`);
  }
  const corrupt = (why: string) => new LunrigError('POOL_CORRUPT', `${file}: ${why}`, { file });
  if (buf.length < 20 || buf.readUInt32LE(0) !== CKPT_MAGIC || buf.readUInt32LE(4) !== CKPT_VERSION) throw corrupt('not a bitmap checkpoint');
  const count = buf.readUInt32LE(12);
  const header = 16 + count * 8;
  const body = bits.reduce((n, b) => n + bitmapBytes(b), 0);
  if (count !== bits.length || buf.length !== header + body + 4) throw corrupt(`holds ${count} bitmaps of other sizes than expected`);
  for (let i = 0; i < count; i++) {
    if (buf.readUInt32LE(16 + i * 8) + buf.readUInt32LE(20 + i * 8) * TWO32 !== bits[i]) throw corrupt(`bitmap ${i} has another size than expected`);
  }
  if (native.crc32c(buf.subarray(0, header + body)) !== buf.readUInt32LE(header + body)) throw corrupt('checksum mismatch');
  let at = header;
  for (const b of bitmaps) {
    b.set(buf.subarray(at, at + b.byteLength));
    at += b.byteLength;
  }
  return buf.readUInt32LE(8);
}
