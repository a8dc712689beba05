/**
 * Health checking on the virtual clock (spec/multipath.md §1.5, MP-21..MP-24,
 * MP-26, MP-27): hour-long intervals run in milliseconds of test time.
 */
import { describe, expect, it } from 'vitest';
import { createLocalRig, type LocalRig, type LocalRigPath, type MultipathConfig, type PathStateEvent } from '../../../src/multipath/index.js';
import { aixProfile, hdlmProfile } from '../../../src/multipath/profiles.js';
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

const transitions = (r: LocalRig, path: string): PathStateEvent[] => r.events.filter((e): e is PathStateEvent => e.type === 'path-state' && e.path === path);

describe('multipath health checks', () => {
  it('MP-21: aix hcheck_interval=0: after the fault is cleared the Failed path stays Failed (1 h virtual) until a manual enable', async () => {
    const r = rig([{ name: 'A', priority: 1 }, { name: 'B', priority: 2 }], aixProfile({ hcheck_interval: 0 }));
    r.faults('A').set({ kind: 'down' });
    await r.device.read(0, 4 * KiB);
    r.faults('A').clear();
    await r.clock.advance(HOUR);
    expect(r.device.path('A').state).toBe('failed');
    expect(r.device.path('A').stats.probes).toBe(0);
    expect(r.clock.pending).toBe(0);
    expect(await r.device.online('A')).toBe('online');
    expect(transitions(r, 'A').at(-1)).toMatchObject({ toName: 'Enabled', cause: 'admin', at: HOUR });
  });

  it('MP-22: aix hcheck_interval=60, fault cleared at t=10 s -> Enabled at the first check after clearing (t=60 s) and not before', async () => {
    const r = rig([{ name: 'A', priority: 1 }, { name: 'B', priority: 2 }], aixProfile({ hcheck_interval: 60 }));
    r.faults('A').set({ kind: 'down' });
    await r.device.read(0, 4 * KiB);
    expect(r.device.path('A').state).toBe('failed');
    await r.clock.advance(10_000);
    r.faults('A').clear();
    await r.clock.advance(49_999);
    expect(r.device.path('A').state).toBe('failed');
    await r.clock.advance(1);
    expect(r.device.path('A').state).toBe('online');
    expect(transitions(r, 'A').at(-1)).toMatchObject({ from: 'failed', to: 'online', cause: 'check_ok', at: 60_000 });
  });

  it('MP-22: a fault still present at a check keeps the path Failed; it recovers at the first check after the clear', async () => {
    const r = rig([{ name: 'A', priority: 1 }, { name: 'B', priority: 2 }], aixProfile({ hcheck_interval: 60 }));
    r.faults('A').set({ kind: 'down' });
    await r.device.read(0, 4 * KiB);
    await r.clock.advance(70_000);
    expect(r.device.path('A').state).toBe('failed');
    r.faults('A').clear();
    await r.clock.advance(49_999);
    expect(r.device.path('A').state).toBe('failed');
    await r.clock.advance(1);
    expect(transitions(r, 'A').at(-1)).toMatchObject({ to: 'online', at: 120_000 });
  });

  it('MP-23: aix hcheck_mode=failed -> 0 probes on Enabled idle paths', async () => {
    const r = rig([{ name: 'A', priority: 1 }, { name: 'B', priority: 2 }], aixProfile({ hcheck_interval: 60, hcheck_mode: 'failed' }));
    await r.clock.advance(10 * MINUTE);
    expect(r.device.paths().map((p) => p.stats.probes)).toEqual([0, 0]);
  });

  it('MP-23: nonactive with fail_over -> the idle standby Enabled path is probed, so a latent fault on it is found before failover', async () => {
    const r = rig([{ name: 'A', priority: 1 }, { name: 'B', priority: 2 }], aixProfile({ hcheck_interval: 60, hcheck_mode: 'nonactive' }));
    r.faults('B').set({ kind: 'down' }); // latent: nothing is sent to B
    await r.clock.advance(30_000);
    await r.device.read(0, 4 * KiB); // A carries I/O between the checks
    await r.clock.advance(30_000);
    expect(r.device.path('B').state).toBe('failed');
    expect(r.device.path('B').stats.ios).toBe(0);
    expect(r.device.path('A').stats.probes).toBe(0); // active: not probed
    expect(r.device.path('B').stats.probes).toBe(1);
    expect(transitions(r, 'B')[0]).toMatchObject({ to: 'failed', cause: 'check_failed', at: 60_000 });
  });

  it('MP-23: nonactive with round_robin -> only Failed paths are probed (every Enabled path carries I/O)', async () => {
    const r = rig(['A', 'B', 'C'], aixProfile({ algorithm: 'round_robin', hcheck_interval: 60, hcheck_mode: 'nonactive' }));
    r.faults('C').set({ kind: 'down' });
    for (let t = 0; t < 5; t++) {
      for (let i = 0; i < 6; i++) await r.device.read(i * 4 * KiB, 4 * KiB);
      await r.clock.advance(60_000);
    }
    expect(r.device.paths().map((p) => p.stats.probes)).toEqual([0, 0, 5]);
    expect(r.device.path('C').state).toBe('failed');
  });

  it('MP-24: aix, health checks stop after the device is closed: a path that failed during I/O is not recovered', async () => {
    const r = rig([{ name: 'A', priority: 1 }, { name: 'B', priority: 2 }], aixProfile({ hcheck_interval: 60 }));
    r.faults('A').set({ kind: 'down' });
    await r.device.read(0, 4 * KiB);
    await r.device.close();
    r.faults('A').clear();
    await r.clock.advance(HOUR);
    expect(r.device.path('A').state).toBe('failed');
    expect(r.device.path('A').stats.probes).toBe(0);
  });

  it('hcheck_cmd=inquiry passes where the port only identifies (standby); test_unit_rdy does not', async () => {
    for (const [cmd, expected] of [
      ['inquiry', 'online'],
      ['test_unit_rdy', 'failed'],
    ] as const) {
      const r = rig([{ name: 'A', priority: 1 }, { name: 'B', priority: 2 }], aixProfile({ hcheck_interval: 60, hcheck_cmd: cmd }));
      r.faults('A').set({ kind: 'down' });
      await r.device.read(0, 4 * KiB);
      r.faults('A').set({ kind: 'standby' });
      await r.clock.advance(60_000);
      expect(r.device.path('A').state, cmd).toBe(expected);
    }
  });

  it('MP-26: hdlm path health check on, 30 min: an idle Online path with an injected fault becomes Offline(E) at the next check, not before', async () => {
    const r = rig(['A', 'B'], hdlmProfile());
    r.faults('B').set({ kind: 'down' });
    await r.clock.advance(30 * MINUTE - 1);
    expect(r.device.path('B').state).toBe('online');
    await r.clock.advance(1);
    expect(r.device.describe()[1]!.stateName).toBe('Offline(E)');
    expect(transitions(r, 'B')[0]).toMatchObject({ cause: 'check_failed', at: 30 * MINUTE });
  });

  it('MP-26: hdlm, with I/O flowing a faulty path fails on the first failed I/O', async () => {
    const r = rig(['A', 'B'], hdlmProfile({ lbtype: 'rr' }));
    await r.clock.advance(5 * MINUTE);
    r.faults('A').set({ kind: 'down' });
    await r.device.read(0, 4 * KiB);
    expect(r.device.describe()[0]!.stateName).toBe('Offline(E)');
    expect(transitions(r, 'A')[0]).toMatchObject({ cause: 'io_error', at: 5 * MINUTE });
  });

  it('MP-27: hdlm afb on, 1 min: a recovered Offline(E) path is Online within 1 min; an Offline(C) path is never brought online by afb', async () => {
    const r = rig(['A', 'B', 'C'], hdlmProfile({ lb: false }));
    r.faults('A').set({ kind: 'down' });
    await r.device.read(0, 4 * KiB);
    expect(r.device.path('A').state).toBe('failed');
    await r.clock.advance(5_000);
    r.faults('A').clear();
    await r.clock.advance(55_000);
    expect(transitions(r, 'A').at(-1)).toMatchObject({ toName: 'Online', cause: 'check_ok', at: 60_000 });
    r.device.offline('C');
    await r.clock.advance(HOUR);
    expect(r.device.describe()[2]!.stateName).toBe('Offline(C)');
    expect(r.device.path('C').stats.probes).toBe(0);
  });

  it('MP-27: hdlm with afb off, a recovered Offline(E) path stays Offline(E) until online', async () => {
    const r = rig(['A', 'B'], hdlmProfile({ lb: false, afb: { on: false } }));
    r.faults('A').set({ kind: 'down' });
    await r.device.read(0, 4 * KiB);
    r.faults('A').clear();
    await r.clock.advance(2 * HOUR);
    expect(r.device.path('A').state).toBe('failed');
    expect(await r.device.online('A')).toBe('online');
  });

  it('online on a path whose port is still down fails the check and leaves it out of service', async () => {
    const r = rig(['A', 'B'], hdlmProfile());
    r.device.offline('A');
    r.faults('A').set({ kind: 'down' });
    expect(await r.device.online('A')).toBe('failed');
    r.faults('A').clear();
    await r.clock.advance(MINUTE); // now an ordinary Offline(E) path: afb brings it back
    expect(r.device.path('A').state).toBe('online');
  });
});
