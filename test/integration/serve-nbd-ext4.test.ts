/**
 * A real ext4 filesystem through lunrig's NBD server. mke2fs builds it on the
 * LUN (populated from a directory of seeded random files with `-d`), e2fsck
 * checks it, debugfs reads every file back and sha256 must match.
 *
 * Two routes: nbdfuse exposes the export as a file (DIR/nbd) on FUSE, so the
 * e2fsprogs tools do their I/O through NBD requests (READ, WRITE, TRIM,
 * FLUSH); where FUSE is unavailable, the filesystem is built in a local image,
 * copied in with nbdcopy, copied out again and checked. Neither needs root
 * block devices; the kernel client has its own test (serve-nbd-kernel).
 */
import { existsSync } from 'node:fs';
import { mkdir, truncate, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seededRandom, testSeed } from '../helpers/seeded-random.js';
import { mountNbdfuse, unmountLeftover, unmountNbdfuse } from '../helpers/nbdfuse.js';
import { cliJson, startServe, stopAllServes, type ServeProcess } from '../helpers/serve-process.js';
import { MiB, killChildren, missing, pattern, run, runOk, sha256, sha256File } from './nbd-harness.js';

const FS_SIZE = 64 * MiB;
const skipTools = missing('mke2fs', 'e2fsck', 'debugfs', 'nbdcopy');
const skipFuse = skipTools ?? missing('nbdfuse', 'fusermount3') ?? (existsSync('/dev/fuse') ? undefined : 'skipped: /dev/fuse does not exist');
if (skipTools) console.warn(`serve-nbd-ext4: ${skipTools}`);
else if (skipFuse) console.warn(`serve-nbd-ext4: ${skipFuse}`);

let s: ServeProcess;
let work: string;
/** Relative path -> sha256 of the files mke2fs puts into the filesystem. */
const files = new Map<string, string>();

beforeAll(async () => {
  if (skipTools) return;
  s = await startServe();
  work = path.dirname(s.socket);
  await makeSourceTree(path.join(work, 'src'), testSeed('serve-nbd-ext4'));
});

afterAll(async () => {
  await unmountLeftover();
  killChildren();
  await stopAllServes();
});

describe.skipIf(skipFuse)(`ext4 on a LUN through nbdfuse${skipFuse ? ` (${skipFuse})` : ''}`, () => {
  it('§3: mke2fs -t ext4 -d on nbdfuse DIR/nbd, e2fsck -fn clean, debugfs dumps every file intact; a copy taken with nbdcopy agrees', { timeout: 120_000 }, async () => {
    await cliJson(s, ['lun', 'create', 'fs0', '--size', String(FS_SIZE)]);
    const mnt = path.join(work, 'mnt');
    await mkdir(mnt);
    const fuse = await mountNbdfuse(mnt, s.uri('fs0'), FS_SIZE);
    try {
      const disk = path.join(mnt, 'nbd');
      await runOk('mke2fs', ['-q', '-F', '-t', 'ext4', '-d', path.join(work, 'src'), disk], { timeoutMs: 60_000 });
      await checkFilesystem(disk, 'fuse');
    } finally {
      await unmountNbdfuse(fuse);
    }
    // What reached the LUN (not a FUSE or page cache): copy it out and check the copy.
    const copy = path.join(work, 'fs0-copy.img');
    await runOk('nbdcopy', [s.tcpUri('fs0'), copy]);
    await checkFilesystem(copy, 'copy');
  });
});

describe.skipIf(skipTools)(`ext4 on a LUN through nbdcopy${skipTools ? ` (${skipTools})` : ''}`, () => {
  it('§3: an ext4 image made locally, copied into a LUN and out again with nbdcopy, is bit-identical and e2fsck-clean', { timeout: 120_000 }, async () => {
    await cliJson(s, ['lun', 'create', 'fs1', '--size', String(FS_SIZE)]);
    const image = path.join(work, 'local.img');
    await writeFile(image, Buffer.alloc(0));
    await truncate(image, FS_SIZE);
    await runOk('mke2fs', ['-q', '-F', '-t', 'ext4', '-d', path.join(work, 'src'), image], { timeoutMs: 60_000 });
    await runOk('nbdcopy', ['--flush', image, s.uri('fs1')]);
    const out = path.join(work, 'fs1-out.img');
    await runOk('nbdcopy', [s.uri('fs1'), out]);
    expect(await sha256File(out)).toBe(await sha256File(image));
    await checkFilesystem(out, 'nbdcopy');
  });
});

/** Seeded random files (empty, small, unaligned, a few MiB) in nested directories. */
async function makeSourceTree(root: string, seed: number): Promise<void> {
  const random = seededRandom(seed);
  const sizes = [0, 1, 511, 4096, 4097, 65_537, 300_000, 1_048_576, 3 * MiB + 123];
  for (let i = 0; i < 24; i++) {
    const rel = path.join(`d${i % 4}`, i % 3 === 0 ? `sub${i % 2}` : '', `file-${i}.bin`);
    const size = sizes[i % sizes.length]! + Math.floor(random() * 1000) * (i % 2);
    const data = pattern(size, seed + i + 1);
    await mkdir(path.dirname(path.join(root, rel)), { recursive: true });
    await writeFile(path.join(root, rel), data);
    files.set(rel, sha256(data));
  }
}

/** e2fsck finds nothing to fix, and every file read back with debugfs matches its source. */
async function checkFilesystem(disk: string, label: string): Promise<void> {
  const fsck = await run('e2fsck', ['-fn', disk]);
  expect(fsck.code, `e2fsck (${label}): ${fsck.stdout}${fsck.stderr}`).toBe(0);
  const out = path.join(work, `dump-${label}`);
  await mkdir(out, { recursive: true });
  let n = 0;
  for (const [rel, hash] of files) {
    const target = path.join(out, `${n++}.bin`);
    await runOk('debugfs', ['-R', `dump /${rel} ${target}`, disk]);
    expect(await sha256File(target), `${rel} (${label})`).toBe(hash);
  }
}

