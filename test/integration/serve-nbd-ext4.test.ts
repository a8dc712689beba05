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
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { mkdir, truncate, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seededRandom, testSeed } from '../helpers/seeded-random.js';
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
/** A mount to undo even when a test timed out before its finally ran. */
let mounted: { mnt: string; fuse: ChildProcess } | undefined;

beforeAll(async () => {
  if (skipTools) return;
  s = await startServe();
  work = path.dirname(s.socket);
  await makeSourceTree(path.join(work, 'src'), testSeed('serve-nbd-ext4'));
});

afterAll(async () => {
  if (mounted) await unmount(mounted.mnt, mounted.fuse);
  killChildren();
  await stopAllServes();
});

describe.skipIf(skipFuse)(`ext4 on a LUN through nbdfuse${skipFuse ? ` (${skipFuse})` : ''}`, () => {
  it('§3: mke2fs -t ext4 -d on nbdfuse DIR/nbd, e2fsck -fn clean, debugfs dumps every file intact; a copy taken with nbdcopy agrees', { timeout: 120_000 }, async () => {
    await cliJson(s, ['lun', 'create', 'fs0', '--size', String(FS_SIZE)]);
    const mnt = path.join(work, 'mnt');
    await mkdir(mnt);
    const fuse = await mountNbdfuse(mnt, s.uri('fs0'));
    try {
      const disk = path.join(mnt, 'nbd');
      await runOk('mke2fs', ['-q', '-F', '-t', 'ext4', '-d', path.join(work, 'src'), disk], { timeoutMs: 60_000 });
      await checkFilesystem(disk, 'fuse');
    } finally {
      await unmount(mnt, fuse);
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

/** Run nbdfuse in the background and wait until DIR/nbd is there with the export's size. */
async function mountNbdfuse(mnt: string, uri: string): Promise<ChildProcess> {
  const child = spawn('nbdfuse', [mnt, uri], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const deadline = Date.now() + 15_000;
  for (;;) {
    try {
      if (statSync(path.join(mnt, 'nbd')).size === FS_SIZE) {
        mounted = { mnt, fuse: child };
        return child;
      }
    } catch {
      // not mounted yet
    }
    if (child.exitCode !== null || Date.now() > deadline) {
      if (child.pid !== undefined && child.exitCode === null) process.kill(child.pid, 'SIGKILL');
      throw new Error(`nbdfuse did not mount ${uri} on ${mnt}: ${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** fusermount3 -u, then wait for nbdfuse to exit (SIGKILL by pid and a lazy unmount if it will not). */
async function unmount(mnt: string, fuse: ChildProcess): Promise<void> {
  const exited = new Promise<void>((resolve) => (fuse.exitCode !== null ? resolve() : fuse.once('exit', () => resolve())));
  const r = await run('fusermount3', ['-u', mnt]);
  const timer = setTimeout(() => {
    if (fuse.pid !== undefined && fuse.exitCode === null) process.kill(fuse.pid, 'SIGKILL');
    void run('fusermount3', ['-uz', mnt]);
  }, r.code === 0 ? 10_000 : 0);
  await exited;
  clearTimeout(timer);
  mounted = undefined;
}
