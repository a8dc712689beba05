/** Virtual time (src/util/clock.ts), the copy-rate limiter and progress figures, all on a VirtualClock. */
import { describe, expect, it } from 'vitest';
import { copyProgress, PaceMeter } from '../../../src/copy/flashcopy/progress.js';
import { RateLimiter } from '../../../src/copy/flashcopy/rate-limiter.js';
import { VirtualClock, systemClock } from '../../../src/util/clock.js';

describe('VirtualClock', () => {
  it('fires timers in time order only when advanced, and sleeps abort', async () => {
    const clock = new VirtualClock(1000);
    const fired: string[] = [];
    clock.setTimeout(() => fired.push('b'), 20);
    clock.setTimeout(() => fired.push('a'), 10);
    const cancelled = clock.setTimeout(() => fired.push('never'), 15);
    clock.clearTimeout(cancelled);
    const slept = clock.sleep(30).then(() => fired.push(`slept at ${clock.now()}`));
    await clock.advance(15);
    expect(fired).toEqual(['a']);
    expect(clock.now()).toBe(1015);
    await clock.advance(100);
    await slept;
    expect(fired).toEqual(['a', 'b', 'slept at 1030']);
    const ac = new AbortController();
    const aborted = clock.sleep(50, ac.signal);
    ac.abort(new Error('stop'));
    await expect(aborted).rejects.toThrow('stop');
    expect(clock.pending).toBe(0);
    expect(await clock.advanceToNext()).toBe(false);
  });

  it('systemClock sleeps for real', async () => {
    const start = systemClock.now();
    await systemClock.sleep(5);
    expect(systemClock.now() - start).toBeGreaterThanOrEqual(4);
  });
});

describe('RateLimiter', () => {
  it('spaces acquisitions by bytes / rate, lets concurrent callers queue, refunds unused bytes', async () => {
    const clock = new VirtualClock();
    const limiter = new RateLimiter(clock, 1000); // 1000 bytes/s
    const times: number[] = [];
    const take = async (bytes: number) => {
      await limiter.acquire(bytes);
      times.push(clock.now());
    };
    const all = Promise.all([take(500), take(500), take(500)]);
    const tick = () => new Promise((r) => setImmediate(r));
    await tick();
    for (let i = 0; i < 10 && times.length < 3; i++) if (!(await clock.advanceToNext())) await tick();
    await all;
    expect(times).toEqual([0, 500, 1000]);
    limiter.refund(500); // the last caller sent nothing
    await take(100); // at once: nothing is owed
    expect(times[3]).toBe(1000);
  });

  it('rate 0 holds callers until the rate changes; undefined is unlimited; chunk follows the rate', async () => {
    const clock = new VirtualClock();
    const limiter = new RateLimiter(clock, 0);
    let passed = false;
    const waiting = limiter.acquire(10).then(() => (passed = true));
    await clock.advance(60_000);
    expect(passed).toBe(false);
    limiter.rate = undefined;
    await waiting;
    expect(passed).toBe(true);
    expect(limiter.chunk(4096, 1 << 20)).toBe(1 << 20);
    limiter.rate = 64 * 1024;
    expect(limiter.chunk(4096, 1 << 20)).toBe(16 * 1024);
    limiter.rate = 100;
    expect(limiter.chunk(4096, 1 << 20)).toBe(4096);
    const ac = new AbortController();
    limiter.rate = 0;
    const stopped = limiter.acquire(1, ac.signal);
    ac.abort(new Error('withdrawn'));
    await expect(stopped).rejects.toThrow('withdrawn');
  });
});

describe('progress', () => {
  it('percent, bytes remaining with a short last grain, ETA from the pace; none when not copying', () => {
    const base = { grains: 10, grainSize: 100, size: 950, copying: true, pace: 50 };
    expect(copyProgress({ ...base, copiedGrains: 0, lastGrainCopied: false })).toEqual({ grains: 10, copiedGrains: 0, remainingGrains: 10, bytesRemaining: 950, percent: 0, etaSeconds: 19 });
    expect(copyProgress({ ...base, copiedGrains: 9, lastGrainCopied: true })).toMatchObject({ remainingGrains: 1, bytesRemaining: 100, percent: 90, etaSeconds: 2 });
    expect(copyProgress({ ...base, copiedGrains: 10, lastGrainCopied: true })).toMatchObject({ remainingGrains: 0, bytesRemaining: 0, percent: 100, etaSeconds: null });
    expect(copyProgress({ ...base, copiedGrains: 9999 / 1000, lastGrainCopied: false }).percent).toBeLessThan(100);
    expect(copyProgress({ ...base, copiedGrains: 3, lastGrainCopied: false, copying: false }).etaSeconds).toBeNull();
  });

  it('PaceMeter measures bytes per second on the clock', async () => {
    const clock = new VirtualClock();
    const pace = new PaceMeter(clock);
    pace.record(0);
    await clock.advance(1000);
    pace.record(2000);
    expect(pace.bytesPerSecond).toBe(2000);
  });
});
