/**
 * The wire format between the main thread and the I/O workers: everything lives
 * in SharedArrayBuffers, so a request costs a few typed-array stores and no
 * postMessage. Both sides import these constants (the worker from dist/).
 *
 * Control block (Int32Array, one per engine), each hot word on its own 64-byte line
 * so the main thread and a worker never write the same cache line:
 *   DOORBELL      bumped by a worker after publishing completions
 *   MAIN_WAITING  1 while the main thread has an Atomics.waitAsync armed on DOORBELL
 *   per worker w, at workerBase(w):
 *     SQ_TAIL       submissions published by the main thread (worker keeps its head privately)
 *     SLEEPING      1 while the worker is (about to be) blocked in Atomics.wait on SQ_TAIL
 *     CTRL_POSTED   control messages posted to the worker's MessagePort
 *     CQ_TAIL       completions published by the worker (main keeps its head privately)
 *     FDATASYNCS    fdatasync calls made by the worker (diagnostics)
 *     BATCHES       batches drained (diagnostics)
 *     WAKES         times the worker blocked and was woken (diagnostics)
 * Rings (Int32Array per worker, submission then completion) hold descriptor indices;
 * their capacity is at least the descriptor count, so they can never overflow.
 */

export const CACHE_LINE_INTS = 16;

export const CTL_DOORBELL = 0;
export const CTL_MAIN_WAITING = CACHE_LINE_INTS;
const CTL_WORKERS_BASE = 2 * CACHE_LINE_INTS;
const CTL_WORKER_STRIDE = 3 * CACHE_LINE_INTS;

/** Offsets relative to workerBase(w). SQ_TAIL/SLEEPING/CTRL_POSTED are written by main-side code, CQ_* by the worker. */
export const W_SQ_TAIL = 0;
export const W_SLEEPING = CACHE_LINE_INTS;
export const W_CTRL_POSTED = 1;
export const W_CQ_TAIL = 2 * CACHE_LINE_INTS;
export const W_FDATASYNCS = 2 * CACHE_LINE_INTS + 1;
export const W_BATCHES = 2 * CACHE_LINE_INTS + 2;
export const W_WAKES = 2 * CACHE_LINE_INTS + 3;

export function workerBase(worker: number): number {
  return CTL_WORKERS_BASE + worker * CTL_WORKER_STRIDE;
}

export function controlInts(workers: number): number {
  return CTL_WORKERS_BASE + workers * CTL_WORKER_STRIDE;
}

/**
 * Descriptor table: one fixed-size record per in-flight request.
 * Int32 view indices (record base = d * DESC_INTS):
 */
export const DESC_BYTES = 256;
export const DESC_INTS = DESC_BYTES / 4;
export const DESC_F64S = DESC_BYTES / 8;
export const D_OP = 0;
export const D_LUN = 1;
export const D_FLAGS = 2;
/** 0 = ok, otherwise 1 + index into ERROR_CODES; details in the error area. */
export const D_STATUS = 3;
/** Length in bytes of the UTF-8 JSON error record in the error area. */
export const D_ERROR_LEN = 4;
/** OP_COPY: handle of the LUN copied from (D_LUN is the LUN written). */
export const D_SRC_LUN = 5;
/** Float64 view indices (record base = d * DESC_F64S). */
export const F_OFFSET = 3;
export const F_LENGTH = 4;
/** Byte offset in the slot arena where the request's data starts (-1: none). */
export const F_DATA = 5;
/** Capacity in bytes of that data area (for blockStatus output). */
export const F_DATA_CAPACITY = 6;
/** Op-specific result: blockStatus extent count. */
export const F_RESULT = 7;
/** OP_COPY: offset in the source LUN (F_OFFSET is the offset written in D_LUN). */
export const F_SRC_OFFSET = 8;
/** OP_MIRROR_WRITE: Date.now() after which the primary write must not start (0: none). */
export const F_DEADLINE = 9;
/** Error area: bytes [ERROR_AREA_START, DESC_BYTES) of the record. */
export const ERROR_AREA_START = 80;
export const ERROR_AREA_BYTES = DESC_BYTES - ERROR_AREA_START;

