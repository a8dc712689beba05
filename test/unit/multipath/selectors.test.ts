/**
 * Path selection (spec/multipath.md §1.3, MP-01..MP-10): exact splits in
 * virtual time over in-process ports of one LU.
 */
import { describe, expect, it } from 'vitest';
import { createLocalRig, describeIo, type LocalRig, type LocalRigPath, type MultipathConfig } from '../../../src/multipath/index.js';
import { aixProfile, dmProfile, hdlmProfile } from '../../../src/multipath/profiles.js';
import { VirtualClock } from '../../../src/util/clock.js';
import { MemoryVolume } from '../../../src/volume/memory-volume.js';
import { seededRandom, testSeed } from '../../helpers/seeded-random.js';

const KiB = 1024;
const MiB = 1024 * KiB;

function rig(paths: readonly (string | LocalRigPath)[], config: MultipathConfig): LocalRig & { clock: VirtualClock } {
  const clock = new VirtualClock();
  const lun = new MemoryVolume({ size: 64 * MiB, identity: { name: 'lun0' } });
  return { ...createLocalRig({ lun, paths, config, clock }), clock };
}

/** Completed I/Os per path. */
function completed(r: LocalRig): Record<string, number> {
  return Object.fromEntries(r.device.paths().map((p) => [p.name, p.stats.completed]));
}

/** Run one read and return the path that completed it. */
async function readVia(r: LocalRig, offset: number, length = 4 * KiB): Promise<string> {
  const before = completed(r);
  await r.device.read(offset, length);
  const after = completed(r);
  const used = Object.keys(after).filter((k) => after[k] !== before[k]);
  expect(used).toHaveLength(1);
  return used[0]!;
}

/** Hold `n` I/Os of `bytes` in flight on a path (as the device counts them); returns the release, which waits for them. */
function hold(r: LocalRig, path: string, n: number, bytes: number): () => Promise<void> {
  let open!: () => void;
  const gate = new Promise<void>((resolve) => (open = resolve));
  const p = r.device.path(path);
  const held = Array.from({ length: n }, () => p.run(describeIo('read', 0, bytes), () => gate.then(() => new Uint8Array(0))));
  return async () => {
    open();
    await Promise.all(held);
  };
}

