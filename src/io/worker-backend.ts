/**
 * The per-LUN queue of the worker engine. The ordinary LunBackend methods copy
 * data through a slot of the shared arena (requests longer than the largest
 * slot are split into slot-sized pieces, submitted together). The slot-level
 * methods (readIntoSlot / writeFromSlot) skip that copy: a protocol server
 * acquires a slot from the engine, lets the socket fill a WRITE payload into
 * `slot.data`, or sends a READ reply straight from `slot.frame(header, length)`.
 * `read(…, into)` and `write(…, data)` with a buffer that is a view of the arena
 * (a slot's data) skip the copy too: a caller can go through the Volume stack
 * (and its restack drain) and still move the bytes in place.
 */
import { LunrigError } from '../errors.js';
import { native } from '../native/index.js';
import type { Extent } from '../volume/volume.js';
import { emptyStats, type LunBackend, type LunBackendSpec, type QueueStats } from './backend.js';
import { appendExtent, kindName } from './extents.js';
import { IoRequest, type RequestDone } from './io-request.js';
import {
  EXTENT_RECORD_BYTES,
  FLAG_FUA,
  FLAG_NO_HOLE,
  MIRROR_BOTH_DONE,
  MIRROR_SECONDARY_DONE,
  OP_BLOCK_STATUS,
  OP_COPY,
  OP_FLUSH,
  OP_MIRROR_WRITE,
  OP_READ,
  OP_TRIM,
  OP_WRITE,
  OP_WRITE_ZEROES,
} from './protocol.js';
import { closeSegments, openSegments } from './segment-files.js';
import { checkSpec, checkGrownSpec } from './spec-check.js';
import type { IoSlot, SlotArena, SlotRef } from './slot-arena.js';
import type { WorkerIoEngine } from './worker-engine.js';

/** How far a mirror write got: 'secondary' without an error means its deadline passed before the primary write. */
export interface MirrorWriteOutcome {
  written: 'none' | 'secondary' | 'both';
  error?: LunrigError;
}

/** blockStatus output slot: 4096 extents per round trip. */
const BLOCK_STATUS_SLOT = 64 * 1024;

export class WorkerLunBackend implements LunBackend {
  private readonly st: QueueStats = emptyStats();
  private state: 'open' | 'closing' | 'closed' = 'open';
  private inFlight = 0;
  private idleWaiters: (() => void)[] = [];
  private closing: Promise<void> | undefined;

  private constructor(
    private readonly engine: WorkerIoEngine,
    /** Handle the workers know this LUN by; never reused within an engine. */
    readonly id: number,
    private spec: LunBackendSpec,
    private readonly fds: number[],
    /** Index of the worker this LUN's requests go to first. */
    public home: number,
  ) {}

  /** @internal Use WorkerIoEngine.open / openBackend. */
  static async open(engine: WorkerIoEngine, id: number, spec: LunBackendSpec, home: number): Promise<WorkerLunBackend> {
    checkSpec(spec);
    const fds = await openSegments(spec.segments, spec.readOnly);
    const backend = new WorkerLunBackend(engine, id, { ...spec, segments: [...spec.segments] }, fds, home);
    backend.register();
    return backend;
  }

  get size(): number {
    return this.spec.size;
  }

  /** The segment files (paths) this backend serves. */
  get segments(): readonly string[] {
    return this.spec.segments;
  }

  /** The engine's slot arena: buffers from it pass read/write in place (see the header). */
  get arena(): SlotArena {
    return this.engine.arena;
  }

