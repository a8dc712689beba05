/** Links and logical paths: ESS limits (PP-14, PP-15), distance, fault state (spec §3.2, §3.10). */
import { afterEach, describe, expect, it } from 'vitest';
import { closeAll, expectCode, site } from './harness.js';

afterEach(closeAll);

describe('PPRC links and paths', () => {
  it('PP-14 a primary ESS with paths to 4 secondary ESSs cannot get one to a fifth (PPRC_TOO_MANY_SECONDARIES)', async () => {
    const s = await site();
    for (const [i, to] of ['FCA31', 'AAAA2', 'AAAA3', 'AAAA4'].entries()) {
      await s.e1.pprc.addLink({ id: `x${i}`, to });
      await s.e1.pprc.establishPath({ lss: 0x10, to, targetLss: 0x10, links: [`x${i}`] });
    }
    await expectCode(s.e1.pprc.addLink({ id: 'x5', to: 'AAAA5' }), 'PPRC_TOO_MANY_SECONDARIES');
    expect(new Set(s.e1.pprc.paths().map((p) => p.to)).size).toBe(4);
    // More links to an ESS already reached are fine.
    await s.e1.pprc.addLink({ id: 'x6', to: 'AAAA2' });
  });

  it('PP-15 a 9th link between one pair of ESSs and a 65th logical path on one link are rejected', async () => {
    const s = await site();
    for (let i = 1; i <= 8; i++) await s.e1.pprc.addLink({ id: `l${i}`, to: 'FCA31' });
    await expectCode(s.e1.pprc.addLink({ id: 'l9', to: 'FCA31' }), 'PPRC_TOO_MANY_LINKS');
    expect(s.e1.pprc.links().map((l) => l.index)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    let n = 0;
    for (let lss = 0x10; lss <= 0x1f; lss++) {
      for (let target = 0x10; target <= 0x13; target++) {
        await s.e1.pprc.establishPath({ lss, to: 'FCA31', targetLss: target, links: ['l1'] });
        n++;
      }
    }
    expect(n).toBe(64);
    await expectCode(s.e1.pprc.establishPath({ lss: 0x10, to: 'FCA31', targetLss: 0x14, links: ['l1'] }), 'PPRC_TOO_MANY_PATHS');
    // Another link takes it.
    await s.e1.pprc.establishPath({ lss: 0x10, to: 'FCA31', targetLss: 0x14, links: ['l2'] });
    expect(s.e1.pprc.paths()).toHaveLength(65);
  });

  it('links: distance beyond 103 km is refused in the ess profile and allowed in relaxed; unknown links are PPRC_LINK_NOT_FOUND', async () => {
    const s = await site({ e2pprc: { profile: 'relaxed' } });
    await expectCode(s.e1.pprc.addLink({ to: 'FCA31', distanceKm: 104 }), 'PPRC_DISTANCE_TOO_LONG');
    const ok = await s.e1.pprc.addLink({ to: 'FCA31', distanceKm: 103 });
    expect(ok.distanceKm).toBe(103);
    const far = await s.e2.pprc.addLink({ to: 'FCA24', distanceKm: 500 });
    expect(far.distanceKm).toBe(500);
    await expectCode(s.e1.pprc.setLinkFault('nope', { down: true }), 'PPRC_LINK_NOT_FOUND');
    await expectCode(s.e1.pprc.establishPath({ lss: 0x10, to: 'FCA31', targetLss: 0x10, links: ['nope'] }), 'PPRC_LINK_NOT_FOUND');
    const faulted = await s.e1.pprc.setLinkFault(ok.id, { down: true, latencyMs: 3, bandwidth: 1000 });
    expect(faulted).toMatchObject({ down: true, latencyMs: 3, bandwidth: 1000 });
    await expectCode(s.e1.pprc.removePath({ lss: 0x10, to: 'FCA31', targetLss: 0x10 }), 'PPRC_PATH_NOT_FOUND');
  });

  it('links and paths persist across a restart', async () => {
    const s = await site();
    await s.e1.pprc.addLink({ id: 'l1', to: 'FCA31', distanceKm: 20 });
    await s.e1.pprc.establishPath({ lss: 0x10, to: 'FCA31', targetLss: 0x10, links: ['l1'] });
    await s.e1.pprc.setLss(0x10, { criticalHeavy: true, consistencyGroup: true, consistencyTimeoutSec: 5 });
    await s.restartE1();
    expect(s.e1.pprc.links()).toMatchObject([{ id: 'l1', to: 'FCA31', distanceKm: 20 }]);
    expect(s.e1.pprc.paths()).toEqual([{ lss: 0x10, to: 'FCA31', targetLss: 0x10, links: ['l1'] }]);
    // A restart is a power cycle: the configured Critical Heavy is now in effect.
    expect(s.e1.pprc.lssSettings(0x10)).toEqual({ criticalHeavy: true, criticalHeavyActive: true, consistencyGroup: true, consistencyTimeoutSec: 5 });
  });
});