/** Let every pending continuation run (I/O reaches its timers before the clock moves). */
const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('multipath selectors', () => {
  it('MP-01: aix round_robin, 2 equal paths, 1000 I/Os one at a time -> exactly 500/500, strictly alternating', async () => {
    const r = rig(['A', 'B'], aixProfile({ algorithm: 'round_robin' }));
    const order: string[] = [];
    for (let i = 0; i < 1000; i++) order.push(await readVia(r, i * 4 * KiB));
    expect(completed(r)).toEqual({ A: 500, B: 500 });
    for (let i = 0; i < 1000; i++) expect(order[i]).toBe(i % 2 === 0 ? 'A' : 'B');
  });

  it('MP-02: aix round_robin, 4 paths, C fails after I/O #400 -> I/Os 401-1000 split 200/200/200 over A, B, D; 0 caller errors', async () => {
    const r = rig(['A', 'B', 'C', 'D'], aixProfile({ algorithm: 'round_robin' }));
    for (let i = 0; i < 400; i++) await r.device.read(i * 4 * KiB, 4 * KiB);
    expect(completed(r)).toEqual({ A: 100, B: 100, C: 100, D: 100 });
    r.faults('C').set({ kind: 'down' });
    let errors = 0;
    for (let i = 400; i < 1000; i++) await r.device.read(i * 4 * KiB, 4 * KiB).catch(() => errors++);
    expect(errors).toBe(0);
    expect(completed(r)).toEqual({ A: 300, B: 300, C: 100, D: 300 });
    const c = r.device.path('C');
    expect(c.state).toBe('failed');
    expect(c.stats.errors.path).toBe(1);
  });

  it('MP-03: aix fail_over, priorities 1 and 2 -> 1000/0', async () => {
    const r = rig([{ name: 'P1', priority: 1 }, { name: 'P2', priority: 2 }], aixProfile({ algorithm: 'fail_over' }));
    for (let i = 0; i < 1000; i++) await r.device.read(i * KiB, KiB);
    expect(completed(r)).toEqual({ P1: 1000, P2: 0 });
  });

  it('MP-03: aix fail_over takes the lowest value whatever the configuration order', async () => {
    const r = rig([{ name: 'P3', priority: 3 }, { name: 'P1', priority: 1 }, { name: 'P2', priority: 2 }], aixProfile());
    for (let i = 0; i < 10; i++) await r.device.read(0, KiB);
    expect(completed(r)).toEqual({ P3: 0, P1: 10, P2: 0 });
  });

  it('MP-05: aix round_robin, priorities 1 and 3 -> 1000 I/Os split 250/750 (the higher value gets more)', async () => {
    const r = rig([{ name: 'low', priority: 1 }, { name: 'high', priority: 3 }], aixProfile({ algorithm: 'round_robin' }));
    for (let i = 0; i < 1000; i++) await r.device.read(i * KiB, KiB);
    expect(completed(r)).toEqual({ low: 250, high: 750 });
  });

  it('MP-06: aix shortest_queue, A holds 5 outstanding and B 2 -> the next I/O goes to B whatever the priorities', async () => {
    const r = rig([{ name: 'A', priority: 1 }, { name: 'B', priority: 255 }], aixProfile({ algorithm: 'shortest_queue' }));
    const releaseA = hold(r, 'A', 5, 4 * KiB);
    const releaseB = hold(r, 'B', 2, 4 * KiB);
    expect(await readVia(r, 0)).toBe('B');
    await releaseA();
    await releaseB();
  });

  it('MP-06: shortest_queue rotates among tied paths, so light load is round robin', async () => {
    const r = rig(['A', 'B', 'C'], aixProfile({ algorithm: 'shortest_queue' }));
    const order: string[] = [];
    for (let i = 0; i < 6; i++) order.push(await readVia(r, 0));
    expect(order).toEqual(['A', 'B', 'C', 'A', 'B', 'C']);
  });

  it('MP-07: hdlm, A has 1 in-flight 1 MiB I/O and B 4 in-flight 4 KiB I/Os -> lio picks A, lbk picks B', async () => {
    for (const [lbtype, expected] of [
      ['lio', 'A'],
      ['lbk', 'B'],
    ] as const) {
      const r = rig(['A', 'B'], hdlmProfile({ lbtype }));
      const releaseA = hold(r, 'A', 1, MiB);
      const releaseB = hold(r, 'B', 4, 4 * KiB);
      expect(await readVia(r, 0), lbtype).toBe(expected);
      await releaseA();
      await releaseB();
    }
  });

  it('MP-08: hdlm exrr, expathusetimes 100 -> 250 sequential I/Os in runs of 100, 100, 50; 100 random I/Os strictly alternate', async () => {
    const r = rig(['A', 'B'], hdlmProfile({ lbtype: 'exrr', expathusetimes: 100 }));
    const seq: string[] = [];
    for (let i = 0; i < 250; i++) seq.push(await readVia(r, i * 4 * KiB));
    expect(runs(seq)).toEqual([
      ['A', 100],
      ['B', 100],
      ['A', 50],
    ]);
    const random = seededRandom(testSeed('MP-08'));
    const rnd: string[] = [];
    let prevEnd = 250 * 4 * KiB;
    for (let i = 0; i < 100; i++) {
      let off: number;
      do off = Math.floor(random() * 16 * 1024) * 4 * KiB;
      while (off === prevEnd);
      prevEnd = off + 4 * KiB;
      rnd.push(await readVia(r, off));
    }
    expect(runs(rnd).every(([, n]) => n === 1)).toBe(true);
    expect(rnd.filter((p) => p === 'A')).toHaveLength(50);
  });

  it('MP-08: exlio keeps a sequential run on one path even when the other is as idle', async () => {
    const r = rig(['A', 'B'], hdlmProfile({ lbtype: 'exlio', expathusetimes: 10 }));
    const seq: string[] = [];
    for (let i = 0; i < 25; i++) seq.push(await readVia(r, i * 4 * KiB));
    expect(runs(seq)).toEqual([
      ['A', 10],
      ['B', 10],
      ['A', 5],
    ]);
  });

  it('MP-09: hdlm owner/non-owner, 2 owner + 2 non-owner paths -> 100 % of I/O on owner paths', async () => {
    const r = rig(
      [
        { name: 'own1', owner: true },
        { name: 'non1', owner: false },
        { name: 'own2', owner: true },
        { name: 'non2', owner: false },
      ],
      hdlmProfile(),
    );
    for (let i = 0; i < 100; i++) await r.device.read(((i * 7919) % 1000) * 4 * KiB, 4 * KiB);
    const c = completed(r);
    expect(c.own1! + c.own2!).toBe(100);
    expect(c.non1! + c.non2!).toBe(0);
    expect(c.own1).toBeGreaterThan(0);
    expect(c.own2).toBeGreaterThan(0);
  });

  it('MP-10: dm service-time, equal in-flight bytes, relative throughput 1 vs 2 -> the throughput-2 path', async () => {
    const r = rig([{ name: 'slow', throughput: 1 }, { name: 'fast', throughput: 2 }], dmProfile({ path_grouping_policy: 'multibus' }));
    const releaseS = hold(r, 'slow', 1, 64 * KiB);
    const releaseF = hold(r, 'fast', 1, 64 * KiB);
    expect(await readVia(r, 0)).toBe('fast');
    await releaseS();
    await releaseF();
    // With nothing in flight the tie also goes to the higher throughput.
    expect(await readVia(r, 0)).toBe('fast');
  });

  it('MP-10: dm service-time, equal throughput -> the path with fewer in-flight bytes (HDLM Least Blocks)', async () => {
    const r = rig(['A', 'B'], dmProfile({ path_grouping_policy: 'multibus' }));
    const releaseA = hold(r, 'A', 1, 64 * KiB);
    const releaseB = hold(r, 'B', 3, 4 * KiB);
    expect(await readVia(r, 0)).toBe('B');
    await releaseA();
    await releaseB();
  });

  it('dm round-robin 0 with rr_min_io_rq 3 sends 3 I/Os down each path in turn; rr_weight priorities multiplies it', async () => {
    const r = rig(['A', 'B'], dmProfile({ path_grouping_policy: 'multibus', path_selector: 'round-robin 0', rr_min_io_rq: 3 }));
    const order: string[] = [];
    for (let i = 0; i < 12; i++) order.push(await readVia(r, 0));
    expect(runs(order)).toEqual([
      ['A', 3],
      ['B', 3],
      ['A', 3],
      ['B', 3],
    ]);
    const w = rig(
      [
        { name: 'A', priority: 1 },
        { name: 'B', priority: 2 },
      ],
      dmProfile({ path_grouping_policy: 'multibus', path_selector: 'round-robin 0', rr_weight: 'priorities' }),
    );
    const worder: string[] = [];
    for (let i = 0; i < 6; i++) worder.push(await readVia(w, 0));
    expect(runs(worder)).toEqual([
      ['A', 1],
      ['B', 2],
      ['A', 1],
      ['B', 2],
    ]);
  });

  it('latency-aware selector (historical-service-time) sends most I/O to the path with the lower measured latency', async () => {
    const r = rig(['slow', 'fast'], dmProfile({ path_grouping_policy: 'multibus', path_selector: 'historical-service-time 0' }));
    r.faults('slow').set({ kind: 'latency', ms: 20 });
    r.faults('fast').set({ kind: 'latency', ms: 2 });
    for (let i = 0; i < 100; i++) {
      const io = r.device.read(0, 4 * KiB);
      await tick();
      await r.clock.advance(20);
      await io;
    }
    const c = completed(r);
    expect(c.slow! + c.fast!).toBe(100);
    // The slow path is measured once, then only tried again when it would be the shorter wait.
    expect(c.fast).toBeGreaterThanOrEqual(90);
    expect(r.device.path('slow').stats.ewmaMs).toBe(20);
    expect(r.device.path('fast').stats.ewmaMs).toBe(2);
  });
});

/** Run-length encoding of a path sequence. */
function runs(seq: readonly string[]): [string, number][] {
  const out: [string, number][] = [];
  for (const s of seq) {
    const last = out[out.length - 1];
    if (last && last[0] === s) last[1]++;
    else out.push([s, 1]);
  }
  return out;
}
