/**
 * WorkerIoEngine: the hot I/O path. A few worker threads share one slot arena
 * (request data), one descriptor table (request parameters and results) and an
 * Int32 submission + completion ring each, all SharedArrayBuffers:
 *
 *  - submit: fill a descriptor, append its index to a worker's submission ring;
 *    every submission of one JavaScript turn is published with one Atomics.store
 *    of the ring tail (a microtask), and the worker is notified only if it sleeps.
 *  - complete: the worker appends to its completion ring, bumps a shared doorbell
 *    and notifies only if the main thread is waiting; one Atomics.waitAsync wake
 *    on the main thread drains every worker's completions.
 *  - no postMessage and no piscina task per request; postMessage only carries
 *    LUN open/resize/close, which workers pull with receiveMessageOnPort.
 *
 * LUN -> worker mapping: each LUN has a home worker (the one with the fewest LUNs
 * when it opened). Keeping a LUN's requests on one worker makes its batches
 * larger (fewer wake-ups per request, the cost that dominates small I/O), lets
 * FUA writes and flushes of a batch share one fdatasync, and keeps several busy
 * LUNs spread over the workers. Measured on 2 cores, one LUN at QD32: spilling
 * to the second worker at 8 or 16 outstanding lost 7-33% of 4k random-read IOPS
 * and did not help writes (buffered writes to one ext4 file serialise on its
 * inode lock), so a LUN spills only past `spillDepth` (32) outstanding requests,
 * e.g. while its home worker is stuck in a slow fdatasync or a huge transfer.
 * Segment fds are opened once by the main thread and shared (fds are
 * process-wide), so any worker can serve any LUN; fdatasync works on the file,
 * so a flush on one worker covers writes completed by all of them.
 *
 * Completions are published once per drained batch (or every 64 requests / 1 MiB):
 * every publish can cost a cross-thread wake-up, and per-request publishing
 * measured more CPU per request without more throughput.
 */
import { EventEmitter } from 'node:events';
import os from 'node:os';
import { MessageChannel, Worker, type MessagePort } from 'node:worker_threads';
import { LunrigError } from '../errors.js';
import { native } from '../native/index.js';
import { workerUrl } from '../util/worker-url.js';
import type { IoEngine, LunBackend, LunBackendSpec } from './backend.js';
import {
  controlInts,
  CTL_DOORBELL,
  CTL_MAIN_WAITING,
  D_ERROR_LEN,
  D_FLAGS,
  D_LUN,
  D_OP,
  D_SRC_LUN,
  D_STATUS,
  DESC_BYTES,
  DESC_F64S,
  DESC_INTS,
  ERROR_AREA_START,
  F_DATA,
  F_DATA_CAPACITY,
  F_DEADLINE,
  F_LENGTH,
  F_OFFSET,
  F_RESULT,
  F_SRC_OFFSET,
  OP_EXIT,
  ringViews,
  W_BATCHES,
  W_CQ_TAIL,
  W_CTRL_POSTED,
  W_FDATASYNCS,
  W_SLEEPING,
  W_SQ_TAIL,
  W_WAKES,
  workerBase,
  type ControlMessage,
  type WorkerInit,
} from './protocol.js';
import { SlotArena, type IoSlot, type SlotClass } from './slot-arena.js';
import { decodeError } from './wire-error.js';
import { WorkerLunBackend } from './worker-backend.js';
import { IoRequest } from './io-request.js';

