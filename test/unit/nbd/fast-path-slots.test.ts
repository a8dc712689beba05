/**
 * Slots are a shared, finite resource (fast-path.ts): with a tiny arena and
 * many connections every request still completes with the right bytes (the
 * fast path falls back rather than fail or wait on a client), a client that
 * stops reading cannot take every slot, and no slot is lost when clients go
 * away mid-request: the arena's free count returns to where it started.
 */
import { afterEach, describe, expect, it } from 'vitest';
import * as C from '../../../src/nbd/constants.js';
import { encodeRequestHeader } from '../../../src/nbd/request-codec.js';
import { slotBudget } from '../../../src/nbd/fast-path.js';
import { RawConnection, sleep, waitFor } from './harness.js';
import { MiB, pattern, startFastFixture, type FastFixture } from './fast-path-fixture.js';

/** 8 x 4 KiB, 4 x 64 KiB, 6 x 1 MiB: about 6.3 MiB, so a budget of ~3.2 MiB and ~1.6 MiB of replies per connection. */
const TINY = [
  { capacity: 4096, count: 8 },
  { capacity: 64 * 1024, count: 4 },
  { capacity: MiB, count: 6 },
];

let f: FastFixture;
const raws: RawConnection[] = [];

afterEach(async () => {
  for (const r of raws.splice(0)) r.destroy();
  await f?.close();
});

async function rawAttach(structured = true): Promise<RawConnection> {
  const r = await RawConnection.open(f.path);
  raws.push(r);
  await r.attach('lun0', { structured });
  return r;
}

function header(type: number, offset: number, length: number, cookie: bigint): Buffer {
  return encodeRequestHeader({ type, flags: 0, cookie, offset, length });
}

describe.each([{ directReads: true }, { directReads: false }])('slots run out (directReads: $directReads)', ({ directReads }) => {
  it('many connections on a tiny arena: every request completes byte for byte, some on the fast path, none lost', async () => {
    f = await startFastFixture({ luns: [{ name: 'lun0', size: 96 * MiB }], slotClasses: TINY, server: { directReads } });
    const sizes = [4096, 5000, 64 * 1024, 300_000, MiB, 2 * MiB + 1];
    const clients = await Promise.all(Array.from({ length: 8 }, () => f.connect('lun0', { maxInFlight: 32 })));
    await Promise.all(
      clients.map(async (c, ci) => {
        const base = ci * 12 * MiB; // disjoint regions per connection, disjoint requests within
        const ops = sizes.flatMap((length, si) => [0, 1, 2].map((k) => ({ offset: base + si * 1_200_000 + k * 400_000 + k, length: Math.min(length, 400_000 - 3), seed: ci * 100 + si * 10 + k })));
        const big = { offset: base + 8 * MiB - 1, length: MiB, seed: ci * 100 + 99 };
        const all = [...ops, big, { offset: base + 9 * MiB + 7, length: 2 * MiB + 1, seed: ci * 100 + 98 }];
        await Promise.all(all.map((o) => c.write(o.offset, pattern(o.length, o.seed))));
        const back = await Promise.all(all.map((o) => c.read(o.offset, o.length)));
        back.forEach((b, i) => expect(Buffer.from(b).equals(pattern(all[i]!.length, all[i]!.seed)), `client ${ci} op ${i}`).toBe(true));
      }),
    );
    const stats = f.server.stats();
    const fast = stats.reduce((n, s) => n + s.fastRequests, 0);
    const requests = stats.reduce((n, s) => n + s.requests, 0);
    expect(fast).toBeGreaterThan(0);
    expect(fast).toBeLessThan(requests); // 14 slots for 8 x 32 requests in flight: many took the generic path
    for (const c of clients) await c.close();
    await f.expectNoLeaks();
  });

  it('a client that stops reading its replies pins at most its share; another client keeps going', async () => {
    f = await startFastFixture({ luns: [{ name: 'lun0', size: 64 * MiB }], slotClasses: TINY, server: { directReads } });
    const budget = slotBudget(f.engine.arena);
    const stalled = await rawAttach();
    stalled.socket.pause(); // never reads a reply
    for (let i = 0; i < 24; i++) stalled.write(header(C.NBD_CMD_READ, i * MiB, MiB, BigInt(i + 1)));
    await sleep(300);
    expect(budget.bytes).toBeLessThanOrEqual(budget.perConnection + MiB);
    const other = await f.connect();
    const data = pattern(3 * MiB + 5, 4);
    await other.write(40 * MiB + 3, data);
    expect(Buffer.from(await other.read(40 * MiB + 3, data.length)).equals(data)).toBe(true);
    for (let i = 0; i < 20; i++) expect(Buffer.from(await other.read(i * 4096, 4096)).length).toBe(4096);
    // The stalled client gets everything once it reads.
    stalled.socket.resume();
    for (let i = 0; i < 24; i++) {
      const h = await stalled.read(C.NBD_STRUCTURED_REPLY_SIZE);
      const len = h.readUInt32BE(16);
      await stalled.read(len);
    }
    await other.close();
    stalled.destroy();
    await f.expectNoLeaks();
  });

  it.each(['destroy', 'end'] as const)('a client that goes away mid-WRITE payload (%s) gives its slot back', async (how) => {
    f = await startFastFixture({ slotClasses: TINY, server: { directReads } });
    const r = await rawAttach();
    r.write(header(C.NBD_CMD_WRITE, 0, MiB, 1n));
    r.write(pattern(300_000, 1));
    await waitFor(() => f.engine.arena.freeCount < f.freeAtStart, 2000, 'the payload slot taken');
    if (how === 'destroy') r.destroy();
    else r.socket.end();
    await r.closed;
    await f.expectNoLeaks();
    expect(f.server.connectionCount).toBe(0);
  });

  it('a client that goes away with reads in flight and replies unsent gives every slot back', async () => {
    f = await startFastFixture({ slotClasses: TINY, server: { directReads } });
    const r = await rawAttach(false);
    r.socket.pause();
    for (let i = 0; i < 30; i++) r.write(header(C.NBD_CMD_READ, (i % 8) * MiB, i % 3 === 0 ? MiB : 4096 * (1 + (i % 5)), BigInt(i + 1)));
    await sleep(50);
    r.destroy();
    await f.expectNoLeaks();
  });

  it('server close with a payload half-read ends the connection and gives the slot back', async () => {
    f = await startFastFixture({ slotClasses: TINY, server: { directReads, limits: { closeGraceMs: 200 } } });
    const r = await rawAttach();
    r.write(header(C.NBD_CMD_WRITE, 0, MiB, 1n));
    r.write(pattern(100_000, 1));
    await waitFor(() => f.engine.arena.freeCount < f.freeAtStart, 2000, 'the payload slot taken');
    await f.server.close();
    await f.expectNoLeaks();
  });
});
