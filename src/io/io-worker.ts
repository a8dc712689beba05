/**
 * An I/O worker: drains its submission ring, runs each request with synchronous
 * syscalls against SAB-backed views, publishes completions to its completion
 * ring and rings the main thread's doorbell. It blocks in Atomics.wait only when
 * its ring is empty, and it never returns to its event loop while running, so
 * control messages (LUN open/resize/close) are pulled with receiveMessageOnPort.
 *
 * Group commit: FUA writes and flushes of one drained batch are held; after the
 * batch every fd they touched gets one fdatasync, then they complete together.
 * Non-durable completions of the batch are published before the fdatasyncs.
 */
import { receiveMessageOnPort, workerData, type MessagePort } from 'node:worker_threads';
import { fromSystemError, LunrigError } from '../errors.js';
import {
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
  EXTENT_RECORD_BYTES,
  F_DATA,
  F_DATA_CAPACITY,
  F_DEADLINE,
  F_LENGTH,
  F_OFFSET,
  F_RESULT,
  F_SRC_OFFSET,
  FLAG_FUA,
  FLAG_NO_HOLE,
  MIRROR_BOTH_DONE,
  MIRROR_SECONDARY_DONE,
  OP_BLOCK_STATUS,
  OP_COPY,
  OP_EXIT,
  OP_FLUSH,
  OP_MIRROR_WRITE,
  OP_NAMES,
  OP_READ,
  OP_TRIM,
  OP_WRITE,
  OP_WRITE_ZEROES,
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
import { blockStatusSync, copyRangeSync, fdatasyncSync, readSync, writeSync, zeroSync, type SegmentedFile } from './segmented-file.js';
import { encodeError } from './wire-error.js';

interface Lun extends SegmentedFile {
  readOnly: boolean;
}

const init = workerData as WorkerInit & { port: MessagePort };
const port = init.port;
const ctl = new Int32Array(init.control);
const di = new Int32Array(init.descriptors);
const df = new Float64Array(init.descriptors);
const du8 = new Uint8Array(init.descriptors);
const arena = new Uint8Array(init.arena);
const { sq, cq } = ringViews(init.rings, init.ringCapacity, init.index);
const mask = init.ringCapacity - 1;
const base = workerBase(init.index);
const luns = new Map<number, Lun>();

/** Bytes of completed reads/writes after which a batch publishes early. */
const PUBLISH_BYTES = 1024 * 1024;

let sqHead = 0;
let cqTail = 0;
let ctrlSeen = 0;

/** FUA writes / flushes of the current batch, waiting for the batch's fdatasyncs. */
const held: { desc: number; fds: number[] }[] = [];
const syncFds = new Set<number>();
/**
 * fds whose fdatasync failed. The failure sticks until the LUN closes: after a
 * writeback error Linux may have dropped the dirty pages and reports the error
 * only once, so a later fdatasync "succeeding" would acknowledge lost data.
 */
const failedSync = new Map<number, unknown>();

function drainControl(): void {
  const posted = Atomics.load(ctl, base + W_CTRL_POSTED);
  while (ctrlSeen !== posted) {
    const received = receiveMessageOnPort(port);
    if (!received) return;
    ctrlSeen++;
    const msg = received.message as ControlMessage;
    if (msg.type === 'lun') {
      luns.set(msg.lun, { fds: msg.fds, segmentSize: msg.segmentSize, size: msg.size, readOnly: msg.readOnly });
    } else {
      for (const fd of luns.get(msg.lun)?.fds ?? []) failedSync.delete(fd);
      luns.delete(msg.lun);
    }
  }
}

function lunOf(desc: number, field = D_LUN): Lun {
  const id = di[desc * DESC_INTS + field]!;
  let lun = luns.get(id);
  if (!lun) {
    drainControl();
    lun = luns.get(id);
  }
  if (!lun) throw new LunrigError('CLOSED', `LUN handle ${id} is not open in I/O worker ${init.index}`);
  return lun;
}

function fail(desc: number, err: unknown, context: string): void {
  const e = fromSystemError(err, context);
  const start = desc * DESC_BYTES + ERROR_AREA_START;
  const { status, length } = encodeError(e, du8.subarray(start, (desc + 1) * DESC_BYTES));
  di[desc * DESC_INTS + D_STATUS] = status;
  di[desc * DESC_INTS + D_ERROR_LEN] = length;
}

function complete(desc: number): void {
  cq[cqTail & mask] = desc;
  cqTail = (cqTail + 1) | 0;
}

function publish(): void {
  Atomics.store(ctl, base + W_CQ_TAIL, cqTail);
  Atomics.add(ctl, CTL_DOORBELL, 1);
  // Wake the main thread only if it is waiting, and only once per wait.
  if (Atomics.load(ctl, CTL_MAIN_WAITING) === 1 && Atomics.compareExchange(ctl, CTL_MAIN_WAITING, 1, 0) === 1) {
    Atomics.notify(ctl, CTL_DOORBELL);
  }
}

function readOnlyError(): LunrigError {
  return new LunrigError('READ_ONLY', 'LUN is read-only');
}

/** Runs one request; returns false when the request is held for the group commit. */
function run(desc: number, op: number): boolean {
  const ib = desc * DESC_INTS;
  const fb = desc * DESC_F64S;
  const flags = di[ib + D_FLAGS]!;
  const offset = df[fb + F_OFFSET]!;
  const length = df[fb + F_LENGTH]!;
  di[ib + D_STATUS] = 0;
  try {
    const lun = lunOf(desc);
    switch (op) {
      case OP_READ:
        readSync(lun, offset, arena, df[fb + F_DATA]!, length);
        return true;
      case OP_WRITE:
      case OP_WRITE_ZEROES:
      case OP_TRIM: {
        if (lun.readOnly) throw readOnlyError();
        const fua = (flags & FLAG_FUA) !== 0;
        const fds: number[] = [];
        const touched = fua ? (fd: number): void => void fds.push(fd) : undefined;
        if (op === OP_WRITE) writeSync(lun, offset, arena, df[fb + F_DATA]!, length, touched);
        else zeroSync(lun, offset, length, op === OP_WRITE_ZEROES && (flags & FLAG_NO_HOLE) !== 0 ? 'allocate' : 'punch', touched);
        if (!fua) return true;
        hold(desc, fds);
        return false;
      }
      case OP_COPY: {
        if (lun.readOnly) throw readOnlyError();
        const from = lunOf(desc, D_SRC_LUN);
        const fua = (flags & FLAG_FUA) !== 0;
        const fds: number[] = [];
        copyRangeSync(from, df[fb + F_SRC_OFFSET]!, lun, offset, length, fua ? { touched: (fd) => void fds.push(fd) } : {});
        if (!fua) return true;
        hold(desc, fds);
        return false;
      }
      case OP_MIRROR_WRITE: {
        const secondary = lunOf(desc, D_SRC_LUN);
        if (lun.readOnly || secondary.readOnly) throw readOnlyError();
        const fua = (flags & FLAG_FUA) !== 0;
        const fds: number[] = [];
        const touched = fua ? (fd: number): void => void fds.push(fd) : undefined;
        const data = df[fb + F_DATA]!;
        writeSync(secondary, offset, arena, data, length, touched);
        df[fb + F_RESULT] = MIRROR_SECONDARY_DONE;
        // The ack came too late (W2): the primary keeps its old data, the caller fails the write.
        const deadline = df[fb + F_DEADLINE]!;
        if (deadline > 0 && Date.now() > deadline) return true;
        writeSync(lun, offset, arena, data, length, touched);
        df[fb + F_RESULT] = MIRROR_BOTH_DONE;
        if (!fua) return true;
        hold(desc, fds);
        return false;
      }
      case OP_FLUSH:
        hold(desc, lun.fds);
        return false;
      case OP_BLOCK_STATUS: {
        const dataOffset = df[fb + F_DATA]!;
        const records = Math.floor(df[fb + F_DATA_CAPACITY]! / EXTENT_RECORD_BYTES);
        const out = new Float64Array(init.arena, dataOffset, records * 2);
        let count = 0;
        blockStatusSync(lun, offset, length, (n, kind) => {
          if (count === records) return false;
          out[count * 2] = n;
          out[count * 2 + 1] = kind;
          count++;
          return true;
        });
        df[fb + F_RESULT] = count;
        return true;
      }
      default:
        throw new LunrigError('INTERNAL', `unknown I/O op ${op}`);
    }
  } catch (err) {
    fail(desc, err, `${OP_NAMES[op] ?? `op ${op}`} ${offset}+${length}`);
    return true;
  }
}

function hold(desc: number, fds: number[]): void {
  held.push({ desc, fds });
  for (const fd of fds) syncFds.add(fd);
}

/** One fdatasync per fd for everything held in this batch, then complete the held requests. */
function groupCommit(): void {
  for (const fd of syncFds) {
    if (failedSync.has(fd)) continue;
    try {
      fdatasyncSync(fd);
    } catch (err) {
      failedSync.set(fd, err);
    }
    Atomics.add(ctl, base + W_FDATASYNCS, 1);
  }
  for (const { desc, fds } of held) {
    for (const fd of fds) {
      const err = failedSync.get(fd);
      if (err !== undefined) {
        fail(desc, err, 'fdatasync');
        break;
      }
    }
    complete(desc);
  }
  held.length = 0;
  syncFds.clear();
}

function sleepUntilSubmitted(): void {
  if (init.spinMicros > 0) {
    // Poll a little before paying for a futex sleep and the main thread's wake-up syscall.
    const until = performance.now() + init.spinMicros / 1000;
    do {
      for (let i = 0; i < 64; i++) if (Atomics.load(ctl, base + W_SQ_TAIL) !== sqHead) return;
    } while (performance.now() < until);
  }
  Atomics.store(ctl, base + W_SLEEPING, 1);
  // Re-check after announcing sleep: the main thread notifies only when it sees SLEEPING.
  if (Atomics.load(ctl, base + W_SQ_TAIL) === sqHead) {
    Atomics.wait(ctl, base + W_SQ_TAIL, sqHead);
    Atomics.add(ctl, base + W_WAKES, 1);
  }
  Atomics.store(ctl, base + W_SLEEPING, 0);
}

function loop(): void {
  for (;;) {
    const tail = Atomics.load(ctl, base + W_SQ_TAIL);
    if (tail === sqHead) {
      sleepUntilSubmitted();
      continue;
    }
    drainControl();
    Atomics.add(ctl, base + W_BATCHES, 1);
    let exit = false;
    let pending = 0;
    let pendingBytes = 0;
    while (sqHead !== tail) {
      const desc = sq[sqHead & mask]!;
      sqHead = (sqHead + 1) | 0;
      const op = di[desc * DESC_INTS + D_OP]!;
      if (op === OP_EXIT) {
        exit = true;
        complete(desc);
        pending++;
        continue;
      }
      if (run(desc, op)) {
        complete(desc);
        pending++;
        pendingBytes += df[desc * DESC_F64S + F_LENGTH]!;
        // Completions go out once per batch (fewest wake-ups: measured cheapest), but a
        // long batch publishes on the way so large transfers do not wait for each other.
        if (pending >= init.publishEvery || pendingBytes >= PUBLISH_BYTES) {
          publish();
          pending = 0;
          pendingBytes = 0;
        }
      }
    }
    if (pending > 0) publish();
    if (held.length > 0) {
      groupCommit();
      publish();
    }
    if (exit) return;
  }
}

port.postMessage({ type: 'ready' });
loop();
port.close();