export interface WorkerIoEngineOptions {
  /** I/O worker threads; default min(2, os.availableParallelism()). */
  workers?: number;
  /** Slot size classes of the shared arena (see DEFAULT_SLOT_CLASSES). */
  slotClasses?: readonly SlotClass[];
  /** Descriptors, i.e. requests in flight across all LUNs; default 2048. */
  maxInFlight?: number;
  /** Requests outstanding on a LUN's home worker before new ones spill to a less loaded worker; default 32 (see the header). */
  spillDepth?: number;
  /** Microseconds a worker polls its empty ring before sleeping; default 0 (on 2 cores spinning steals CPU from the main thread). */
  spinMicros?: number;
  /**
   * Completions after which a worker publishes mid-batch (it also does after 1 MiB
   * of data, and at the end of every batch); default 64. Publishing once per batch
   * measured the least CPU per request: every publish may cost a cross-thread wake-up.
   */
  publishEvery?: number;
  /**
   * Reads of at most this many bytes first try preadv2(RWF_NOWAIT) on the
   * calling thread: a page-cache hit costs ~1 us there, against a hand-off
   * and two thread wake-ups (~45 us CPU each on a small VM) through a worker.
   * A miss (or a partly cached range) goes to a worker as usual. Needs the
   * native addon; 0 turns it off. Default 64 KiB.
   */
  cachedReadMax?: number;
}

export interface WorkerDiagnostics {
  index: number;
  alive: boolean;
  outstanding: number;
  fdatasyncs: number;
  batches: number;
  wakes: number;
}

interface WorkerHandle {
  index: number;
  base: number;
  thread: Worker;
  port: MessagePort;
  sq: Int32Array;
  cq: Int32Array;
  sqTail: number;
  cqHead: number;
  dirty: boolean;
  alive: boolean;
  outstanding: number;
  homed: number;
  exited: Promise<void>;
}

type WaitAsync = (
  typedArray: Int32Array,
  index: number,
  value: number,
) => { async: false; value: 'not-equal' | 'timed-out' } | { async: true; value: Promise<'ok' | 'timed-out'> };
const waitAsync = (Atomics as unknown as { waitAsync?: WaitAsync }).waitAsync;

function ceilPow2(n: number): number {
  let p = 1;
  while (p < n) p *= 2;
  return p;
}

export class WorkerIoEngine extends EventEmitter implements IoEngine {
  private static readonly byArena = new WeakMap<SlotArena, WorkerIoEngine>();
  readonly name = 'worker';
  readonly arena: SlotArena;
  private readonly control: SharedArrayBuffer;
  private readonly ctl: Int32Array;
  private readonly descriptors: SharedArrayBuffer;
  private readonly di: Int32Array;
  private readonly df: Float64Array;
  private readonly du8: Uint8Array;
  private readonly ringCapacity: number;
  private readonly mask: number;
  private readonly workers: WorkerHandle[] = [];
  private readonly requests: (IoRequest | undefined)[];
  private readonly freeDescriptors: number[] = [];
  private readonly backlog: IoRequest[] = [];
  private readonly dirty: WorkerHandle[] = [];
  private readonly backends = new Set<WorkerLunBackend>();
  private readonly spillDepth: number;
  private readonly workerCount: number;
  private readonly keepAlive: NodeJS.Timeout;
  private nextLun = 1;
  private inFlight = 0;
  private cachedReads = 0;
  /** See WorkerIoEngineOptions.cachedReadMax; 0 without the native addon. */
  readonly cachedReadMax: number;
  private publishScheduled = false;
  private armed = false;
  private state: 'running' | 'closing' | 'closed' = 'running';
  private idleWaiters: (() => void)[] = [];
  private closing: Promise<void> | undefined;
  private readonly publishNow = (): void => this.publish();
  private readonly onWake = (): void => {
    // Workers stop notifying until the next arm(): completions get drained now anyway.
    Atomics.store(this.ctl, CTL_MAIN_WAITING, 0);
    this.armed = false;
    this.arm();
  };

  /** Starts the workers and resolves once each has loaded. */
  static async start(options: WorkerIoEngineOptions = {}): Promise<WorkerIoEngine> {
    const engine = new WorkerIoEngine(options);
    try {
      await engine.spawnAll(options);
    } catch (err) {
      await engine.terminateAll();
      throw err;
    }
    return engine;
  }

