/**
 * The NBD fast path (DESIGN.md io/): when an export's volume is a plain LUN
 * on the worker engine, READ and WRITE data live in the engine's shared slot
 * arena from socket to file and back.
 *
 *  - READ: a slot is taken, the LUN reads into `slot.data` (the Volume call
 *    with an arena buffer goes to the workers in place), the reply header is
 *    written into the slot's header room and header + data leave as one
 *    buffer; the slot is freed when the socket write completes.
 *  - WRITE: a slot is taken when the request header arrives, the payload goes
 *    into `slot.data` (by the kernel, see direct-read.ts, or copied from the
 *    received chunks), and the LUN writes it from there.
 *
 * Requests still go through the export's Volume (the VolumeStack, then the
 * Lun), so validation, the read-only switch, closing, error mapping and
 * restack's drain are the same as on the generic path; only the buffers
 * differ. "Plain LUN" is checked per request (`FastExport.active`): with a
 * copy-service layer stacked, the generic path runs, unless that one layer
 * sits directly on the LUN and says it passes slots (`SlotPassingLayer`,
 * e.g. the PPRC mirror layer).
 *
 * Slots are shared by every connection of every LUN on the engine. Waiting
 * for the I/O workers is fine (it always ends); waiting for a client is not.
 * So slot bytes held on a client's behalf (a payload still arriving, a reply
 * the socket has not taken) are "pinned" against a budget of half the arena
 * (SlotBudget), and a connection pins at most half of that in replies
 * beyond its first: past either, the request takes the generic path (the
 * payload into process memory) or the reply is copied out of its slot. The
 * fast path never waits for a slot: none free means the generic path, whose
 * engine copy waits its turn in the arena's queue.
 */
import type { IoSlot, SlotArena } from '../io/slot-arena.js';
import { VolumeStack } from '../volume/volume-stack.js';
import type { Volume } from '../volume/volume.js';
import type { ByteQueue } from './byte-queue.js';
import * as C from './constants.js';
import { writeU64 } from './wire.js';

/**
 * A layer that keeps the fast path when it is the only one over the LUN:
 * reads go to `below` with the caller's `into`, and a write's buffer is not
 * used once the call settled (so the slot may be freed then).
 */
export interface SlotPassingLayer {
  readonly passesSlots: true;
  readonly below: Volume;
}

function passesSlots(v: Volume): v is Volume & SlotPassingLayer {
  return (v as Partial<SlotPassingLayer>).passesSlots === true;
}

/**
 * A Volume that can hand protocol servers its I/O engine's slot arena
 * (store/lun.ts). One that is not itself the LUN (a PPRC link channel) also
 * says, per request, whether its requests still reach the LUN with the slot.
 */
interface FastPathVolume {
  fastPath(): { arena: SlotArena } | undefined;
  fastPathActive?(): boolean;
}

/** Slot bytes pinned on clients' behalf across every connection sharing one arena. */
export class SlotBudget {
  private pinned = 0;
  /** Reply bytes one connection may keep pinned (beyond its first reply): half the budget, so one slow client cannot take it all. */
  readonly perConnection: number;

  constructor(readonly limit: number) {
    this.perConnection = Math.floor(limit / 2);
  }

  get bytes(): number {
    return this.pinned;
  }

  tryPin(bytes: number): boolean {
    if (this.pinned + bytes > this.limit) return false;
    this.pinned += bytes;
    return true;
  }

  unpin(bytes: number): void {
    this.pinned -= bytes;
  }
}

const budgets = new WeakMap<SlotArena, SlotBudget>();

/** The one budget of `arena`: half of it may be pinned by clients, the rest stays for I/O. */
export function slotBudget(arena: SlotArena): SlotBudget {
  let b = budgets.get(arena);
  if (!b) {
    b = new SlotBudget(Math.floor(arena.buffer.byteLength / 2));
    budgets.set(arena, b);
  }
  return b;
}