  read(offset: number, length: number, into?: Uint8Array): Promise<Uint8Array> {
    const refused = this.begin(false);
    if (refused) return Promise.reject(refused);
    if (into && into.length < length) {
      this.end();
      return Promise.reject(new LunrigError('INVALID_ARGUMENT', `read: buffer of ${into.length} bytes is shorter than ${length}`));
    }
    const target = into ?? Buffer.allocUnsafe(length);
    if (this.readCached(offset, length, target)) {
      this.end();
      this.st.reads++;
      this.st.bytesRead += length;
      return Promise.resolve(target.length === length ? target : target.subarray(0, length));
    }
    const inArena = into && length > 0 ? this.engine.arena.viewRef(into) : undefined;
    return new Promise((resolve, reject) => {
      const done = (err: LunrigError | undefined): void => {
        this.end();
        if (err) return reject(this.failed(err));
        this.st.reads++;
        this.st.bytesRead += length;
        resolve(target.length === length ? target : target.subarray(0, length));
      };
      if (inArena) this.engine.submit(new IoRequest(this, OP_READ, 0, offset, length, inArena, done));
      else this.transfer(OP_READ, 0, offset, target, length, done);
    });
  }

  write(offset: number, data: Uint8Array, fua: boolean): Promise<void> {
    const refused = this.begin(true);
    if (refused) return Promise.reject(refused);
    const inArena = data.length > 0 ? this.engine.arena.viewRef(data) : undefined;
    return new Promise((resolve, reject) => {
      const done = (err: LunrigError | undefined): void => {
        this.end();
        if (err) return reject(this.failed(err));
        this.st.writes++;
        this.st.bytesWritten += data.length;
        resolve();
      };
      if (inArena) this.engine.submit(new IoRequest(this, OP_WRITE, fua ? FLAG_FUA : 0, offset, data.length, inArena, done));
      else this.transfer(OP_WRITE, fua ? FLAG_FUA : 0, offset, data, data.length, done);
    });
  }

  writeZeroes(offset: number, length: number, options: { noHole: boolean; fua: boolean }): Promise<void> {
    const flags = (options.fua ? FLAG_FUA : 0) | (options.noHole ? FLAG_NO_HOLE : 0);
    return this.simple(true, OP_WRITE_ZEROES, flags, offset, length, () => this.st.zeroes++);
  }

  trim(offset: number, length: number, fua: boolean): Promise<void> {
    return this.simple(true, OP_TRIM, fua ? FLAG_FUA : 0, offset, length, () => this.st.trims++);
  }

  flush(): Promise<void> {
    return this.simple(false, OP_FLUSH, 0, 0, 0, () => this.st.flushes++);
  }

  async blockStatus(offset: number, length: number): Promise<Extent[]> {
    const refused = this.begin(false);
    if (refused) throw refused;
    const extents: Extent[] = [];
    let slot: IoSlot | undefined;
    try {
      slot = await this.engine.acquireSlot(Math.min(BLOCK_STATUS_SLOT, this.engine.maxSlotLength));
      const records = new Float64Array(slot.data.buffer, slot.dataOffset, Math.floor(slot.capacity / EXTENT_RECORD_BYTES) * 2);
      // The worker fills the slot with (length, kind) records; ask again for whatever did not fit.
      let pos = offset;
      const end = offset + length;
      while (pos < end) {
        const count = await this.submitAsync(OP_BLOCK_STATUS, 0, pos, end - pos, slot);
        if (count === 0) throw new LunrigError('INTERNAL', 'blockStatus: worker described nothing');
        for (let i = 0; i < count; i++) {
          const n = records[i * 2]!;
          appendExtent(extents, pos, n, kindName(records[i * 2 + 1]!));
          pos += n;
        }
      }
      return extents;
    } catch (err) {
      throw this.failed(err as LunrigError);
    } finally {
      slot?.release();
      this.end();
    }
  }

  async resize(spec: LunBackendSpec): Promise<void> {
    if (this.state !== 'open') throw new LunrigError('CLOSED', 'LUN backend is closed');
    checkGrownSpec(this.spec, spec);
    const added = await openSegments(spec.segments.slice(this.fds.length), this.spec.readOnly);
    this.fds.push(...added);
    this.spec = { ...this.spec, size: spec.size, segments: [...spec.segments] };
    this.register();
  }