  private constructor(options: WorkerIoEngineOptions) {
    super();
    if (!waitAsync) throw new LunrigError('NOT_SUPPORTED', 'Atomics.waitAsync is not available in this Node.js');
    const workers = options.workers ?? Math.min(2, os.availableParallelism());
    if (!Number.isInteger(workers) || workers < 1) throw new LunrigError('INVALID_CONFIG', `workers must be >= 1, got ${workers}`);
    this.workerCount = workers;
    const maxInFlight = options.maxInFlight ?? 2048;
    this.spillDepth = options.spillDepth ?? 32;
    const cachedReadMax = options.cachedReadMax ?? 64 * 1024;
    if (!Number.isSafeInteger(cachedReadMax) || cachedReadMax < 0) throw new LunrigError('INVALID_CONFIG', `cachedReadMax must be >= 0, got ${cachedReadMax}`);
    this.cachedReadMax = native.syscalls ? cachedReadMax : 0;
    this.arena = new SlotArena(options.slotClasses);
    WorkerIoEngine.byArena.set(this.arena, this);
    this.control = new SharedArrayBuffer(controlInts(workers) * 4);
    this.ctl = new Int32Array(this.control);
    this.descriptors = new SharedArrayBuffer(maxInFlight * DESC_BYTES);
    this.di = new Int32Array(this.descriptors);
    this.df = new Float64Array(this.descriptors);
    this.du8 = new Uint8Array(this.descriptors);
    this.ringCapacity = ceilPow2(maxInFlight);
    this.mask = this.ringCapacity - 1;
    this.requests = new Array<IoRequest | undefined>(maxInFlight).fill(undefined);
    for (let d = maxInFlight - 1; d >= 0; d--) this.freeDescriptors.push(d);
    // Workers are unref'd so an idle engine never holds the process open; this
    // timer is ref'd only while requests are in flight (a pending waitAsync does not count).
    this.keepAlive = setInterval(() => undefined, 1 << 30);
    this.keepAlive.unref();
  }

  private async spawnAll(options: WorkerIoEngineOptions): Promise<void> {
    const url = workerUrl(import.meta.url, './io-worker.js');
    const count = this.workerCount;
    const rings = new SharedArrayBuffer(2 * this.ringCapacity * 4 * count);
    const ready: Promise<void>[] = [];
    for (let index = 0; index < count; index++) {
      const { port1, port2 } = new MessageChannel();
      const init: WorkerInit & { port: MessagePort } = {
        index,
        control: this.control,
        descriptors: this.descriptors,
        rings,
        ringCapacity: this.ringCapacity,
        arena: this.arena.buffer,
        spinMicros: options.spinMicros ?? 0,
        publishEvery: options.publishEvery ?? 64,
        port: port2,
      };
      const thread = new Worker(url, { workerData: init, transferList: [port2], name: `lunrig-io-${index}` });
      thread.unref();
      const { sq, cq } = ringViews(rings, this.ringCapacity, index);
      let exitedResolve!: () => void;
      const handle: WorkerHandle = {
        index,
        base: workerBase(index),
        thread,
        port: port1,
        sq,
        cq,
        sqTail: 0,
        cqHead: 0,
        dirty: false,
        alive: true,
        outstanding: 0,
        homed: 0,
        exited: new Promise<void>((resolve) => (exitedResolve = resolve)),
      };
      this.workers.push(handle);
      // The worker says 'ready' once its modules loaded (a missing build or addon fails here).
      ready.push(
        new Promise<void>((resolve, reject) => {
          port1.once('message', () => {
            port1.unref();
            resolve();
          });
          thread.once('error', reject);
          thread.once('exit', (code) => reject(new LunrigError('IO_ERROR', `I/O worker ${index} exited during start (code ${code})`)));
        }),
      );
      thread.on('error', (err) => this.onWorkerDeath(handle, err));
      thread.on('exit', (code) => {
        exitedResolve();
        if (handle.alive) this.onWorkerDeath(handle, new Error(`I/O worker ${index} exited with code ${code}`));
      });
    }
    await Promise.all(ready);
  }

  async open(spec: LunBackendSpec): Promise<LunBackend> {
    return this.openBackend(spec);
  }

