import { promises as fsp, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { isLunrigError, type ErrorCode } from '../../../src/errors.js';
import { Pool } from '../../../src/store/pool.js';
import { GiB, MiB, TiB } from '../../../src/util/size.js';
import { tempDirs } from '../../helpers/temp-dir.js';

const temp = tempDirs();
const open: Pool[] = [];
afterEach(async () => {
  await Promise.allSettled(open.splice(0).map((p) => p.close()));
  temp.cleanup();
});

async function openPool(dir = temp.make(), extra: Partial<Parameters<typeof Pool.open>[0]> = {}): Promise<Pool> {
  const pool = await Pool.open({ dir, serial: 'FCA24', engine: 'fs', ...extra });
  open.push(pool);
  return pool;
}

async function expectCode(promise: Promise<unknown> | (() => unknown), code: ErrorCode): Promise<void> {
  try {
    await (typeof promise === 'function' ? promise() : promise);
  } catch (err) {
    if (!isLunrigError(err)) throw err;
    expect(err.code).toBe(code);
    return;
  }
  throw new Error(`expected ${code}, but it succeeded`);
}

describe('pool and LUN model', () => {
  it('CP-01: volume ids are 8 characters ending in the serial; LSS address is 2105:<serial>:<LL>', async () => {
    const pool = await openPool();
    const a = await pool.createLun({ name: 'a', size: '1G' });
    const b = await pool.createLun({ name: 'b', size: '1G' });
    const c = await pool.createLun({ name: 'c', size: '1G', lss: '11' });
    expect(a).toMatchObject({ lss: 0x10, volumeNumber: 0, volumeId: '000FCA24', lssAddress: '2105:FCA24:10' });
    expect(b).toMatchObject({ volumeNumber: 1, volumeId: '001FCA24' });
    expect(c).toMatchObject({ lss: 0x11, volumeNumber: 0, volumeId: '100FCA24', lssAddress: '2105:FCA24:11' });
    for (const info of [a, b, c]) expect(info.volumeId).toMatch(/^[0-9A-F]{3}FCA24$/);
  });

  it('unique ids differ between any two LUNs ever created, across pools and after deletes', async () => {
    const p1 = await openPool();
    const p2 = await openPool();
    const ids = new Set<string>();
    for (let i = 0; i < 5; i++) {
      ids.add((await p1.createLun({ name: `x${i}`, size: 4096 })).uniqueId);
      ids.add((await p2.createLun({ name: `x${i}`, size: 4096 })).uniqueId);
    }
    await p1.deleteLun('x0');
    ids.add((await p1.createLun({ name: 'x0', size: 4096 })).uniqueId);
    expect(ids.size).toBe(11);
    for (const id of ids) expect(id).toMatch(/^6005076[0-9a-f]{25}$/);
  });

  it('create, list, info, grow and delete; a LUN identity never changes', async () => {
    const pool = await openPool();
    const created = await pool.createLun({ name: 'data1', size: '64M' });
    expect(pool.listLuns().map((l) => l.name)).toEqual(['data1']);
    const grown = await pool.growLun('data1', '128M');
    expect(grown.size).toBe(128 * MiB);
    expect(grown.uniqueId).toBe(created.uniqueId);
    expect(grown.volumeId).toBe(created.volumeId);
    const lun = pool.getLun('data1');
    expect(lun.size).toBe(128 * MiB);
    await lun.write(128 * MiB - 4096, Buffer.alloc(4096, 7));
    expect(Buffer.from(await lun.read(128 * MiB - 4096, 4096))).toEqual(Buffer.alloc(4096, 7));
    await pool.deleteLun('data1');
    expect(pool.listLuns()).toEqual([]);
    await expectCode(lun.read(0, 1), 'CLOSED');
  });

  it('bad input gets a typed error and changes nothing', async () => {
    const dir = temp.make();
    const pool = await openPool(dir);
    await pool.createLun({ name: 'keep', size: '1M' });
    const before = readFileSync(path.join(dir, 'pool.json'), 'utf8');
    await expectCode(pool.createLun({ name: 'keep', size: '1M' }), 'LUN_EXISTS');
    await expectCode(pool.createLun({ name: 'z', size: 0 }), 'INVALID_SIZE');
    await expectCode(pool.createLun({ name: 'z', size: 1000 }), 'INVALID_SIZE');
    await expectCode(pool.createLun({ name: 'z', size: 'lots' }), 'INVALID_SIZE');
    await expectCode(pool.createLun({ name: 'z', size: '1.1K' }), 'INVALID_SIZE');
    await expectCode(pool.createLun({ name: 'z', size: '1P' }), 'INVALID_SIZE');
    await expectCode(pool.createLun({ name: 'bad/name', size: '1M' }), 'INVALID_ARGUMENT');
    await expectCode(pool.createLun({ name: '', size: '1M' }), 'INVALID_ARGUMENT');
    await expectCode(pool.createLun({ name: 'z', size: '1M', lss: '20' }), 'LSS_NOT_FOUND');
    await expectCode(pool.createLun({ name: 'z', size: '1M', lss: 'zz' }), 'INVALID_ARGUMENT');
    await expectCode(pool.growLun('keep', '512K'), 'SHRINK_NOT_SUPPORTED');
    await expectCode(pool.growLun('nope', '2M'), 'LUN_NOT_FOUND');
    await expectCode(pool.deleteLun('nope'), 'LUN_NOT_FOUND');
    await expectCode(() => pool.getLun('nope'), 'LUN_NOT_FOUND');
    const lun = pool.getLun('keep');
    await lun.write(0, Buffer.alloc(512, 1));
    await expectCode(lun.write(MiB - 100, Buffer.alloc(512, 2)), 'OUT_OF_RANGE');
    await expectCode(lun.read(MiB, 1), 'OUT_OF_RANGE');
    await expectCode(lun.read(-1, 1), 'INVALID_ARGUMENT');
    await expectCode(lun.trim(0, MiB + 1), 'OUT_OF_RANGE');
    await expectCode(lun.writeZeroes(MiB - 1, 2), 'OUT_OF_RANGE');
    expect(readFileSync(path.join(dir, 'pool.json'), 'utf8')).toBe(before);
    expect(Buffer.from(await lun.read(0, 512))).toEqual(Buffer.alloc(512, 1));
    expect(Buffer.from(await lun.read(MiB - 512, 512))).toEqual(Buffer.alloc(512, 0));
    expect(pool.listLuns()).toHaveLength(1);
  });

  it('an LSS holds at most 256 volumes; volume numbers are reused only after a delete', async () => {
    const pool = await openPool();
    for (let i = 0; i < 256; i++) await pool.createLun({ name: `v${i}`, size: 512, lss: 0x12 });
    await expectCode(pool.createLun({ name: 'v256', size: 512, lss: 0x12 }), 'LSS_FULL');
    await pool.deleteLun('v17');
    expect((await pool.createLun({ name: 'again', size: 512, lss: 0x12 })).volumeNumber).toBe(17);
    expect(pool.lssList().find((l) => l.lss === 0x12)).toMatchObject({ luns: 256, capacity: 256, address: '2105:FCA24:12' });
  });

  it('volume(name) is one stable host-facing Volume per LUN, ending with the LUN', async () => {
    const pool = await openPool();
    await pool.createLun({ name: 'v', size: '1M' });
    const host = pool.volume('v');
    expect(pool.volume('v')).toBe(host);
    await host.write(0, Buffer.from('via stack'));
    expect(Buffer.from(await pool.getLun('v').read(0, 9)).toString()).toBe('via stack');
    expect(host.identity()).toEqual(pool.getLun('v').identity());
    await pool.deleteLun('v');
    await expectCode(host.read(0, 1), 'CLOSED');
    await expectCode(() => pool.volume('v'), 'LUN_NOT_FOUND');
  });

  it('read-only LUNs refuse writes, trims and zeroes but serve reads', async () => {
    const pool = await openPool();
    await pool.createLun({ name: 'ro', size: '1M' });
    await pool.getLun('ro').write(0, Buffer.alloc(4096, 9));
    await pool.setReadOnly('ro', true);
    const lun = pool.getLun('ro');
    await expectCode(lun.write(0, Buffer.alloc(1)), 'READ_ONLY');
    await expectCode(lun.trim(0, 4096), 'READ_ONLY');
    await expectCode(lun.writeZeroes(0, 4096), 'READ_ONLY');
    expect(Buffer.from(await lun.read(0, 4096))).toEqual(Buffer.alloc(4096, 9));
  });

  it('reopening the pool yields the same LUNs and data', async () => {
    const dir = temp.make();
    const pool = await openPool(dir);
    const infos = [await pool.createLun({ name: 'a', size: '8M' }), await pool.createLun({ name: 'b', size: '16M', lss: 0x13, readOnly: true })];
    await pool.getLun('a').write(12345, Buffer.from('hello lunrig'));
    await pool.close();
    open.length = 0;
    const again = await openPool(dir);
    expect(again.listLuns()).toEqual(infos);
    expect(Buffer.from(await again.getLun('a').read(12345, 12)).toString()).toBe('hello lunrig');
    expect(again.serial).toBe('FCA24');
  });

  it('a pool is owned by one process at a time; a stale lock is taken over', async () => {
    const dir = temp.make();
    await openPool(dir);
    await expectCode(Pool.open({ dir, engine: 'fs' }), 'POOL_LOCKED');
    await open.pop()!.close();
    await fsp.writeFile(path.join(dir, 'lock'), '999999999\n');
    await openPool(dir);
  });

  it('refuses a corrupt metadata file with POOL_CORRUPT and a serial mismatch with INVALID_CONFIG', async () => {
    const dir = temp.make();
    await (await openPool(dir)).close();
    open.length = 0;
    await expectCode(Pool.open({ dir, serial: 'ZZZZZ', engine: 'fs' }), 'INVALID_CONFIG');
    await fsp.writeFile(path.join(dir, 'pool.json'), '{ not json');
    await expectCode(Pool.open({ dir, engine: 'fs' }), 'POOL_CORRUPT');
    await fsp.writeFile(path.join(dir, 'pool.json'), JSON.stringify({ format: 'lunrig-pool', version: 1 }));
    await expectCode(Pool.open({ dir, engine: 'fs' }), 'POOL_CORRUPT');
    await expectCode(Pool.open({ dir: temp.make(), serial: 'bad', engine: 'fs' }), 'INVALID_ARGUMENT');
  });

  it('recovers from an interrupted create, grow and metadata write', async () => {
    const dir = temp.make();
    const pool = await openPool(dir, { segmentSize: MiB });
    const info = await pool.createLun({ name: 'a', size: '3M' });
    await pool.close();
    open.length = 0;
    // Leftovers of a crash: an unacknowledged create, a grow that never committed, a torn temp file.
    await fsp.mkdir(path.join(dir, 'luns', '6005076aaaaaaaaaaaa0000000000099'));
    await fsp.writeFile(path.join(dir, 'luns', info.uniqueId, 'segment-0003.img'), '');
    await fsp.truncate(path.join(dir, 'luns', info.uniqueId, 'segment-0002.img'), 2 * MiB);
    await fsp.writeFile(path.join(dir, 'pool.json.tmp-1-x'), '{');
    const again = await openPool(dir);
    expect(again.lunInfo('a').size).toBe(3 * MiB);
    expect((await fsp.readdir(path.join(dir, 'luns'))).sort()).toEqual([info.uniqueId]);
    expect((await fsp.readdir(path.join(dir, 'luns', info.uniqueId))).sort()).toEqual(['segment-0000.img', 'segment-0001.img', 'segment-0002.img']);
    expect((await fsp.stat(path.join(dir, 'luns', info.uniqueId, 'segment-0002.img'))).size).toBe(MiB);
    expect((await fsp.readdir(dir)).filter((n) => n.includes('.tmp-'))).toEqual([]);
  });
});

describe.each(['fs', 'worker'] as const)('sparse provisioning (%s engine)', (engine) => {
  it('a 1 TiB LUN with three 4 KiB writes far apart uses under 1 MiB and reports exactly three data extents', async () => {
    const dir = temp.make();
    const pool = await openPool(dir, { engine });
    await pool.createLun({ name: 'big', size: '1T' });
    const lun = pool.getLun('big');
    const offsets = [0, 400 * GiB, TiB - 4096];
    for (const off of offsets) await lun.write(off, Buffer.alloc(4096, 0xa5));
    await lun.flush();
    const { allocatedBytes } = await pool.lunUsage('big');
    expect(allocatedBytes).toBeLessThan(MiB);
    expect(allocatedBytes).toBeGreaterThanOrEqual(3 * 4096);
    const extents = await lun.blockStatus(0, TiB);
    expect(extents.filter((e) => e.kind === 'data')).toEqual(offsets.map((offset) => ({ offset, length: 4096, kind: 'data' })));
    expect(extents.reduce((sum, e) => sum + e.length, 0)).toBe(TiB);
  });

  it('provisions 16 TiB and more (segmented files) while costing only what was written', async () => {
    const pool = await openPool(undefined, { engine });
    await pool.createLun({ name: 'huge', size: '20T' });
    const lun = pool.getLun('huge');
    const last = 20 * TiB - 4096;
    const crossing = 16 * TiB - 2048; // spans the boundary between two segments
    await lun.write(last, Buffer.alloc(4096, 1));
    await lun.write(crossing, Buffer.alloc(4096, 2));
    expect(Buffer.from(await lun.read(crossing, 4096))).toEqual(Buffer.alloc(4096, 2));
    expect(Buffer.from(await lun.read(last, 4096))).toEqual(Buffer.alloc(4096, 1));
    expect((await pool.lunUsage('huge')).allocatedBytes).toBeLessThan(MiB);
  });
});
