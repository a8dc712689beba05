/**
 * Bulk clients: nbdcopy (libnbd; opens 2 connections because CAN_MULTI_CONN is
 * offered, 256 KiB requests) and fio's nbd engine (one probe connection, then
 * one I/O connection per job), spec/nbd.md §3 and §9.5.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryVolume } from '../../src/volume/memory-volume.js';
import { MiB, missing, pattern, run, runOk, sha256, sha256File, startInteropServer, type InteropServer } from './nbd-harness.js';

const skipCopy = missing('nbdcopy');
const skipFio = missing('fio');
if (skipCopy) console.warn(`nbd-nbdcopy-fio: ${skipCopy}`);
if (skipFio) console.warn(`nbd-nbdcopy-fio: ${skipFio}`);

let s: InteropServer;
let a: MemoryVolume;
let b: MemoryVolume;
let connections = 0;

beforeAll(async () => {
  a = new MemoryVolume({ size: 32 * MiB, identity: { name: 'a' } });
  b = new MemoryVolume({ size: 32 * MiB, identity: { name: 'b' } });
  s = await startInteropServer([
    { name: 'a', volume: a },
    { name: 'b', volume: b },
    { name: 'fio', volume: new MemoryVolume({ size: 64 * MiB }) },
  ]);
  s.server.on('connection', () => connections++);
});
afterAll(async () => {
  await s.close();
});

describe.skipIf(skipCopy)(`nbdcopy interop${skipCopy ? ` (${skipCopy})` : ''}`, () => {
  it('copies a sparse image in and out again, byte for byte (sha256), over several connections', async () => {
    const image = Buffer.alloc(32 * MiB);
    pattern(5 * MiB, 21).copy(image, MiB);
    pattern(3 * MiB + 12345, 22).copy(image, 20 * MiB);
    const src = join(s.dir, 'in.img');
    await writeFile(src, image);
    const before = connections;
    await runOk('nbdcopy', [src, s.uri('a')]);
    expect(connections - before).toBeGreaterThanOrEqual(2); // multi-conn
    expect(sha256(await a.read(0, a.size))).toBe(sha256(image));
    const out = join(s.dir, 'out.img');
    await runOk('nbdcopy', [s.uri('a'), out]);
    expect(await sha256File(out)).toBe(sha256(image));
    // Holes stay holes on the way in: nbdcopy skips zero extents it learns from base:allocation.
    expect((await a.blockStatus(0, MiB))[0]).toMatchObject({ kind: 'hole' });
  });

  it('copies export to export on the same server', async () => {
    await a.write(0, pattern(4 * MiB, 23));
    await runOk('nbdcopy', [s.uri('a'), s.uri('b')]);
    expect(sha256(await b.read(0, b.size))).toBe(sha256(await a.read(0, a.size)));
    await runOk('nbdcopy', ['--flush', '--synchronous', s.uri('b'), join(s.dir, 'b.img')]);
    expect(sha256(await readFile(join(s.dir, 'b.img')))).toBe(sha256(await b.read(0, b.size)));
  });
});

describe.skipIf(skipFio)(`fio nbd engine${skipFio ? ` (${skipFio})` : ''}`, () => {
  // verify_state_save=0: fio would otherwise drop *-verify.state files into the working directory.
  const base = (extra: string[]): string[] => [
    '--name=lunrig',
    '--ioengine=nbd',
    `--uri=${s.uri('fio')}`,
    '--size=32M',
    '--group_reporting',
    '--verify_state_save=0',
    ...extra,
  ];

  it('random writes verified with crc32c (write, then read back and check)', async () => {
    const r = await runOk('fio', base(['--rw=randwrite', '--bs=4k', '--iodepth=32', '--verify=crc32c', '--verify_fatal=1', '--do_verify=1']), { timeoutMs: 120_000 });
    expect(r.stdout).toMatch(/err= 0/);
    expect(r.stdout + r.stderr).not.toMatch(/verify: bad/);
  });

  it('mixed block sizes and two jobs (one connection each) verify too', async () => {
    const r = await runOk(
      'fio',
      base(['--rw=randwrite', '--bsrange=512-256k', '--iodepth=16', '--numjobs=2', '--offset_increment=16M', '--size=16M', '--verify=crc32c', '--verify_fatal=1']),
      { timeoutMs: 120_000 },
    );
    expect(r.stdout).toMatch(/err= 0/);
  });

  it('verification has teeth: a volume that corrupts reads makes fio fail', async () => {
    const honest = new MemoryVolume({ size: 8 * MiB });
    const liar = Object.assign(Object.create(honest) as MemoryVolume, {
      read: async (offset: number, length: number): Promise<Uint8Array> => {
        const d = await honest.read(offset, length);
        if (length > 0) d[0] = d[0]! ^ 0xff;
        return d;
      },
    });
    s.registry.add({ name: 'liar', volume: liar });
    const r = await run('fio', ['--name=liar', '--ioengine=nbd', `--uri=${s.uri('liar')}`, '--size=1M', '--rw=write', '--bs=64k', '--verify=crc32c', '--verify_fatal=1', '--verify_state_save=0'], {
      timeoutMs: 60_000,
    });
    expect(r.code).not.toBe(0);
    expect(r.stdout + r.stderr).toMatch(/verify/i);
  });

  it('sequential 1M reads run clean', async () => {
    const r = await runOk('fio', base(['--rw=read', '--bs=1M', '--iodepth=8']), { timeoutMs: 120_000 });
    expect(r.stdout).toMatch(/err= 0/);
  });
});