  /** Like open(), typed with the slot-level API (readIntoSlot / writeFromSlot). */
  async openBackend(spec: LunBackendSpec): Promise<WorkerLunBackend> {
    this.assertRunning();
    // Count the LUN on its home before the await, so concurrent opens spread out.
    const home = this.leastHomed();
    home.homed++;
    try {
      const backend = await WorkerLunBackend.open(this, this.nextLun++, spec, home.index);
      this.backends.add(backend);
      return backend;
    } catch (err) {
      home.homed--;
      throw err;
    }
  }

  /** Largest length one slot holds (the slot-level API's request limit). */
  get maxSlotLength(): number {
    return this.arena.maxLength;
  }

  /** A shared slot for the slot-level API; waits while every fitting slot is busy. */
  acquireSlot(length: number): Promise<IoSlot> {
    return this.arena.acquire(length);
  }

  tryAcquireSlot(length: number): IoSlot | undefined {
    return this.arena.tryAcquire(length);
  }

  diagnostics(): WorkerDiagnostics[] {
    return this.workers.map((w) => ({
      index: w.index,
      alive: w.alive,
      outstanding: w.outstanding,
      fdatasyncs: Atomics.load(this.ctl, w.base + W_FDATASYNCS),
      batches: Atomics.load(this.ctl, w.base + W_BATCHES),
      wakes: Atomics.load(this.ctl, w.base + W_WAKES),
    }));
  }

  /** Total fdatasync calls made by the workers (diagnostics and tests). */
  /** Reads served from the page cache on the calling thread (see cachedReadMax). */
  cachedReadCount(): number {
    return this.cachedReads;
  }

  /** @internal WorkerLunBackend counts its cached reads here. */
  countCachedRead(): void {
    this.cachedReads++;
  }

  fdatasyncCount(): number {
    return this.diagnostics().reduce((sum, w) => sum + w.fdatasyncs, 0);
  }

  /** @internal Test hook: the worker thread, to simulate a crash. */
  workerThreadForTest(index: number): Worker | undefined {
    return this.workers[index]?.thread;
  }

