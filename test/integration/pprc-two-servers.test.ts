/**
 * PPRC between two `lunrig serve` processes on loopback (spec/copy-services.md
 * §3): the primary mirrors to a RemoteSecondaryEss (HTTP control + one NBD
 * link connection per physical link), everything set up through the CLI.
 *
 *   1. ESS, links, path and pair through `lunrig pprc ...`; mke2fs -d (seeded
 *      files) makes an ext4 filesystem on the primary through nbdfuse.
 *   2. PP-07 over NBD: the bound secondary's host export answers INFO
 *      (nbdinfo: size, identity) but READ and WRITE fail with EPERM (qemu-io);
 *      the hidden link exports are not listed.
 *   3. One link cut: still DUPLEX, the other link carries the writes (PP-20).
 *      fio (nbd engine, crc32c verify) writes the primary while the last link
 *      is cut (PP-21: suspend, writes recorded), restored and resynced, and
 *      the secondary server is kill -9ed and restarted on the same ports.
 *      The restarted secondary notices its primary is not talking to it and
 *      marks the pair suspended (heartbeat, X6).
 *   4. Resync to DUPLEX, audit clean, terminate (PP-29): the secondary export
 *      equals the primary byte for byte and, through nbdfuse, is an ext4
 *      filesystem e2fsck -fn passes with every file intact.
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { mountNbdfuse, unmountLeftover, unmountNbdfuse } from '../helpers/nbdfuse.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ControlClient } from '../../src/control/client.js';
import { PprcClient } from '../../src/control/pprc-client.js';
import { cliJson, startServe, stopAllServes, type ServeProcess } from '../helpers/serve-process.js';
import { MiB, killChildren, missing, pattern, run, runOk, sha256, sha256File } from './nbd-harness.js';

const LUN_SIZE = 64 * MiB;
const FS_SIZE = 32 * MiB;
const HEARTBEAT_MS = 1500;

const skip =
  missing('fio', 'nbdinfo', 'qemu-io', 'nbdcopy', 'nbdfuse', 'fusermount3', 'mke2fs', 'e2fsck', 'debugfs') ?? (existsSync('/dev/fuse') ? undefined : 'skipped: /dev/fuse does not exist');
if (skip) console.warn(`pprc-two-servers: ${skip}`);

let primary: ServeProcess;
let secondary: ServeProcess;
let work: string;
const files = new Map<string, string>();

type Query = { role: string; state: string; suspended: boolean; oosTracks: number; totalTracks: number; suspendReason?: string };

const pprc = <T>(s: ServeProcess, args: string[]) => cliJson<T>(s, ['pprc', ...args]);
/** Queries and polls go over HTTP (a CLI run per poll costs a Node start); the operations a rig script does go through the CLI. */
const api = (s: ServeProcess) => new PprcClient(new ControlClient(s.url));
const query = (s: ServeProcess, volume: string) => api(s).query(volume) as Promise<Query>;

beforeAll(async () => {
  if (skip) return;
  [secondary, primary] = await Promise.all([
    startServe({ args: ['--serial', 'SECD2', '--pprc-heartbeat', String(HEARTBEAT_MS)] }),
    // A write whose mirror fails completes and is recorded (§7 item 3), so fio sees no errors while the test breaks things.
    startServe({ args: ['--serial', 'PRIM1', '--pprc-ack-timeout', '3000', '--pprc-on-fail', 'suspend-and-complete'] }),
  ]);
  work = path.dirname(primary.socket);
}, 90_000);

afterAll(async () => {
  await unmountLeftover();
  killChildren();
  await stopAllServes();
});

