/**
 * OP_MIRROR_WRITE (WorkerLunBackend.mirrorWrite): a local PPRC pair's write
 * in one worker request. The secondary is written first; the primary only if
 * that worked and the ack deadline has not passed (spec §3.5 W2); the
 * outcome says how far it got, on failure too; FUA makes both files durable
 * in the batch's group commit.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WorkerIoEngine } from '../../../src/io/worker-engine.js';
import type { WorkerLunBackend } from '../../../src/io/worker-backend.js';
import { makeLunSpec } from '../../helpers/lun-spec.js';
import { pattern } from '../../helpers/patterns.js';
import { tempDirs } from '../../helpers/temp-dir.js';

const MiB = 1024 * 1024;
const temp = tempDirs('lunrig-mirror-write-');
let engine: WorkerIoEngine;

beforeAll(async () => {
  engine = await WorkerIoEngine.start({ workers: 2 });
});

afterAll(async () => {
  await engine.close();
  temp.cleanup();
});

async function lun(name: string, size: number, readOnly = false): Promise<WorkerLunBackend> {
  return engine.openBackend(makeLunSpec(temp.make(), name, size, MiB, readOnly));
}

describe('OP_MIRROR_WRITE', () => {
  it('W2: writes the secondary, then the primary; from a caller buffer or a slot; FUA syncs both files', async () => {
    const p = await lun('p', 4 * MiB);
    const s = await lun('s', 4 * MiB);
    const data = pattern(8192, 1);
    await expect(p.mirrorWrite(s, MiB - 4096, data, false, 0)).resolves.toEqual({ written: 'both' });
    const slot = engine.tryAcquireSlot(4096)!;
    slot.data.fill(9, 0, 4096);
    const syncs = engine.fdatasyncCount();
    await expect(p.mirrorWrite(s, 3 * MiB, slot.data.subarray(0, 4096), true, 0)).resolves.toEqual({ written: 'both' });
    expect(engine.fdatasyncCount() - syncs).toBe(2);
    slot.release();
    for (const v of [p, s]) {
      expect(Buffer.from(await v.read(MiB - 4096, 8192)).equals(data)).toBe(true);
      expect(Buffer.from(await v.read(3 * MiB, 4096)).equals(Buffer.alloc(4096, 9))).toBe(true);
      expect(v.stats()).toMatchObject({ writes: 2, errors: 0, inFlight: 0 });
    }
    await Promise.all([p.close(), s.close()]);
  });

  it('W2: past the ack deadline the secondary has the data and the primary keeps its old data', async () => {
    const p = await lun('p', MiB);
    const s = await lun('s', MiB);
    await p.write(0, pattern(4096, 2), false);
    await expect(p.mirrorWrite(s, 0, pattern(4096, 3), false, Date.now() - 1000)).resolves.toEqual({ written: 'secondary' });
    expect(Buffer.from(await p.read(0, 4096)).equals(pattern(4096, 2))).toBe(true);
    expect(Buffer.from(await s.read(0, 4096)).equals(pattern(4096, 3))).toBe(true);
    await Promise.all([p.close(), s.close()]);
  });

  it('a failure says how far it got: nothing on a read-only LUN; the secondary only when the primary write fails after it', async () => {
    const p = await lun('p', MiB);
    const ro = await lun('ro', MiB, true);
    const big = await lun('big', 2 * MiB);
    const r1 = await p.mirrorWrite(ro, 0, pattern(4096, 4), false, 0);
    expect(r1).toMatchObject({ written: 'none', error: { code: 'READ_ONLY' } });
    expect(Buffer.from(await p.read(0, 4096)).equals(Buffer.alloc(4096))).toBe(true);
    // Past the primary's end (Lun.mirrorWrite checks ranges first; the worker still fails safely): the secondary has it.
    const r2 = (await p.mirrorWrite(big, 1.5 * MiB, pattern(4096, 5), false, 0))!;
    expect(r2.written).toBe('secondary');
    expect(r2.error).toBeDefined();
    expect(Buffer.from(await big.read(1.5 * MiB, 4096)).equals(pattern(4096, 5))).toBe(true);
    expect(p.stats()).toMatchObject({ inFlight: 0 });
    await Promise.all([p.close(), ro.close(), big.close()]);
  });

  it('is refused (undefined) for a LUN of another engine: the caller takes the two-request route', async () => {
    const other = await WorkerIoEngine.start({ workers: 1 });
    try {
      const p = await lun('p', MiB);
      const foreign = await other.openBackend(makeLunSpec(temp.make(), 'f', MiB, MiB));
      expect(p.mirrorWrite(foreign, 0, pattern(4096, 6), false, 0)).toBeUndefined();
      await Promise.all([p.close(), foreign.close()]);
    } finally {
      await other.close();
    }
  });
});
