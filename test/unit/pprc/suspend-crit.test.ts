/** Suspension, CRIT / Critical Volume / Critical Heavy, resync (spec §3.6, §3.7): PP-16..PP-25, PP-27, PP-28. */
import { afterEach, describe, expect, it } from 'vitest';
import { seededRandom, testSeed } from '../../helpers/seeded-random.js';
import { TRACK, closeAll, connect, drive, duplexPair, expectCode, pattern, peek, site, type Site } from './harness.js';

afterEach(closeAll);

async function writeTracks(s: Site, tracks: readonly number[], tag: number): Promise<void> {
  const p = s.e1.pool.volume('p');
  for (const t of tracks) await p.write(t * TRACK + 512, pattern(tag + t, t * TRACK, 1024));
}

async function expectMirror(s: Site): Promise<void> {
  expect((await peek(s.e2, 's')).equals(await peek(s.e1, 'p'))).toBe(true);
}

describe('PPRC suspend and resync', () => {
  it('PP-16 manual suspend from the source: suspended on both; writes succeed, are not mirrored, and oosTracks counts the distinct tracks written', async () => {
    const s = await site();
    await duplexPair(s);
    const before = await peek(s.e2, 's');
    await s.e1.pprc.suspend('p', { from: 'source' });
    expect(s.e1.pprc.query('p').ess[1]).toMatch(/^State=source, status=suspended,/);
    expect(s.e2.pprc.query('s').ess[1]).toMatch(/^State=target, status=suspended,/);
    await writeTracks(s, [1, 4, 9], 10);
    await writeTracks(s, [4], 20);
    expect((await peek(s.e2, 's')).equals(before)).toBe(true);
    const q = s.e1.pprc.query('p');
    expect(q.oosTracks).toBe(3);
    expect(q.suspendReason).toBe('manual-source');
    expect(q.writeInhibited).toBe(false);
  });

  it('PP-17 a manual suspend scheduled on the target ESS has the same result', async () => {
    const s = await site();
    await duplexPair(s);
    await s.e2.pprc.suspend('s', { from: 'target' });
    expect(s.e1.pprc.query('p')).toMatchObject({ state: 'SUSPENDED', suspended: true, suspendReason: 'manual-target' });
    expect(s.e2.pprc.query('s').suspended).toBe(true);
    await writeTracks(s, [2, 3], 30);
    expect(s.e1.pprc.query('p').oosTracks).toBe(2);
  });

  it('PP-18 resync after PP-16: DUPLEX_PENDING with the recorded count, exactly those tracks cross the link, DUPLEX with identical content', async () => {
    const s = await site();
    await duplexPair(s);
    await s.e1.pprc.suspend('p');
    await writeTracks(s, [0, 7, 15], 40);
    const linkBefore = s.e1.pprc.links()[0]!;
    const info = await s.e1.pprc.establish({ primary: 'p', secondary: { ess: 'FCA31', volume: 's' }, mode: 'out-of-sync-only' });
    expect(info.state).toBe('DUPLEX_PENDING');
    expect(info.oosTracks).toBe(3);
    const done = await s.e1.pprc.waitForCopy('p');
    expect(done.state).toBe('DUPLEX');
    expect(done.copiedTracks).toBe(3);
    expect(s.e1.pprc.links()[0]!.bytes - linkBefore.bytes).toBe(3 * TRACK);
    expect(s.e2.pprc.query('s').suspended).toBe(false);
    await expectMirror(s);
  });

  it('PP-19 suspend at 40 % of the initial copy, write 10 tracks, resync: oosTracks = leftovers plus the new tracks outside them; content identical', async () => {
    const rand = seededRandom(testSeed('PP-19'));
    const s = await site({ pprc: { copyBatchTracks: 1 } });
    const [l1] = await connect(s);
    await s.e1.pprc.setLinkFault(l1!, { latencyMs: 1 });
    await writeTracks(s, [...Array(16).keys()], 1);
    await s.e1.pprc.establish({ primary: 'p', secondary: { ess: 'FCA31', volume: 's' }, mode: 'copy-entire' });
    await drive(s.clock, s.e1.pprc.waitForCopy('p', { thresholdPercent: 40 }));
    await drive(s.clock, s.e1.pprc.suspend('p'));
    const left = s.e1.pprc.outOfSyncTracks('p');
    expect(left.length).toBeGreaterThan(0);
    expect(left.length).toBeLessThanOrEqual(10);
    const written = new Set<number>();
    while (written.size < 10) written.add(Math.floor(rand() * 16));
    await writeTracks(s, [...written], 50);
    const expected = new Set([...left, ...written]);
    const info = await s.e1.pprc.establish({ primary: 'p', secondary: { ess: 'FCA31', volume: 's' }, mode: 'out-of-sync-only' });
    expect(info.oosTracks).toBe(expected.size);
    await drive(s.clock, s.e1.pprc.waitForCopy('p'));
    await expectMirror(s);
  });

  it('PP-20 X10 with 4 links, 3 down keep DUPLEX and synchronous writes; the 4th down suspends', async () => {
    const s = await site();
    const links = await duplexPair(s, { links: 4 });
    for (const l of links.slice(0, 3)) await s.e1.pprc.setLinkFault(l, { down: true });
    const p = s.e1.pool.volume('p');
    for (let i = 0; i < 4; i++) {
      await p.write(i * TRACK, pattern(60 + i, i * TRACK));
      expect((await peek(s.e2, 's', i * TRACK, 4096)).equals(pattern(60 + i, i * TRACK))).toBe(true);
    }
    expect(s.e1.pprc.query('p').state).toBe('DUPLEX');
    await s.e1.pprc.setLinkFault(links[3]!, { down: true });
    await p.write(5 * TRACK, pattern(70, 5 * TRACK));
    expect(s.e1.pprc.query('p')).toMatchObject({ state: 'SUSPENDED', suspendReason: 'paths-lost', oosTracks: 1 });
  });

  it('PP-21 PP-27 Critical Volume off (Critical Heavy on): all paths lost suspends, later writes succeed and are recorded; links back do not resume', async () => {
    const s = await site();
    await s.e1.pprc.setLss(0x10, { criticalHeavy: true });
    await s.e1.pprc.powerCycle();
    const [l1] = await duplexPair(s);
    await s.e1.pprc.setLinkFault(l1!, { down: true });
    await writeTracks(s, [3, 6], 80);
    expect(s.e1.pprc.query('p')).toMatchObject({ state: 'SUSPENDED', writeInhibited: false, oosTracks: 2 });
    // PP-27 / X11: no automatic resume.
    await s.e1.pprc.setLinkFault(l1!, { down: false });
    await writeTracks(s, [8], 90);
    await s.clock.advance(60_000);
    expect(s.e1.pprc.query('p')).toMatchObject({ state: 'SUSPENDED', oosTracks: 3 });
    await s.e1.pprc.establish({ primary: 'p', secondary: { ess: 'FCA31', volume: 's' }, mode: 'out-of-sync-only' });
    await s.e1.pprc.waitForCopy('p');
    await expectMirror(s);
  });

  it('PP-22 Critical Volume on, Critical Heavy off: a secondary device failure suspends and later writes are recorded', async () => {
    const s = await site();
    await duplexPair(s, { criticalVolume: true });
    s.e2.pprc.setSecondaryDeviceFault('s', true);
    const p = s.e1.pool.volume('p');
    // The write that met the failure gets an I/O error (failedWritePolicy 'error') and the primary keeps the old data.
    await expectCode(p.write(0, pattern(1, 0)), 'IO_ERROR');
    expect((await peek(s.e1, 'p', 0, 4096)).every((b) => b === 0)).toBe(true);
    expect(s.e1.pprc.query('p')).toMatchObject({ state: 'SUSPENDED', suspendReason: 'secondary-device', writeInhibited: false });
    await p.write(TRACK, pattern(2, TRACK));
    expect(s.e1.pprc.query('p').oosTracks).toBe(2);
  });

  it('PP-22 Critical Volume on, Critical Heavy off: all paths lost write-inhibits the primary; reads still succeed', async () => {
    const s = await site();
    const [l1] = await duplexPair(s, { criticalVolume: true });
    const p = s.e1.pool.volume('p');
    await p.write(0, pattern(3, 0));
    await s.e1.pprc.setLinkFault(l1!, { down: true });
    await expectCode(p.write(TRACK, pattern(4, TRACK)), 'PPRC_WRITE_INHIBITED');
    await expectCode(p.write(2 * TRACK, pattern(4, 2 * TRACK)), 'PPRC_WRITE_INHIBITED');
    expect(Buffer.from(await p.read(0, 4096)).equals(pattern(3, 0))).toBe(true);
    expect(s.e1.pprc.query('p')).toMatchObject({ state: 'SUSPENDED', suspendReason: 'paths-lost', writeInhibited: true });
    expect(s.e2.pprc.query('s').writeInhibited).toBe(false);
  });

  it('PP-23 Critical Volume on, Critical Heavy on: any failure suspends, write-inhibits primary and secondary; primary reads succeed', async () => {
    const s = await site();
    await s.e1.pprc.setLss(0x10, { criticalHeavy: true });
    await s.e1.pprc.powerCycle();
    await duplexPair(s, { criticalVolume: true });
    s.e2.pprc.setSecondaryDeviceFault('s', true);
    const p = s.e1.pool.volume('p');
    await expectCode(p.write(0, pattern(1, 0)), 'IO_ERROR');
    await expectCode(p.write(TRACK, pattern(1, TRACK)), 'PPRC_WRITE_INHIBITED');
    expect(s.e1.pprc.query('p')).toMatchObject({ state: 'SUSPENDED', writeInhibited: true });
    expect(s.e2.pprc.query('s')).toMatchObject({ suspended: true, writeInhibited: true });
    await p.read(0, 4096);
  });

  it('PP-24 a write-inhibited primary accepts writes after terminate (both simplex)', async () => {
    const s = await site();
    const [l1] = await duplexPair(s, { criticalVolume: true });
    await s.e1.pprc.setLinkFault(l1!, { down: true });
    const p = s.e1.pool.volume('p');
    await expectCode(p.write(0, pattern(1, 0)), 'PPRC_WRITE_INHIBITED');
    await s.e1.pprc.terminate('p');
    expect(s.e1.pprc.query('p').role).toBe('simplex');
    expect(s.e2.pprc.query('s').role).toBe('simplex');
    await p.write(0, pattern(1, 0));
  });

  it('PP-24 a write-inhibited primary accepts writes after the fault is fixed and an out-of-sync resync', async () => {
    const s = await site();
    const [l1] = await duplexPair(s, { criticalVolume: true });
    await s.e1.pprc.setLinkFault(l1!, { down: true });
    const p = s.e1.pool.volume('p');
    await expectCode(p.write(0, pattern(1, 0)), 'PPRC_WRITE_INHIBITED');
    await s.e1.pprc.setLinkFault(l1!, { down: false });
    await expectCode(p.write(0, pattern(1, 0)), 'PPRC_WRITE_INHIBITED');
    await s.e1.pprc.establish({ primary: 'p', secondary: { ess: 'FCA31', volume: 's' }, mode: 'out-of-sync-only' });
    await p.write(0, pattern(2, 0));
    await s.e1.pprc.waitForCopy('p');
    expect(s.e1.pprc.query('p').writeInhibited).toBe(false);
    await expectMirror(s);
  });

  it('PP-25 a manual suspend of a Critical Volume + Critical Heavy pair does not write-inhibit', async () => {
    const s = await site();
    await s.e1.pprc.setLss(0x10, { criticalHeavy: true });
    await s.e1.pprc.powerCycle();
    await duplexPair(s, { criticalVolume: true });
    await s.e1.pprc.suspend('p');
    await writeTracks(s, [1], 5);
    expect(s.e1.pprc.query('p')).toMatchObject({ writeInhibited: false, oosTracks: 1 });
    expect(s.e2.pprc.query('s').writeInhibited).toBe(false);
  });

  it('PP-28 a CRIT (Critical Heavy) change takes effect only after a power cycle', async () => {
    const s = await site();
    await duplexPair(s, { criticalVolume: true });
    await s.e1.pprc.setLss(0x10, { criticalHeavy: true });
    expect(s.e1.pprc.lssSettings(0x10)).toMatchObject({ criticalHeavy: true, criticalHeavyActive: false });
    s.e2.pprc.setSecondaryDeviceFault('s', true);
    const p = s.e1.pool.volume('p');
    await expectCode(p.write(0, pattern(1, 0)), 'IO_ERROR');
    // Old behaviour (Critical Heavy off): device failure with links up accepts later writes.
    await p.write(TRACK, pattern(2, TRACK));
    expect(s.e1.pprc.query('p').writeInhibited).toBe(false);
    await s.e1.pprc.powerCycle();
    s.e2.pprc.setSecondaryDeviceFault('s', false);
    await s.e1.pprc.establish({ primary: 'p', secondary: { ess: 'FCA31', volume: 's' }, mode: 'out-of-sync-only' });
    await s.e1.pprc.waitForCopy('p');
    s.e2.pprc.setSecondaryDeviceFault('s', true);
    await expectCode(p.write(0, pattern(3, 0)), 'IO_ERROR');
    await expectCode(p.write(TRACK, pattern(4, TRACK)), 'PPRC_WRITE_INHIBITED');
  });

  it('§3.11 COPY_ENTIRE on a suspended pair copies everything; NO_COPY on it only with force', async () => {
    const s = await site();
    await duplexPair(s);
    await s.e1.pprc.suspend('p');
    await writeTracks(s, [2], 7);
    await expectCode(s.e1.pprc.establish({ primary: 'p', secondary: { ess: 'FCA31', volume: 's' }, mode: 'no-copy' }), 'PPRC_INVALID_COPY_MODE');
    expect(s.e1.pprc.query('p').oosTracks).toBe(1);
    const full = await s.e1.pprc.establish({ primary: 'p', secondary: { ess: 'FCA31', volume: 's' }, mode: 'copy-entire' });
    expect(full.oosTracks).toBe(16);
    await s.e1.pprc.waitForCopy('p');
    await s.e1.pprc.suspend('p');
    await writeTracks(s, [3], 8);
    const forced = await s.e1.pprc.establish({ primary: 'p', secondary: { ess: 'FCA31', volume: 's' }, mode: 'no-copy', force: true });
    expect(forced).toMatchObject({ state: 'DUPLEX', oosTracks: 0 });
  });

  it('§3.11 suspend or terminate of a simplex volume is PPRC_NOT_IN_PAIR', async () => {
    const s = await site();
    await expectCode(s.e1.pprc.suspend('p'), 'PPRC_NOT_IN_PAIR');
    await expectCode(s.e1.pprc.terminate('p'), 'PPRC_NOT_IN_PAIR');
    await expectCode(s.e1.pprc.waitForCopy('p'), 'PPRC_NOT_IN_PAIR');
  });
});
