/**
 * lunrig's NbdClient against other servers: nbdkit (memory plugin, with
 * filters that take features away) and qemu-nbd. The client is what PPRC and
 * multipath use to reach a Volume on another server, so it must cope with
 * servers that are not lunrig.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { isLunrigError } from '../../src/errors.js';
import * as C from '../../src/nbd/constants.js';
import { NbdClient } from '../../src/nbd/client.js';
import { MemoryVolume } from '../../src/volume/memory-volume.js';
import { MiB, missing, pattern, startDaemon, startInteropServer, type Daemon, type InteropServer } from './nbd-harness.js';

const skipKit = missing('nbdkit');
const skipQemu = missing('qemu-nbd');
if (skipKit) console.warn(`nbd-client-interop: ${skipKit}`);
if (skipQemu) console.warn(`nbd-client-interop: ${skipQemu}`);

let dir: InteropServer; // used for its temp dir and cleanup
let sockN = 0;
const daemons: Daemon[] = [];
const clients: NbdClient[] = [];

beforeAll(async () => {
  dir = await startInteropServer([{ name: 'unused', volume: new MemoryVolume({ size: MiB }) }]);
});
afterEach(async () => {
  for (const c of clients.splice(0)) await c.close().catch(() => c.destroy());
  for (const d of daemons.splice(0)) await d.stop();
});
afterAll(async () => {
  await dir.close();
});

async function nbdkit(args: string[]): Promise<string> {
  const sock = join(dir.dir, `kit${sockN++}.sock`);
  daemons.push(await startDaemon('nbdkit', ['-f', '-U', sock, ...args], sock));
  return sock;
}

async function connect(path: string, o: { exportName?: string; structuredReplies?: boolean } = {}): Promise<NbdClient> {
  const c = await NbdClient.connect({ path }, { exportName: o.exportName ?? '', ...(o.structuredReplies === undefined ? {} : { structuredReplies: o.structuredReplies }) });
  clients.push(c);
  return c;
}

/** The Volume operations every server must support through the client. */
async function exerciseVolume(c: NbdClient): Promise<void> {
  const data = pattern(3 * MiB + 333, 77);
  await c.write(12345, data, { fua: true });
  expect(Buffer.from(await c.read(12345, data.length)).equals(data)).toBe(true);
  await c.writeZeroes(12345, 1000, { noHole: true });
  await c.trim(2 * MiB, MiB);
  await c.flush();
  const back = Buffer.from(await c.read(12345, data.length));
  expect(back.subarray(0, 1000).every((b) => b === 0)).toBe(true);
  expect(back.subarray(2 * MiB - 12345, 3 * MiB - 12345).every((b) => b === 0)).toBe(true);
  expect(back.subarray(1000, 2000).equals(data.subarray(1000, 2000))).toBe(true);
  const ext = await c.blockStatus(0, c.size);
  expect(ext[0]!.offset).toBe(0);
  expect(ext.reduce((n, e) => n + e.length, 0)).toBe(c.size);
}

