/** The synchronous write protocol (spec §3.5 W1-W6): PP-08, PP-09, PP-10, PP-26, failedWritePolicy. */
import { afterEach, describe, expect, it } from 'vitest';
import { seededRandom, testSeed } from '../../helpers/seeded-random.js';
import { MiB, TRACK, closeAll, connect, drive, driveTimers, duplexPair, expectCode, isSettled, pattern, peek, settle, site } from './harness.js';

afterEach(closeAll);

describe('PPRC synchronous writes', () => {
  it('PP-08 in DUPLEX, when a host write returns, the secondary already holds it', async () => {
    const s = await site();
    await duplexPair(s);
    const p = s.e1.pool.volume('p');
    for (let i = 0; i < 8; i++) {
      const off = i * 40_960;
      await p.write(off, pattern(80 + i, off));
      expect((await peek(s.e2, 's', off, 4096)).equals(pattern(80 + i, off))).toBe(true);
    }
    await p.writeZeroes(0, 4096);
    expect((await peek(s.e2, 's', 0, 4096)).equals(Buffer.alloc(4096))).toBe(true);
    await p.trim(40_960, 4096);
    expect((await peek(s.e2, 's', 40_960, 4096)).equals(Buffer.alloc(4096))).toBe(true);
  });

  it('PP-09 a one-way link delay d adds at least 2d to the median write latency; read latency does not change', async () => {
    const s = await site();
    const [l1] = await duplexPair(s);
    const p = s.e1.pool.volume('p');
    const latency = async (op: () => Promise<unknown>): Promise<number> => {
      const start = s.clock.now();
      await driveTimers(s.clock, op());
      return s.clock.now() - start;
    };
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    const measure = async (tag: number) => {
      const w: number[] = [];
      const r: number[] = [];
      for (let i = 0; i < 5; i++) {
        w.push(await latency(() => p.write(i * 4096, pattern(tag + i, i * 4096))));
        r.push(await latency(() => p.read(i * 4096, 4096)));
      }
      return { write: median(w), read: median(r) };
    };
    const base = await measure(90);
    await s.e1.pprc.setLinkFault(l1!, { latencyMs: 5 });
    const slow = await measure(100);
    expect(base.write).toBe(0);
    expect(slow.write - base.write).toBeGreaterThanOrEqual(10);
    expect(slow.read).toBe(base.read);
    // The 3-handshake model and distance add more: 3 round trips, 5 us/km.
    await s.e1.pprc.setLinkFault(l1!, { latencyMs: 0 });
    const far = await s.e1.pprc.addLink({ id: 'far', to: 'FCA31', distanceKm: 100, handshakes: 3 });
    await s.e1.pprc.establishPath({ lss: 0x10, to: 'FCA31', targetLss: 0x10, links: [far.id], ifExists: 'replace' });
    const start = s.clock.now();
    await driveTimers(s.clock, p.write(0, pattern(7, 0)));
    expect(s.clock.now() - start).toBeCloseTo(3 * 2 * 100 * 0.005, 6);
  });

  it('PP-10 random host writes during the whole initial copy: at DUPLEX secondary == primary and no acknowledged write is missing', async () => {
    const seed = testSeed('PP-10');
    const rand = seededRandom(seed);
    const s = await site({ pprc: { copyBatchTracks: 1, trackSize: '16K' } });
    const [l1] = await connect(s);
    await s.e1.pprc.setLinkFault(l1!, { latencyMs: 1 });
    const p = s.e1.pool.volume('p');
    for (let off = 0; off < MiB; off += 64 * 1024) await p.write(off, pattern(1, off));
    await s.e1.pprc.establish({ primary: 'p', secondary: { ess: 'FCA31', volume: 's' }, mode: 'copy-entire' });
    const acked = new Map<number, Buffer>();
    const busy = new Set<number>();
    let stop = false;
    let writes = 0;
    const writer = async (w: number) => {
      while (!stop) {
        const block = Math.floor(rand() * (MiB / 4096));
        if (busy.has(block)) {
          await settle(1);
          continue;
        }
        busy.add(block);
        const data = pattern(1000 + w * 100_000 + writes++, block * 4096);
        await p.write(block * 4096, data);
        acked.set(block, data);
        busy.delete(block);
      }
    };
    const writers = [0, 1, 2, 3].map(writer);
    const copied = s.e1.pprc.waitForCopy('p');
    const states: string[] = [];
    s.e1.pprc.on('state', (_i, c) => states.push(c.to));
    await drive(s.clock, copied, 1);
    stop = true;
    await drive(s.clock, Promise.all(writers), 1);
    expect(writes).toBeGreaterThan(20);
    expect(states).toEqual(['DUPLEX']);
    expect(s.e1.pprc.query('p').state).toBe('DUPLEX');
    const primary = await peek(s.e1, 'p');
    expect((await peek(s.e2, 's')).equals(primary)).toBe(true);
    for (const [block, data] of acked) expect(primary.subarray(block * 4096, block * 4096 + 4096).equals(data)).toBe(true);
    expect((await s.e1.pprc.audit('p')).differing).toEqual([]);
  });

  it('PP-26 W2 the link drops while a write waits for its ack: after remoteAckTimeout an I/O error, the primary keeps the old data, the pair suspends', async () => {
    const s = await site({ pprc: { remoteAckTimeoutMs: 1000 } });
    const [l1] = await duplexPair(s);
    const p = s.e1.pool.volume('p');
    await p.write(2 * TRACK, pattern(1, 2 * TRACK));
    await s.e1.pprc.setLinkFault(l1!, { latencyMs: 2 });
    const write = p.write(2 * TRACK, pattern(2, 2 * TRACK));
    write.catch(() => undefined);
    await s.clock.advance(1);
    await s.e1.pprc.setLinkFault(l1!, { down: true });
    await s.clock.advance(900);
    expect(await isSettled(write)).toBe(false);
    await s.clock.advance(200);
    await expectCode(write, 'PPRC_ACK_TIMEOUT');
    expect((await peek(s.e1, 'p', 2 * TRACK, 4096)).equals(pattern(1, 2 * TRACK))).toBe(true);
    const sd = await peek(s.e2, 's', 2 * TRACK, 4096);
    expect(sd.equals(pattern(1, 2 * TRACK)) || sd.equals(pattern(2, 2 * TRACK))).toBe(true);
    const q = s.e1.pprc.query('p');
    expect(q.state).toBe('SUSPENDED');
    expect(q.suspendReason).toBe('paths-lost');
    // The track of the failed write is out of sync (the secondary's copy is indeterminate).
    expect(s.e1.pprc.outOfSyncTracks('p')).toEqual([2]);
    // The next write follows the CRIT table: Critical Volume off, so it is accepted and recorded.
    await p.write(5 * TRACK, pattern(3, 5 * TRACK));
    expect(s.e1.pprc.outOfSyncTracks('p')).toEqual([2, 5]);
    expect(s.e2.pprc.query('s').suspended).toBe(true);
  });

  it('PP-20 under load: a link going down fails its in-flight writes at once and they are retried on another up link (DUPLEX kept, no ack timeout); with no link left they fail per W2 and the pair suspends', async () => {
    const s = await site({ pprc: { remoteAckTimeoutMs: 1000 } });
    const [l1, l2] = await duplexPair(s, { links: 2 });
    // l1 slow (400 ms one way), l2 fast (5 ms): a request cut on l1 is visibly resent at once, not at the end of its leg.
    await s.e1.pprc.setLinkFault(l1!, { latencyMs: 400 });
    await s.e1.pprc.setLinkFault(l2!, { latencyMs: 5 });
    const p = s.e1.pool.volume('p');
    const burst = (tag: number, tracks: number[]) => tracks.map((t) => p.write(t * TRACK, pattern(tag + t, t * TRACK)));
    const onL1 = () => s.e1.pprc.links().find((l) => l.id === l1)!;

    // 1. Cut l1 while half the writes are on their way out over it (round robin: even and odd ones).
    let t0 = s.clock.now();
    let writes = burst(10, [0, 1, 2, 3, 4, 5]);
    await settle();
    await s.clock.advance(1);
    const requestsBefore = onL1().requests;
    await s.e1.pprc.setLinkFault(l1!, { down: true });
    // Horizon 50 ms: only l2's trips may move the clock, never the lost requests' 400 ms legs still timed on l1.
    await driveTimers(s.clock, Promise.all(writes), 50);
    // Resent over l2 at once: about two 5 ms trips, not l1's 400 ms leg, nowhere near the 1000 ms ack timeout.
    expect(s.clock.now() - t0).toBeLessThan(100);
    expect(onL1().requests).toBe(requestsBefore);
    expect(s.e1.pprc.query('p')).toMatchObject({ state: 'DUPLEX', oosTracks: 0 });
    for (const t of [0, 1, 2, 3, 4, 5]) expect((await peek(s.e2, 's', t * TRACK, 4096)).equals(pattern(10 + t, t * TRACK)), `S track ${t}`).toBe(true);

    // 2. l1 back; cut it again once its writes reached the secondary and wait for their ack (the ack leg).
    await s.e1.pprc.setLinkFault(l1!, { down: false });
    t0 = s.clock.now();
    writes = burst(20, [6, 7, 8, 9]);
    await settle();
    await driveTimers(s.clock, s.clock.sleep(450), 500);
    expect(onL1().requests).toBeGreaterThan(requestsBefore);
    expect(await isSettled(Promise.all(writes))).toBe(false);
    await s.e1.pprc.setLinkFault(l1!, { down: true });
    await driveTimers(s.clock, Promise.all(writes), 50);
    // The ack over l1 would have come back at 800 ms.
    expect(s.clock.now() - t0).toBeLessThan(500);
    expect(s.e1.pprc.query('p')).toMatchObject({ state: 'DUPLEX', oosTracks: 0 });
    for (const t of [6, 7, 8, 9]) {
      expect((await peek(s.e1, 'p', t * TRACK, 4096)).equals(pattern(20 + t, t * TRACK)), `P track ${t}`).toBe(true);
      expect((await peek(s.e2, 's', t * TRACK, 4096)).equals(pattern(20 + t, t * TRACK)), `S track ${t}`).toBe(true);
    }

    // 3. The last link goes down under writes in flight: nothing to retry on; W2 (ack timeout, old data kept), then CRIT.
    writes = burst(30, [10, 11]);
    for (const w of writes) w.catch(() => undefined);
    await settle();
    await s.clock.advance(1);
    await s.e1.pprc.setLinkFault(l2!, { down: true });
    await s.clock.advance(900);
    expect(await isSettled(Promise.all(writes))).toBe(false);
    await s.clock.advance(200);
    for (const w of writes) await expectCode(w, 'PPRC_ACK_TIMEOUT');
    expect(s.e1.pprc.query('p')).toMatchObject({ state: 'SUSPENDED', suspendReason: 'paths-lost' });
    expect(s.e1.pprc.outOfSyncTracks('p')).toEqual([10, 11]);
    for (const t of [10, 11]) expect((await peek(s.e1, 'p', t * TRACK, 4096)).equals(Buffer.alloc(4096)), `P track ${t} keeps its old data`).toBe(true);
  });

  it("W2 failedWritePolicy 'suspend-and-complete': the write whose ack timed out is recorded and completes", async () => {
    const s = await site({ pprc: { remoteAckTimeoutMs: 500, failedWritePolicy: 'suspend-and-complete' } });
    const [l1] = await duplexPair(s);
    const p = s.e1.pool.volume('p');
    await s.e1.pprc.setLinkFault(l1!, { latencyMs: 2 });
    const write = p.write(0, pattern(9, 0));
    await s.clock.advance(1);
    await s.e1.pprc.setLinkFault(l1!, { down: true });
    await drive(s.clock, write, 50);
    expect((await peek(s.e1, 'p', 0, 4096)).equals(pattern(9, 0))).toBe(true);
    expect(s.e1.pprc.query('p').state).toBe('SUSPENDED');
    expect(s.e1.pprc.outOfSyncTracks('p')).toEqual([0]);
  });

  it('W3 reads of the primary never wait for the secondary', async () => {
    const s = await site();
    const [l1] = await duplexPair(s);
    await s.e1.pprc.setLinkFault(l1!, { latencyMs: 50 });
    const p = s.e1.pool.volume('p');
    const write = p.write(0, pattern(5, 0));
    await settle();
    // The write is stuck on the link; a read of the same block is served at once (old data).
    expect((await p.read(0, 4096)).every((b) => b === 0)).toBe(true);
    await drive(s.clock, write, 10);
    expect(Buffer.from(await p.read(0, 4096)).equals(pattern(5, 0))).toBe(true);
  });

  it('§3.10 link bandwidth: a write takes its transfer time at the link rate, transfers on one link queue', async () => {
    const s = await site();
    const [l1] = await duplexPair(s);
    await s.e1.pprc.setLinkFault(l1!, { bandwidth: 4096 });
    const p = s.e1.pool.volume('p');
    const start = s.clock.now();
    await driveTimers(s.clock, Promise.all([p.write(0, pattern(1, 0)), p.write(TRACK, pattern(2, TRACK))]), 5000);
    expect(s.clock.now() - start).toBe(2000);
    expect((await peek(s.e2, 's', TRACK, 4096)).equals(pattern(2, TRACK))).toBe(true);
  });
});
