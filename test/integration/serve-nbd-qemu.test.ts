/**
 * qemu's NBD client (qemu-io, qemu-img) against a real `lunrig serve`: qemu-io
 * writes arrive with FUA (writethrough), `write -z` is WRITE_ZEROES with
 * NO_HOLE, `discard` is TRIM (spec/nbd.md §2.4, §3, §4, §9.5).
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NbdClient } from '../../src/nbd/client.js';
import * as NBD from '../../src/nbd/constants.js';
import { cliJson, startServe, stopAllServes, type ServeProcess } from '../helpers/serve-process.js';
import { MiB, killChildren, missing, pattern, run, runOk, sha256, sha256File, type RunResult } from './nbd-harness.js';

const skipIo = missing('qemu-io');
const skipImg = missing('qemu-img');
if (skipIo) console.warn(`serve-nbd-qemu: ${skipIo}`);
if (skipImg) console.warn(`serve-nbd-qemu: ${skipImg}`);

const qemuIo = (uri: string, ...cmds: string[]): Promise<RunResult> => runOk('qemu-io', ['-f', 'raw', ...cmds.flatMap((c) => ['-c', c]), uri]);

let s: ServeProcess;

beforeAll(async () => {
  s = await startServe();
  for (const name of ['q0', 'multi', 'kill', 'img']) await cliJson(s, ['lun', 'create', name, '--size', '64M']);
});

afterAll(async () => {
  killChildren();
  await stopAllServes();
});

describe.skipIf(skipIo)(`lunrig serve + qemu-io${skipIo ? ` (${skipIo})` : ''}`, () => {
  it('§2.4 WRITE (FUA) / READ: pattern writes read back verified, also at unaligned offsets and lengths', async () => {
    const r = await qemuIo(
      s.uri('q0'),
      'write -P 0xab 0 1M',
      'write -P 0x12 4097 1000',
      'write -P 0x34 1048575 3',
      'read -P 0xab 0 4097',
      'read -P 0x12 4097 1000',
      'read -P 0xab 5097 1043478',
      'read -P 0x34 1048575 3',
      'read -P 0 1048578 1M',
    );
    expect(r.stdout).not.toMatch(/verification failed|failed/);
    // A check with teeth: a wrong pattern is noticed.
    const wrong = await run('qemu-io', ['-f', 'raw', '-c', 'read -P 0xac 0 4k', s.uri('q0')]);
    expect(wrong.code).not.toBe(0);
    expect(wrong.stdout).toMatch(/Pattern verification failed/);
  });

  it('§2.4 WRITE_ZEROES (write -z, NO_HOLE; -u may trim) and TRIM (discard) read back as zeros', async () => {
    const r = await qemuIo(
      s.uri('q0'),
      'write -P 0xcd 2M 512k',
      'write -z 2M 64k',
      'discard 2112k 192k',
      'write -z -u 2304k 64k',
      'flush',
      'read -P 0 2M 320k',
      'read -P 0xcd 2368k 192k',
    );
    expect(r.stdout).not.toMatch(/failed/);
    // A second connection sees the same (CAN_MULTI_CONN: one Volume behind all connections).
    expect((await qemuIo(s.uri('q0'), 'read -P 0 2M 320k', 'read -P 0xcd 2368k 192k')).stdout).not.toMatch(/failed/);
  });

  it('§4: a read past the end fails cleanly and the same connection stays usable; on the wire READ gets EINVAL, WRITE ENOSPC', async () => {
    const r = await run('qemu-io', ['-f', 'raw', '-c', `read ${64 * MiB - 512} 4096`, '-c', 'write -P 0x33 8M 4k', '-c', 'read -P 0x33 8M 4k', s.uri('q0')]);
    expect(r.code).not.toBe(0);
    expect(r.stdout).toMatch(/read failed/);
    expect(r.stdout).toMatch(/read 4096\/4096 bytes at offset 8388608/);
    expect(r.stdout).not.toMatch(/verification failed/);
    // qemu may refuse locally; the server's own answer, request by request:
    const c = await NbdClient.connect({ path: s.socket }, { exportName: 'q0' });
    try {
      expect((await c.request({ type: NBD.NBD_CMD_READ, offset: 64 * MiB - 512, length: 4096 })).errno).toBe(NBD.NBD_EINVAL);
      expect((await c.request({ type: NBD.NBD_CMD_WRITE, offset: 64 * MiB - 512, data: Buffer.alloc(4096) })).errno).toBe(NBD.NBD_ENOSPC);
      expect((await c.request({ type: NBD.NBD_CMD_READ, offset: 64 * MiB - 512, length: 512 })).errno).toBe(0);
    } finally {
      await c.close();
    }
  });

  it('§9.5 CAN_MULTI_CONN: four clients write disjoint ranges at once; each range reads back from new connections', async () => {
    const n = 4;
    await Promise.all(Array.from({ length: n }, (_, i) => qemuIo(s.uri('multi'), `write -P ${0x40 + i} ${i * 4}M 4M`, 'flush')));
    const reads = await Promise.all(Array.from({ length: n }, (_, i) => qemuIo(i % 2 ? s.tcpUri('multi') : s.uri('multi'), `read -P ${0x40 + i} ${i * 4}M 4M`)));
    for (const r of reads) expect(r.stdout).not.toMatch(/failed/);
  });

  it('a client killed (SIGKILL) in the middle of its writes does not affect the next client', async () => {
    const writes = Array.from({ length: 40 }, (_, i) => `write -P 7 ${(i % 8) * 4}M 4M`);
    const probe = await NbdClient.connect({ path: s.socket }, { exportName: 'kill' });
    let sawData = false;
    const killed = run('qemu-io', ['-f', 'raw', ...writes.flatMap((c) => ['-c', c]), s.uri('kill')], {
      onSpawn: (child) => {
        // Kill once its writes have started landing: the stream is mid-flight.
        const poll = setInterval(() => {
          probe.blockStatus(0, 32 * MiB).then(
            (ext) => {
              if (!sawData && ext.some((e) => e.kind === 'data')) {
                sawData = true;
                clearInterval(poll);
                child.kill('SIGKILL');
              }
            },
            () => undefined,
          );
        }, 5);
        child.on('close', () => clearInterval(poll));
      },
    });
    const r = await killed;
    await probe.close();
    expect(r.signal).toBe('SIGKILL');
    expect(sawData).toBe(true);
    const next = await qemuIo(s.uri('kill'), 'write -P 9 48M 1M', 'read -P 9 48M 1M', 'flush');
    expect(next.stdout).not.toMatch(/failed/);
    // The server as a whole is fine too.
    expect((await s.cli(['lun', 'info', 'kill'])).code).toBe(0);
  });
});

describe.skipIf(skipImg)(`lunrig serve + qemu-img${skipImg ? ` (${skipImg})` : ''}`, () => {
  it('§3: info reports the LUN size; convert into a LUN and out again; compare says identical; map finds the data', async () => {
    expect(JSON.parse((await runOk('qemu-img', ['info', '--output=json', s.uri('img')])).stdout)['virtual-size']).toBe(64 * MiB);
    const dir = path.dirname(s.socket);
    const image = Buffer.alloc(64 * MiB);
    pattern(3 * MiB, 11).copy(image, 0);
    pattern(MiB + 777, 12).copy(image, 40 * MiB);
    const src = path.join(dir, 'src.img');
    await writeFile(src, image);
    await runOk('qemu-img', ['convert', '-n', '-f', 'raw', '-O', 'raw', src, s.tcpUri('img')]);
    expect((await runOk('qemu-img', ['compare', '-f', 'raw', '-F', 'raw', src, s.uri('img')])).stdout).toMatch(/Images are identical/);
    const out = path.join(dir, 'out.img');
    await runOk('qemu-img', ['convert', '-f', 'raw', '-O', 'raw', s.uri('img'), out]);
    expect(await sha256File(out)).toBe(sha256(image));
    const map = JSON.parse((await runOk('qemu-img', ['map', '--output=json', '-f', 'raw', s.uri('img')])).stdout) as { start: number; length: number; data: boolean }[];
    const data = map.filter((m) => m.data);
    // Data where the image has it (rounded out to filesystem blocks), nothing elsewhere.
    expect(data[0]).toMatchObject({ start: 0, length: 3 * MiB });
    expect(data[1]!.start).toBe(40 * MiB);
    expect(data[1]!.length).toBeGreaterThanOrEqual(MiB + 777);
    expect(data[1]!.length).toBeLessThanOrEqual(MiB + 64 * 1024);
    expect(data).toHaveLength(2);
  });
});
