import { describe, expect, it } from 'vitest';
import { ByteQueue, joinChunks } from '../../../src/nbd/byte-queue.js';

const buf = (...bytes: number[]): Buffer => Buffer.from(bytes);

describe('ByteQueue (incremental parsing, spec/nbd.md §9.2: no Buffer.concat per chunk)', () => {
  it('returns a view, not a copy, when the bytes lie in one chunk', () => {
    const q = new ByteQueue();
    const chunk = buf(1, 2, 3, 4, 5);
    q.push(chunk);
    const v = q.take(3);
    expect([...v]).toEqual([1, 2, 3]);
    expect(v.buffer).toBe(chunk.buffer);
    expect(q.length).toBe(2);
  });

  it('copies only when a message straddles chunks', () => {
    const q = new ByteQueue();
    q.push(buf(1, 2));
    q.push(buf(3));
    q.push(buf(4, 5, 6));
    expect([...q.peek(5)]).toEqual([1, 2, 3, 4, 5]);
    expect(q.length).toBe(6);
    expect([...q.take(4)]).toEqual([1, 2, 3, 4]);
    expect([...q.take(2)]).toEqual([5, 6]);
    expect(q.length).toBe(0);
  });

  it('skips, copies into a target and hands out chunk views', () => {
    const q = new ByteQueue();
    q.push(buf(1, 2, 3));
    q.push(buf(4, 5, 6, 7));
    expect(q.skip(2)).toBe(2);
    const target = new Uint8Array(4);
    expect(q.copyInto(target, 1, 3)).toBe(3);
    expect([...target]).toEqual([0, 3, 4, 5]);
    const views = q.takeChunks(10);
    expect(views.map((v) => [...v])).toEqual([[6, 7]]);
    expect(q.skip(5)).toBe(0);
  });

  it('ignores empty chunks and joins views', () => {
    const q = new ByteQueue();
    q.push(Buffer.alloc(0));
    expect(q.length).toBe(0);
    q.push(buf(1, 2));
    q.push(buf(3));
    const views = q.takeChunks(3);
    expect([...joinChunks(views, 3)]).toEqual([1, 2, 3]);
    expect(joinChunks([buf(9)], 1)).toEqual(buf(9));
  });
});
