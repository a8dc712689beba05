/**
 * fc_err_recov (spec/multipath.md §1.6, MP-18): a link event on an
 * initiator port; fast_fail fails its I/O about 15 s later so the device
 * fails over, and new I/O through the port fails at once until the device
 * rejoins; delayed_fail keeps retrying until rw_timeout ends it.
 */
import { describe, expect, it } from 'vitest';
import { isLunrigError } from '../../../src/errors.js';
import { InitiatorPort, MultipathDevice, TargetPort, type LinkPhase } from '../../../src/multipath/index.js';
import { aixProfile } from '../../../src/multipath/profiles.js';
import { VirtualClock } from '../../../src/util/clock.js';
import { MemoryVolume } from '../../../src/volume/memory-volume.js';

const KiB = 1024;
const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

function rig(mode: 'fast_fail' | 'delayed_fail') {
  const clock = new VirtualClock();
  const lun = new MemoryVolume({ size: 1024 * KiB, identity: { name: 'lu0' } });
  const target = new TargetPort({ name: 'ctl0', luns: [{ name: 'lu0', volume: lun }], clock });
  const config = aixProfile({ algorithm: 'fail_over', rw_timeout: 30, hcheck_interval: 0, fc_err_recov: mode });
  const fscsi0 = new InitiatorPort({ name: 'fscsi0', clock, policy: config.linkRecovery });
  const fscsi1 = new InitiatorPort({ name: 'fscsi1', clock, policy: config.linkRecovery });
  const device = new MultipathDevice({
    clock,
    config,
    paths: [
      { name: 'fscsi0', priority: 1, volume: fscsi0.wrap(target.volume('lu0')) },
      { name: 'fscsi1', priority: 2, volume: fscsi1.wrap(target.volume('lu0')) },
    ],
  });
  return { clock, target, fscsi0, fscsi1, device };
}

describe('fc_err_recov link events', () => {
  it('MP-18: fast_fail, link event on fscsi0 -> its I/O fails after ~15 s and fails over; new I/O through fscsi0 fails at once until the device rejoins', async () => {
    const r = rig('fast_fail');
    const phases: [LinkPhase, number][] = [];
    r.fscsi0.on('change', (p, at) => phases.push([p, at]));
    const t0 = r.clock.now();
    r.fscsi0.lose();
    let done = false;
    const write = r.device.write(0, new Uint8Array(4 * KiB).fill(7)).then(() => (done = true));
    await r.clock.advance(14_999);
    await tick();
    expect(done).toBe(false);
    await r.clock.advance(1);
    await write;
    expect(r.clock.now() - t0).toBe(15_000);
    expect(r.device.path('fscsi0').state).toBe('failed');
    expect(r.device.path('fscsi1').stats.completed).toBe(1);
    // New I/O to that port fails immediately (no wait) while the device is off the fabric.
    const direct = r.fscsi0.wrap(r.target.volume('lu0'));
    const before = r.clock.now();
    const err = await direct.read(0, 512).catch((e: unknown) => e);
    expect(isLunrigError(err, 'UNREACHABLE')).toBe(true);
    expect(r.clock.now()).toBe(before);
    r.fscsi0.rejoin();
    await expect(direct.read(0, 512)).resolves.toHaveLength(512);
    expect(phases.map(([p, at]) => `${p}@${at - t0}`)).toEqual(['lost@0', 'failing@15000', `up@${before - t0}`]);
  });

  it('MP-18: delayed_fail keeps retrying the path longer: the I/O is not failed at 15 s, rw_timeout (30 s) ends it and it completes on fscsi1', async () => {
    const r = rig('delayed_fail');
    const t0 = r.clock.now();
    r.fscsi0.lose();
    let doneAt: number | undefined;
    const write = r.device.write(0, new Uint8Array(4 * KiB).fill(9)).then(() => (doneAt = r.clock.now()));
    await r.clock.advance(15_000);
    await tick();
    expect(doneAt).toBeUndefined();
    expect(r.fscsi0.phase).toBe('lost');
    await r.clock.advance(15_000);
    await write;
    expect(doneAt! - t0).toBe(30_000);
    expect(r.device.path('fscsi0').state).toBe('failed');
    expect(r.device.path('fscsi0').stats.timeouts).toBe(1);
  });

  it('MP-18: a link that comes back within the settle time loses nothing: held I/O goes on through the same path', async () => {
    const r = rig('fast_fail');
    r.fscsi0.lose();
    const write = r.device.write(0, new Uint8Array(4 * KiB).fill(1));
    await r.clock.advance(5_000);
    r.fscsi0.rejoin();
    await write;
    expect(r.device.path('fscsi0').state).toBe('online');
    expect(r.device.path('fscsi0').stats.completed).toBe(1);
    expect(r.device.path('fscsi1').stats.completed).toBe(0);
  });
});