describe.skipIf(skip)(`PPRC between two lunrig servers${skip ? ` (${skip})` : ''}`, () => {
  it('§3.2/§3.3: ESS, links, path and pair through the CLI; an ext4 filesystem written to the primary over NBD is mirrored (PP-06, PP-08)', { timeout: 60_000 }, async () => {
    await cliJson(primary, ['lun', 'create', 'db', '--size', String(LUN_SIZE), '--lss', '10']);
    await cliJson(secondary, ['lun', 'create', 'dbr', '--size', String(LUN_SIZE), '--lss', '11']);
    const nbdPort = secondary.tcp!.port;
    const ess = await pprc<{ serial: string }>(primary, ['ess', 'add', secondary.url, `127.0.0.1:${nbdPort}`, '--serial', 'SECD2']);
    expect(ess.serial).toBe('SECD2');
    await pprc(primary, ['link', 'add', '--to', 'SECD2', '--id', 'l1']);
    await api(primary).addLink({ to: 'SECD2', id: 'l2' });
    const pathResult = await pprc<{ notExecuted: boolean }>(primary, ['path', 'establish', '10', 'SECD2', '11', '--links', 'l1', 'l2']);
    expect(pathResult.notExecuted).toBe(false);
    // PP-03: establishing it again with --skip is "not executed".
    expect((await api(primary).establishPath({ lss: '10', to: 'SECD2', targetLss: '11', links: ['l1'], ifExists: 'skip' }))['notExecuted']).toBe(true);

    const q = await pprc<Query>(primary, ['establish', 'db', 'dbr', '--ess', 'SECD2', '--mode', 'copy-entire', '--wait']);
    expect(q).toMatchObject({ role: 'source', state: 'DUPLEX', suspended: false, oosTracks: 0 });
    expect((await query(secondary, 'dbr')).role).toBe('target');

    // The filesystem goes onto the primary over NBD (nbdfuse: mke2fs's discards and writes are NBD requests) while the pair is DUPLEX.
    await makeSourceTree(path.join(work, 'src'), 0x5eed);
    const mnt = path.join(work, 'mnt-primary');
    await mkdir(mnt, { recursive: true });
    const fuse = await mountNbdfuse(mnt, primary.uri('db'), LUN_SIZE);
    try {
      await runOk('mke2fs', ['-q', '-F', '-t', 'ext4', '-d', path.join(work, 'src'), path.join(mnt, 'nbd'), `${FS_SIZE / 1024}k`], { timeoutMs: 30_000 });
    } finally {
      await unmountNbdfuse(fuse);
    }
    const audit = await api(primary).audit('db');
    expect(audit.differing).toEqual([]);
  });

  it('PP-07 over NBD: the bound secondary export identifies itself (nbdinfo) but READ and WRITE fail with EPERM (qemu-io); link exports are not listed', { timeout: 30_000 }, async () => {
    const info = await runOk('nbdinfo', ['--json', secondary.uri('dbr')]);
    const exp = (JSON.parse(info.stdout) as { exports: Array<{ 'export-size': number; description?: string }> }).exports[0]!;
    expect(exp['export-size']).toBe(LUN_SIZE);
    expect(exp.description ?? '').toMatch(/SECD2/);
    const read = await run('qemu-io', ['-f', 'raw', '-c', 'read 0 4k', secondary.uri('dbr')]);
    expect(read.stdout + read.stderr).toMatch(/Operation not permitted/);
    const write = await run('qemu-io', ['-f', 'raw', '-c', 'write -P 0x55 0 4k', secondary.uri('dbr')]);
    expect(write.stdout + write.stderr).toMatch(/Operation not permitted/);
    const list = await runOk('nbdinfo', ['--list', '--json', secondary.uri('')]);
    const names = (JSON.parse(list.stdout) as { exports: Array<{ 'export-name': string }> }).exports.map((e) => e['export-name']);
    expect(names).toContain('dbr');
    expect(names.some((n) => n.startsWith('.pprc'))).toBe(false);
  });

  it('PP-20/21, X5, X7, X6: fio with crc32c verify on the primary while the links are cut and restored, the pair resynced and the secondary kill -9ed and restarted', { timeout: 90_000 }, async () => {
    // PP-20: one of two links down, the pair stays DUPLEX and writes go over the other (cut while idle: a request
    // in flight on a link that goes down is lost and its ack times out, PP-26, which suspends the pair).
    await pprc(primary, ['link', 'fault', 'l1', '--down']);
    const before = await api(primary).listLinks();
    await runOk('qemu-io', ['-f', 'raw', '-c', `write -P 0x3c ${LUN_SIZE - 4 * MiB} 1M`, primary.uri('db')]);
    expect((await query(primary, 'db')).state).toBe('DUPLEX');
    const after = await api(primary).listLinks();
    const carried = (links: typeof before, id: string) => Number(links.find((l) => l['id'] === id)?.['bytes'] ?? 0);
    expect(carried(after, 'l1')).toBe(carried(before, 'l1'));
    expect(carried(after, 'l2')).toBeGreaterThanOrEqual(carried(before, 'l2') + MiB);

    let fioChild: ChildProcess | undefined;
    const fio = run(
      'fio',
      [
        '--name=pprc',
        '--ioengine=nbd',
        `--uri=${primary.tcpUri('db')}`,
        '--rw=randwrite',
        '--bs=4k',
        '--iodepth=8',
        `--offset=${FS_SIZE}`,
        `--size=${LUN_SIZE - FS_SIZE - 8 * MiB}`,
        '--rate_iops=500',
        '--verify=crc32c',
        '--do_verify=1',
        '--verify_fatal=1',
        '--verify_state_save=0',
      ],
      { timeoutMs: 80_000, onSpawn: (child) => (fioChild = child) },
    );
    try {
      await sleep(1000);
      // The last link goes down under load: the pair suspends (its in-flight write times out, or no path is left)
      // and the writes go on, recorded (PP-21, PP-26 with --pprc-on-fail suspend-and-complete).
      await pprc(primary, ['link', 'fault', 'l2', '--down']);
      const suspended = await waitForQuery(primary, 'db', (q) => q.suspended);
      expect(suspended.suspendReason).toMatch(/paths-lost|ack-timeout/);
      // fio's writes go on, recorded (on a loaded machine fio may only be starting).
      await waitForQuery(primary, 'db', (q) => q.oosTracks > 0);
      // Links back: no automatic resume (X11); an explicit resync (X7).
      await api(primary).clearLinkFault('l1');
      await pprc(primary, ['link', 'fault', 'l2', '--up']);
      await sleep(300);
      expect((await query(primary, 'db')).suspended).toBe(true);
      await pprc(primary, ['resume', 'db']);
      await sleep(800);
      // The secondary ESS dies (kill -9) with the mirror running, and comes back on the same ports.
      const ports = ['--control', new URL(secondary.url).host, '--nbd', `127.0.0.1:${secondary.tcp!.port}`];
      await secondary.stop('SIGKILL');
      await waitForQuery(primary, 'db', (q) => q.suspended);
      await sleep(500);
      secondary = await startServe({ dataDir: secondary.dataDir, args: ['--pprc-heartbeat', String(HEARTBEAT_MS), ...ports] });
      // The restarted secondary's primary does not write to it (the pair is suspended there): after the heartbeat timeout it says so (X6).
      const seen = await waitForQuery(secondary, 'dbr', (q) => q.suspended, 10_000);
      expect(seen.role).toBe('target');
    } catch (err) {
      // Do not leave fio writing into the next test.
      if (fioChild?.pid !== undefined && fioChild.exitCode === null) process.kill(fioChild.pid, 'SIGKILL');
      throw err;
    }
    const r = await fio;
    expect(r.code, `fio: ${r.stdout}${r.stderr}`).toBe(0);
    expect(r.stdout).toMatch(/err= 0/);
    expect(r.stdout + r.stderr).not.toMatch(/verify: bad/);
  });

  it('X7 then PP-29: resync to DUPLEX, audit clean, terminate; the secondary equals the primary and is a clean ext4 filesystem through nbdfuse', { timeout: 60_000 }, async () => {
    const q = await pprc<Query>(primary, ['resume', 'db', '--wait']);
    expect(q).toMatchObject({ state: 'DUPLEX', suspended: false, oosTracks: 0 });
    expect((await query(secondary, 'dbr')).suspended).toBe(false);
    expect((await pprc<{ differing: number[] }>(primary, ['audit', 'db'])).differing).toEqual([]);
    await pprc(primary, ['terminate', 'db']);
    expect((await query(primary, 'db')).role).toBe('simplex');
    expect((await query(secondary, 'dbr')).role).toBe('simplex');

    // Byte for byte: both whole LUNs, copied out over NBD.
    const [p, s] = [path.join(work, 'p.img'), path.join(work, 's.img')];
    await Promise.all([runOk('nbdcopy', [primary.uri('db'), p]), runOk('nbdcopy', [secondary.uri('dbr'), s])]);
    expect(await sha256File(s)).toBe(await sha256File(p));

    const mnt = path.join(work, 'mnt');
    await mkdir(mnt, { recursive: true });
    const fuse = await mountNbdfuse(mnt, secondary.uri('dbr'), LUN_SIZE);
    try {
      const disk = path.join(mnt, 'nbd');
      const fsck = await run('e2fsck', ['-fn', disk]);
      expect(fsck.code, `e2fsck: ${fsck.stdout}${fsck.stderr}`).toBe(0);
      const out = path.join(work, 'dump');
      await mkdir(out, { recursive: true });
      let n = 0;
      for (const [rel, hash] of files) {
        const target = path.join(out, `${n++}.bin`);
        await runOk('debugfs', ['-R', `dump /${rel} ${target}`, disk]);
        expect(await sha256File(target), rel).toBe(hash);
      }
    } finally {
      await unmountNbdfuse(fuse);
    }
  });
});

async function waitForQuery(s: ServeProcess, volume: string, done: (q: Query) => boolean, ms = 15_000): Promise<Query> {
  const end = Date.now() + ms;
  for (;;) {
    const q = await query(s, volume).catch(() => undefined);
    if (q && done(q)) return q;
    if (Date.now() > end) throw new Error(`${volume} on ${s.url}: condition not met, last ${JSON.stringify(q)}`);
    await sleep(150);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

async function makeSourceTree(root: string, seed: number): Promise<void> {
  const sizes = [0, 1, 4096, 65_537, 300_000, 1_048_576, 2 * MiB + 123];
  for (let i = 0; i < 14; i++) {
    const rel = path.join(`d${i % 3}`, `file-${i}.bin`);
    const data = pattern(sizes[i % sizes.length]!, seed + i + 1);
    await mkdir(path.dirname(path.join(root, rel)), { recursive: true });
    await writeFile(path.join(root, rel), data);
    files.set(rel, sha256(data));
  }
}

