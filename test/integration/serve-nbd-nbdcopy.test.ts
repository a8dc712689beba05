/**
 * nbdcopy (libnbd) against a real `lunrig serve`: it opens several
 * connections per export because CAN_MULTI_CONN is offered, and skips zero
 * extents it learns from base:allocation (spec/nbd.md §2.7, §3, §9.5).
 */
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliJson, startServe, stopAllServes, type ServeProcess } from '../helpers/serve-process.js';
import { testSeed } from '../helpers/seeded-random.js';
import { MiB, killChildren, missing, pattern, runOk, sha256, sha256File } from './nbd-harness.js';

const skip = missing('nbdcopy', 'nbdinfo');
if (skip) console.warn(`serve-nbd-nbdcopy: ${skip}`);

let s: ServeProcess;

beforeAll(async () => {
  s = await startServe();
  for (const name of ['a', 'b']) await cliJson(s, ['lun', 'create', name, '--size', '32M']);
});

afterAll(async () => {
  killChildren();
  await stopAllServes();
});

describe.skipIf(skip)(`lunrig serve + nbdcopy${skip ? ` (${skip})` : ''}`, () => {
  it('§3 copies a sparse image into a LUN and out again, byte for byte (sha256); holes stay holes', async () => {
    const seed = testSeed('serve-nbd-nbdcopy');
    const image = Buffer.alloc(32 * MiB);
    pattern(5 * MiB, seed).copy(image, MiB);
    pattern(3 * MiB + 12345, seed + 1).copy(image, 20 * MiB);
    const dir = path.dirname(s.socket);
    const src = path.join(dir, 'in.img');
    await writeFile(src, image);
    await runOk('nbdcopy', ['--flush', src, s.uri('a')]);
    const out = path.join(dir, 'out.img');
    await runOk('nbdcopy', [s.tcpUri('a'), out]);
    expect(await sha256File(out)).toBe(sha256(image));
    // The first MiB was never written: nbdcopy skipped it, so the LUN still has a hole there.
    const map = JSON.parse((await runOk('nbdinfo', ['--map', '--json', s.uri('a')])).stdout) as { offset: number; length: number; type: number }[];
    expect(map[0]).toMatchObject({ offset: 0, type: 3 });
    expect(map[0]!.length).toBeGreaterThanOrEqual(MiB);
  });

  it('§9.5 copies LUN to LUN on the same server (several connections on each side)', async () => {
    await runOk('nbdcopy', ['--connections=4', '--flush', s.uri('a'), s.tcpUri('b')]);
    const dir = path.dirname(s.socket);
    const [outA, outB] = [path.join(dir, 'a.img'), path.join(dir, 'b.img')];
    await runOk('nbdcopy', ['--synchronous', s.uri('a'), outA]);
    await runOk('nbdcopy', [s.uri('b'), outB]);
    expect(sha256(await readFile(outB))).toBe(sha256(await readFile(outA)));
  });
});