  stats(): QueueStats {
    return { ...this.st, inFlight: this.inFlight };
  }

  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  /**
   * Copies [sourceOffset, sourceOffset + length) of `source` (a LUN of the same
   * engine) to [offset, offset + length) of this LUN in one worker request
   * (OP_COPY): copy_file_range(2) where the kernel can, otherwise through a
   * worker-local buffer; source holes become holes here. No byte crosses to
   * this thread. A write to this LUN in every respect: read-only refused, FUA
   * durable on completion (group commit with the batch's other FUA requests),
   * otherwise durable at the next flush. Ordering as for read + write: it sees
   * writes to `source` that resolved before it was issued.
   */
  copyFrom(source: WorkerLunBackend, sourceOffset: number, offset: number, length: number, fua: boolean): Promise<void> {
    if (source.engine !== this.engine || !this.engine.owns(source)) {
      return Promise.reject(new LunrigError('INVALID_ARGUMENT', 'copyFrom: the source LUN is not open in the same I/O engine'));
    }
    for (const [what, at, size] of [['source', sourceOffset, source.size], ['target', offset, this.size]] as const) {
      if (!Number.isSafeInteger(at) || !Number.isSafeInteger(length) || at < 0 || length < 0 || at + length > size) {
        return Promise.reject(new LunrigError('OUT_OF_RANGE', `copyFrom: ${what} range ${at}+${length} is outside [0, ${size})`));
      }
    }
    if (length === 0) return fua ? this.flush() : Promise.resolve();
    const refused = this.begin(true);
    if (refused) return Promise.reject(refused);
    const sourceRefused = source.begin(false);
    if (sourceRefused) {
      this.end();
      return Promise.reject(sourceRefused);
    }
    return new Promise((resolve, reject) => {
      const req = new IoRequest(this, OP_COPY, fua ? FLAG_FUA : 0, offset, length, undefined, (err) => {
        this.end();
        source.end();
        if (err) return reject(this.failed(err));
        source.st.reads++;
        source.st.bytesRead += length;
        this.st.writes++;
        this.st.bytesWritten += length;
        resolve();
      });
      req.source = source;
      req.sourceOffset = sourceOffset;
      this.engine.submit(req);
    });
  }

  /**
   * A local PPRC mirror write in one worker request (OP_MIRROR_WRITE):
   * `data` goes to `secondary` (a LUN of the same engine) first and then,
   * only if that worked and `deadline` (Date.now() ms, 0: none) has not
   * passed, to this LUN, both at `offset`; FUA makes both durable before it
   * resolves. One hand-off to a worker instead of two in a row. Never
   * rejects: the outcome says how far it got. Undefined when it cannot run
   * here (another engine, the data neither in the arena nor fitting a free
   * slot): the caller takes the two-request path. Ranges and read-only are
   * the caller's to check (Lun.mirrorWrite).
   */
  mirrorWrite(secondary: WorkerLunBackend, offset: number, data: Uint8Array, fua: boolean, deadline: number): Promise<MirrorWriteOutcome> | undefined {
    if (secondary.engine !== this.engine || !this.engine.owns(secondary) || data.length === 0) return undefined;
    let slot: SlotRef | undefined = this.engine.arena.viewRef(data);
    let own: IoSlot | undefined;
    if (!slot) {
      own = this.engine.arena.tryAcquire(data.length);
      if (!own) return undefined;
      copyBytes(data, own.data.subarray(0, data.length));
      slot = own;
    }
    const refused = this.begin(true);
    const secondaryRefused = refused ? undefined : secondary.begin(true);
    if (refused || secondaryRefused) {
      if (secondaryRefused) this.end();
      own?.release();
      return Promise.resolve({ written: 'none', error: (refused ?? secondaryRefused)! });
    }
    return new Promise((resolve) => {
      const req = new IoRequest(this, OP_MIRROR_WRITE, fua ? FLAG_FUA : 0, offset, data.length, slot, (err, result) => {
        own?.release();
        this.end();
        secondary.end();
        const written = result === MIRROR_BOTH_DONE ? 'both' : result === MIRROR_SECONDARY_DONE ? 'secondary' : 'none';
        if (written !== 'none') {
          secondary.st.writes++;
          secondary.st.bytesWritten += data.length;
        }
        if (written === 'both') {
          this.st.writes++;
          this.st.bytesWritten += data.length;
        }
        if (err) (written === 'none' ? secondary : this).failed(err);
        resolve(err ? { written, error: err } : { written });
      });
      req.source = secondary;
      req.deadline = deadline;
      this.engine.submit(req);
    });
  }

