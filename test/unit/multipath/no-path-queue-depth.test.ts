/**
 * All paths down and queue depth (spec/multipath.md §1.6, §1.8, MP-17, MP-39,
 * MP-40).
 */
import { describe, expect, it } from 'vitest';
import { createLocalRig, type LocalRig, type LocalRigPath, type MultipathConfig } from '../../../src/multipath/index.js';
import { aixProfile, dmProfile } from '../../../src/multipath/profiles.js';
import { VirtualClock } from '../../../src/util/clock.js';
import { MemoryVolume } from '../../../src/volume/memory-volume.js';

const KiB = 1024;
const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

function rig(paths: readonly (string | LocalRigPath)[], config: MultipathConfig, lun?: MemoryVolume, clock = new VirtualClock()): LocalRig & { clock: VirtualClock } {
  return { ...createLocalRig({ lun: lun ?? new MemoryVolume({ size: 1024 * KiB, identity: { name: 'lun0' } }), paths, config, clock }), clock };
}

/** A LUN that counts reads in flight and takes `ms` of virtual time per read. */
class CountingVolume extends MemoryVolume {
  active = 0;
  peak = 0;
  reads = 0;
  constructor(
    private readonly clock: VirtualClock,
    private readonly ms: number,
    uniqueId?: string,
  ) {
    super({ size: 1024 * KiB, identity: { name: 'lun0', ...(uniqueId ? { uniqueId } : {}) } });
  }
  override async read(offset: number, length: number, into?: Uint8Array): Promise<Uint8Array> {
    this.active++;
    this.reads++;
    this.peak = Math.max(this.peak, this.active);
    try {
      await this.clock.sleep(this.ms);
      return await super.read(offset, length, into);
    } finally {
      this.active--;
    }
  }
}

describe('multipath all-paths-down policy and queue depth', () => {
  it('MP-17: dm no_path_retry=queue -> with all paths down the I/O stays pending and completes when a path is reinstated', async () => {
    const r = rig(['A', 'B'], dmProfile({ path_grouping_policy: 'multibus', no_path_retry: 'queue' }));
    r.faults('A').set({ kind: 'down' });
    r.faults('B').set({ kind: 'down' });
    let doneAt: number | undefined;
    const io = r.device.read(0, 4 * KiB).then(() => (doneAt = r.clock.now()));
    await tick();
    expect(r.device.queuedForPath).toBe(1);
    await r.clock.advance(3_600_000);
    expect(doneAt).toBeUndefined();
    r.faults('B').clear();
    await r.clock.advance(5_000); // the next polling round reinstates B
    await io;
    expect(doneAt).toBe(3_605_000);
    expect(r.device.queuedForPath).toBe(0);
    expect(r.events.filter((e) => e.type === 'all-paths-down' || e.type === 'paths-restored').map((e) => e.type)).toEqual(['all-paths-down', 'paths-restored']);
  });

  it('MP-17: dm no_path_retry=3, polling_interval 5 -> the I/O fails after 15 s', async () => {
    const r = rig(['A', 'B'], dmProfile({ path_grouping_policy: 'multibus', no_path_retry: 3, polling_interval: 5 }));
    r.faults('A').set({ kind: 'down' });
    r.faults('B').set({ kind: 'down' });
    let failedAt: number | undefined;
    const io = r.device.read(0, 4 * KiB).catch((e: unknown) => {
      failedAt = r.clock.now();
      return e;
    });
    await tick();
    await r.clock.advance(14_999);
    expect(failedAt).toBeUndefined();
    await r.clock.advance(1);
    expect(await io).toMatchObject({ code: 'UNREACHABLE' });
    expect(failedAt).toBe(15_000);
    expect(r.events.find((e) => e.type === 'queue-exhausted')).toMatchObject({ failed: 1, at: 15_000 });
    // Exhausted: new I/O fails at once until a path returns, then flows again.
    await expect(r.device.read(0, 512)).rejects.toMatchObject({ code: 'UNREACHABLE' });
    r.faults('A').clear();
    await r.clock.advance(5_000);
    await expect(r.device.read(0, 512)).resolves.toBeInstanceOf(Uint8Array);
  });

  it('MP-39: queue_depth=3 on the device, 10 I/Os submitted at once -> the target never sees more than 3 outstanding; all 10 complete', async () => {
    const clock = new VirtualClock();
    const lun = new CountingVolume(clock, 10);
    const r = rig(['A', 'B'], aixProfile({ algorithm: 'round_robin', queue_depth: 3 }), lun, clock);
    const ios = Array.from({ length: 10 }, (_, i) => r.device.read(i * 4 * KiB, 4 * KiB));
    await tick();
    expect(r.device.queueDepthUse).toMatchObject({ active: 3, waiting: 7 });
    for (let i = 0; i < 4; i++) {
      await r.clock.advance(10);
      await tick();
    }
    await Promise.all(ios);
    expect(lun.peak).toBe(3);
    expect(lun.reads).toBe(10);
    expect(r.device.queueDepthUse.peak).toBe(3);
  });

  it('per-path queue depth (dm queue_depth 2): each path sees at most 2 outstanding', async () => {
    const clock = new VirtualClock();
    const uniqueId = 'ab'.repeat(16);
    const lunA = new CountingVolume(clock, 10, uniqueId);
    const lunB = new CountingVolume(clock, 10, uniqueId);
    const device = createLocalRig({
      lun: lunA,
      paths: ['A'],
      config: dmProfile({ path_grouping_policy: 'multibus', path_selector: 'round-robin 0', queue_depth: 2 }),
      clock,
    }).device;
    device.addPath({ name: 'B', volume: lunB });
    const ios = Array.from({ length: 10 }, (_, i) => device.read(i * 4 * KiB, 4 * KiB));
    for (let i = 0; i < 4; i++) {
      await tick();
      await clock.advance(10);
    }
    await Promise.all(ios);
    expect([lunA.peak, lunB.peak]).toEqual([2, 2]);
    expect(lunA.reads + lunB.reads).toBe(10);
  });

  it('MP-40: vSCSI client queue_depth outside 1-256 is rejected; the vSCSI default is 3', () => {
    for (const q of [0, 257, 1.5]) expect(() => aixProfile({ adapter: 'vscsi', queue_depth: q }), String(q)).toThrow(expect.objectContaining({ code: 'INVALID_CONFIG' }));
    expect(aixProfile({ adapter: 'vscsi', queue_depth: 1 }).queueDepth).toBe(1);
    expect(aixProfile({ adapter: 'vscsi', queue_depth: 256 }).queueDepth).toBe(256);
    expect(aixProfile({ adapter: 'vscsi' }).queueDepth).toBe(3);
  });
});