  async close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    if (this.state === 'running') this.state = 'closing';
    this.keepAlive.ref();
    try {
      await this.whenIdle();
      await Promise.allSettled([...this.backends].map((b) => b.close()));
      for (const w of this.workers) if (w.alive) this.submitExit(w);
      this.state = 'closed';
      await this.whenIdle();
      const timeout = new Promise<void>((resolve) => setTimeout(resolve, 5000).unref());
      await Promise.race([Promise.all(this.workers.map((w) => w.exited)), timeout]);
      await this.terminateAll();
    } finally {
      this.state = 'closed';
      clearInterval(this.keepAlive);
    }
  }

  private async terminateAll(): Promise<void> {
    for (const w of this.workers) w.alive = false;
    await Promise.allSettled(this.workers.map((w) => w.thread.terminate()));
  }

  // ---- internal API used by WorkerLunBackend ------------------------------------------------

  /** @internal False once close() began: new requests are refused, admitted ones drain. */
  get accepting(): boolean {
    return this.state === 'running';
  }

  private assertRunning(): void {
    if (this.state !== 'running') throw new LunrigError('CLOSED', 'I/O engine is closed');
  }

  /** The engine whose slot arena `arena` is (a LUN's fastPath() names only its arena). */
  static ofArena(arena: SlotArena): WorkerIoEngine | undefined {
    return WorkerIoEngine.byArena.get(arena);
  }

  /** The open LUN backend over these segment files, if any. */
  backendFor(segments: readonly string[]): WorkerLunBackend | undefined {
    for (const b of this.backends) if (b.segments[0] === segments[0]) return b;
    return undefined;
  }

  /** True when `backend` is one of this engine's open LUNs (OP_COPY needs both ends in one engine). */
  owns(backend: WorkerLunBackend): boolean {
    return this.backends.has(backend);
  }

  /** @internal Sends a LUN registration or removal to every live worker. */
  postControl(message: ControlMessage): void {
    for (const w of this.workers) {
      if (!w.alive) continue;
      w.port.postMessage(message);
      // Counted after the post, before any submission that depends on it is published.
      Atomics.add(this.ctl, w.base + W_CTRL_POSTED, 1);
    }
  }

  /** @internal */
  forgetBackend(backend: WorkerLunBackend): void {
    if (!this.backends.delete(backend)) return;
    const home = this.workers[backend.home];
    if (home) home.homed--;
  }

  /** @internal Queues a request; its `done` runs on completion (also for failures to submit). */
  submit(req: IoRequest): void {
    if (this.state === 'closed' && req.op !== OP_EXIT) {
      req.done(new LunrigError('CLOSED', 'I/O engine is closed'), 0);
      return;
    }
    const desc = this.freeDescriptors.pop();
    if (desc === undefined) {
      this.backlog.push(req);
      return;
    }
    this.dispatch(desc, req);
  }

  private dispatch(desc: number, req: IoRequest): void {
    const w = req.op === OP_EXIT ? this.workers[req.offset] : this.pickWorker(req.backend);
    if (!w || !w.alive) {
      this.freeDescriptors.push(desc);
      req.done(new LunrigError('IO_ERROR', 'no I/O worker is running'), 0);
      return;
    }
    const ib = desc * DESC_INTS;
    const fb = desc * DESC_F64S;
    const di = this.di;
    const df = this.df;
    di[ib + D_OP] = req.op;
    di[ib + D_LUN] = req.backend?.id ?? 0;
    di[ib + D_FLAGS] = req.flags;
    di[ib + D_STATUS] = 0;
    df[fb + F_OFFSET] = req.offset;
    df[fb + F_LENGTH] = req.length;
    const slot = req.slot;
    df[fb + F_DATA] = slot ? slot.dataOffset : -1;
    df[fb + F_DATA_CAPACITY] = slot ? slot.capacity : 0;
    df[fb + F_RESULT] = 0;
    di[ib + D_SRC_LUN] = req.source?.id ?? 0;
    df[fb + F_SRC_OFFSET] = req.sourceOffset;
    df[fb + F_DEADLINE] = req.deadline;
    this.requests[desc] = req;
    req.worker = w.index;
    w.outstanding++;
    w.sq[w.sqTail & this.mask] = desc;
    w.sqTail = (w.sqTail + 1) | 0;
    if (!w.dirty) {
      w.dirty = true;
      this.dirty.push(w);
    }
    if (this.inFlight++ === 0) this.keepAlive.ref();
    if (!this.publishScheduled) {
      this.publishScheduled = true;
      queueMicrotask(this.publishNow);
    }
  }

  private pickWorker(backend: WorkerLunBackend | undefined): WorkerHandle | undefined {
    const home = backend ? this.workers[backend.home] : undefined;
    if (home && home.alive && home.outstanding < this.spillDepth) return home;
    let best: WorkerHandle | undefined;
    for (const w of this.workers) {
      if (w.alive && (!best || w.outstanding < best.outstanding)) best = w;
    }
    return home && home.alive && best && best.outstanding >= home.outstanding ? home : best;
  }

  private leastHomed(): WorkerHandle {
    let best: WorkerHandle | undefined;
    for (const w of this.workers) if (w.alive && (!best || w.homed < best.homed)) best = w;
    if (!best) throw new LunrigError('IO_ERROR', 'no I/O worker is running');
    return best;
  }

  /** Publishes this turn's submissions: one tail store per worker, a notify only for sleepers. */
  private publish(): void {
    this.publishScheduled = false;
    const ctl = this.ctl;
    for (const w of this.dirty) {
      w.dirty = false;
      Atomics.store(ctl, w.base + W_SQ_TAIL, w.sqTail);
      if (Atomics.load(ctl, w.base + W_SLEEPING) === 1) Atomics.notify(ctl, w.base + W_SQ_TAIL, 1);
    }
    this.dirty.length = 0;
    if (!this.armed) this.arm();
  }

  /**
   * Drains completions, then waits on the doorbell while requests are in flight.
   * MAIN_WAITING is raised only after the waiter is registered: a worker that
   * bumps the doorbell later either sees the flag and notifies, or bumped it
   * before the flag was raised, which the re-check below catches (the main
   * thread then wakes its own waiter). A bump before registration makes
   * waitAsync return at once ('not-equal').
   */
  private arm(): void {
    const ctl = this.ctl;
    for (;;) {
      const seen = Atomics.load(ctl, CTL_DOORBELL);
      this.drain();
      if (this.inFlight === 0) return;
      const r = waitAsync!(ctl, CTL_DOORBELL, seen);
      if (!r.async) continue;
      this.armed = true;
      void r.value.then(this.onWake);
      Atomics.store(ctl, CTL_MAIN_WAITING, 1);
      if (Atomics.load(ctl, CTL_DOORBELL) !== seen) Atomics.notify(ctl, CTL_DOORBELL);
      return;
    }
  }

  private drain(): void {
    for (const w of this.workers) {
      if (!w.alive) continue;
      const tail = Atomics.load(this.ctl, w.base + W_CQ_TAIL);
      while (w.cqHead !== tail) {
        const desc = w.cq[w.cqHead & this.mask]!;
        w.cqHead = (w.cqHead + 1) | 0;
        this.finish(desc, w, undefined);
      }
    }
  }

  private finish(desc: number, w: WorkerHandle, forced: LunrigError | undefined): void {
    const req = this.requests[desc];
    if (!req) return;
    this.requests[desc] = undefined;
    w.outstanding--;
    let err = forced;
    let result = 0;
    if (!err) {
      // The result counts on failure too (OP_MIRROR_WRITE says how far it got).
      result = this.df[desc * DESC_F64S + F_RESULT]!;
      const status = this.di[desc * DESC_INTS + D_STATUS]!;
      if (status !== 0) {
        const start = desc * DESC_BYTES + ERROR_AREA_START;
        err = decodeError(status, this.du8.subarray(start, start + (DESC_BYTES - ERROR_AREA_START)), this.di[desc * DESC_INTS + D_ERROR_LEN]!);
      }
    }
    const next = this.backlog.shift();
    if (next) this.dispatch(desc, next);
    else this.freeDescriptors.push(desc);
    if (--this.inFlight === 0) {
      this.keepAlive.unref();
      if (this.state !== 'running') this.keepAlive.ref();
    }
    try {
      req.done(err, result);
    } finally {
      if (this.inFlight === 0 && this.backlog.length === 0 && this.idleWaiters.length > 0) {
        const waiters = this.idleWaiters;
        this.idleWaiters = [];
        for (const wake of waiters) wake();
      }
    }
  }

  private whenIdle(): Promise<void> {
    if (this.inFlight === 0 && this.backlog.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private submitExit(w: WorkerHandle): void {
    this.submit(new IoRequest(undefined, OP_EXIT, 0, w.index, 0, undefined, () => undefined));
  }

  /** A worker died: fail what it held, move its LUNs, tell listeners. The engine keeps running on the others. */
  private onWorkerDeath(w: WorkerHandle, error: unknown): void {
    if (!w.alive) return;
    this.drain();
    w.alive = false;
    const failure = new LunrigError('IO_ERROR', `I/O worker ${w.index} stopped: ${(error as Error)?.message ?? String(error)}`, undefined, {
      cause: error,
    });
    this.requests.forEach((req, desc) => {
      if (req && req.worker === w.index) this.finish(desc, w, failure);
    });
    const survivor = this.workers.find((o) => o.alive);
    for (const b of this.backends) {
      if (b.home === w.index && survivor) {
        b.home = survivor.index;
        survivor.homed++;
      }
    }
    if (this.state === 'running') this.emit('worker-error', { worker: w.index, error: failure });
  }
}
