/**
 * Failback and intermittent-error quarantine (spec/multipath.md §1.6,
 * MP-28..MP-30), and dm's san_path_err release timer.
 */
import { describe, expect, it } from 'vitest';
import { createLocalRig, type LocalRig, type LocalRigPath, type MultipathConfig, type PathStateEvent } from '../../../src/multipath/index.js';
import { dmProfile, hdlmProfile } from '../../../src/multipath/profiles.js';
import { VirtualClock } from '../../../src/util/clock.js';
import { MemoryVolume } from '../../../src/volume/memory-volume.js';

const KiB = 1024;
const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

function rig(paths: readonly (string | LocalRigPath)[], config: MultipathConfig): LocalRig & { clock: VirtualClock } {
  const clock = new VirtualClock();
  const lun = new MemoryVolume({ size: 1024 * KiB, identity: { name: 'lun0' } });
  return { ...createLocalRig({ lun, paths, config, clock }), clock };
}

/** Which path completes the next read. */
async function next(r: LocalRig): Promise<string> {
  const before = r.device.paths().map((p) => p.stats.completed);
  await r.device.read(0, 4 * KiB);
  return r.device.paths().find((p, i) => p.stats.completed !== before[i])!.name;
}

describe('multipath failback and quarantine', () => {
  it('MP-28: hdlm IEM on, 30 min / 3: a path failing 3 times within 30 min after afb recoveries is excluded from afb; it stays Offline(E) until online', async () => {
    const r = rig(['A', 'B'], hdlmProfile({ lb: false, afb: { on: true, intvl: 1 }, iem: { on: true, intvl: 30, iemnum: 3 } }));
    const fail = async (): Promise<void> => {
      r.faults('A').set({ kind: 'down' });
      expect(await next(r)).toBe('B');
      r.faults('A').clear();
    };
    await fail(); // the first error: monitoring starts only with an auto failback
    for (let n = 1; n <= 3; n++) {
      await r.clock.advance(MINUTE); // afb recovers A
      expect(r.device.path('A').state).toBe('online');
      expect(await next(r)).toBe('A');
      await fail();
    }
    const a = r.device.path('A');
    expect(a.state).toBe('quarantined');
    expect(r.device.describe()[0]!.stateName).toBe('Offline(E)');
    expect(r.events.filter((e): e is PathStateEvent => e.type === 'path-state' && e.path === 'A').at(-1)).toMatchObject({ to: 'quarantined', cause: 'iem_quarantine', at: 3 * MINUTE });
    await r.clock.advance(HOUR);
    expect(a.state).toBe('quarantined');
    expect(await next(r)).toBe('B');
    expect(await r.device.online('A')).toBe('online');
    expect(await next(r)).toBe('A');
  });

  it('MP-28: failures spread wider than the monitoring window do not quarantine', async () => {
    const r = rig(['A', 'B'], hdlmProfile({ lb: false, afb: { on: true, intvl: 1 }, iem: { on: true, intvl: 30, iemnum: 3 } }));
    for (let n = 0; n < 6; n++) {
      r.faults('A').set({ kind: 'down' });
      await next(r);
      r.faults('A').clear();
      await r.clock.advance(20 * MINUTE); // afb recovers after 1 min; the next failure comes 20 min later
      expect(r.device.path('A').state).toBe('online');
    }
  });

  it('MP-29: setting validation: afb 11 min, IEM 30 min, iemnum 3 -> rejected (30 < 33); iemnum 1 -> accepted', () => {
    expect(() => hdlmProfile({ afb: { intvl: 11 }, iem: { on: true, intvl: 30, iemnum: 3 } })).toThrow(expect.objectContaining({ code: 'INVALID_CONFIG', message: expect.stringContaining('KAPL01080-W') }));
    expect(hdlmProfile({ afb: { intvl: 11 }, iem: { on: true, intvl: 30, iemnum: 1 } }).quarantine).toEqual({ windowMs: 30 * MINUTE, errorCount: 1, startOn: 'auto-failback' });
    expect(() => hdlmProfile({ afb: { intvl: 10 }, iem: { on: true, intvl: 30, iemnum: 3 } })).not.toThrow();
    expect(() => hdlmProfile({ afb: { on: false }, iem: { on: true } })).toThrow(expect.objectContaining({ code: 'INVALID_CONFIG' }));
  });

  it('MP-30: dm failback=manual -> a reinstated higher-priority group gets no I/O until a manual switch', async () => {
    const r = rig([{ name: 'A', priority: 50 }, { name: 'B', priority: 10 }], dmProfile({ failback: 'manual' }));
    expect(await next(r)).toBe('A');
    r.faults('A').set({ kind: 'down' });
    expect(await next(r)).toBe('B');
    r.faults('A').clear();
    await r.clock.advance(5_000);
    expect(r.device.path('A').state).toBe('online');
    await r.clock.advance(HOUR);
    for (let i = 0; i < 10; i++) expect(await next(r)).toBe('B');
    expect(r.device.failback()).toBe(true);
    expect(await next(r)).toBe('A');
    expect(r.events.filter((e) => e.type === 'group-switch').map((e) => (e.type === 'group-switch' ? e.cause : ''))).toEqual(['failover', 'manual']);
  });

  it('MP-30: dm failback=immediate -> the switch happens at the check that reinstates the path', async () => {
    const r = rig([{ name: 'A', priority: 50 }, { name: 'B', priority: 10 }], dmProfile({ failback: 'immediate' }));
    r.faults('A').set({ kind: 'down' });
    expect(await next(r)).toBe('B');
    r.faults('A').clear();
    await r.clock.advance(5_000);
    expect(r.events.at(-1)).toMatchObject({ type: 'group-switch', cause: 'failback', to: 'A', at: 5_000 });
    expect(await next(r)).toBe('A');
  });

  it('MP-30: dm failback=30 -> the switch happens 30 s after reinstatement', async () => {
    const r = rig([{ name: 'A', priority: 50 }, { name: 'B', priority: 10 }], dmProfile({ failback: 30 }));
    r.faults('A').set({ kind: 'down' });
    expect(await next(r)).toBe('B');
    r.faults('A').clear();
    await r.clock.advance(5_000); // reinstated at 5 s
    expect(r.device.path('A').state).toBe('online');
    await r.clock.advance(29_999);
    expect(await next(r)).toBe('B');
    await r.clock.advance(1);
    expect(r.events.at(-1)).toMatchObject({ type: 'group-switch', cause: 'failback', to: 'A', at: 35_000 });
    expect(await next(r)).toBe('A');
  });

  it('dm san_path_err_*: a path failing often is kept out for recovery_time, then checked again', async () => {
    const r = rig(
      [{ name: 'A', priority: 50 }, { name: 'B', priority: 10 }],
      dmProfile({ failback: 'immediate', san_path_err_threshold: 2, san_path_err_forget_rate: 12, san_path_err_recovery_time: 300 }),
    );
    for (let n = 0; n < 2; n++) {
      r.faults('A').set({ kind: 'down' });
      expect(await next(r)).toBe('B');
      r.faults('A').clear();
      await r.clock.advance(5_000);
    }
    // Second failure within 12 checks (60 s): quarantined at 5 s, released at 305 s, reinstated at the 310 s check.
    expect(r.device.path('A').state).toBe('quarantined');
    expect(r.device.describe()[0]!.stateName).toBe('failed marginal');
    await r.clock.advance(299_999 - 5_000);
    expect(r.device.path('A').state).toBe('quarantined');
    await r.clock.advance(1 + 5_000);
    expect(r.device.path('A').state).toBe('online');
    expect(await next(r)).toBe('A');
  });
});