describe.skipIf(skipKit)(`NbdClient against nbdkit${skipKit ? ` (${skipKit})` : ''}`, () => {
  it('memory plugin: structured replies, base:allocation, all operations', async () => {
    const c = await connect(await nbdkit(['memory', '64M']));
    expect(c.structuredReplies).toBe(true);
    expect(c.metaContexts.has('base:allocation')).toBe(true);
    expect(c.size).toBe(64 * MiB);
    await exerciseVolume(c);
    const ext = await c.blockStatus(60 * MiB, 4 * MiB);
    expect(ext).toEqual([{ offset: 60 * MiB, length: 4 * MiB, kind: 'hole' }]);
  });

  it('--no-sr (simple replies only): everything but block status, which falls back to "data"', async () => {
    const c = await connect(await nbdkit(['--no-sr', 'memory', '64M']));
    expect(c.structuredReplies).toBe(false);
    await exerciseVolume(c);
    expect(await c.blockStatus(0, 4096)).toEqual([{ offset: 0, length: 4096, kind: 'data' }]);
  });

  it('without WRITE_ZEROES (nozero filter): the client falls back to writing zeros', async () => {
    // (nbdkit 1.32's fua filter refuses fuamode=none; the FUA fallback is covered by client.test.ts.)
    const c = await connect(await nbdkit(['--filter=nozero', 'memory', '64M', 'zeromode=none']));
    expect(c.hasFlag(C.NBD_FLAG_SEND_WRITE_ZEROES)).toBe(false);
    await exerciseVolume(c);
    await expect(c.writeZeroes(0, 4096, { fastZero: true })).rejects.toSatisfy((e: unknown) => isLunrigError(e, 'NOT_SUPPORTED'));
  });

  it('honours advertised block sizes: splits at the maximum, refuses misaligned requests', async () => {
    const c = await connect(
      await nbdkit(['--filter=blocksize-policy', 'memory', '16M', 'blocksize-minimum=512', 'blocksize-preferred=4096', 'blocksize-maximum=65536', 'blocksize-error-policy=error']),
    );
    expect(c.blockSize).toEqual({ minimum: 512, preferred: 4096, maximum: 65536 });
    const data = pattern(MiB, 5);
    await c.write(4096, data);
    expect(Buffer.from(await c.read(4096, MiB)).equals(data)).toBe(true);
    await expect(c.read(100, 512)).rejects.toSatisfy((e: unknown) => isLunrigError(e, 'INVALID_ARGUMENT'));
  });

  it('maps errno replies to typed errors (error filter: ENOSPC on writes, EIO on reads)', async () => {
    const c = await connect(await nbdkit(['--filter=error', 'memory', '16M', 'error-pwrite=ENOSPC', 'error-pwrite-rate=100%', 'error-pread=EIO', 'error-pread-rate=100%']));
    await expect(c.write(0, Buffer.alloc(4096))).rejects.toSatisfy((e: unknown) => isLunrigError(e, 'NO_SPACE'));
    await expect(c.read(0, 4096)).rejects.toSatisfy((e: unknown) => isLunrigError(e, 'IO_ERROR'));
    await c.flush(); // the connection survives errors
  });

  it('lists nbdkit exports and reports an unknown export as LUN_NOT_FOUND', async () => {
    const sock = await nbdkit(['--filter=exportname', 'memory', '1M', 'exportname-list=explicit', 'exportname=alpha', 'exportname=beta', 'exportname-strict=true']);
    const list = await NbdClient.listExports({ path: sock });
    expect(list.map((e) => e.name)).toEqual(['alpha', 'beta']);
    await expect(NbdClient.connect({ path: sock }, { exportName: 'gamma' })).rejects.toSatisfy((e: unknown) => isLunrigError(e, 'LUN_NOT_FOUND'));
  });

  it('a dying server fails requests in flight with UNREACHABLE and emits disconnect', async () => {
    const sock = await nbdkit(['--filter=delay', 'memory', '16M', 'rdelay=2']);
    const c = await connect(sock);
    const lost = new Promise<Error>((resolve) => c.once('disconnect', resolve));
    const pending = c.read(0, 4096);
    await new Promise((r) => setTimeout(r, 100));
    daemons[0]!.child.kill('SIGKILL');
    await expect(pending).rejects.toSatisfy((e: unknown) => isLunrigError(e, 'UNREACHABLE'));
    expect(isLunrigError(await lost, 'UNREACHABLE')).toBe(true);
  });
});

describe.skipIf(skipQemu)(`NbdClient against qemu-nbd${skipQemu ? ` (${skipQemu})` : ''}`, () => {
  it('raw sparse file: all operations, holes from base:allocation', async () => {
    const img = join(dir.dir, 'qemu.img');
    await writeFile(img, Buffer.alloc(0));
    const { truncate } = await import('node:fs/promises');
    await truncate(img, 64 * MiB);
    const sock = join(dir.dir, 'qemu.sock');
    daemons.push(await startDaemon('qemu-nbd', ['-f', 'raw', '-k', sock, '-t', '--shared=4', '-x', 'disk', img], sock));
    const c = await connect(sock, { exportName: 'disk' });
    expect(c.size).toBe(64 * MiB);
    expect(c.structuredReplies).toBe(true);
    await exerciseVolume(c);
    const ext = await c.blockStatus(32 * MiB, 32 * MiB);
    expect(ext.every((e) => e.kind === 'hole')).toBe(true);
  });
});
