/** PPRC establish: paths, preconditions, states (spec §3.2-§3.4, PP-01..PP-07, PP-11..PP-13, PP-37). */
import { afterEach, describe, expect, it } from 'vitest';
import { MiB, TRACK, closeAll, connect, drive, expectCode, pattern, peek, site } from './harness.js';

afterEach(closeAll);

describe('PPRC establish', () => {
  it('PP-01 without a path E1:0x10 -> E2:0x10 establish is rejected with PPRC_NO_PATH and both stay simplex', async () => {
    const s = await site();
    await s.e1.pprc.addLink({ id: 'l1', to: 'FCA31' });
    await expectCode(s.e1.pprc.establish({ primary: 'p', secondary: { ess: 'FCA31', volume: 's' }, mode: 'copy-entire' }), 'PPRC_NO_PATH');
    expect(s.e1.pprc.query('p').role).toBe('simplex');
    expect(s.e2.pprc.query('s').role).toBe('simplex');
    expect(s.e1.pprc.list()).toEqual([]);
  });

  it('PP-02 paths are unidirectional: with only E1 -> E2, establish E2 -> E1 is rejected', async () => {
    const s = await site();
    await connect(s);
    await expectCode(s.e2.pprc.establish({ primary: 's', secondary: { ess: 'FCA24', volume: 'p' }, mode: 'copy-entire' }), 'PPRC_NO_PATH');
    expect(s.e2.pprc.query('s').role).toBe('simplex');
    expect(s.e1.pprc.query('p').role).toBe('simplex');
  });

  it('PP-03 path establish: skip-if-exists reports not executed and changes nothing; force removal replaces the path with exactly the new set', async () => {
    const s = await site();
    for (const id of ['l1', 'l2', 'l3']) await s.e1.pprc.addLink({ id, to: 'FCA31' });
    const first = await s.e1.pprc.establishPath({ lss: 0x10, to: 'FCA31', targetLss: 0x10, links: ['l1', 'l2'] });
    expect(first.notExecuted).toBe(false);
    const before = s.e1.pprc.paths();
    const skipped = await s.e1.pprc.establishPath({ lss: 0x10, to: 'FCA31', targetLss: 0x10, links: ['l3'], ifExists: 'skip' });
    expect(skipped.notExecuted).toBe(true);
    expect(s.e1.pprc.paths()).toEqual(before);
    const replaced = await s.e1.pprc.establishPath({ lss: '10', to: 'FCA31', targetLss: '0x10', links: ['l3'], ifExists: 'replace' });
    expect(replaced.notExecuted).toBe(false);
    expect(s.e1.pprc.paths()).toEqual([{ lss: 0x10, to: 'FCA31', targetLss: 0x10, links: ['l3'] }]);
  });

  it('PP-04 primary and secondary in the same LSS are rejected; two LSSs of the same ESS are accepted', async () => {
    const s = await site();
    await s.e1.pprc.addLink({ id: 'self', to: 'FCA24' });
    await s.e1.pprc.establishPath({ lss: 0x11, to: 'FCA24', targetLss: 0x11, links: ['self'] });
    await s.e1.pprc.establishPath({ lss: 0x10, to: 'FCA24', targetLss: 0x11, links: ['self'] });
    await expectCode(s.e1.pprc.establish({ primary: 'p2', secondary: { volume: 'q' }, mode: 'copy-entire' }), 'PPRC_SAME_LSS');
    expect(s.e1.pprc.query('q').role).toBe('simplex');
    await s.e1.pool.volume('p').write(0, pattern(4, 0));
    await s.e1.pprc.establish({ primary: 'p', secondary: { volume: 'q' }, mode: 'copy-entire' });
    await s.e1.pprc.waitForCopy('p');
    expect(s.e1.pprc.query('p').role).toBe('source');
    expect(s.e1.pprc.query('q').role).toBe('target');
    expect((await peek(s.e1, 'q')).equals(await peek(s.e1, 'p'))).toBe(true);
  });

  it('PP-05 a secondary smaller than the primary is rejected; an online secondary only with permitIfTargetOnline', async () => {
    const s = await site({ e2pprc: { isOnline: (v) => v === 's2' } });
    await connect(s);
    await expectCode(s.e1.pprc.establish({ primary: 'p', secondary: { ess: 'FCA31', volume: 'small' }, mode: 'copy-entire' }), 'PPRC_TARGET_TOO_SMALL');
    await expectCode(s.e1.pprc.establish({ primary: 'p', secondary: { ess: 'FCA31', volume: 's2' }, mode: 'copy-entire' }), 'PPRC_TARGET_ONLINE');
    expect(s.e2.pprc.query('small').role).toBe('simplex');
    expect(s.e2.pprc.query('s2').role).toBe('simplex');
    const info = await s.e1.pprc.establish({ primary: 'p', secondary: { ess: 'FCA31', volume: 's2' }, mode: 'no-copy', permitIfTargetOnline: true });
    expect(info.state).toBe('DUPLEX');
  });

  it('PP-06 PP-37 COPY_ENTIRE: source/not_suspended/DUPLEX_PENDING with oosTracks == totalTracks at first, falling monotonically, DUPLEX with identical content', async () => {
    const s = await site({ pprc: { copyBatchTracks: 2 } });
    await connect(s);
    const p = s.e1.pool.volume('big');
    for (let off = 0; off < 2 * MiB; off += 96 * 1024) await p.write(off, pattern(6, off));
    await s.e1.pprc.establishPath({ lss: 0x11, to: 'FCA31', targetLss: 0x11, links: ['l1'] });
    await s.e2.pool.createLun({ name: 'bigr', size: 2 * MiB, lss: 0x11 });
    const seen: number[] = [];
    s.e1.pprc.on('progress', (info) => seen.push(info.oosTracks));
    const info = await s.e1.pprc.establish({ primary: 'big', secondary: { ess: 'FCA31', volume: 'bigr' }, mode: 'copy-entire' });
    // PP-37: establish returns once established, while the copy still runs.
    expect(info.state).toBe('DUPLEX_PENDING');
    expect(info.oosTracks).toBe(info.totalTracks);
    expect(info.totalTracks).toBe((2 * MiB) / TRACK);
    const q = s.e1.pprc.query('big');
    expect(q.ess[1]).toMatch(/^State=source, status=not_suspended,/);
    expect(s.e2.pprc.query('bigr').ess[1]).toMatch(/^State=target, status=not_suspended,/);
    await s.e1.pprc.waitForCopy('big');
    expect(seen.length).toBeGreaterThan(3);
    for (let i = 1; i < seen.length; i++) expect(seen[i]!).toBeLessThanOrEqual(seen[i - 1]!);
    expect(s.e1.pprc.query('big').state).toBe('DUPLEX');
    expect(s.e1.pprc.query('big').oosTracks).toBe(0);
    expect((await peek(s.e2, 'bigr')).equals(await peek(s.e1, 'big'))).toBe(true);
  });

  it('PP-07 in DUPLEX_PENDING, DUPLEX and SUSPENDED host reads and writes of the secondary fail; identification works and reports its own serial', async () => {
    const s = await site();
    const [l1] = await connect(s);
    await s.e1.pprc.setLinkFault(l1!, { latencyMs: 1 });
    await s.e1.pprc.establish({ primary: 'p', secondary: { ess: 'FCA31', volume: 's' }, mode: 'copy-entire' });
    const sd = s.e2.pool.volume('s');
    const refused = async () => {
      await expectCode(sd.read(0, 4096), 'PPRC_SECONDARY_NOT_ACCESSIBLE');
      await expectCode(sd.write(0, pattern(7, 0)), 'PPRC_SECONDARY_NOT_ACCESSIBLE');
      await expectCode(sd.trim(0, 4096), 'PPRC_SECONDARY_NOT_ACCESSIBLE');
      await expectCode(sd.writeZeroes(0, 4096), 'PPRC_SECONDARY_NOT_ACCESSIBLE');
      await expectCode(sd.blockStatus(0, 4096), 'PPRC_SECONDARY_NOT_ACCESSIBLE');
      const id = sd.identity();
      expect(id.serial).toBe('FCA31');
      expect(id.name).toBe('s');
    };
    expect(s.e1.pprc.query('p').state).toBe('DUPLEX_PENDING');
    await refused();
    await drive(s.clock, s.e1.pprc.waitForCopy('p'));
    expect(s.e1.pprc.query('p').state).toBe('DUPLEX');
    await refused();
    await s.e1.pprc.suspend('p');
    expect(s.e2.pprc.query('s').suspended).toBe(true);
    await refused();
  });

  it('the secondary side lists its bound secondaries (secondaries()): pair, primary and status, until terminate', async () => {
    const s = await site();
    await connect(s);
    expect(s.e2.pprc.asSecondary().secondaries()).toEqual([]);
    const info = await s.e1.pprc.establish({ primary: 'p', secondary: { ess: 'FCA31', volume: 's' }, mode: 'no-copy' });
    const listed = s.e2.pprc.asSecondary().secondaries();
    expect(listed).toEqual([
      { volume: 's', pairId: info.id, primary: expect.objectContaining({ serial: 'FCA24', volume: 'p', lss: 0x10 }), criticalHeavy: false, suspended: false, writeInhibited: false },
    ]);
    // A copy: changing it changes nothing.
    listed[0]!.suspended = true;
    expect(s.e2.pprc.asSecondary().secondaries()[0]!.suspended).toBe(false);
    await s.e1.pprc.suspend('p');
    expect(s.e2.pprc.asSecondary().secondaries()).toEqual([expect.objectContaining({ volume: 's', suspended: true, reason: 'manual-source' })]);
    await s.e1.pprc.terminate('p');
    expect(s.e2.pprc.asSecondary().secondaries()).toEqual([]);
  });

  it('PP-11 NO_COPY goes straight to DUPLEX with oosTracks 0 and copies nothing; old secondary blocks stay, new writes reach it', async () => {
    const s = await site();
    await s.e2.pool.volume('s').write(0, pattern(11, 0, 2 * TRACK));
    await s.e1.pool.volume('p').write(0, pattern(12, 0, 2 * TRACK));
    await connect(s);
    const info = await s.e1.pprc.establish({ primary: 'p', secondary: { ess: 'FCA31', volume: 's' }, mode: 'no-copy' });
    expect(info.state).toBe('DUPLEX');
    expect(info.oosTracks).toBe(0);
    expect(s.e1.pprc.links()[0]!.requests).toBe(0);
    await s.e1.pool.volume('p').write(TRACK, pattern(13, TRACK));
    expect((await peek(s.e2, 's', 0, TRACK)).equals(pattern(11, 0, TRACK))).toBe(true);
    expect((await peek(s.e2, 's', TRACK, 4096)).equals(pattern(13, TRACK))).toBe(true);
    expect(s.e1.pprc.links()[0]!.requests).toBe(1);
  });

  it('PP-12 X13 OUT_OF_SYNC_ONLY on a simplex/simplex pair is rejected', async () => {
    const s = await site();
    await connect(s);
    await expectCode(s.e1.pprc.establish({ primary: 'p', secondary: { ess: 'FCA31', volume: 's' }, mode: 'out-of-sync-only' }), 'PPRC_INVALID_COPY_MODE');
    expect(s.e1.pprc.query('p').role).toBe('simplex');
    expect(s.e2.pprc.query('s').role).toBe('simplex');
  });

  it('PP-13 one pair per volume: P with another secondary, the secondary as a primary, and a second primary onto the secondary are rejected', async () => {
    const s = await site();
    await connect(s);
    await s.e1.pprc.establishPath({ lss: 0x11, to: 'FCA31', targetLss: 0x10, links: ['l1'] });
    await s.e2.pprc.addLink({ id: 'r1', to: 'FCA24' });
    await s.e2.pprc.establishPath({ lss: 0x10, to: 'FCA24', targetLss: 0x11, links: ['r1'] });
    await s.e1.pprc.establish({ primary: 'p', secondary: { ess: 'FCA31', volume: 's' }, mode: 'no-copy' });
    await expectCode(s.e1.pprc.establish({ primary: 'p', secondary: { ess: 'FCA31', volume: 's2' }, mode: 'copy-entire' }), 'PPRC_VOLUME_IN_PAIR');
    await expectCode(s.e2.pprc.establish({ primary: 's', secondary: { ess: 'FCA24', volume: 'q' }, mode: 'copy-entire' }), 'PPRC_VOLUME_IN_PAIR');
    await expectCode(s.e1.pprc.establish({ primary: 'q', secondary: { ess: 'FCA31', volume: 's' }, mode: 'copy-entire' }), 'PPRC_VOLUME_IN_PAIR');
    expect(s.e1.pprc.list()).toHaveLength(1);
    expect(s.e2.pprc.query('s2').role).toBe('simplex');
    expect(s.e1.pprc.query('q').role).toBe('simplex');
  });

  it('pool veto: a paired LUN cannot be deleted or made read-only; a primary cannot grow', async () => {
    const s = await site();
    await connect(s);
    await s.e1.pprc.establish({ primary: 'p', secondary: { ess: 'FCA31', volume: 's' }, mode: 'no-copy' });
    await expectCode(s.e1.pool.deleteLun('p'), 'PPRC_VOLUME_IN_PAIR');
    await expectCode(s.e2.pool.deleteLun('s'), 'PPRC_VOLUME_IN_PAIR');
    await expectCode(s.e2.pool.setReadOnly('s', true), 'PPRC_VOLUME_IN_PAIR');
    await expectCode(s.e1.pool.growLun('p', 2 * MiB), 'PPRC_VOLUME_IN_PAIR');
    await s.e1.pprc.terminate('p');
    await s.e1.pool.deleteLun('p');
  });
});
