/**
 * Profiles, state names, discovery and the dual-VIOS layout (spec/multipath.md
 * §1.2, §1.8, §2.1, MP-41, MP-42): each product's defaults in its own units.
 */
import { describe, expect, it } from 'vitest';
import { MultipathDevice, STATE_NAMES, TargetPort, createLocalRig, discoverDevices, resolveConfig, stateName } from '../../../src/multipath/index.js';
import { aixProfile, dmProfile, hdlmProfile } from '../../../src/multipath/profiles.js';
import { VirtualClock } from '../../../src/util/clock.js';
import { MemoryVolume } from '../../../src/volume/memory-volume.js';

const KiB = 1024;

describe('multipath profiles', () => {
  it('aix defaults: fail_over, hcheck 60 s nonactive test_unit_rdy, fail on no path, rw_timeout 30 s, queue_depth 20 (fc) / 3 (vscsi)', () => {
    const c = aixProfile();
    expect(c).toMatchObject({
      profile: 'aix',
      selector: { kind: 'fail_over' },
      grouping: 'multibus',
      noPath: { mode: 'fail' },
      lastPath: 'fail',
      requestTimeoutMs: 30_000,
      timeoutPolicy: 'fail_path',
      queueDepth: 20,
      priorityRange: [1, 255],
    });
    expect(c.checks).toEqual([{ name: 'hcheck', intervalMs: 60_000, mode: 'nonactive', command: 'tur', recover: true }]);
    expect(aixProfile({ adapter: 'vscsi' })).toMatchObject({ queueDepth: 3, requestTimeoutMs: 45_000 });
    expect(aixProfile({ hcheck_interval: 0 }).checks).toEqual([]);
    expect(aixProfile({ algorithm: 'round_robin' }).selector).toEqual({ kind: 'round_robin', weights: 'priority' });
    expect(() => aixProfile({ algorithm: 'bogus' as 'fail_over' })).toThrow(expect.objectContaining({ code: 'INVALID_CONFIG' }));
  });

  it('hdlm defaults (minutes): exlio, pchk on 30 min, afb on 1 min, IEM off, last path Online(E), offline of the last path refused', () => {
    const c = hdlmProfile();
    expect(c).toMatchObject({
      profile: 'hdlm',
      selector: { kind: 'queue_length', extended: { sequentialLimit: 100, randomRepeat: 1 } },
      grouping: 'owner',
      failback: { mode: 'interval', intervalMs: 60_000 },
      lastPath: 'degrade',
      protectLastPath: true,
      quarantine: undefined,
    });
    expect(c.checks).toEqual([{ name: 'pchk', intervalMs: 30 * 60_000, mode: 'online', command: 'tur', recover: false }]);
    expect(hdlmProfile({ lb: false }).selector).toEqual({ kind: 'fail_over' });
    expect(hdlmProfile({ lbtype: 'lbk' }).selector).toEqual({ kind: 'service_time', useThroughput: false });
    expect(hdlmProfile({ lbtype: 'rr', lbpathusetimes: 5 }).selector).toEqual({ kind: 'round_robin', extended: { sequentialLimit: 5, randomRepeat: 5 } });
    expect(hdlmProfile({ afb: { on: false } }).failback).toEqual({ mode: 'immediate' });
    expect(() => hdlmProfile({ pchk: { intvl: 1441 } })).toThrow(expect.objectContaining({ code: 'INVALID_CONFIG' }));
    expect(() => hdlmProfile({ iem: { on: true, iemnum: 100, intvl: 1440 } })).toThrow(expect.objectContaining({ code: 'INVALID_CONFIG' }));
  });

  it('dm defaults (seconds): failover groups, service-time 0, failback manual, no_path_retry fail, polling 5 s', () => {
    const c = dmProfile();
    expect(c).toMatchObject({ profile: 'dm', selector: { kind: 'service_time' }, grouping: 'failover', failback: { mode: 'manual' }, noPath: { mode: 'fail' } });
    expect(c.checks).toEqual([{ name: 'polling', intervalMs: 5_000, mode: 'all', command: 'tur', recover: true, countsForNoPath: true }]);
    expect(dmProfile({ no_path_retry: 12 }).noPath).toEqual({ mode: 'queue-checks', checks: 12 });
    expect(dmProfile({ failback: 15 }).failback).toEqual({ mode: 'deferred', delayMs: 15_000 });
    expect(dmProfile({ path_selector: 'round-robin 0', rr_min_io_rq: 4 }).selector).toEqual({ kind: 'round_robin', repeat: 4, repeatByPriority: false });
    expect(resolveConfig('dm')).toEqual(c);
    expect(() => resolveConfig('vmware' as 'dm')).toThrow(expect.objectContaining({ code: 'INVALID_CONFIG' }));
  });

  it('canonical states have a name in every profile', () => {
    expect(stateName('aix', 'admin_offline')).toBe('Disabled');
    expect(stateName('hdlm', 'online_degraded')).toBe('Online(E)');
    expect(stateName('hdlm', 'admin_offline')).toBe('Offline(C)');
    expect(stateName('dm', 'standby')).toBe('active ghost');
    for (const names of Object.values(STATE_NAMES)) expect(Object.keys(names)).toHaveLength(7);
  });

  it('aix path priorities outside 1-255 are rejected', () => {
    const lun = new MemoryVolume({ size: 64 * KiB });
    expect(() => createLocalRig({ lun, paths: [{ name: 'A', priority: 256 }], config: aixProfile(), clock: new VirtualClock() })).toThrow(expect.objectContaining({ code: 'INVALID_CONFIG' }));
    expect(() => createLocalRig({ lun, paths: [{ name: 'A', priority: 0 }], config: aixProfile(), clock: new VirtualClock() })).toThrow(expect.objectContaining({ code: 'INVALID_CONFIG' }));
  });

  it('MP-41: dual-VIOS client hdisk shows exactly 2 paths, both Enabled; with priorities alternated per disk, even disks use VIOS1 only and odd disks VIOS2 only', async () => {
    const clock = new VirtualClock();
    const luns = [0, 1, 2, 3].map((i) => new MemoryVolume({ size: 256 * KiB, identity: { name: `lun${i}` } }));
    const exportsOf = luns.map((volume, i) => ({ name: `lun${i}`, volume }));
    const vios1 = new TargetPort({ name: 'VIOS1', luns: exportsOf, clock });
    const vios2 = new TargetPort({ name: 'VIOS2', luns: exportsOf, clock });
    const disks = luns.map(
      (_, i) =>
        new MultipathDevice({
          name: `hdisk${i}`,
          paths: [
            { name: 'vscsi0', volume: vios1.volume(`lun${i}`), priority: i % 2 === 0 ? 1 : 2 },
            { name: 'vscsi1', volume: vios2.volume(`lun${i}`), priority: i % 2 === 0 ? 2 : 1 },
          ],
          config: aixProfile({ adapter: 'vscsi' }),
          clock,
        }),
    );
    for (const d of disks) {
      expect(d.describe().map((p) => [p.name, p.stateName])).toEqual([
        ['vscsi0', 'Enabled'],
        ['vscsi1', 'Enabled'],
      ]);
      for (let k = 0; k < 50; k++) await d.write(k * 4 * KiB, new Uint8Array(4 * KiB));
    }
    disks.forEach((d, i) => {
      const [v0, v1] = d.paths().map((p) => p.stats.completed);
      expect([v0, v1], d.name).toEqual(i % 2 === 0 ? [50, 0] : [0, 50]);
    });
  });

  it('MP-42: the same identity exported by both VIOS -> one device with 2 paths; different identities -> two devices', () => {
    const clock = new VirtualClock();
    const shared = new MemoryVolume({ size: 64 * KiB, identity: { name: 'lun0' } });
    const p1 = new TargetPort({ name: 'VIOS1', luns: [{ name: 'lun0', volume: shared }], clock });
    const p2 = new TargetPort({ name: 'VIOS2', luns: [{ name: 'lun0', volume: shared }], clock });
    const one = discoverDevices([
      { name: 'vscsi0', volume: p1.volume('lun0') },
      { name: 'vscsi1', volume: p2.volume('lun0') },
    ]);
    expect(one).toHaveLength(1);
    expect(one[0]!.paths.map((p) => p.name)).toEqual(['vscsi0', 'vscsi1']);
    // HDLM without unique_id and no PVID: each VIOS presents its own identity.
    const a = new MemoryVolume({ size: 64 * KiB, identity: { name: 'lun0' } });
    const b = new MemoryVolume({ size: 64 * KiB, identity: { name: 'lun0' } });
    const two = discoverDevices([
      { name: 'vscsi0', volume: a },
      { name: 'vscsi1', volume: b },
    ]);
    expect(two.map((d) => d.paths.length)).toEqual([1, 1]);
    // A device refuses a path to another LU.
    const dev = new MultipathDevice({ paths: two[0]!.paths, clock });
    expect(() => dev.addPath({ name: 'vscsi1', volume: b })).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    expect(() => new MultipathDevice({ paths: [...two[0]!.paths, ...two[1]!.paths], clock })).toThrow(expect.objectContaining({ code: 'INVALID_CONFIG' }));
  });
});
