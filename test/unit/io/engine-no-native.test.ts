/**
 * Without the native addon (LUNRIG_NO_NATIVE=1, also inherited by the I/O
 * workers): trim and write-zeroes write zeros, blockStatus reports data,
 * fdatasync comes from fs. Engines are imported after the variable is set.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { IoEngine } from '../../../src/io/backend.js';
import type { WorkerLunBackend as WorkerLunBackendType } from '../../../src/io/worker-backend.js';

const MiB = 1024 * 1024;
const saved = process.env.LUNRIG_NO_NATIVE;

describe.each(['worker', 'fs'] as const)('%s engine without the native addon', (kind) => {
  let engine: IoEngine & { fdatasyncCount(): number };
  let dir: string;

  beforeAll(async () => {
    process.env.LUNRIG_NO_NATIVE = '1';
    const { native } = await import('../../../src/native/index.js');
    expect(native.syscalls).toBeUndefined();
    engine = kind === 'worker' ? await (await import('../../../src/io/worker-engine.js')).WorkerIoEngine.start() : new (await import('../../../src/io/fs-engine.js')).FsIoEngine();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lunrig-io-nonative-'));
  });
  afterAll(async () => {
    await engine.close();
    fs.rmSync(dir, { recursive: true, force: true });
    if (saved === undefined) delete process.env.LUNRIG_NO_NATIVE;
    else process.env.LUNRIG_NO_NATIVE = saved;
  });

  it('falls back to writing zeros, whole-range data extents and fs fdatasync', async () => {
    const segments = [0, 1].map((i) => {
      const f = path.join(dir, `${kind}.${i}`);
      fs.writeFileSync(f, '');
      fs.truncateSync(f, MiB);
      return f;
    });
    const lun = await engine.open({ segments, segmentSize: MiB, size: 2 * MiB, readOnly: false });
    await lun.write(0, Buffer.alloc(2 * MiB, 0xab), false);
    await lun.trim(MiB - 10, 20, true);
    await lun.writeZeroes(100, 3 * MiB / 2, { noHole: false, fua: false });
    const expected = Buffer.alloc(2 * MiB, 0xab);
    expected.fill(0, MiB - 10, MiB + 10);
    expected.fill(0, 100, 100 + (3 * MiB) / 2);
    expect(Buffer.from(await lun.read(0, 2 * MiB)).equals(expected)).toBe(true);
    expect(await lun.blockStatus(0, 2 * MiB)).toEqual([{ offset: 0, length: 2 * MiB, kind: 'data' }]);
    const before = engine.fdatasyncCount();
    await lun.flush();
    expect(engine.fdatasyncCount()).toBe(before + 2);
    await lun.close();
  });

  it.runIf(kind === 'worker')('OP_COPY copies through a buffer: across segment boundaries, zero chunks zeroed, FUA synced', async () => {
    const { WorkerLunBackend } = await import('../../../src/io/worker-backend.js');
    const make = (name: string, segmentSize: number, size: number): string[] =>
      Array.from({ length: Math.ceil(size / segmentSize) }, (_, i) => {
        const f = path.join(dir, `${name}.${i}`);
        fs.writeFileSync(f, '');
        fs.truncateSync(f, Math.min(segmentSize, size - i * segmentSize));
        return f;
      });
    const size = 3 * MiB;
    const src = await engine.open({ segments: make('csrc', MiB, size), segmentSize: MiB, size, readOnly: false });
    const dst = await engine.open({ segments: make('cdst', 640 * 1024, size), segmentSize: 640 * 1024, size, readOnly: false });
    expect(src).toBeInstanceOf(WorkerLunBackend);
    const data = Buffer.alloc(size);
    for (let i = 0; i < size; i++) data[i] = (i * 31 + (i >> 12)) & 0xff;
    data.fill(0, MiB + 4096, 2 * MiB); // a zero run crossing nothing special
    await src.write(0, data, false);
    await dst.write(0, Buffer.alloc(size, 0xee), false);
    const before = engine.fdatasyncCount();
    // Crosses the source's boundaries at 1 and 2 MiB and the target's at 640 KiB multiples.
    await (dst as WorkerLunBackendType).copyFrom(src as WorkerLunBackendType, 500_000, 300_000, 2 * MiB + 77, true);
    expect(engine.fdatasyncCount()).toBeGreaterThan(before);
    const want = Buffer.alloc(size, 0xee);
    data.copy(want, 300_000, 500_000, 500_000 + 2 * MiB + 77);
    expect(Buffer.from(await dst.read(0, size)).equals(want)).toBe(true);
    // A range of zeros inside the source's zero run: zeroed on the target (write-zeroes fallback).
    await (dst as WorkerLunBackendType).copyFrom(src as WorkerLunBackendType, MiB + 8192, 0, 64 * 1024, false);
    want.fill(0, 0, 64 * 1024);
    expect(Buffer.from(await dst.read(0, size)).equals(want)).toBe(true);
    await src.close();
    await dst.close();
  });
});
