/** FlashCopy with PPRC (spec §2.9, §5.4): CB-01..CB-07. */
import { afterEach, describe, expect, it } from 'vitest';
import { seededRandom, testSeed } from '../../helpers/seeded-random.js';
import { MiB, closeAll, connect, drive, expectCode, pattern, peek, site } from './harness.js';

afterEach(closeAll);

describe('PPRC with FlashCopy', () => {
  it('CB-01 CB-02 asynchronous PPRC with FlashCopy: C == A@T0 after B -> C duplex; then D (FlashCopy of C on E2) == A@T0, everything else simplex / none', async () => {
    const rand = seededRandom(testSeed('CB-01'));
    const s = await site({ pprc: { trackSize: '4K' } });
    await connect(s);
    const a = s.e1.pool.volume('p');
    for (let off = 0; off < MiB; off += 4096) await a.write(off, pattern(1, off));
    await s.e1.fc.establish('p', 'fcb', { mode: 'nocopy' });
    const t0 = await peek(s.e1, 'p');
    const blocks = new Set<number>();
    while (blocks.size < 100) blocks.add(Math.floor(rand() * 256));
    for (const b of blocks) await a.write(b * 4096, pattern(2, b * 4096));
    await s.e1.pprc.establish({ primary: 'fcb', secondary: { ess: 'FCA31', volume: 's' }, mode: 'copy-entire' });
    await s.e1.pprc.waitForCopy('fcb');
    expect((await peek(s.e2, 's')).equals(t0)).toBe(true);
    // CB-02
    await s.e1.pprc.terminate('fcb');
    await s.e1.fc.withdraw('fcb');
    await s.e2.fc.establish('s', 'd', { mode: 'nocopy' });
    expect((await peek(s.e2, 'd')).equals(t0)).toBe(true);
    expect(s.e1.pprc.query('fcb').role).toBe('simplex');
    expect(s.e1.fc.query('fcb').role).toBe('none');
    expect(s.e1.fc.query('p').role).toBe('none');
    expect(s.e2.pprc.query('s').role).toBe('simplex');
    expect(s.e2.fc.query('s').role).toBe('source');
    expect(s.e2.fc.query('d').role).toBe('target');
  });

  it('CB-03 with A -> B still copying, establishing PPRC B -> C is accepted', async () => {
    const s = await site();
    await connect(s);
    await s.e1.pool.volume('p').write(0, pattern(1, 0));
    await s.e1.fc.establish('p', 'fcb', { mode: 'copy', rate: 0 });
    expect(s.e1.fc.query('p').remainingGrains).toBeGreaterThan(0);
    const info = await s.e1.pprc.establish({ primary: 'fcb', secondary: { ess: 'FCA31', volume: 's' }, mode: 'copy-entire' });
    expect(info.state).toBe('DUPLEX_PENDING');
    await s.e1.pprc.waitForCopy('fcb');
    expect((await peek(s.e2, 's', 0, 4096)).equals(pattern(1, 0))).toBe(true);
  });

  it("CB-04 CB-05 a FlashCopy of a copying PPRC secondary is accepted in its LSS, refused in another; mirrored writes trigger the secondary's copy-on-write", async () => {
    const s = await site();
    const [l1] = await connect(s);
    const p = s.e1.pool.volume('p');
    for (let off = 0; off < MiB; off += 65536) await p.write(off, pattern(5, off));
    await s.e1.pprc.setLinkFault(l1!, { latencyMs: 1 });
    await s.e1.pprc.establish({ primary: 'p', secondary: { ess: 'FCA31', volume: 's' }, mode: 'copy-entire' });
    expect(s.e1.pprc.query('p').state).toBe('DUPLEX_PENDING');
    await expectCode(s.e2.fc.establish('s', 'u', { mode: 'nocopy' }), 'FC_DIFFERENT_LSS');
    await s.e2.fc.establish('s', 't', { mode: 'nocopy' });
    // The gate stays on top: the secondary is still not accessible to hosts.
    await expectCode(s.e2.pool.volume('s').read(0, 4096), 'PPRC_SECONDARY_NOT_ACCESSIBLE');
    await drive(s.clock, s.e1.pprc.waitForCopy('p'));
    // CB-05: T holds the secondary's T0 image; writes PPRC applies to the secondary copy-on-write into T.
    const tBefore = await peek(s.e2, 't');
    await s.e1.pprc.setLinkFault(l1!, { latencyMs: 0 });
    for (let off = 0; off < MiB; off += 131072) await p.write(off, pattern(6, off));
    expect((await peek(s.e2, 's', 131072, 4096)).equals(pattern(6, 131072))).toBe(true);
    expect((await peek(s.e2, 't')).equals(tBefore)).toBe(true);
    expect((await peek(s.e2, 's')).equals(await peek(s.e1, 'p'))).toBe(true);
  });

  it('CB-06 while A -> B is still establishing, PPRC B -> C is rejected with RELATIONSHIP_NOT_ESTABLISHED', async () => {
    const s = await site({ fc: { establishDelayMs: 1000 } });
    await connect(s);
    const fc = s.e1.fc.establish('p', 'fcb', { mode: 'nocopy' });
    await new Promise((r) => setImmediate(r));
    expect(s.e1.fc.stateOf('fcb')).toBe('establishing');
    await expectCode(s.e1.pprc.establish({ primary: 'fcb', secondary: { ess: 'FCA31', volume: 's' }, mode: 'copy-entire' }), 'RELATIONSHIP_NOT_ESTABLISHED');
    expect(s.e1.pprc.query('fcb').role).toBe('simplex');
    await drive(s.clock, fc, 100);
    await s.e1.pprc.establish({ primary: 'fcb', secondary: { ess: 'FCA31', volume: 's' }, mode: 'copy-entire' });
  });

  it('CB-07 a FlashCopy onto a PPRC secondary is FC_UNSUPPORTED_COMBINATION unless permitted; PPRC onto a FlashCopy target is refused', async () => {
    const s = await site();
    await connect(s);
    await s.e1.pprc.establish({ primary: 'p', secondary: { ess: 'FCA31', volume: 's' }, mode: 'no-copy' });
    await expectCode(s.e2.fc.establish('t', 's', { mode: 'nocopy' }), 'FC_UNSUPPORTED_COMBINATION');
    expect(s.e2.fc.query('s').ess[1]).toMatch(/^State=target, status=not_suspended, FlashCopy_state=none/);
    await s.e2.fc.establish('t', 'd', { mode: 'nocopy' });
    await s.e1.pprc.establishPath({ lss: 0x11, to: 'FCA31', targetLss: 0x10, links: ['l1'] });
    await expectCode(s.e1.pprc.establish({ primary: 'q', secondary: { ess: 'FCA31', volume: 'd' }, mode: 'copy-entire' }), 'FC_UNSUPPORTED_COMBINATION');

    const permissive = await site({ fc: { profile: { allowUnsupportedCombinations: true } } });
    await connect(permissive);
    await permissive.e1.pprc.establish({ primary: 'p', secondary: { ess: 'FCA31', volume: 's' }, mode: 'no-copy' });
    await permissive.e2.fc.establish('t', 's', { mode: 'nocopy' });
    await expectCode(permissive.e2.pool.volume('s').read(0, 4096), 'PPRC_SECONDARY_NOT_ACCESSIBLE');
  });
});
