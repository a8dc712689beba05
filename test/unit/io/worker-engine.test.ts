/** WorkerIoEngine specifics: the slot-level API, large requests, backpressure, group commit, LUN placement, worker crashes. */
import fs from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isLunrigError } from '../../../src/errors.js';
import { SLOT_HEADER_ROOM } from '../../../src/io/slot-arena.js';
import { WorkerIoEngine } from '../../../src/io/worker-engine.js';
import { makeLunSpec } from '../../helpers/lun-spec.js';
import { pattern } from '../../helpers/patterns.js';
import { tempDirs } from '../../helpers/temp-dir.js';

const MiB = 1024 * 1024;

describe('WorkerIoEngine', () => {
  let dir: string;
  const engines: WorkerIoEngine[] = [];

  async function start(options: Parameters<typeof WorkerIoEngine.start>[0] = {}): Promise<WorkerIoEngine> {
    const e = await WorkerIoEngine.start(options);
    engines.push(e);
    return e;
  }

  const tmp = tempDirs('lunrig-io-worker-');
  beforeEach(() => {
    dir = tmp.make();
  });
  afterEach(async () => {
    await Promise.allSettled(engines.splice(0).map((e) => e.close()));
    tmp.cleanup();
  });

  it('serves WRITE payloads from and READ replies into shared slots without copies', async () => {
    const engine = await start();
    const lun = await engine.openBackend(makeLunSpec(dir, 'a', 4 * MiB, MiB));
    const payload = pattern(200_000, 1);

    const w = await engine.acquireSlot(payload.length);
    expect(w.capacity).toBeGreaterThanOrEqual(payload.length);
    payload.copy(w.data); // stands in for the socket filling the slot
    await lun.writeFromSlot(MiB - 100_000, w, payload.length, true);
    w.release();

    const r = engine.tryAcquireSlot(payload.length)!;
    await lun.readIntoSlot(MiB - 100_000, payload.length, r);
    expect(r.data.subarray(0, payload.length).equals(payload)).toBe(true);
    // A reply header goes right in front of the data: one buffer, one write.
    const frame = r.frame(16, payload.length);
    expect(frame.length).toBe(16 + payload.length);
    expect(frame.buffer).toBe(r.data.buffer);
    expect(frame.byteOffset + 16).toBe(r.data.byteOffset);
    expect(() => r.frame(SLOT_HEADER_ROOM + 1, 1)).toThrow();
    r.release();
    expect(() => r.release()).toThrow(/released twice/);

    const small = await engine.acquireSlot(10);
    await expect(lun.readIntoSlot(0, small.capacity + 1, small)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    small.release();
    await expect(engine.acquireSlot(engine.maxSlotLength + 1)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    expect(lun.stats()).toMatchObject({ reads: 1, writes: 1, bytesRead: payload.length, bytesWritten: payload.length });
  });

  it('handles requests of 32 MiB and more than the largest slot', async () => {
    const engine = await start();
    const lun = await engine.open(makeLunSpec(dir, 'big', 80 * MiB, 16 * MiB));
    for (const [offset, length] of [
      [3, 32 * MiB],
      [5 * MiB + 7, 70 * MiB],
    ] as const) {
      const data = pattern(length, offset);
      await lun.write(offset, data, false);
      expect(Buffer.from(await lun.read(offset, length)).equals(data), `${offset}+${length}`).toBe(true);
    }
  });

  it('moves data between odd-aligned caller buffers and the shared slots intact', async () => {
    const engine = await start();
    const lun = await engine.open(makeLunSpec(dir, 'odd', 4 * MiB, MiB));
    // Views at byte offset 1 and 3: the copy path V8 does byte by byte with set/copy.
    const data = pattern(MiB + 1, 9).subarray(1);
    await lun.write(12_345, data, false);
    const into = new Uint8Array(MiB + 3).subarray(3);
    const got = await lun.read(12_345, MiB, into);
    expect(got).toBe(into);
    expect(Buffer.from(into).equals(data)).toBe(true);
  });

  it('serves small cached reads on the calling thread and everything else through a worker', async () => {
    const engine = await start({ cachedReadMax: 64 * 1024 });
    const lun = await engine.openBackend(makeLunSpec(dir, 'cached', 4 * MiB, MiB));
    const data = pattern(256 * 1024, 4);
    await lun.write(MiB - 128 * 1024, data, false); // straddles the segment boundary at 1 MiB
    const before = engine.cachedReadCount();
    // Just written, so in the page cache: served without a worker.
    expect(Buffer.from(await lun.read(MiB - 128 * 1024, 4096)).equals(data.subarray(0, 4096))).toBe(true);
    const slot = await engine.acquireSlot(64 * 1024);
    await lun.readIntoSlot(MiB - 64 * 1024, 64 * 1024, slot);
    expect(slot.data.subarray(0, 64 * 1024).equals(data.subarray(64 * 1024, 128 * 1024))).toBe(true);
    slot.release();
    expect(engine.cachedReadCount() - before).toBe(2);
    // Across the segment boundary, longer than cachedReadMax, or out of range: the worker path.
    expect(Buffer.from(await lun.read(MiB - 2048, 4096)).equals(data.subarray(128 * 1024 - 2048, 128 * 1024 + 2048))).toBe(true);
    expect(Buffer.from(await lun.read(MiB - 128 * 1024, 256 * 1024)).equals(data)).toBe(true);
    // (The backend is below the Volume's range check: the worker reports the missing segment.)
    await expect(lun.read(4 * MiB - 100, 4096)).rejects.toMatchObject({ code: 'IO_ERROR' });
    expect(engine.cachedReadCount() - before).toBe(2);
    expect(lun.stats()).toMatchObject({ reads: 4, errors: 1 });
  });

  it('waits for free slots and descriptors instead of failing (backpressure)', async () => {
    const engine = await start({ slotClasses: [{ capacity: 64 * 1024, count: 3 }], maxInFlight: 4 });
    expect(engine.maxSlotLength).toBe(64 * 1024);
    const spec = makeLunSpec(dir, 'bp', 4 * MiB, MiB);
    const lun = await engine.open(spec);
    const data = pattern(3 * MiB, 2);
    // One 3 MiB write = 48 pieces through 3 slots; plus 100 small writes through 4 descriptors.
    const small = Array.from({ length: 100 }, (_, i) => lun.write(3 * MiB + i * 1000, pattern(1000, i), i % 10 === 0));
    await Promise.all([lun.write(0, data, false), ...small, lun.flush()]);
    expect(Buffer.from(await lun.read(0, 3 * MiB)).equals(data)).toBe(true);
    for (let i = 0; i < 100; i++) expect(Buffer.from(await lun.read(3 * MiB + i * 1000, 1000)).equals(pattern(1000, i))).toBe(true);
  });

  it('completes a batch of FUA writes and flushes with one fdatasync per file', async () => {
    const engine = await start({ workers: 1 });
    const lun = await engine.open(makeLunSpec(dir, 'gc', 2 * MiB, MiB));
    const before = engine.fdatasyncCount();
    // Submitted in one turn: published with one ring store, drained as one batch.
    await Promise.all([
      ...Array.from({ length: 16 }, (_, i) => lun.write(i * 4096, pattern(4096, i), true)),
      lun.flush(),
      lun.flush(),
    ]);
    // Both segments (the flushes), each synced once.
    expect(engine.fdatasyncCount() - before).toBe(2);
  });

  it('homes LUNs on different workers and spills a busy LUN to the other worker', async () => {
    const engine = await start({ workers: 2, spillDepth: 4 });
    const luns = await Promise.all([0, 1, 2, 3].map((i) => engine.openBackend(makeLunSpec(dir, `l${i}`, MiB, MiB))));
    expect(luns.map((l) => l.home).sort()).toEqual([0, 0, 1, 1]);
    await Promise.all(Array.from({ length: 64 }, (_, i) => luns[0]!.write(i * 4096, pattern(4096, i), false)));
    const batches = engine.diagnostics().map((d) => d.batches);
    expect(batches.every((n) => n > 0)).toBe(true);
    for (let i = 0; i < 64; i++) expect(Buffer.from(await luns[0]!.read(i * 4096, 4096)).equals(pattern(4096, i))).toBe(true);
  });

  it('fails the requests of a crashed worker with IO_ERROR, reports it and keeps serving', async () => {
    const engine = await start({ workers: 2 });
    const lun = await engine.openBackend(makeLunSpec(dir, 'crash', MiB, MiB));
    const reports: unknown[] = [];
    engine.on('worker-error', (r) => reports.push(r));
    const home = lun.home;
    const writes = Array.from({ length: 50 }, (_, i) => lun.write(i * 4096, pattern(4096, i), false));
    void engine.workerThreadForTest(home)!.terminate();
    const results = await Promise.allSettled(writes);
    const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    expect(failed.length).toBeGreaterThan(0);
    expect(failed.every((r) => isLunrigError(r.reason, 'IO_ERROR'))).toBe(true);
    expect(reports).toHaveLength(1);
    expect(reports[0]).toMatchObject({ worker: home });
    expect(engine.diagnostics()[home]!.alive).toBe(false);
    expect(lun.home).not.toBe(home);
    await lun.write(0, Buffer.from('after the crash'), true);
    expect(Buffer.from(await lun.read(0, 15)).toString()).toBe('after the crash');
  });

  it.each([
    { workers: 1, publishEvery: 1, spillDepth: 32 },
    { workers: 2, publishEvery: 1, spillDepth: 2 },
    { workers: 1, publishEvery: 64, spillDepth: 32 },
  ])('never loses a wake-up under sustained and bursty load ($workers workers, publishEvery $publishEvery, spillDepth $spillDepth)', async (options) => {
    const engine = await start(options);
    const lun = await engine.open(makeLunSpec(dir, 'wake', MiB, MiB));
    let done = 0;
    let stalled = false;
    // A lost wake-up leaves requests pending forever: watch for progress stopping.
    let lastDone = -1;
    const watchdog = setInterval(() => {
      if (done === lastDone) stalled = true;
      lastDone = done;
    }, 1000);
    try {
      const until = performance.now() + 1200;
      const lane = async (depthIndex: number): Promise<void> => {
        const buf = Buffer.alloc(4096, depthIndex);
        for (let i = 0; performance.now() < until && !stalled; i++) {
          const offset = ((depthIndex * 977 + i * 131) % 250) * 4096;
          if (i % 2 === 0) await lun.write(offset, buf, false);
          else await lun.read(offset, 4096, buf);
          done++;
          // Some lanes pause now and then, so the threads keep falling asleep and waking up.
          if (depthIndex % 8 === 0 && i % 50 === 0) await new Promise((resolve) => setTimeout(resolve, 0));
        }
      };
      await Promise.race([
        Promise.all(Array.from({ length: 32 }, (_, d) => lane(d))),
        new Promise<void>((resolve) => {
          const check = setInterval(() => {
            if (stalled) {
              clearInterval(check);
              resolve();
            }
          }, 100);
          setTimeout(() => clearInterval(check), 5000).unref();
        }),
      ]);
    } finally {
      clearInterval(watchdog);
    }
    expect(stalled, `requests stopped completing after ${done}`).toBe(false);
    expect(done).toBeGreaterThan(1000);
    expect(lun.stats().inFlight).toBe(0);
  }, 20_000);

  it('close() drains in-flight requests, closes the LUNs and refuses new work', async () => {
    const engine = await start();
    const spec = makeLunSpec(dir, 'drain', MiB, MiB);
    const lun = await engine.open(spec);
    const data = pattern(MiB, 4);
    const writes = Array.from({ length: 16 }, (_, i) => lun.write(i * 65536, data.subarray(i * 65536, (i + 1) * 65536), false));
    await engine.close();
    await Promise.all(writes);
    expect(fs.readFileSync(spec.segments[0]!).equals(data)).toBe(true);
    await expect(lun.read(0, 1)).rejects.toMatchObject({ code: 'CLOSED' });
    await expect(engine.open(spec)).rejects.toMatchObject({ code: 'CLOSED' });
    expect(engine.diagnostics().every((d) => !d.alive)).toBe(true);
  });
});