  // ---- slot-level API (zero-copy for protocol servers) -------------------------------------

  /** Reads [offset, offset + length) into slot.data[0, length). The slot stays the caller's. */
  readIntoSlot(offset: number, length: number, slot: IoSlot): Promise<void> {
    if (length <= slot.capacity && this.state === 'open' && this.engine.accepting && this.readCached(offset, length, slot.data)) {
      this.st.reads++;
      this.st.bytesRead += length;
      return Promise.resolve();
    }
    return this.slotRequest(false, OP_READ, 0, offset, length, slot, () => {
      this.st.reads++;
      this.st.bytesRead += length;
    });
  }

  /** Writes slot.data[0, length) at offset, without copying it. The slot stays the caller's. */
  writeFromSlot(offset: number, slot: IoSlot, length: number, fua: boolean): Promise<void> {
    return this.slotRequest(true, OP_WRITE, fua ? FLAG_FUA : 0, offset, length, slot, () => {
      this.st.writes++;
      this.st.bytesWritten += length;
    });
  }

  // ---- internals ----------------------------------------------------------------------------

  private register(): void {
    this.engine.postControl({
      type: 'lun',
      lun: this.id,
      fds: [...this.fds],
      segmentSize: this.spec.segmentSize,
      size: this.spec.size,
      readOnly: this.spec.readOnly,
    });
  }

  private begin(mutates: boolean): LunrigError | undefined {
    // Pieces of requests admitted earlier still get through while the engine closes.
    if (this.state !== 'open' || !this.engine.accepting) return new LunrigError('CLOSED', 'LUN backend is closed');
    if (mutates && this.spec.readOnly) return new LunrigError('READ_ONLY', 'LUN is read-only');
    this.inFlight++;
    return undefined;
  }

  /**
   * Serves a small read from the page cache on this thread when all of it is
   * there (engine.cachedReadMax). Anything else (out of range, across a
   * segment boundary, not cached, an error) returns false and the caller
   * takes the worker path, which reports errors the usual way.
   */
  private readCached(offset: number, length: number, target: Uint8Array): boolean {
    const syscalls = native.syscalls;
    if (!syscalls || length === 0 || length > this.engine.cachedReadMax) return false;
    if (!Number.isSafeInteger(offset) || offset < 0 || offset + length > this.spec.size) return false;
    const segment = Math.floor(offset / this.spec.segmentSize);
    const within = offset - segment * this.spec.segmentSize;
    const fd = this.fds[segment];
    if (fd === undefined || within + length > this.spec.segmentSize) return false;
    try {
      if (syscalls.preadNowait(fd, target.length === length ? target : target.subarray(0, length), within) !== length) return false;
    } catch {
      return false;
    }
    this.engine.countCachedRead();
    return true;
  }

