/**
 * The Linux kernel's NBD client against a real `lunrig serve`: nbd-client
 * attaches a LUN as /dev/nbd0 (GO with no info requests, simple replies,
 * READ/WRITE/FLUSH/TRIM; spec/nbd.md §3), mkfs.ext4 formats it, it is
 * mounted, files are written, it is unmounted and detached, and the files are
 * verified from a copy of the LUN taken with nbdcopy.
 *
 * Needs root, the nbd module (`modprobe nbd` creates /dev/nbd0) and nbd-client;
 * skipped with the reason otherwise, as nbdkit's test-nbd-client.sh is.
 */
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { seededRandom, testSeed } from '../helpers/seeded-random.js';
import { cliJson, startServe, stopAllServes } from '../helpers/serve-process.js';
import { MiB, killChildren, missing, pattern, run, runOk, sha256, sha256File } from './nbd-harness.js';

const DEVICE = '/dev/nbd0';
const LUN_SIZE = 256 * MiB;

function skipReason(): string | undefined {
  if (process.platform !== 'linux') return 'skipped: the kernel NBD client is Linux only';
  if (process.getuid?.() !== 0) return 'skipped: attaching /dev/nbd0 needs root';
  if (!existsSync(DEVICE)) return `skipped: ${DEVICE} does not exist (modprobe nbd)`;
  const tools = missing('nbd-client', 'mkfs.ext4', 'mount', 'umount', 'e2fsck', 'debugfs', 'nbdcopy');
  if (tools) return tools;
  if (existsSync('/sys/block/nbd0/pid')) return `skipped: ${DEVICE} is in use`;
  return undefined;
}

const skip = skipReason();
if (skip) console.warn(`serve-nbd-kernel: ${skip}`);

let attached = false;
let mountedAt: string | undefined;

afterAll(async () => {
  // Undo whatever a failed test left behind, innermost first.
  if (mountedAt) await run('umount', ['-l', mountedAt]);
  if (attached) await run('nbd-client', ['-d', DEVICE]);
  killChildren();
  await stopAllServes();
});

describe.skipIf(skip)(`Linux nbd-client on ${DEVICE}${skip ? ` (${skip})` : ''}`, () => {
  it('§3: attach a LUN, mkfs.ext4, mount, write files, umount, detach; the LUN holds a clean filesystem with the files', { timeout: 180_000 }, async () => {
    const seed = testSeed('serve-nbd-kernel');
    const random = seededRandom(seed);
    const s = await startServe();
    await cliJson(s, ['lun', 'create', 'kern0', '--size', String(LUN_SIZE)]);
    const work = path.dirname(s.socket);

    // -N: GO for the export named after the LUN; -b 4096: the preferred block size lunrig advertises.
    await runOk('nbd-client', [s.tcp!.host, String(s.tcp!.port), DEVICE, '-N', 'kern0', '-b', '4096']);
    attached = true;
    await waitFor(() => Number(readFileSync('/sys/block/nbd0/size', 'utf8')) * 512 === LUN_SIZE, 'the kernel to size /dev/nbd0');

    await runOk('mkfs.ext4', ['-q', '-F', DEVICE], { timeoutMs: 120_000 });
    const mnt = path.join(work, 'mnt');
    await mkdir(mnt);
    await runOk('mount', [DEVICE, mnt]);
    mountedAt = mnt;
    const files = new Map<string, string>();
    for (let i = 0; i < 16; i++) {
      const data = pattern(Math.floor(random() * 2 * MiB) + (i % 2), seed + i + 1);
      const rel = path.join(`dir${i % 3}`, `file-${i}.bin`);
      await mkdir(path.join(mnt, path.dirname(rel)), { recursive: true });
      await writeFile(path.join(mnt, rel), data);
      files.set(rel, sha256(data));
    }
    await runOk('sync', []);
    await runOk('umount', [mnt]);
    mountedAt = undefined;
    await runOk('nbd-client', ['-d', DEVICE]);
    attached = false;

    const copy = path.join(work, 'kern0.img');
    await runOk('nbdcopy', [s.uri('kern0'), copy], { timeoutMs: 120_000 });
    const fsck = await run('e2fsck', ['-fn', copy]);
    expect(fsck.code, fsck.stdout + fsck.stderr).toBe(0);
    for (const [rel, hash] of files) {
      const out = path.join(work, 'dumped.bin');
      await runOk('debugfs', ['-R', `dump /${rel} ${out}`, copy]);
      expect(await sha256File(out), rel).toBe(hash);
    }
  });
});

async function waitFor(ok: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (ok()) return;
    } catch {
      // not there yet
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