export const OP_READ = 1;
export const OP_WRITE = 2;
export const OP_WRITE_ZEROES = 3;
export const OP_TRIM = 4;
export const OP_FLUSH = 5;
export const OP_BLOCK_STATUS = 6;
/** Ends the worker loop; the worker then exits. */
export const OP_EXIT = 7;
/**
 * Copies F_LENGTH bytes from LUN D_SRC_LUN at F_SRC_OFFSET to LUN D_LUN at
 * F_OFFSET on the worker (copy_file_range where the kernel can, else through a
 * worker-local buffer); source holes become holes. A write to D_LUN: FLAG_FUA
 * holds it for the batch's group commit like a FUA write.
 */
export const OP_COPY = 8;
/**
 * A synchronous mirror write of a local PPRC pair in one request: the slot's
 * data is written to LUN D_SRC_LUN (the secondary) and then, only if that
 * succeeded and F_DEADLINE has not passed, to LUN D_LUN (the primary), both
 * at F_OFFSET. F_RESULT says how far it got (MIRROR_*), on failure too: an
 * error with MIRROR_SECONDARY_DONE failed on the primary after the secondary
 * had the data. FLAG_FUA: both files are in the batch's group commit.
 */
export const OP_MIRROR_WRITE = 9;
/** F_RESULT of OP_MIRROR_WRITE: nothing written (or the secondary write failed). */
export const MIRROR_NONE = 0;
/** The secondary has the data; the primary write failed or (no error) was skipped past the deadline. */
export const MIRROR_SECONDARY_DONE = 1;
/** Both written. */
export const MIRROR_BOTH_DONE = 2;

export const OP_NAMES: Readonly<Record<number, string>> = {
  [OP_READ]: 'read',
  [OP_WRITE]: 'write',
  [OP_WRITE_ZEROES]: 'writeZeroes',
  [OP_TRIM]: 'trim',
  [OP_FLUSH]: 'flush',
  [OP_BLOCK_STATUS]: 'blockStatus',
  [OP_EXIT]: 'exit',
  [OP_COPY]: 'copy',
  [OP_MIRROR_WRITE]: 'mirrorWrite',
};

export const FLAG_FUA = 1;
export const FLAG_NO_HOLE = 2;

/** blockStatus output: pairs of Float64 (length, kind) in the request's data area. */
export const EXTENT_RECORD_BYTES = 16;
export const KIND_DATA = 0;
export const KIND_HOLE = 1;
export const KIND_ZERO = 2;

/** Messages on a worker's control port (rare: LUN open/resize/close). */
export type ControlMessage =
  | { type: 'lun'; lun: number; fds: number[]; segmentSize: number; size: number; readOnly: boolean }
  | { type: 'drop-lun'; lun: number };

export interface WorkerInit {
  index: number;
  control: SharedArrayBuffer;
  descriptors: SharedArrayBuffer;
  rings: SharedArrayBuffer;
  ringCapacity: number;
  arena: SharedArrayBuffer;
  /** Microseconds a worker polls its ring before sleeping (0: sleep at once). */
  spinMicros: number;
  /** Completions after which a worker publishes mid-batch (it also does after 1 MiB of data). */
  publishEvery: number;
}

/** Ring views for worker w: submission ring then completion ring, each ringCapacity ints. */
export function ringViews(rings: SharedArrayBuffer, ringCapacity: number, worker: number): { sq: Int32Array; cq: Int32Array } {
  const base = worker * 2 * ringCapacity * 4;
  return {
    sq: new Int32Array(rings, base, ringCapacity),
    cq: new Int32Array(rings, base + ringCapacity * 4, ringCapacity),
  };
}
