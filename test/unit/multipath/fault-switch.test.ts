/**
 * The target-side fault switch (spec/multipath.md §5.1 item 1): down, hang,
 * standby, latency (fixed and distributions), error rates with a seeded
 * random source, flapping on the clock, fate groups and timelines.
 */
import { describe, expect, it } from 'vitest';
import { FateGroup, FaultSwitch, FaultTimeline, FaultyVolume, type LinkState } from '../../../src/multipath/index.js';
import { VirtualClock } from '../../../src/util/clock.js';
import { MemoryVolume } from '../../../src/volume/memory-volume.js';
import { seededRandom, testSeed } from '../../helpers/seeded-random.js';

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

function port(clock: VirtualClock, random?: () => number): { sw: FaultSwitch; vol: FaultyVolume; lun: MemoryVolume } {
  const lun = new MemoryVolume({ size: 1 << 20 });
  const sw = new FaultSwitch({ name: 'p0', clock, random });
  return { sw, vol: new FaultyVolume(lun, sw), lun };
}

describe('fault switch', () => {
  it('passes everything through when healthy', async () => {
    const { vol, lun } = port(new VirtualClock());
    await vol.write(0, new Uint8Array([1, 2, 3]));
    expect([...(await lun.read(0, 3))]).toEqual([1, 2, 3]);
    expect(vol.identity()).toEqual(lun.identity());
  });

  it('down refuses every request with UNREACHABLE, inquiry too', async () => {
    const { sw, vol } = port(new VirtualClock());
    sw.set({ kind: 'down' });
    await expect(vol.read(0, 1)).rejects.toMatchObject({ code: 'UNREACHABLE' });
    await expect(vol.flush()).rejects.toMatchObject({ code: 'UNREACHABLE' });
    await expect(vol.inquiry()).rejects.toMatchObject({ code: 'UNREACHABLE' });
    expect(sw.stats.refused).toBe(3);
  });

  it('hang holds requests until the hang ends; then they fail (IO_ERROR, or UNREACHABLE when the port went down) without touching the LU', async () => {
    const { sw, vol, lun } = port(new VirtualClock());
    sw.set({ kind: 'hang' });
    const held = Promise.allSettled([vol.write(0, new Uint8Array([9])), vol.read(0, 1)]);
    await tick();
    expect(sw.holding).toBe(2);
    sw.clear();
    for (const r of await held) expect(r).toMatchObject({ status: 'rejected', reason: { code: 'IO_ERROR' } });
    expect((await lun.read(0, 1))[0]).toBe(0);
    sw.set({ kind: 'hang' });
    const h = vol.read(0, 1);
    await tick();
    sw.set({ kind: 'down' });
    await expect(h).rejects.toMatchObject({ code: 'UNREACHABLE' });
  });

  it('standby answers inquiry but fails I/O with NOT_READY', async () => {
    const { sw, vol, lun } = port(new VirtualClock());
    sw.set({ kind: 'standby' });
    await expect(vol.inquiry()).resolves.toEqual(lun.identity());
    await expect(vol.read(0, 1)).rejects.toMatchObject({ code: 'NOT_READY' });
  });

  it('latency delays by a fixed time on the clock, per op class', async () => {
    const clock = new VirtualClock();
    const { sw, vol } = port(clock);
    sw.set({ kind: 'latency', ms: 25, ops: 'write' });
    let wrote = false;
    const w = vol.write(0, new Uint8Array(1)).then(() => (wrote = true));
    await vol.read(0, 1); // reads are not delayed
    await tick();
    await clock.advance(24);
    expect(wrote).toBe(false);
    await clock.advance(1);
    await w;
    expect(wrote).toBe(true);
  });

  it('latency distributions draw from the injected random source (uniform within bounds, replayable)', () => {
    const seed = testSeed('fault-switch latency');
    const draw = (): number[] => {
      const sw = new FaultSwitch({ clock: new VirtualClock(), random: seededRandom(seed) });
      sw.set({ kind: 'latency', ms: { dist: 'uniform', min: 5, max: 15 } });
      return Array.from({ length: 200 }, () => {
        const d = sw.decide('read');
        return d.action === 'pass' ? d.delayMs : Number.NaN;
      });
    };
    const a = draw();
    expect(a).toEqual(draw());
    expect(Math.min(...a)).toBeGreaterThanOrEqual(5);
    expect(Math.max(...a)).toBeLessThan(15);
    const sw = new FaultSwitch({ clock: new VirtualClock(), random: seededRandom(seed) });
    sw.set({ kind: 'latency', ms: { dist: 'exponential', mean: 10 } });
    const mean = Array.from({ length: 4000 }, () => (sw.decide('read') as { delayMs: number }).delayMs).reduce((x, y) => x + y) / 4000;
    expect(mean).toBeGreaterThan(9);
    expect(mean).toBeLessThan(11);
  });

  it('error rate fails that fraction of requests with EIO (seeded: the same seed gives the same failures)', async () => {
    const seed = testSeed('fault-switch error rate');
    const run = async (): Promise<boolean[]> => {
      const { sw, vol } = port(new VirtualClock(), seededRandom(seed));
      sw.set({ kind: 'error', rate: 0.25 });
      const out: boolean[] = [];
      for (let i = 0; i < 2000; i++) out.push(await vol.read(0, 1).then(() => true, (e: { code: string }) => (expect(e.code).toBe('IO_ERROR'), false)));
      expect(sw.stats.injectedErrors).toBe(out.filter((x) => !x).length);
      return out;
    };
    const a = await run();
    expect(a).toEqual(await run());
    const failed = a.filter((x) => !x).length;
    // Binomial(2000, 0.25): mean 500, sd ~19.4; 5 sd either way.
    expect(failed).toBeGreaterThan(400);
    expect(failed).toBeLessThan(600);
  });

  it('flapping follows period and duty cycle on the clock and emits each link change', async () => {
    const clock = new VirtualClock();
    const { sw, vol } = port(clock);
    const changes: [number, LinkState][] = [];
    sw.on('change', (s) => changes.push([clock.now(), s]));
    sw.set({ kind: 'flap', periodMs: 10_000, duty: 0.7 });
    await expect(vol.read(0, 1)).resolves.toBeDefined();
    await clock.advance(7_000);
    await expect(vol.read(0, 1)).rejects.toMatchObject({ code: 'UNREACHABLE' });
    await clock.advance(3_000);
    await expect(vol.read(0, 1)).resolves.toBeDefined();
    await clock.advance(20_000);
    expect(changes).toEqual([
      [7_000, 'down'],
      [10_000, 'up'],
      [17_000, 'down'],
      [20_000, 'up'],
      [27_000, 'down'],
      [30_000, 'up'],
    ]);
    sw.clear();
    expect(clock.pending).toBe(0);
  });

  it('flapping into errors or a hang instead of down', async () => {
    const clock = new VirtualClock();
    const { sw, vol } = port(clock);
    sw.set({ kind: 'flap', periodMs: 1_000, duty: 0.5, fault: 'error' });
    await clock.advance(600);
    await expect(vol.read(0, 1)).rejects.toMatchObject({ code: 'IO_ERROR' });
    expect(sw.state).toBe('up');
    sw.set({ kind: 'flap', periodMs: 1_000, duty: 0.5, fault: 'hang' });
    await clock.advance(600);
    expect(sw.state).toBe('hang');
    const held = vol.read(0, 1).catch((e: unknown) => e);
    await tick();
    await clock.advance(400); // the hang phase ends: held requests fail
    expect(await held).toMatchObject({ code: 'IO_ERROR' });
  });

  it('rejects malformed faults', () => {
    const sw = new FaultSwitch({ clock: new VirtualClock() });
    expect(() => sw.set({ kind: 'error', rate: 1.5 })).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    expect(() => sw.set({ kind: 'flap', periodMs: 0, duty: 0.5 })).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    expect(() => sw.set({ kind: 'latency', ms: -1 })).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
  });

  it('a fate group sets every member at the same clock reading; a timeline scripts it', async () => {
    const clock = new VirtualClock();
    const a = port(clock);
    const b = port(clock);
    const c = port(clock);
    const vios1 = new FateGroup('VIOS1', [a.sw, b.sw]);
    const seen: [string, number, LinkState][] = [];
    for (const [n, p] of [['a', a], ['b', b], ['c', c]] as const) p.sw.on('change', (s) => seen.push([n, clock.now(), s]));
    const timeline = new FaultTimeline(clock, [
      { atMs: 10_000, target: vios1, set: [{ kind: 'down' }], note: 'VIOS1 reboot' },
      { atMs: 70_000, target: vios1, note: 'VIOS1 back' },
      { atMs: 30_000, target: c.sw, set: [{ kind: 'latency', ms: 5 }] },
    ]);
    const done = timeline.start();
    await clock.advance(100_000);
    await done;
    expect(seen).toEqual([
      ['a', 10_000, 'down'],
      ['b', 10_000, 'down'],
      ['a', 70_000, 'up'],
      ['b', 70_000, 'up'],
    ]);
    expect(c.sw.faults).toEqual([{ kind: 'latency', ms: 5 }]);
    expect(timeline.fired.map((f) => [f.at, f.note])).toEqual([
      [10_000, 'VIOS1 reboot'],
      [30_000, undefined],
      [70_000, 'VIOS1 back'],
    ]);
  });
});
