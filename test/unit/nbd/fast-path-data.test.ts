/**
 * The NBD fast path (src/nbd/fast-path.ts) moves READ and WRITE data of a
 * worker-engine LUN through arena slots: these check that the bytes are the
 * bytes (unaligned, tiny, 32 MiB, simple and structured replies, with and
 * without direct reads), that requests really took the fast path, and that
 * every slot comes back.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import * as C from '../../../src/nbd/constants.js';
import { MiB, pattern, startFastFixture, type FastFixture } from './fast-path-fixture.js';

let f: FastFixture;

afterEach(async () => {
  await f?.close();
});

describe.each([
  { name: 'direct reads', directReads: true },
  { name: 'payloads copied from received chunks', directReads: false },
])('fast path data integrity ($name)', ({ directReads }) => {
  beforeEach(async () => {
    f = await startFastFixture({ luns: [{ name: 'lun0', size: 80 * MiB }], server: { directReads } });
  });

  it.each([
    { structuredReplies: true, label: 'structured replies' },
    { structuredReplies: false, label: 'simple replies' },
  ])('unaligned and odd-sized WRITE/READ read back byte for byte ($label)', async ({ structuredReplies }) => {
    const c = await f.connect('lun0', { structuredReplies, metaContexts: structuredReplies ? undefined : [] });
    const cases = [
      [0, 1],
      [1, 4095],
      [4095, 4097],
      [12345, 65537],
      [3 * MiB - 7, MiB + 3],
      [7 * MiB + 1, 3 * 64 * 1024],
    ] as const;
    // Neighbours overlap by a byte or so: written one after the other, the later one wins.
    for (const [i, [offset, length]] of cases.entries()) await c.write(offset, pattern(length, i + 1));
    const image = Buffer.alloc(9 * MiB);
    for (const [i, [offset, length]] of cases.entries()) pattern(length, i + 1).copy(image, offset);
    for (const [i, [offset, length]] of cases.entries()) {
      expect(Buffer.from(await c.read(offset, length)).equals(image.subarray(offset, offset + length)), `case ${i}`).toBe(true);
    }
    const s = f.server.stats()[0]!;
    expect(s.fastRequests).toBe(2 * cases.length);
    expect(s.directReads).toBe(directReads);
    await f.expectNoLeaks();
  });

  it('32 MiB requests (the maximum payload) in both directions, FUA included', async () => {
    const c = await f.connect();
    const big = pattern(32 * MiB, 77);
    await c.write(5 * MiB + 3, big, { fua: true });
    const back = Buffer.from(await c.read(5 * MiB + 3, 32 * MiB));
    expect(back.equals(big)).toBe(true);
    expect(f.server.stats()[0]!.fastRequests).toBe(2);
    await f.expectNoLeaks();
  });

  it('many requests in flight, answered out of order; requests nobody overlapped read back exactly', async () => {
    const c = await f.connect('lun0', { maxInFlight: 128 });
    const n = 400;
    const sizes = [512, 4096, 4096 + 17, 65536, 200_000];
    const writes = Array.from({ length: n }, (_, i) => {
      const length = sizes[i % sizes.length]!;
      return { offset: (i * 211_111) % (70 * MiB), data: pattern(length, 1000 + i) };
    });
    await Promise.all(writes.map((w) => c.write(w.offset, w.data)));
    const reads = await Promise.all(writes.map((w) => c.read(w.offset, w.data.length)));
    // Writes ran concurrently: where two overlap the result is either; only non-overlapped ones are exact.
    const covered = new Uint16Array(80 * MiB / 512);
    for (const w of writes) for (let b = Math.floor(w.offset / 512); b <= Math.floor((w.offset + w.data.length - 1) / 512); b++) covered[b]!++;
    let exact = 0;
    reads.forEach((r, i) => {
      const w = writes[i]!;
      let alone = true;
      for (let b = Math.floor(w.offset / 512); b <= Math.floor((w.offset + w.data.length - 1) / 512); b++) if (covered[b]! > 1) alone = false;
      if (alone) {
        expect(Buffer.from(r).equals(w.data), `request ${i}`).toBe(true);
        exact++;
      }
    });
    expect(exact).toBeGreaterThan(n / 2);
    await f.expectNoLeaks();
  });

  it('a DF read and a zero-length read keep their reply shapes', async () => {
    const c = await f.connect();
    await c.write(0, pattern(300_000, 5));
    const df = await c.request({ type: C.NBD_CMD_READ, flags: C.NBD_CMD_FLAG_DF, offset: 0, length: 300_000 });
    expect(df.chunkTypes).toEqual([C.NBD_REPLY_TYPE_OFFSET_DATA]);
    expect(df.data!.equals(pattern(300_000, 5))).toBe(true);
    const empty = await c.request({ type: C.NBD_CMD_READ, offset: 0, length: 0 });
    expect(empty).toMatchObject({ errno: 0, chunkTypes: [C.NBD_REPLY_TYPE_NONE] });
    // A hole is sent as data on the fast path (one OFFSET_DATA chunk, zeros).
    const hole = await c.request({ type: C.NBD_CMD_READ, offset: 40 * MiB, length: MiB });
    expect(hole.chunkTypes).toEqual([C.NBD_REPLY_TYPE_OFFSET_DATA]);
    expect(hole.data!.every((b) => b === 0)).toBe(true);
    await f.expectNoLeaks();
  });
});

describe('fast path switched off', () => {
  it('fastPath: false serves the same LUN on the generic path', async () => {
    f = await startFastFixture({ server: { fastPath: false } });
    const c = await f.connect();
    await c.write(100, pattern(70_000, 3));
    expect(Buffer.from(await c.read(100, 70_000)).equals(pattern(70_000, 3))).toBe(true);
    expect(f.server.stats()[0]).toMatchObject({ fastRequests: 0, directReads: false });
  });
});
