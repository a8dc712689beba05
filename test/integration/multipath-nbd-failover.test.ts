/**
 * Multipath over real NBD (spec/multipath.md §5.3, MP-11, MP-19, MP-22):
 * one LUN exported on two TargetPorts (unix sockets), a host-side
 * MultipathDevice over two NbdPathVolume paths. I/O keeps flowing with zero
 * caller-visible errors while a port goes down (connections reset, listener
 * gone) and while a port hangs (caught by the path's request timeout on the
 * virtual clock), and both ports come back through the health checker.
 */
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { FateGroup, MultipathDevice, NbdPathVolume, TargetPort, type MultipathEvent } from '../../src/multipath/index.js';
import { aixProfile, dmProfile } from '../../src/multipath/profiles.js';
import { VirtualClock } from '../../src/util/clock.js';
import { MemoryVolume } from '../../src/volume/memory-volume.js';
import { seededRandom, testSeed } from '../helpers/seeded-random.js';
import { tempDirs } from '../helpers/temp-dir.js';

const KiB = 1024;
const BLOCK = 4 * KiB;
const BLOCKS = 512;
const dirs = tempDirs('lunrig-mp-');
const cleanup: (() => Promise<void>)[] = [];

afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
  dirs.cleanup();
});

describe('multipath over NBD target ports', () => {
  it('MP-11/MP-19/MP-22: I/O continues with zero caller errors while a port goes down and while a port hangs; both fail back', async () => {
    const random = seededRandom(testSeed('multipath-nbd-failover'));
    const dir = dirs.make();
    const clock = new VirtualClock();
    const lun = new MemoryVolume({ size: BLOCK * BLOCKS, identity: { name: 'lun0' } });
    const ports = ['A', 'B'].map((name) => new TargetPort({ name, luns: [{ name: 'lun0', volume: lun }], listen: { path: join(dir, `${name}.sock`) }, clock }));
    for (const p of ports) {
      await p.start();
      cleanup.push(() => p.stop());
    }
    const [portA, portB] = ports as [TargetPort, TargetPort];
    const paths = await Promise.all(ports.map((p) => NbdPathVolume.open(p.target, { exportName: 'lun0' })));
    for (const v of paths) cleanup.push(() => v.close());
    expect(paths[0]!.identity()).toEqual(lun.identity());
    expect(paths[1]!.identity()).toEqual(paths[0]!.identity());
    const dev = new MultipathDevice({
      paths: [
        { name: 'A', volume: paths[0]! },
        { name: 'B', volume: paths[1]! },
      ],
      config: aixProfile({ algorithm: 'round_robin', hcheck_interval: 60, rw_timeout: 30 }),
      clock,
    });
    cleanup.push(() => dev.close());
    const events: MultipathEvent[] = [];
    dev.on('event', (e) => events.push(e));
    const A = dev.path('A');
    const B = dev.path('B');

    // What every block should hold; a batch touches each block at most once, so its reads know the answer.
    const model = new Map<number, Buffer>();
    let errors = 0;
    const batch = (n: number): Promise<void>[] => {
      const blocks = shuffle([...Array(BLOCKS).keys()], random).slice(0, n);
      return blocks.map(async (b, i) => {
        try {
          if (i % 2 === 0) {
            const data = Buffer.alloc(BLOCK, Math.floor(random() * 255) + 1);
            data.writeUInt32BE(b, 0);
            await dev.write(b * BLOCK, data);
            model.set(b, data);
          } else {
            const expected = model.get(b) ?? Buffer.alloc(BLOCK);
            const got = Buffer.from(await dev.read(b * BLOCK, BLOCK));
            expect(got.equals(expected), `block ${b}`).toBe(true);
          }
        } catch (err) {
          errors++;
          throw err;
        }
      });
    };
    const run = async (n: number): Promise<void> => {
      await Promise.all(batch(n));
    };

    // Healthy: round robin over both ports.
    await run(40);
    expect(A.stats.completed).toBeGreaterThan(0);
    expect(B.stats.completed).toBeGreaterThan(0);

    // Port A goes down while a batch is in flight: its connections reset, its listener disappears.
    const inFlight = batch(40);
    portA.faults.set({ kind: 'down' });
    await portA.settled();
    await Promise.all(inFlight);
    await run(40);
    expect(portA.listening).toBe(false);
    expect(A.state).toBe('failed');
    const bBefore = B.stats.completed;
    await run(20);
    expect(B.stats.completed - bBefore).toBe(20);

    // Port A comes back; the 60 s health check reconnects it and round robin uses it again.
    portA.faults.clear();
    await portA.settled();
    expect(portA.listening).toBe(true);
    await clock.advance(60_000);
    await vi.waitFor(() => expect(A.state).toBe('online'));
    const aBack = A.stats.completed;
    await run(40);
    expect(A.stats.completed - aBack).toBe(20);

    // Port B hangs: its requests are never answered. Once only B's are outstanding, 30 s of virtual time pass.
    portB.faults.set({ kind: 'hang' });
    const hung = batch(40);
    await vi.waitFor(() => {
      expect(A.inFlight).toBe(0);
      expect(B.inFlight).toBe(20);
    });
    await clock.advance(30_000);
    await Promise.all(hung);
    expect(B.state).toBe('failed');
    expect(B.stats.timeouts).toBe(20);
    expect(portB.faults.holding).toBeGreaterThan(0);

    // The hang ends; the next check (t = 120 s) reconnects B.
    portB.faults.clear();
    await clock.advance(30_000);
    await vi.waitFor(() => expect(B.state).toBe('online'));
    const bBack = B.stats.completed;
    await run(40);
    expect(B.stats.completed - bBack).toBe(20);

    expect(errors).toBe(0);
    for (const [b, data] of model) expect(Buffer.from(await lun.read(b * BLOCK, BLOCK)).equals(data), `block ${b}`).toBe(true);
    const transitions = events.flatMap((e) => (e.type === 'path-state' ? [`${e.path}:${e.toName}:${e.cause}`] : []));
    expect(transitions).toEqual(['A:Failed:io_error', 'A:Enabled:check_ok', 'B:Failed:io_timeout', 'B:Enabled:check_ok']);
  });
});

