/** Terminate, failover, split mirror, failback, rsQueryComplete (spec §3.7, §3.8): PP-29..PP-36. */
import { afterEach, describe, expect, it } from 'vitest';
import { seededRandom, testSeed } from '../../helpers/seeded-random.js';
import { TRACK, closeAll, closeEss, connect, drive, duplexPair, expectCode, pattern, peek, site, until } from './harness.js';

afterEach(closeAll);

describe('PPRC terminate, failover, split mirror, failback', () => {
  it('PP-29 X8 terminate on the source: both simplex, the secondary readable with every acknowledged write; later writes neither mirrored nor recorded', async () => {
    const s = await site();
    await duplexPair(s);
    const p = s.e1.pool.volume('p');
    for (let i = 0; i < 6; i++) await p.write(i * 70_000, pattern(i, i * 70_000));
    const q = await s.e1.pprc.terminate('p', { from: 'source' });
    expect(q).toMatchObject({ role: 'simplex', suspended: false });
    expect(s.e2.pprc.query('s')).toMatchObject({ role: 'simplex', suspended: false });
    const sd = s.e2.pool.volume('s');
    for (let i = 0; i < 6; i++) expect(Buffer.from(await sd.read(i * 70_000, 4096)).equals(pattern(i, i * 70_000))).toBe(true);
    await p.write(0, pattern(99, 0));
    expect(Buffer.from(await sd.read(0, 4096)).equals(pattern(0, 0))).toBe(true);
    expect(s.e1.pprc.list()).toEqual([]);
    expect(s.e1.pprc.query('p').oosTracks).toBe(0);
  });

  it('PP-30 PP-31 X6 primary-ESS failure during random writes: target/suspended and unreadable; terminate on the target makes it readable with every acknowledged write; E1 back reports source/suspended', async () => {
    const rand = seededRandom(testSeed('PP-30'));
    const s = await site();
    await duplexPair(s);
    const p = s.e1.pool.volume('p');
    const blocks = [...Array(256).keys()].sort(() => rand() - 0.5);
    const acked = new Map<number, Buffer>();
    let snapshot: Map<number, Buffer> | undefined;
    let next = 0;
    const writer = async () => {
      while (next < blocks.length && !snapshot) {
        const b = blocks[next++]!;
        const data = pattern(b + 7, b * 4096);
        try {
          await p.write(b * 4096, data);
          acked.set(b, data);
        } catch {
          // Writes after the failure may fail: they were never acknowledged.
        }
      }
    };
    const writers = [writer(), writer(), writer()];
    while (acked.size < 40) await new Promise((r) => setImmediate(r));
    snapshot = new Map(acked);
    expect(await s.e2.pprc.primaryLost('FCA24')).toEqual(['s']);
    await Promise.all(writers);
    const q = s.e2.pprc.query('s');
    expect(q).toMatchObject({ role: 'target', suspended: true, suspendReason: 'primary-lost' });
    expect(q.ess[1]).toMatch(/^State=target, status=suspended,/);
    await expectCode(s.e2.pool.volume('s').read(0, 4096), 'PPRC_SECONDARY_NOT_ACCESSIBLE');
    await s.e2.pprc.terminate('s', { from: 'target' });
    expect(s.e2.pprc.query('s').role).toBe('simplex');
    const sd = s.e2.pool.volume('s');
    for (const [b, data] of snapshot) expect(Buffer.from(await sd.read(b * 4096, 4096)).equals(data)).toBe(true);
    // PP-31: when E1 returns it shows source / suspended, not simplex.
    await s.restartE1();
    const back = s.e1.pprc.query('p');
    expect(back).toMatchObject({ role: 'source', suspended: true });
    expect(back.ess[1]).toMatch(/^State=source, status=suspended,/);
  });

  it('PP-32 split mirror: suspend, terminate on the target only; writes to P recorded; OUT_OF_SYNC_ONLY (suspended source, simplex target) copies only those and reaches DUPLEX', async () => {
    const s = await site();
    await duplexPair(s);
    await s.e1.pprc.suspend('p');
    await s.e2.pprc.terminate('s');
    expect(s.e1.pprc.query('p')).toMatchObject({ role: 'source', suspended: true });
    expect(s.e2.pprc.query('s').role).toBe('simplex');
    await s.e2.pool.volume('s').read(0, 4096);
    const p = s.e1.pool.volume('p');
    for (const t of [1, 2, 12]) await p.write(t * TRACK, pattern(t, t * TRACK));
    expect(s.e1.pprc.query('p').oosTracks).toBe(3);
    const info = await s.e1.pprc.establish({ primary: 'p', secondary: { ess: 'FCA31', volume: 's' }, mode: 'out-of-sync-only' });
    expect(info.oosTracks).toBe(3);
    const done = await s.e1.pprc.waitForCopy('p');
    expect(done).toMatchObject({ state: 'DUPLEX', copiedTracks: 3 });
    expect(s.e2.pprc.query('s').role).toBe('target');
    expect((await peek(s.e2, 's')).equals(await peek(s.e1, 'p'))).toBe(true);
  });

  it('PP-33 split-mirror hazard: a write on the simplex secondary is not tracked and survives the resync; the audit finds it', async () => {
    const s = await site();
    await duplexPair(s);
    await s.e1.pprc.suspend('p');
    await s.e2.pprc.terminate('s');
    const z = Buffer.alloc(4096, 0x5a);
    await s.e2.pool.volume('s').write(9 * TRACK, z);
    await s.e1.pool.volume('p').write(3 * TRACK, pattern(3, 3 * TRACK));
    await s.e1.pprc.establish({ primary: 'p', secondary: { ess: 'FCA31', volume: 's' }, mode: 'out-of-sync-only' });
    await s.e1.pprc.waitForCopy('p');
    expect(s.e1.pprc.query('p').state).toBe('DUPLEX');
    expect((await peek(s.e2, 's', 9 * TRACK, 4096)).equals(z)).toBe(true);
    expect((await peek(s.e1, 'p', 9 * TRACK, 4096)).equals(z)).toBe(false);
    expect(await s.e1.pprc.audit('p')).toMatchObject({ differing: [9], tracks: 16 });
  });

  it('PP-34 failback: reverse path, Sd -> P NO_COPY, suspend, 5 tracks written on Sd; OUT_OF_SYNC_ONLY copies exactly 5 tracks to P', async () => {
    const s = await site();
    await duplexPair(s);
    await s.e1.pprc.terminate('p');
    await s.e2.pprc.addLink({ id: 'r1', to: 'FCA24' });
    await s.e2.pprc.establishPath({ lss: 0x10, to: 'FCA24', targetLss: 0x10, links: ['r1'] });
    const rev = await s.e2.pprc.establish({ primary: 's', secondary: { ess: 'FCA24', volume: 'p' }, mode: 'no-copy' });
    expect(rev.state).toBe('DUPLEX');
    expect(s.e1.pprc.query('p').role).toBe('target');
    await s.e2.pprc.suspend('s');
    const sd = s.e2.pool.volume('s');
    for (const t of [0, 3, 5, 10, 14]) await sd.write(t * TRACK + 100, pattern(t, t * TRACK, 3000));
    const resync = await s.e2.pprc.establish({ primary: 's', secondary: { ess: 'FCA24', volume: 'p' }, mode: 'out-of-sync-only' });
    expect(resync.oosTracks).toBe(5);
    const done = await s.e2.pprc.waitForCopy('s');
    expect(done.copiedTracks).toBe(5);
    expect(s.e2.pprc.links()[0]!.bytes).toBe(5 * TRACK);
    expect((await peek(s.e1, 'p')).equals(await peek(s.e2, 's'))).toBe(true);
  });

  it('PP-35 with no path E2 -> E1 the reverse-direction establish is rejected', async () => {
    const s = await site();
    await duplexPair(s);
    await s.e1.pprc.terminate('p');
    await expectCode(s.e2.pprc.establish({ primary: 's', secondary: { ess: 'FCA24', volume: 'p' }, mode: 'no-copy' }), 'PPRC_NO_PATH');
    expect(s.e2.pprc.query('s').role).toBe('simplex');
  });

  it('PP-36 waitForCopy (rsQueryComplete): threshold 50 resolves at >= 50 % copied, 100 at DUPLEX; a simplex volume is PPRC_NOT_IN_PAIR', async () => {
    const s = await site({ pprc: { copyBatchTracks: 1 } });
    const [l1] = await connect(s);
    await s.e1.pprc.setLinkFault(l1!, { latencyMs: 1 });
    await s.e1.pprc.establish({ primary: 'p', secondary: { ess: 'FCA31', volume: 's' }, mode: 'copy-entire' });
    const half = await drive(s.clock, s.e1.pprc.waitForCopy('p', { thresholdPercent: 50 }));
    expect(half.state).toBe('DUPLEX_PENDING');
    expect(half.percentCopied).toBeGreaterThanOrEqual(50);
    const full = await drive(s.clock, s.e1.pprc.waitForCopy('p'));
    expect(full.state).toBe('DUPLEX');
    expect((await s.e1.pprc.waitForCopy('p', { thresholdPercent: 100 })).state).toBe('DUPLEX');
    await expectCode(s.e1.pprc.waitForCopy('q'), 'PPRC_NOT_IN_PAIR');
  });

  it('X6 by heartbeat on the clock: pings keep an idle pair alive; a silent primary makes the secondary target/suspended (primary-lost)', async () => {
    const s = await site({ pprc: { heartbeat: { timeoutMs: 3000 } } });
    await duplexPair(s);
    for (let i = 0; i < 10; i++) await s.clock.advance(1000);
    expect(s.e2.pprc.query('s').suspended).toBe(false);
    await closeEss(s.e1);
    for (let i = 0; i < 5; i++) await s.clock.advance(1000);
    expect(s.e2.pprc.query('s')).toMatchObject({ role: 'target', suspended: true, suspendReason: 'primary-lost' });
  });

  it('heartbeat: an idle pair whose links all went down suspends without any host write', async () => {
    const s = await site({ pprc: { heartbeat: { timeoutMs: 3000 } } });
    const [l1] = await duplexPair(s);
    await s.e1.pprc.setLinkFault(l1!, { down: true });
    await s.clock.advance(1000);
    await until(() => s.e1.pprc.query('p').state === 'SUSPENDED', 'suspension');
    expect(s.e1.pprc.query('p').suspendReason).toBe('paths-lost');
  });
});
