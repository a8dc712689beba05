/**
 * The slot arena: one SharedArrayBuffer shared with every I/O worker, carved
 * into slots of a few size classes. A slot is `headerRoom` bytes followed by
 * its data area, so a protocol layer can write a reply header immediately in
 * front of read data and send header + data as one buffer, without a copy.
 *
 *   | headerRoom (64) | data (capacity) |  ... next slot
 *                     ^ dataOffset (64-byte aligned)
 *
 * The SharedArrayBuffer is committed lazily by the OS, so large classes cost
 * address space, not memory, until they are used.
 */
import { LunrigError } from '../errors.js';

export const SLOT_HEADER_ROOM = 64;

/** Where a request's data lies in the arena: a slot, or any view of the arena (see SlotArena.viewRef). */
export interface SlotRef {
  /** Byte offset of the data in the arena SharedArrayBuffer. */
  readonly dataOffset: number;
  /** Bytes available there. */
  readonly capacity: number;
}

export interface SlotClass {
  /** Data bytes per slot. */
  capacity: number;
  count: number;
}

/**
 * Default classes: small requests (4 KiB-class NBD traffic) get their own slots so
 * they never wait behind large ones; 32 MiB covers the NBD maximum payload.
 */
export const DEFAULT_SLOT_CLASSES: readonly SlotClass[] = [
  { capacity: 4096, count: 512 },
  { capacity: 64 * 1024, count: 128 },
  { capacity: 1024 * 1024, count: 32 },
  { capacity: 32 * 1024 * 1024, count: 2 },
];

/**
 * A piece of the shared arena. `data` is the data area (full capacity); the
 * request length is chosen per request. Release it exactly once, after every
 * request using it has settled (and, for a zero-copy reply, after the socket
 * write completed).
 */
export class IoSlot {
  /** The slot's data area (capacity bytes), a view on the shared arena. */
  readonly data: Buffer;

  constructor(
    private readonly arena: SlotArena,
    readonly id: number,
    readonly classIndex: number,
    /** Byte offset of the data area in the arena SharedArrayBuffer. */
    readonly dataOffset: number,
    readonly capacity: number,
  ) {
    this.data = Buffer.from(arena.buffer, dataOffset, capacity);
  }

  /**
   * A view of `headerLength` header bytes followed by `dataLength` data bytes,
   * for sending a reply in one write: fill its first headerLength bytes, send it.
   */
  frame(headerLength: number, dataLength: number): Buffer {
    if (headerLength > SLOT_HEADER_ROOM || dataLength > this.capacity) {
      throw new LunrigError('INVALID_ARGUMENT', `slot frame ${headerLength}+${dataLength} exceeds ${SLOT_HEADER_ROOM}+${this.capacity}`);
    }
    return Buffer.from(this.arena.buffer, this.dataOffset - headerLength, headerLength + dataLength);
  }

  release(): void {
    this.arena.release(this);
  }
}

interface Waiter {
  length: number;
  resolve: (slot: IoSlot) => void;
}

export class SlotArena {
  readonly buffer: SharedArrayBuffer;
  /** Largest data length one slot can hold. */
  readonly maxLength: number;
  private readonly classes: { capacity: number; free: IoSlot[] }[];
  private readonly waiters: Waiter[] = [];
  private readonly owned: Uint8Array;

  constructor(classes: readonly SlotClass[] = DEFAULT_SLOT_CLASSES) {
    const sorted = [...classes].filter((c) => c.count > 0).sort((a, b) => a.capacity - b.capacity);
    if (sorted.length === 0) throw new LunrigError('INVALID_CONFIG', 'slot arena needs at least one slot class');
    let bytes = 0;
    let slots = 0;
    for (const c of sorted) {
      if (!Number.isSafeInteger(c.capacity) || c.capacity <= 0 || c.capacity % 64 !== 0) {
        throw new LunrigError('INVALID_CONFIG', `slot capacity must be a positive multiple of 64, got ${c.capacity}`);
      }
      bytes += c.count * (SLOT_HEADER_ROOM + c.capacity);
      slots += c.count;
    }
    this.buffer = new SharedArrayBuffer(bytes);
    this.owned = new Uint8Array(slots);
    this.maxLength = sorted[sorted.length - 1]!.capacity;
    this.classes = [];
    let offset = 0;
    let id = 0;
    sorted.forEach((c, classIndex) => {
      const free: IoSlot[] = [];
      for (let i = 0; i < c.count; i++) {
        free.push(new IoSlot(this, id++, classIndex, offset + SLOT_HEADER_ROOM, c.capacity));
        offset += SLOT_HEADER_ROOM + c.capacity;
      }
      free.reverse(); // pop() hands out low addresses first
      this.classes.push({ capacity: c.capacity, free });
    });
  }

  /** Free slots, all classes together (diagnostics and leak checks). */
  get freeCount(): number {
    let n = 0;
    for (const c of this.classes) n += c.free.length;
    return n;
  }

  /**
   * The arena location of `view` when it is a view of this arena (a slot's
   * data, or part of it), else undefined. The worker engine then moves data
   * in place instead of copying it through another slot.
   */
  viewRef(view: Uint8Array): SlotRef | undefined {
    return view.buffer === this.buffer ? { dataOffset: view.byteOffset, capacity: view.byteLength } : undefined;
  }

  /** A free slot holding at least `length` bytes (the smallest class that has one), or undefined. */
  tryAcquire(length: number): IoSlot | undefined {
    for (const c of this.classes) {
      if (c.capacity < length) continue;
      const slot = c.free.pop();
      if (slot) {
        this.owned[slot.id] = 1;
        return slot;
      }
    }
    return undefined;
  }

  /** Waits for a slot when all fitting ones are busy (backpressure). */
  acquire(length: number): Promise<IoSlot> {
    if (length > this.maxLength) {
      return Promise.reject(new LunrigError('INVALID_ARGUMENT', `slot length ${length} exceeds the largest slot (${this.maxLength})`));
    }
    const slot = this.tryAcquire(length);
    if (slot) return Promise.resolve(slot);
    return new Promise((resolve) => this.waiters.push({ length, resolve }));
  }

  release(slot: IoSlot): void {
    if (this.owned[slot.id] !== 1) throw new LunrigError('INTERNAL', `slot ${slot.id} released twice`);
    this.owned[slot.id] = 0;
    this.classes[slot.classIndex]!.free.push(slot);
    if (this.waiters.length > 0) this.serveWaiters();
  }

  /** Hands freed slots to waiters in arrival order, skipping waiters whose size is not free yet. */
  private serveWaiters(): void {
    for (let i = 0; i < this.waiters.length; ) {
      const w = this.waiters[i]!;
      const slot = this.tryAcquire(w.length);
      if (slot) {
        this.waiters.splice(i, 1);
        w.resolve(slot);
      } else {
        i++;
      }
    }
  }
}
