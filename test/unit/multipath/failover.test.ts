/**
 * Failure and failover (spec/multipath.md §1.4, §1.6, MP-04, MP-09, MP-11..MP-16,
 * MP-19, MP-20): path errors are invisible to the caller, device errors are
 * not, HDLM never offlines its last path, timeouts on the clock, fate groups.
 */
import { describe, expect, it } from 'vitest';
import { isLunrigError, LunrigError } from '../../../src/errors.js';
import {
  FateGroup,
  MultipathDevice,
  TargetPort,
  createLocalRig,
  type LocalRig,
  type LocalRigPath,
  type MultipathConfig,
  type MultipathEvent,
  type PathStateEvent,
} from '../../../src/multipath/index.js';
import { aixProfile, dmProfile, hdlmProfile } from '../../../src/multipath/profiles.js';
import { VirtualClock } from '../../../src/util/clock.js';
import { MemoryVolume } from '../../../src/volume/memory-volume.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

function rig(paths: readonly (string | LocalRigPath)[], config: MultipathConfig): LocalRig & { clock: VirtualClock; lun: MemoryVolume } {
  const clock = new VirtualClock();
  const lun = new MemoryVolume({ size: 16 * MiB, identity: { name: 'lun0' } });
  return { ...createLocalRig({ lun, paths, config, clock }), clock, lun };
}

const stateEvents = (events: MultipathEvent[]): PathStateEvent[] => events.filter((e): e is PathStateEvent => e.type === 'path-state');