/** An export that can take the fast path while no layer is stacked over its LUN. */
export class FastExport {
  constructor(
    /** The export's volume: requests go through it (a VolumeStack or the Lun itself). */
    readonly volume: Volume,
    private readonly stack: VolumeStack | undefined,
    readonly arena: SlotArena,
    readonly budget: SlotBudget,
    private readonly check?: () => boolean,
  ) {}

  /** Checked per request: no copy-service layer is active (or only one that passes slots), requests reach the LUN with the slot. */
  get active(): boolean {
    if (this.check) return this.check();
    if (this.stack === undefined) return true;
    const top = this.stack.current;
    return top === this.stack.base || (passesSlots(top) && top.below === this.stack.base);
  }
}

/** The fast-path view of an export's volume, or undefined when its bottom is not a LUN on the worker engine. */
export function fastExportOf(volume: Volume): FastExport | undefined {
  const stack = volume instanceof VolumeStack ? volume : undefined;
  const base = stack ? stack.base : volume;
  const fastPath = (base as Partial<FastPathVolume>).fastPath;
  if (typeof fastPath !== 'function') return undefined;
  const info = fastPath.call(base);
  if (!info) return undefined;
  const check = stack ? undefined : (base as Partial<FastPathVolume>).fastPathActive?.bind(base);
  return new FastExport(volume, stack, info.arena, slotBudget(info.arena), check);
}

/** True when `data` is `slot.data` from its start (what a read into the slot resolves to). */
export function isSlotData(data: Uint8Array, slot: IoSlot): boolean {
  return data.buffer === slot.data.buffer && data.byteOffset === slot.data.byteOffset;
}

/**
 * The READ reply for `length` bytes already in `slot.data`: the header
 * (simple reply, or one OFFSET_DATA chunk with DONE) goes into the slot's
 * header room, and the returned buffer is header + data, contiguous.
 */
export function readReplyFrame(slot: IoSlot, structured: boolean, cookie: bigint, offset: number, length: number): Buffer {
  if (!structured) {
    const f = slot.frame(C.NBD_SIMPLE_REPLY_SIZE, length);
    f.writeUInt32BE(C.NBD_SIMPLE_REPLY_MAGIC, 0);
    f.writeUInt32BE(C.NBD_SUCCESS, 4);
    f.writeBigUInt64BE(cookie, 8);
    return f;
  }
  const h = C.NBD_STRUCTURED_REPLY_SIZE + 8;
  const f = slot.frame(h, length);
  f.writeUInt32BE(C.NBD_STRUCTURED_REPLY_MAGIC, 0);
  f.writeUInt16BE(C.NBD_REPLY_FLAG_DONE, 4);
  f.writeUInt16BE(C.NBD_REPLY_TYPE_OFFSET_DATA, 6);
  f.writeBigUInt64BE(cookie, 8);
  f.writeUInt32BE(8 + length, 16);
  writeU64(f, offset, C.NBD_STRUCTURED_REPLY_SIZE);
  return f;
}

/**
 * Copy `length` bytes into `target` at `at` with plain memcpy speed. Both
 * TypedArray#set and Buffer#copy copy into a SharedArrayBuffer with relaxed
 * atomics, byte by byte when source and target alignment differ (measured
 * ~18x slower for 1 MiB); Buffer#fill with a buffer exactly as long as the
 * range is one memcpy in Node's C++.
 */
export function copyBytes(target: Buffer, at: number, source: Uint8Array): void {
  if (source.length > 0) target.fill(source, at, at + source.length);
}

/** Move up to `n` received bytes from `queue` into `target` at `at`; returns the count moved. */
export function copyQueueInto(queue: ByteQueue, target: Buffer, at: number, n: number): number {
  let moved = 0;
  for (const c of queue.takeChunks(n)) {
    copyBytes(target, at + moved, c);
    moved += c.length;
  }
  return moved;
}

/** A copy of `slot.data[0, length)` in process memory. */
export function copyOut(slot: IoSlot, length: number): Buffer {
  const out = Buffer.allocUnsafe(length);
  copyBytes(out, 0, length === slot.capacity ? slot.data : slot.data.subarray(0, length));
  return out;
}
