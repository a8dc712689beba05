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
