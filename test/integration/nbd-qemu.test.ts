/**
 * qemu's NBD client (qemu-io, qemu-img 7.2) against lunrig's server. qemu
 * sends STRUCTURED_REPLY, SET_META_CONTEXT base:allocation, GO with
 * BLOCK_SIZE; qemu-io writes arrive with FUA (writethrough), `write -z` is
 * WRITE_ZEROES with NO_HOLE, `discard` is TRIM (spec/nbd.md §3).
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { GatedVolumeForInterop } from './nbd-gated-volume.js';
import { MemoryVolume } from '../../src/volume/memory-volume.js';
import { MiB, missing, pattern, run, runOk, sha256, sha256File, startInteropServer, type InteropServer, type RunResult } from './nbd-harness.js';

const qemuIo = (uri: string, ...cmds: string[]): Promise<RunResult> => runOk('qemu-io', ['-f', 'raw', ...cmds.flatMap((c) => ['-c', c]), uri]);

const skipIo = missing('qemu-io');
const skipImg = missing('qemu-img');
if (skipIo) console.warn(`nbd-qemu: ${skipIo}`);
if (skipImg) console.warn(`nbd-qemu: ${skipImg}`);

let s: InteropServer;
let disk: MemoryVolume;
let gated: GatedVolumeForInterop;

beforeAll(async () => {
  disk = new MemoryVolume({ size: 64 * MiB, identity: { name: 'disk0' } });
  gated = new GatedVolumeForInterop(new MemoryVolume({ size: 16 * MiB }));
  s = await startInteropServer([
    { name: 'disk0', volume: disk },
    { name: 'gated', volume: gated },
    { name: 'ro', volume: new MemoryVolume({ size: MiB }), readOnly: true },
  ]);
});
afterAll(async () => {
  gated.releaseAll();
  await s.close();
});

describe.skipIf(skipIo)(`qemu-io interop${skipIo ? ` (${skipIo})` : ''}`, () => {
  beforeEach(async () => {
    await disk.trim(0, disk.size);
  });

  it('pattern writes (write -P 0xab, FUA) read back verified (read -P); unaligned I/O', async () => {
    const r = await qemuIo(s.uri('disk0'), 'write -P 0xab 0 1M', 'read -P 0xab 0 1M', 'write -P 0x12 4097 1000', 'read -P 0x12 4097 1000', 'read -P 0xab 0 4097', 'read -P 0xab 5097 3000');
    expect(r.stdout).not.toMatch(/Pattern verification failed/);
    const back = Buffer.from(await disk.read(4096, 1002));
    expect(back[0]).toBe(0xab);
    expect(back.subarray(1, 1001).every((b) => b === 0x12)).toBe(true);
    expect(back[1001]).toBe(0xab);
  });

  it('a mismatching pattern is detected (the check has teeth)', async () => {
    await qemuIo(s.uri('disk0'), 'write -P 0x01 0 4k');
    const r = await run('qemu-io', ['-f', 'raw', '-c', 'read -P 0x02 0 4k', s.uri('disk0')]);
    expect(r.code).not.toBe(0);
    expect(r.stdout).toMatch(/Pattern verification failed/);
  });

  it('write -z (WRITE_ZEROES, NO_HOLE) and discard (TRIM) read back as zeros', async () => {
    await qemuIo(s.uri('disk0'), 'write -P 0xcd 0 512k', 'write -z 0 64k', 'discard 64k 128k', 'write -z -u 192k 64k', 'read -P 0 0 256k', 'read -P 0xcd 256k 256k', 'flush');
    const ext = await disk.blockStatus(0, 512 * 1024);
    expect(ext[0]).toMatchObject({ offset: 0, kind: 'zero' }); // NO_HOLE keeps it allocated
    expect(ext.some((e) => e.kind === 'hole' && e.offset === 64 * 1024)).toBe(true); // discard punched it
  });

  it('reading past the end fails cleanly and the connection stays usable', async () => {
    const r = await run('qemu-io', ['-f', 'raw', '-c', `read ${64 * MiB - 512} 4096`, '-c', 'write -P 0x33 0 4k', '-c', 'read -P 0x33 0 4k', s.uri('disk0')]);
    expect(r.code).not.toBe(0);
    expect(r.stdout).toMatch(/read failed/);
    expect(r.stdout).toMatch(/read 4096\/4096 bytes at offset 0/);
    expect(r.stdout).not.toMatch(/Pattern verification failed/);
  });

  it('writes on a read-only export fail with a permission error', async () => {
    const r = await run('qemu-io', ['-f', 'raw', '-c', 'write -P 1 0 4k', s.uri('ro')]);
    expect(r.code).not.toBe(0);
    expect(r.stdout + r.stderr).toMatch(/read-only|Operation not permitted|Permission denied/i);
  });

  it('§9.3 out-of-order replies: a delayed aio_read completes after a later one (cf. nbdkit test-parallel-file.sh)', async () => {
    gated.delayReadsAt(0, 400);
    const r = await qemuIo(s.uri('gated'), 'aio_read 0 4k', 'aio_read 64k 4k', 'aio_flush');
    const order = [...r.stdout.matchAll(/read 4096\/4096 bytes at offset (\d+)/g)].map((m) => Number(m[1]));
    expect(order).toEqual([65536, 0]);
  });

  it('several qemu-io clients writing disjoint ranges at once (CAN_MULTI_CONN shared state)', async () => {
    const n = 4;
    await Promise.all(Array.from({ length: n }, (_, i) => qemuIo(s.uri('disk0'), `write -P ${0x40 + i} ${i * 2}M 2M`, 'flush')));
    await Promise.all(Array.from({ length: n }, (_, i) => qemuIo(s.uri('disk0'), `read -P ${0x40 + i} ${i * 2}M 2M`)));
    for (let i = 0; i < n; i++) expect(Buffer.from(await disk.read(i * 2 * MiB, 2 * MiB)).every((b) => b === 0x40 + i)).toBe(true);
  });

  it('a client killed mid-request does not affect the next client', async () => {
    gated.holdWrites();
    const killed = run('qemu-io', ['-f', 'raw', '-c', 'write -P 7 0 64k', s.uri('gated')], {
      onSpawn: (child) => {
        const poll = setInterval(() => {
          if (s.server.stats().some((c) => c.exportName === 'gated' && c.inFlight > 0)) {
            clearInterval(poll);
            child.kill('SIGKILL');
          }
        }, 10);
        child.on('close', () => clearInterval(poll));
      },
    });
    const r = await killed;
    expect(r.signal).toBe('SIGKILL');
    gated.releaseAll(); // the server now completes a request whose client is gone
    const next = await qemuIo(s.uri('gated'), 'write -P 9 128k 4k', 'read -P 9 128k 4k');
    expect(next.stdout).not.toMatch(/failed/);
    for (let i = 0; i < 100 && s.server.connectionCount > 0; i++) await new Promise((res) => setTimeout(res, 10));
    expect(s.server.connectionCount).toBe(0);
  });
});

describe.skipIf(skipImg)(`qemu-img interop${skipImg ? ` (${skipImg})` : ''}`, () => {
  it('info reports the virtual size', async () => {
    const { stdout } = await runOk('qemu-img', ['info', '--output=json', s.uri('disk0')]);
    expect(JSON.parse(stdout)['virtual-size']).toBe(64 * MiB);
  });

  it('convert into and out of an export, compare, and map holes via base:allocation', async () => {
    await disk.trim(0, disk.size);
    const src = join(s.dir, 'src.img');
    const image = Buffer.alloc(64 * MiB);
    pattern(3 * MiB, 11).copy(image, 0);
    pattern(MiB, 12).copy(image, 40 * MiB);
    await writeFile(src, image);
    await runOk('qemu-img', ['convert', '-n', '-f', 'raw', '-O', 'raw', src, s.uri('disk0')]);
    const cmp = await runOk('qemu-img', ['compare', '-f', 'raw', '-F', 'raw', src, s.uri('disk0')]);
    expect(cmp.stdout).toMatch(/Images are identical/);
    const out = join(s.dir, 'out.img');
    await runOk('qemu-img', ['convert', '-f', 'raw', '-O', 'raw', s.uri('disk0'), out]);
    expect(await sha256File(out)).toBe(sha256(image));
    const map = JSON.parse((await runOk('qemu-img', ['map', '--output=json', '-f', 'raw', s.uri('disk0')])).stdout) as { start: number; length: number; data: boolean; zero: boolean }[];
    const data = map.filter((m) => m.data).map((m) => [m.start, m.length]);
    expect(data).toEqual([
      [0, 3 * MiB],
      [40 * MiB, MiB],
    ]);
  });
});
