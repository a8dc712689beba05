/**
 * Durability through NBD: what a client made durable (WRITE with FUA, or
 * WRITE then FLUSH) is on disk when `lunrig serve` is killed with SIGKILL, and
 * a restart on the same pool serves it (spec/nbd.md §2.4 ordering rules: "FUA:
 * no reply until that command's data is durable", FLUSH covers every write
 * replied to before it; §9.4).
 *
 * SIGKILL loses what the process holds (queues, worker buffers), not the page
 * cache, so this proves writes are in the files before they are acknowledged;
 * power-loss durability (fdatasync) is what src/io's own tests check.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { NbdClient } from '../../src/nbd/client.js';
import { seededRandom, testSeed } from '../helpers/seeded-random.js';
import { cliJson, startServe, stopAllServes } from '../helpers/serve-process.js';
import { MiB, killChildren, missing, pattern, runOk, sha256 } from './nbd-harness.js';

const SIZE = 64 * MiB;
const skipQemu = missing('qemu-io');
if (skipQemu) console.warn(`serve-nbd-durability: ${skipQemu} (the qemu-io part is left out)`);

afterAll(async () => {
  killChildren();
  await stopAllServes();
});

describe('lunrig serve: durability through NBD across kill -9', () => {
  it('§2.4 FUA writes and WRITE+FLUSH survive SIGKILL of the server; a restart serves them (seeded random pattern)', { timeout: 120_000 }, async () => {
    const seed = testSeed('serve-nbd-durability');
    const random = seededRandom(seed);
    const image = Buffer.alloc(SIZE); // what the LUN must hold after the restart
    const s = await startServe({ args: ['--io', 'worker'] });
    await cliJson(s, ['lun', 'create', 'dur', '--size', '64M']);

    const fua = await NbdClient.connect({ path: s.socket }, { exportName: 'dur' });
    const flushed = await NbdClient.connect({ host: s.tcp!.host, port: s.tcp!.port }, { exportName: 'dur' });
    try {
      // Disjoint random extents, some unaligned: half FUA on one connection, half plain + FLUSH on the other.
      const extents = Array.from({ length: 64 }, (_, i) => {
        const slot = (SIZE / 64) * i;
        const offset = slot + Math.floor(random() * 64 * 1024);
        const length = 1 + Math.floor(random() * 256 * 1024);
        return { offset, data: pattern(length, seed + i + 1), fua: i % 2 === 0 };
      });
      await Promise.all(
        extents.map((e) => {
          e.data.copy(image, e.offset);
          return e.fua ? fua.write(e.offset, e.data, { fua: true }) : flushed.write(e.offset, e.data);
        }),
      );
      // FLUSH covers every write completed before it, on any connection (CAN_MULTI_CONN).
      await flushed.flush();
    } finally {
      fua.destroy();
      flushed.destroy();
    }

    // qemu-io with the host cache off (-t none) sends plain WRITEs and an explicit FLUSH.
    if (!skipQemu) {
      await runOk('qemu-io', ['-f', 'raw', '-t', 'none', '-c', 'write -P 0x5a 60M 1M', '-c', 'flush', s.uri('dur')]);
      image.fill(0x5a, 60 * MiB, 61 * MiB);
    }

    expect(await s.stop('SIGKILL')).toEqual({ code: null, signal: 'SIGKILL' });

    const again = await startServe({ dataDir: s.dataDir });
    const reader = await NbdClient.connect({ path: again.socket }, { exportName: 'dur' });
    try {
      const back = Buffer.from(await reader.read(0, SIZE));
      if (sha256(back) !== sha256(image)) {
        const at = back.findIndex((b, i) => b !== image[i]);
        throw new Error(`LUN differs from what was made durable, first at byte ${at} (seed ${seed})`);
      }
    } finally {
      await reader.close();
    }
  });
});
