/**
 * FlashCopy under a real filesystem (spec §2.1, §2.3, §3.2.4 "unmount, then
 * FlashCopy, then fsck the target"): ext4 on a LUN, NOCOPY FlashCopy, then
 * the source keeps changing (files written, files deleted, a directory made,
 * in several rounds); the target must check clean with `e2fsck -fn` and hold
 * exactly the T0 files, byte for byte (sha256 of debugfs dumps), none of the
 * later ones.
 *
 * The e2fsprogs tools reach the LUNs over NBD through nbdfuse (DIR/nbd on
 * FUSE; the target read-only). Where FUSE is unavailable, the same steps run
 * on images copied out of and back into the LUNs with nbdcopy.
 */
import { existsSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seededRandom, testSeed } from '../helpers/seeded-random.js';
import { mountNbdfuse, unmountLeftover, unmountNbdfuse } from '../helpers/nbdfuse.js';
import { cliJson, startServe, stopAllServes, type ServeProcess } from '../helpers/serve-process.js';
import { MiB, killChildren, missing, pattern, run, runOk, sha256, sha256File } from './nbd-harness.js';

const FS_SIZE = 64 * MiB;
const skipTools = missing('mke2fs', 'e2fsck', 'debugfs', 'nbdcopy');
const fuseReason = missing('nbdfuse', 'fusermount3') ?? (existsSync('/dev/fuse') ? undefined : '/dev/fuse does not exist');
// LUNRIG_EXT4_ROUTE=nbdcopy forces the fallback route (to check it where FUSE works).
const route: 'nbdfuse' | 'nbdcopy' = fuseReason || process.env.LUNRIG_EXT4_ROUTE === 'nbdcopy' ? 'nbdcopy' : 'nbdfuse';
if (skipTools) console.warn(`flashcopy-ext4: ${skipTools}`);
else if (fuseReason) console.warn(`flashcopy-ext4: ${fuseReason}; using the nbdcopy route`);

let s: ServeProcess;
let work: string;

beforeAll(async () => {
  if (skipTools) return;
  s = await startServe();
  work = path.dirname(s.socket);
});

afterAll(async () => {
  await unmountLeftover();
  killChildren();
  await stopAllServes();
});

describe.skipIf(skipTools)(`FlashCopy of an ext4 LUN (${route})`, () => {
  it('FC-01, FC-11 with a filesystem: after NOCOPY FlashCopy and rounds of writes and deletes on the source, the target is e2fsck-clean and holds exactly the T0 files', { timeout: 120_000 }, async () => {
    const seed = testSeed('flashcopy-ext4');
    const random = seededRandom(seed);
    await cliJson(s, ['lun', 'create', 'fsrc', '--size', String(FS_SIZE)]);
    await cliJson(s, ['lun', 'create', 'ftgt', '--size', String(FS_SIZE)]);

    // T0 content: a tree of seeded files, put into a fresh ext4 on the source LUN.
    const t0 = await makeTree(path.join(work, 't0'), 'f', 14, seed, random);
    await withDisk('fsrc', 'rw', (disk) => runOk('mke2fs', ['-q', '-F', '-t', 'ext4', '-d', path.join(work, 't0'), disk], { timeoutMs: 60_000 }));

    // The host has unmounted (nbdfuse gone): establish NOCOPY.
    const rel = await cliJson<{ mode: string; state: string }>(s, ['flashcopy', 'establish', 'fsrc', 'ftgt', '--nocopy']);
    expect(rel).toMatchObject({ mode: 'nocopy', state: 'copy-on-write' });

    // The source lives on: three rounds of new files, deletions of T0 files, a new directory.
    const t0Names = [...t0.keys()];
    const deleted = new Set<string>();
    const added = new Map<string, string>();
    for (let round = 0; round < 3; round++) {
      const local = path.join(work, `round${round}`);
      const fresh = await makeTree(local, `r${round}-`, 5, seed + 100 * (round + 1), random);
      const commands = [`mkdir /new${round}`];
      for (const rel of fresh.keys()) commands.push(`write ${path.join(local, rel)} /new${round}/${path.basename(rel)}`);
      for (let i = 0; i < 2; i++) {
        const victim = t0Names[Math.floor(random() * t0Names.length)]!;
        if (deleted.has(victim)) continue;
        deleted.add(victim);
        commands.push(`rm /${victim}`);
      }
      const cmdFile = path.join(work, `round${round}.cmds`);
      await writeFile(cmdFile, `${commands.join('\n')}\n`);
      await withDisk('fsrc', 'rw', (disk) => runOk('debugfs', ['-w', '-f', cmdFile, disk]));
      for (const [rel, hash] of fresh) added.set(`new${round}/${path.basename(rel)}`, hash);
    }
    const q = await cliJson<{ remainingGrains: number; relationships: Array<{ progress: { grains: number } }> }>(s, ['flashcopy', 'query', 'fsrc']);
    expect(q.remainingGrains).toBeLessThan(q.relationships[0]!.progress.grains); // copy-on-write happened

    // The source has moved on and is itself consistent.
    await withDisk('fsrc', 'ro', async (disk) => {
      await expectClean(disk, 'source');
      for (const [rel, hash] of added) expect(await dump(disk, rel, 'source'), `source /${rel}`).toBe(hash);
      for (const rel of deleted) expect(await exists(disk, rel), `source /${rel} deleted`).toBe(false);
    });

    // The target is the T0 filesystem: clean, every T0 file intact (deleted ones too), nothing later.
    await withDisk('ftgt', 'ro', async (disk) => {
      await expectClean(disk, 'target');
      for (const [rel, hash] of t0) expect(await dump(disk, rel, 'target'), `target /${rel}`).toBe(hash);
      for (const rel of added.keys()) expect(await exists(disk, rel), `target /${rel}`).toBe(false);
      for (let round = 0; round < 3; round++) expect(await exists(disk, `new${round}`), `target /new${round}`).toBe(false);
    });
    await cliJson(s, ['flashcopy', 'withdraw', 'fsrc']);
  });
});