describe('multipath over NBD: all paths down', () => {
  it('MP-17/MP-20: a fate group takes both ports of a controller down; dm no_path_retry=queue holds the I/O until the ports return', async () => {
    const dir = dirs.make();
    const clock = new VirtualClock();
    const lun = new MemoryVolume({ size: 64 * KiB, identity: { name: 'lun0' } });
    const ports = ['c0p0', 'c0p1'].map((name) => new TargetPort({ name, luns: [{ name: 'lun0', volume: lun }], listen: { path: join(dir, `${name}.sock`) }, clock }));
    for (const p of ports) {
      await p.start();
      cleanup.push(() => p.stop());
    }
    const controller = new FateGroup('controller0', ports);
    const paths = await Promise.all(ports.map((p) => NbdPathVolume.open(p.target, { exportName: 'lun0' })));
    for (const v of paths) cleanup.push(() => v.close());
    const dev = new MultipathDevice({
      paths: paths.map((volume, i) => ({ name: `sd${'ab'[i]}`, volume })),
      config: dmProfile({ path_grouping_policy: 'multibus', path_selector: 'round-robin 0', no_path_retry: 'queue' }),
      clock,
    });
    cleanup.push(() => dev.close());

    controller.set({ kind: 'down' });
    await Promise.all(ports.map((p) => p.settled()));
    expect(ports.map((p) => p.listening)).toEqual([false, false]);
    let done = false;
    const io = dev.write(0, Buffer.alloc(4 * KiB, 0xc3)).then(() => (done = true));
    await vi.waitFor(() => expect(dev.queuedForPath).toBe(1));
    expect(dev.paths().map((p) => p.state)).toEqual(['failed', 'failed']);
    await clock.advance(60_000); // twelve polling rounds: still down, still queued
    expect(done).toBe(false);

    controller.clear();
    await Promise.all(ports.map((p) => p.settled()));
    await clock.advance(5_000);
    await io;
    expect(Buffer.from(await lun.read(0, 4 * KiB)).equals(Buffer.alloc(4 * KiB, 0xc3))).toBe(true);
    await vi.waitFor(() => expect(dev.paths().map((p) => p.state)).toEqual(['online', 'online']));
  });
});

function shuffle<T>(a: T[], random: () => number): T[] {
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
}
