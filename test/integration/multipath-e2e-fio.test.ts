/**
 * Multipath end to end with a real client (spec/multipath.md §5.1, §5.3;
 * MP-11, MP-17, MP-19, MP-20 over real sockets): a pool LUN exported on two
 * target ports (unix sockets), a MultipathDevice over two NbdPathVolume
 * paths (dm profile: round robin over one group, queue when no path is
 * left, 1 s polling, 2 s request timeout), and that device re-exported by
 * an NbdServer (any Volume can be an export). fio's nbd engine writes and
 * verifies (crc32c, verify_backlog plus the final verify pass) through the
 * re-export while a fault timeline takes port A down, hangs it, flaps it,
 * restores it, and then takes both ports down for 3 s. fio must report 0
 * errors and 0 verification failures. Real time (fio is a real process),
 * rate-limited so the run spans the timeline; about 30 s.
 */
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { FateGroup, FaultTimeline, MultipathDevice, NbdPathVolume, TargetPort, type MultipathEvent } from '../../src/multipath/index.js';
import { dmProfile } from '../../src/multipath/profiles.js';
import { ExportRegistry } from '../../src/nbd/export-provider.js';
import { NbdServer } from '../../src/nbd/server.js';
import { Pool } from '../../src/store/pool.js';
import { systemClock } from '../../src/util/clock.js';
import { seededRandom, testSeed } from '../helpers/seeded-random.js';
import { tempDirs } from '../helpers/temp-dir.js';
import { killChildren, missing, run } from './nbd-harness.js';

const skip = missing('fio');
if (skip) console.warn(`multipath-e2e-fio: ${skip}`);

const dirs = tempDirs('lunrig-mp-e2e-');
const cleanup: (() => Promise<unknown>)[] = [];

afterEach(async () => {
  killChildren();
  for (const f of cleanup.splice(0).reverse()) await f().catch(() => undefined);
  dirs.cleanup();
});

interface FioJob {
  error: number;
  write: { io_bytes: number; total_ios: number };
  read: { io_bytes: number; total_ios: number };
}

describe.skipIf(skip)(`multipath device re-exported over NBD, fio on top${skip ? ` (${skip})` : ''}`, () => {
  it('MP-11/MP-17/MP-19/MP-20: fio --verify=crc32c through a re-exported multipath device sees 0 errors while a port goes down, hangs, flaps and a full 3 s outage is queued through', async () => {
    const random = seededRandom(testSeed('multipath-e2e-fio'));
    const dir = dirs.make();
    const pool = await Pool.open({ dir: join(dir, 'pool') });
    cleanup.push(() => pool.close());
    await pool.createLun({ name: 'lun0', size: '96M' });
    const lun = pool.volume('lun0');

    const ports = ['A', 'B'].map((name) => new TargetPort({ name, luns: [{ name: 'lun0', volume: lun }], listen: { path: join(dir, `${name}.sock`) }, random }));
    for (const p of ports) {
      await p.start();
      cleanup.push(() => p.stop());
    }
    const [portA, portB] = ports as [TargetPort, TargetPort];
    const paths = await Promise.all(ports.map((p) => NbdPathVolume.open(p.target, { exportName: 'lun0', connectTimeoutMs: 1000 })));
    for (const v of paths) cleanup.push(() => v.close());

    const device = new MultipathDevice({
      name: 'mpatha',
      paths: [
        { name: 'A', volume: paths[0]! },
        { name: 'B', volume: paths[1]! },
      ],
      config: dmProfile({ path_grouping_policy: 'multibus', path_selector: 'round-robin 0', no_path_retry: 'queue', polling_interval: 1, failback: 'immediate', timeout: 2 }),
      clock: systemClock,
    });
    cleanup.push(() => device.close());
    const events: MultipathEvent[] = [];
    device.on('event', (e) => events.push(e));

    // The multipath device as an NBD export.
    const reexport = new NbdServer({ exports: new ExportRegistry([{ name: 'mpatha', volume: device }]) });
    const sock = join(dir, 'mpath.sock');
    await reexport.listen({ path: sock });
    cleanup.push(() => reexport.close());

    const both = new FateGroup('array', [portA, portB]);
    const timeline = new FaultTimeline(systemClock, [
      { atMs: 1_500, target: portA.faults, set: [{ kind: 'down' }], note: 'A down' },
      { atMs: 4_000, target: portA.faults, set: [], note: 'A restored' },
      { atMs: 6_000, target: portA.faults, set: [{ kind: 'hang' }], note: 'A hangs' },
      { atMs: 9_500, target: portA.faults, set: [], note: 'A restored' },
      { atMs: 11_500, target: portA.faults, set: [{ kind: 'flap', periodMs: 1_000, duty: 0.5 }], note: 'A flaps' },
      { atMs: 15_500, target: portA.faults, set: [], note: 'A restored' },
      { atMs: 17_500, target: both, set: [{ kind: 'down' }], note: 'all paths down' },
      { atMs: 20_500, target: both, set: [], note: 'all restored' },
    ]);

    const uri = `nbd+unix:///mpatha?socket=${sock}`;
    const fio = run(
      'fio',
      [
        '--name=mp-e2e',
        '--ioengine=nbd',
        `--uri=${uri}`,
        '--rw=randwrite',
        '--bs=4k',
        '--iodepth=8',
        '--size=64M',
        '--rate=2700k',
        '--verify=crc32c',
        '--verify_fatal=1',
        '--verify_backlog=512',
        '--do_verify=1',
        '--verify_state_save=0',
        '--output-format=json',
      ],
      { timeoutMs: 55_000 },
    );
    const started = Date.now();
    void timeline.start();
    cleanup.push(async () => timeline.cancel());
    const r = await fio;
    const elapsed = Date.now() - started;
    console.log(`[multipath-e2e-fio] fio ran ${elapsed} ms; timeline fired: ${timeline.fired.map((f) => `${f.note}@${f.atMs}`).join(', ')}`);
    if (r.code !== 0) console.log(r.stdout, r.stderr);
    expect(r.code, r.stderr).toBe(0);
    const job = (JSON.parse(r.stdout.slice(r.stdout.indexOf('{'))) as { jobs: FioJob[] }).jobs[0]!;
    expect(job.error).toBe(0);
    expect(r.stderr).not.toMatch(/verify|error/i);
    expect(job.write.io_bytes).toBe(64 * 1024 * 1024);
    expect(job.read.io_bytes).toBeGreaterThanOrEqual(64 * 1024 * 1024);
    // The run spanned every fault, and the device really failed over and queued.
    expect(timeline.fired).toHaveLength(8);
    const failedA = events.filter((e) => e.type === 'path-state' && e.path === 'A' && e.to === 'failed').map((e) => (e.type === 'path-state' ? e.cause : ''));
    expect(failedA.length).toBeGreaterThanOrEqual(3);
    // The hang was found by a timeout (an I/O's or a check's, whichever came first).
    expect(device.path('A').stats.timeouts).toBeGreaterThan(0);
    console.log(`[multipath-e2e-fio] A failed ${failedA.length} times: ${failedA.join(', ')}`);
    expect(events.some((e) => e.type === 'all-paths-down')).toBe(true);
    expect(events.some((e) => e.type === 'paths-restored')).toBe(true);
    expect(device.describe().map((p) => p.state)).toEqual(['online', 'online']);
    console.log(
      `[multipath-e2e-fio] path stats: ${device
        .describe()
        .map((p) => `${p.name}: ${p.stats.completed} ok, errors ${JSON.stringify(p.stats.errors)}`)
        .join('; ')}`,
    );
  }, 60_000);
});
