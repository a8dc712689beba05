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
});