/** `count` seeded files (empty to a few MiB, unaligned sizes) under `root`; relative path -> sha256. */
async function makeTree(root: string, prefix: string, count: number, seed: number, random: () => number): Promise<Map<string, string>> {
  const sizes = [0, 1, 4095, 4096, 70_001, 300_000, 1_048_576, 2 * MiB + 17];
  const files = new Map<string, string>();
  for (let i = 0; i < count; i++) {
    const rel = path.join(`d${i % 3}`, `${prefix}${i}.bin`);
    const size = sizes[Math.floor(random() * sizes.length)]! + (i % 2) * Math.floor(random() * 5000);
    const data = pattern(size, seed + i + 1);
    await mkdir(path.dirname(path.join(root, rel)), { recursive: true });
    await writeFile(path.join(root, rel), data);
    files.set(rel, sha256(data));
  }
  return files;
}

async function expectClean(disk: string, label: string): Promise<void> {
  const fsck = await run('e2fsck', ['-fn', disk], { timeoutMs: 60_000 });
  expect(fsck.code, `e2fsck -fn (${label}): ${fsck.stdout}${fsck.stderr}`).toBe(0);
}

let dumps = 0;
async function dump(disk: string, rel: string, label: string): Promise<string> {
  const out = path.join(work, `dump-${label}-${dumps++}.bin`);
  await runOk('debugfs', ['-R', `dump /${rel} ${out}`, disk]);
  if (!existsSync(out)) return `missing: ${rel}`;
  const hash = await sha256File(out);
  await rm(out);
  return hash;
}

async function exists(disk: string, rel: string): Promise<boolean> {
  const r = await runOk('debugfs', ['-R', `stat /${rel}`, disk]);
  return !/File not found/.test(r.stderr + r.stdout);
}

/**
 * Give `fn` a path whose reads and writes reach the export: DIR/nbd of an
 * nbdfuse mount (read-only for 'ro'), or an image copied out with nbdcopy
 * (and, for 'rw', copied back in and flushed afterwards).
 */
async function withDisk<T>(exportName: string, mode: 'ro' | 'rw', fn: (disk: string) => Promise<T>): Promise<T> {
  if (route === 'nbdcopy') {
    const image = path.join(work, `${exportName}.img`);
    await runOk('nbdcopy', [s.uri(exportName), image]);
    try {
      const result = await fn(image);
      if (mode === 'rw') await runOk('nbdcopy', ['--flush', image, s.uri(exportName)]);
      return result;
    } finally {
      await rm(image, { force: true });
    }
  }
  const mnt = path.join(work, `mnt-${exportName}`);
  await mkdir(mnt, { recursive: true });
  const fuse = await mountNbdfuse(mnt, s.uri(exportName), FS_SIZE, { readOnly: mode === 'ro' });
  try {
    return await fn(path.join(mnt, 'nbd'));
  } finally {
    await unmountNbdfuse(fuse);
  }
}

