/** SlotArena: size classes, reply-header room, backpressure, ownership. */
import { describe, expect, it } from 'vitest';
import { SLOT_HEADER_ROOM, SlotArena } from '../../../src/io/slot-arena.js';

describe('SlotArena', () => {
  it('hands out the smallest fitting class first and falls back to larger ones', () => {
    const arena = new SlotArena([
      { capacity: 1024 * 1024, count: 1 },
      { capacity: 4096, count: 2 },
    ]);
    expect(arena.maxLength).toBe(1024 * 1024);
    expect(arena.buffer.byteLength).toBe(2 * (SLOT_HEADER_ROOM + 4096) + SLOT_HEADER_ROOM + 1024 * 1024);
    const a = arena.tryAcquire(100)!;
    const b = arena.tryAcquire(4096)!;
    expect([a.capacity, b.capacity]).toEqual([4096, 4096]);
    const c = arena.tryAcquire(1)!;
    expect(c.capacity).toBe(1024 * 1024); // small class exhausted
    expect(arena.tryAcquire(1)).toBeUndefined();
    // Slots never overlap, and each data area is 64-byte aligned with header room in front.
    const spans = [a, b, c].map((s) => [s.dataOffset - SLOT_HEADER_ROOM, s.dataOffset + s.capacity] as const).sort((x, y) => x[0] - y[0]);
    for (let i = 1; i < spans.length; i++) expect(spans[i]![0]).toBeGreaterThanOrEqual(spans[i - 1]![1]);
    for (const s of [a, b, c]) expect(s.dataOffset % 64).toBe(0);
  });

  it('makes waiters wait for a release, in order, and skips those that still do not fit', async () => {
    const arena = new SlotArena([
      { capacity: 4096, count: 1 },
      { capacity: 65536, count: 1 },
    ]);
    const small = arena.tryAcquire(10)!;
    const big = arena.tryAcquire(10)!;
    const order: string[] = [];
    const wantBig = arena.acquire(60000).then((s) => (order.push('big'), s));
    const wantSmall = arena.acquire(100).then((s) => (order.push('small'), s));
    small.release(); // fits only the second waiter
    const s2 = await wantSmall;
    expect(s2.capacity).toBe(4096);
    big.release();
    const b2 = await wantBig;
    expect(b2.capacity).toBe(65536);
    expect(order).toEqual(['small', 'big']);
    await expect(arena.acquire(65537)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });

  it('frames a reply header in front of the data in the same memory', () => {
    const arena = new SlotArena([{ capacity: 4096, count: 1 }]);
    const slot = arena.tryAcquire(4096)!;
    slot.data.fill(7, 0, 100);
    const frame = slot.frame(16, 100);
    frame.writeUInt32BE(0x67446698, 0);
    expect(frame.subarray(16).equals(Buffer.alloc(100, 7))).toBe(true);
    expect(Buffer.from(arena.buffer, slot.dataOffset - 16, 4).readUInt32BE(0)).toBe(0x67446698);
    slot.release();
    expect(() => slot.release()).toThrow();
  });

  it('rejects unusable configurations', () => {
    expect(() => new SlotArena([])).toThrow(/at least one/);
    expect(() => new SlotArena([{ capacity: 100, count: 1 }])).toThrow(/multiple of 64/);
  });
});