describe('multipath failover', () => {
  it('MP-04: aix fail_over, priority-1 path fails -> next I/O on priority 2 with no error; after the health check re-enables it, the first I/O goes to path 1', async () => {
    const r = rig([{ name: 'P1', priority: 1 }, { name: 'P2', priority: 2 }], aixProfile({ hcheck_interval: 60 }));
    await r.device.read(0, 4 * KiB);
    r.faults('P1').set({ kind: 'down' });
    await r.device.read(0, 4 * KiB);
    expect(r.device.path('P1').state).toBe('failed');
    expect(r.device.path('P2').stats.completed).toBe(1);
    r.faults('P1').clear();
    await r.clock.advance(60_000);
    expect(r.device.path('P1').state).toBe('online');
    await r.device.read(0, 4 * KiB);
    expect(r.device.path('P1').stats.completed).toBe(2);
    expect(r.device.path('P2').stats.completed).toBe(1);
  });

  it('MP-09: hdlm, both owner paths fail -> I/O continues on non-owners; an owner recovers with afb on -> I/O switches back to it', async () => {
    const r = rig(
      [
        { name: 'own1', owner: true },
        { name: 'own2', owner: true },
        { name: 'non1', owner: false },
        { name: 'non2', owner: false },
      ],
      hdlmProfile(),
    );
    expect(r.device.activeGroup).toBe('owner');
    r.faults('own1').set({ kind: 'down' });
    r.faults('own2').set({ kind: 'down' });
    for (let i = 0; i < 20; i++) await r.device.read(i * 4 * KiB, 4 * KiB);
    const st = (n: string): string => r.device.path(n).state;
    expect([st('own1'), st('own2'), st('non1'), st('non2')]).toEqual(['failed', 'failed', 'online', 'online']);
    expect(r.device.describe().map((p) => p.stateName)).toEqual(['Offline(E)', 'Offline(E)', 'Online', 'Online']);
    expect(r.device.activeGroup).toBe('non-owner');
    r.faults('own2').clear();
    await r.clock.advance(60_000); // afb: 1 min
    expect(st('own2')).toBe('online');
    expect(r.device.activeGroup).toBe('owner');
    const nonBefore = r.device.path('non1').stats.completed + r.device.path('non2').stats.completed;
    for (let i = 0; i < 10; i++) await r.device.read(i * 4 * KiB, 4 * KiB);
    expect(r.device.path('own2').stats.completed).toBe(10);
    expect(r.device.path('non1').stats.completed + r.device.path('non2').stats.completed).toBe(nonBefore);
    const switches = r.events.filter((e) => e.type === 'group-switch').map((e) => (e.type === 'group-switch' ? `${e.cause}:${e.to}` : ''));
    expect(switches).toEqual(['failover:non-owner', 'failback:owner']);
  });

  it('MP-11: a path error on an in-flight I/O -> it completes through another path, the caller sees no error, the path error count is 1 and the path Failed', async () => {
    const r = rig(['A', 'B'], aixProfile({ algorithm: 'round_robin' }));
    const data = Buffer.alloc(8 * KiB, 0x5a);
    r.faults('A').set({ kind: 'hang' });
    const io = r.device.write(0, data); // round robin starts on A: held there
    await tick();
    expect(r.device.path('A').inFlight).toBe(1);
    r.faults('A').set({ kind: 'down' }); // the link drops: the held request fails with a transport error
    await expect(io).resolves.toBeUndefined();
    const a = r.device.path('A');
    expect(a.stats.errors.path).toBe(1);
    expect(a.state).toBe('failed');
    expect(r.device.describe()[0]!.stateName).toBe('Failed');
    expect(r.device.path('B').stats.completed).toBe(1);
    expect(Buffer.from(await r.lun.read(0, data.length)).equals(data)).toBe(true);
    expect(r.events.some((e) => e.type === 'io-retry' && e.path === 'A' && e.errorClass === 'path')).toBe(true);
  });

  it('MP-12: a device error (MEDIUM ERROR) goes back to the caller; the path stays online; no failover, other paths get no I/O', async () => {
    const r = rig([{ name: 'A', priority: 1 }, { name: 'B', priority: 2 }], aixProfile());
    r.faults('A').set({ kind: 'error', rate: 1, code: 'MEDIUM_ERROR' });
    await expect(r.device.read(0, 4 * KiB)).rejects.toMatchObject({ code: 'MEDIUM_ERROR' });
    expect(r.device.path('A').state).toBe('online');
    expect(r.device.path('A').stats.errors.device).toBe(1);
    expect(r.device.path('B').stats.ios).toBe(0);
  });

  it('MP-13: RESERVATION CONFLICT is not a path failure: the path stays online and the conflict goes back to the caller', async () => {
    const r = rig(['A', 'B'], aixProfile({ algorithm: 'round_robin' }));
    r.faults('A').set({ kind: 'error', rate: 1, code: 'RESERVATION_CONFLICT' });
    await expect(r.device.write(0, new Uint8Array(512))).rejects.toMatchObject({ code: 'RESERVATION_CONFLICT' });
    expect(r.device.path('A').state).toBe('online');
    expect(r.device.path('B').stats.ios).toBe(0);
  });

  it('MP-14: hdlm, the only remaining Online path gets an error -> Online(E), never Offline(E); the next successful I/O makes it Online', async () => {
    const r = rig(['A', 'B'], hdlmProfile());
    r.device.offline('B');
    r.faults('A').set({ kind: 'down' });
    await expect(r.device.read(0, 4 * KiB)).rejects.toMatchObject({ code: 'UNREACHABLE' });
    expect(r.device.path('A').state).toBe('online_degraded');
    expect(r.device.describe()[0]!.stateName).toBe('Online(E)');
    // Online(E) keeps getting I/O: the error goes to the caller, the state stays.
    await expect(r.device.read(0, 4 * KiB)).rejects.toMatchObject({ code: 'UNREACHABLE' });
    expect(r.device.path('A').state).toBe('online_degraded');
    r.faults('A').clear();
    await r.device.read(0, 4 * KiB);
    expect(r.device.path('A').state).toBe('online');
    expect(stateEvents(r.events).map((e) => `${e.path}:${e.fromName}->${e.toName}:${e.cause}`)).toEqual([
      'B:Online->Offline(C):admin',
      'A:Online->Online(E):last_path',
      'A:Online(E)->Online:io_ok',
    ]);
  });

  it('MP-14: hdlm with another path Online, the failing path goes Offline(E) and the I/O succeeds elsewhere', async () => {
    const r = rig(['A', 'B'], hdlmProfile({ lb: false }));
    r.faults('A').set({ kind: 'down' });
    await r.device.read(0, 4 * KiB);
    expect(r.device.describe().map((p) => p.stateName)).toEqual(['Offline(E)', 'Online']);
  });

  it('MP-15: hdlm offline on the last Online path of an LU is rejected and the state is unchanged', () => {
    const r = rig(['A', 'B'], hdlmProfile());
    r.device.offline('A');
    expect(() => r.device.offline('B')).toThrow(expect.objectContaining({ code: 'MP_LAST_PATH' }));
    expect(r.device.path('B').state).toBe('online');
    expect(r.device.describe().map((p) => p.stateName)).toEqual(['Offline(C)', 'Online']);
    // AIX has no such rule: the last path can be disabled.
    const a = rig(['A', 'B'], aixProfile());
    a.device.offline('A');
    a.device.offline('B');
    expect(a.device.describe().map((p) => p.stateName)).toEqual(['Disabled', 'Disabled']);
  });

  it('MP-16: aix, all paths Failed -> the I/O fails with an error to the caller at once; nothing is queued', async () => {
    const r = rig(['A', 'B'], aixProfile({ algorithm: 'round_robin' }));
    r.faults('A').set({ kind: 'down' });
    r.faults('B').set({ kind: 'down' });
    const t0 = r.clock.now();
    const err = await r.device.read(0, 4 * KiB).catch((e: unknown) => e);
    expect(isLunrigError(err, 'UNREACHABLE')).toBe(true);
    expect(r.clock.now()).toBe(t0);
    expect(r.device.queuedForPath).toBe(0);
    expect(r.device.paths().map((p) => p.state)).toEqual(['failed', 'failed']);
    // Later I/O fails at once too.
    await expect(r.device.read(0, 512)).rejects.toMatchObject({ code: 'UNREACHABLE' });
    expect(r.events.filter((e) => e.type === 'all-paths-down')).toHaveLength(1);
  });

  it('MP-19: aix timeout_policy=fail_path: a path that never answers -> the I/O is aborted at rw_timeout (30 s) and completes on the other path at 30 s; the path is Failed', async () => {
    const r = rig([{ name: 'A', priority: 1 }, { name: 'B', priority: 2 }], aixProfile({ rw_timeout: 30 }));
    r.faults('A').set({ kind: 'hang' });
    let doneAt: number | undefined;
    const io = r.device.read(0, 4 * KiB).then(() => (doneAt = r.clock.now()));
    await tick();
    await r.clock.advance(29_999);
    expect(doneAt).toBeUndefined();
    await r.clock.advance(1);
    await io;
    expect(doneAt).toBe(30_000);
    const a = r.device.path('A');
    expect(a.state).toBe('failed');
    expect(a.stats.timeouts).toBe(1);
    expect(stateEvents(r.events).at(-1)).toMatchObject({ path: 'A', to: 'failed', cause: 'io_timeout', at: 30_000 });
  });

  it('MP-19: aix timeout_policy=disable_path: the path becomes Disabled and no health check ever re-enables it', async () => {
    const r = rig([{ name: 'A', priority: 1 }, { name: 'B', priority: 2 }], aixProfile({ rw_timeout: 30, timeout_policy: 'disable_path', hcheck_interval: 60, hcheck_mode: 'enabled' }));
    r.faults('A').set({ kind: 'hang' });
    const io = r.device.read(0, 4 * KiB);
    await tick();
    await r.clock.advance(30_000);
    await io;
    expect(r.device.describe()[0]!.stateName).toBe('Disabled');
    r.faults('A').clear();
    await r.clock.advance(3_600_000);
    expect(r.device.path('A').state).toBe('admin_offline');
    expect(r.device.path('A').stats.probes).toBe(0);
  });

  it('timeout_policy=retry_path retries once on the same path, then fails the path', async () => {
    const r = rig([{ name: 'A', priority: 1 }, { name: 'B', priority: 2 }], aixProfile({ rw_timeout: 10, timeout_policy: 'retry_path' }));
    r.faults('A').set({ kind: 'hang' });
    let doneAt: number | undefined;
    const io = r.device.read(0, 4 * KiB).then(() => (doneAt = r.clock.now()));
    await tick();
    await r.clock.advance(10_000);
    expect(r.device.path('A').state).toBe('online');
    await r.clock.advance(10_000);
    await io;
    expect(doneAt).toBe(20_000);
    expect(r.device.path('A').state).toBe('failed');
    expect(r.device.path('A').stats.timeouts).toBe(2);
  });

  it('MP-20: fate group "VIOS1 down" fails every client path through it in the same virtual instant; all disks keep serving I/O through VIOS2', async () => {
    const clock = new VirtualClock(1_000);
    const luns = [0, 1, 2].map((i) => new MemoryVolume({ size: MiB, identity: { name: `lun${i}` } }));
    const port = (name: string): TargetPort => new TargetPort({ name, luns: luns.map((v, i) => ({ name: `lun${i}`, volume: v })), clock });
    const [v1a, v1b, v2a] = [port('vios1-a'), port('vios1-b'), port('vios2-a')] as const;
    const vios1 = new FateGroup('VIOS1', [v1a, v1b]);
    const events: MultipathEvent[] = [];
    const disks = luns.map((_, i) => {
      const d = new MultipathDevice({
        name: `hdisk${i}`,
        paths: [
          { name: 'vscsi0-a', volume: v1a.volume(`lun${i}`), priority: 1, fateGroups: ['VIOS1'] },
          { name: 'vscsi0-b', volume: v1b.volume(`lun${i}`), priority: 1, fateGroups: ['VIOS1'] },
          { name: 'vscsi1', volume: v2a.volume(`lun${i}`), priority: 2, fateGroups: ['VIOS2'] },
        ],
        config: aixProfile({ adapter: 'vscsi' }),
        clock,
      });
      d.on('event', (e) => events.push(e));
      return d;
    });
    await clock.advance(500);
    vios1.set({ kind: 'down' });
    const injectedAt = clock.now();
    for (const d of disks) await d.write(0, new Uint8Array(4 * KiB).fill(7));
    const failures = stateEvents(events).filter((e) => e.to === 'failed');
    expect(failures).toHaveLength(6);
    expect(new Set(failures.map((e) => e.at))).toEqual(new Set([injectedAt]));
    expect(failures.map((e) => `${e.device}/${e.path}`).sort()).toEqual(disks.flatMap((d) => [`${d.name}/vscsi0-a`, `${d.name}/vscsi0-b`]).sort());
    for (const d of disks) expect(d.path('vscsi1').stats.completed).toBe(1);
  });

  it('standby (ALUA): NOT READY moves a path to standby and the I/O goes on elsewhere; a standby path is a last resort and a passing TUR brings it online', async () => {
    const r = rig(['A', 'B'], dmProfile({ path_grouping_policy: 'multibus' }));
    r.faults('A').set({ kind: 'standby' });
    for (let i = 0; i < 4; i++) await r.device.read(0, 4 * KiB);
    expect(r.device.path('A').state).toBe('standby');
    expect(r.device.describe()[0]!.stateName).toBe('active ghost');
    expect(r.device.path('B').stats.completed).toBe(4);
    // Only the standby path is left: it is tried, answers NOT READY, and the I/O fails.
    r.faults('B').set({ kind: 'down' });
    await expect(r.device.read(0, 4 * KiB)).rejects.toMatchObject({ code: 'UNREACHABLE' });
    r.faults('A').clear(); // the port becomes active/optimized
    await r.clock.advance(5_000); // polling_interval
    expect(r.device.path('A').state).toBe('online');
    await r.device.read(0, 4 * KiB);
  });

  it('retry-class errors (BUSY) are retried on the same path up to the limit, then returned; the path stays online', async () => {
    const r = rig([{ name: 'A', priority: 1 }, { name: 'B', priority: 2 }], aixProfile());
    r.faults('A').set({ kind: 'error', rate: 1, code: 'BUSY' });
    await expect(r.device.read(0, 512)).rejects.toMatchObject({ code: 'BUSY' });
    expect(r.device.path('A').stats.ios).toBe(4); // 1 + retryLimit 3
    expect(r.device.path('A').state).toBe('online');
    expect(r.device.path('B').stats.ios).toBe(0);
  });

  it('per-path statistics: bytes, latency histogram, EWMA, time in state and the event sequence with causes', async () => {
    const r = rig([{ name: 'A', priority: 1 }, { name: 'B', priority: 2 }], aixProfile({ hcheck_interval: 60 }));
    r.faults('A').set({ kind: 'latency', ms: 15 });
    const w = r.device.write(0, new Uint8Array(8 * KiB));
    await tick();
    await r.clock.advance(15);
    await w;
    const rd = r.device.read(0, 4 * KiB);
    await tick();
    await r.clock.advance(15);
    await rd;
    r.faults('A').set({ kind: 'down' });
    await r.device.read(0, 4 * KiB);
    await r.clock.advance(100);
    r.faults('A').clear();
    await r.clock.advance(60_000 - 130);
    const s = r.device.describe()[0]!.stats;
    expect(s).toMatchObject({ ios: 3, completed: 2, reads: 1, writes: 1, bytesRead: 4 * KiB, bytesWritten: 8 * KiB, inFlight: 0, ewmaMs: 15 });
    expect(s.errors).toEqual({ path: 1, device: 0, retry: 0, standby: 0 });
    expect(s.latency.count).toBe(2);
    expect(s.latency.buckets.find((b) => b.le === 20)!.count).toBe(2);
    expect(s.timeInState.failed).toBe(60_000 - 30);
    expect(s.timeInState.online).toBe(30);
    expect(stateEvents(r.events).map((e) => [e.path, e.from, e.to, e.cause, e.at])).toEqual([
      ['A', 'online', 'failed', 'io_error', 30],
      ['A', 'failed', 'online', 'check_ok', 60_000],
    ]);
    expect(stateEvents(r.events)[0]!.error).toMatchObject({ code: 'UNREACHABLE' });
  });

  it('a closed device fails new and queued I/O with CLOSED', async () => {
    const r = rig(['A'], dmProfile({ no_path_retry: 'queue' }));
    r.faults('A').set({ kind: 'down' });
    const queued = r.device.read(0, 512);
    await tick();
    expect(r.device.queuedForPath).toBe(1);
    await r.device.close();
    await expect(queued).rejects.toMatchObject({ code: 'CLOSED' });
    await expect(r.device.read(0, 512)).rejects.toBeInstanceOf(LunrigError);
  });
});