  private end(): void {
    if (--this.inFlight === 0 && this.idleWaiters.length > 0) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const wake of waiters) wake();
    }
  }

  private failed(err: LunrigError): LunrigError {
    this.st.errors++;
    return err;
  }

  private simple(mutates: boolean, op: number, flags: number, offset: number, length: number, counted: () => void): Promise<void> {
    const refused = this.begin(mutates);
    if (refused) return Promise.reject(refused);
    return new Promise((resolve, reject) => {
      this.engine.submit(
        new IoRequest(this, op, flags, offset, length, undefined, (err) => {
          this.end();
          if (err) return reject(this.failed(err));
          counted();
          resolve();
        }),
      );
    });
  }

  private slotRequest(mutates: boolean, op: number, flags: number, offset: number, length: number, slot: IoSlot, counted: () => void): Promise<void> {
    if (length > slot.capacity) {
      return Promise.reject(new LunrigError('INVALID_ARGUMENT', `slot holds ${slot.capacity} bytes, request is ${length}`));
    }
    const refused = this.begin(mutates);
    if (refused) return Promise.reject(refused);
    return new Promise((resolve, reject) => {
      this.engine.submit(
        new IoRequest(this, op, flags, offset, length, slot, (err) => {
          this.end();
          if (err) return reject(this.failed(err));
          counted();
          resolve();
        }),
      );
    });
  }

  private submitAsync(op: number, flags: number, offset: number, length: number, slot: IoSlot | undefined): Promise<number> {
    return new Promise((resolve, reject) => {
      this.engine.submit(new IoRequest(this, op, flags, offset, length, slot, (err, result) => (err ? reject(err) : resolve(result))));
    });
  }

  /**
   * Moves `length` bytes between `buffer` and the LUN through arena slots, in
   * pieces of at most the largest slot, all submitted at once (they wait for
   * free slots when the arena is busy). `done` runs once, with the first error.
   */
  private transfer(op: number, flags: number, offset: number, buffer: Uint8Array, length: number, done: (err: LunrigError | undefined) => void): void {
    if (length === 0) {
      done(undefined);
      return;
    }
    const arena = this.engine.arena;
    const piece = arena.maxLength;
    let remaining = Math.ceil(length / piece);
    let firstError: LunrigError | undefined;
    const pieceDone = (err: LunrigError | undefined): void => {
      firstError ??= err;
      if (--remaining === 0) done(firstError);
    };
    for (let at = 0; at < length; at += piece) {
      const n = Math.min(piece, length - at);
      const slot = arena.tryAcquire(n);
      if (slot) this.transferPiece(op, flags, offset + at, buffer, at, n, slot, pieceDone);
      else {
        arena.acquire(n).then(
          (s) => this.transferPiece(op, flags, offset + at, buffer, at, n, s, pieceDone),
          (err: LunrigError) => pieceDone(err),
        );
      }
    }
  }

  private transferPiece(op: number, flags: number, offset: number, buffer: Uint8Array, at: number, n: number, slot: IoSlot, done: RequestDone): void {
    if (op === OP_WRITE) copyBytes(buffer.subarray(at, at + n), slot.data.subarray(0, n));
    this.engine.submit(
      new IoRequest(this, op, flags, offset, n, slot, (err, result) => {
        if (!err && op === OP_READ) copyBytes(slot.data.subarray(0, n), buffer.subarray(at, at + n));
        slot.release();
        done(err, result);
      }),
    );
  }

  private async shutdown(): Promise<void> {
    this.state = 'closing';
    if (this.inFlight > 0) await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
    this.state = 'closed';
    this.engine.postControl({ type: 'drop-lun', lun: this.id });
    this.engine.forgetBackend(this);
    await closeSegments(this.fds);
  }
}

/**
 * Copy between the shared arena and a caller's buffer. V8's set/copy fall
 * back to a byte loop when the two views differ in alignment and one is
 * shared (~15x slower at 1 MiB); Buffer#fill with an equal-length value is a
 * memcpy in every case. Lengths are equal by construction.
 */
function copyBytes(from: Uint8Array, to: Uint8Array): void {
  if (to.length === 0) return;
  Buffer.from(to.buffer, to.byteOffset, to.length).fill(from);
}
