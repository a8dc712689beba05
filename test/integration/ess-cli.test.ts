/**
 * The ESS Copy Services CLI shim and `lunrig task` against a real `lunrig serve`
 * (spec §4.2, §4.4, §7 item 14): CP-01 output, CP-04 return codes, FC-15 as rc 80,
 * FC-20 with a real NBD client holding the target, FC-23 over the CLI,
 * rsQueryComplete waiting on background copy, PP-36 / PP-37 with a PPRC
 * establish task between two LSSs of the server.
 */
import { writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ControlClient } from '../../src/control/client.js';
import { PprcClient } from '../../src/control/pprc-client.js';
import { NbdClient } from '../../src/nbd/client.js';
import { runLunrig, startServe, stopAllServes, type ServeProcess } from '../helpers/serve-process.js';
import { tempDirs } from '../helpers/temp-dir.js';

let server: ServeProcess;
let host: string; // HOST:PORT of the control API, as -s takes it
const temp = tempDirs('lunrig-ess-');

beforeAll(async () => {
  server = await startServe();
  host = new URL(server.url).host;
}, 60_000);

afterAll(async () => {
  await stopAllServes();
  temp.cleanup();
});

const ess = (...args: string[]) => runLunrig(['ess', ...args]);
const task = (...args: string[]) => server.cli(['task', ...args]);

/** A TCP port nobody listens on (bound, then closed). */
async function deadPort(): Promise<string> {
  const s = net.createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return `127.0.0.1:${port}`;
}

function volumeId(name: string): string {
  const lun = server.summary.luns.find((l) => l.name === name);
  if (!lun) throw new Error(`no LUN ${name}`);
  return lun.volumeId;
}

describe('ESS CLI shim', () => {
  it('CP-04: return codes 3 (no -s), 4 (no tasks), 40/41/42 (server, primary, primary and backup down), 1/2 (credentials); rsTestConnection prints the HeartBeat line', async () => {
    const dead = await deadPort();
    expect((await ess('rsExecuteTask', 'fc1')).code).toBe(3);
    expect((await ess('rsExecuteTask', '-s')).code).toBe(3);
    expect((await ess('rsExecuteTask', '-s', host)).code).toBe(4);
    expect((await ess('rsTestConnection', '-s', dead)).code).toBe(40);
    expect((await ess('rsExecuteTask', '-s', dead, 'fc1')).code).toBe(41);
    expect((await ess('rsExecuteTask', '-s', dead, '-b', dead, 'fc1')).code).toBe(42);
    expect((await ess('rsExecuteTask', '-u', 'storwatch', '-s', host, 'fc1')).code).toBe(2);
    expect((await ess('rsExecuteTask', '-p', 'specialist', '-s', host, 'fc1')).code).toBe(1);
    const ok = await ess('rsTestConnection.sh', '-v', '-s', host);
    expect(ok.code).toBe(0);
    expect(ok.stdout.split('\n')).toContain('rsWebTest: HeartBeat to the server was successful.');
    // A dead primary with a live backup: the backup runs it (CP-06's -b path); an unknown task is a failed command.
    const viaBackup = await ess('rsExecuteTask', '-v', '-s', dead, '-b', host, 'nosuchtask');
    expect(viaBackup.code).toBe(80);
    expect(viaBackup.stderr).toContain('TASK_NOT_FOUND');
    expect(viaBackup.stdout).toContain(`rsClientImpl: Successfully connected to Name Server, port = ${new URL(server.url).port}`);
    expect(viaBackup.stdout).toMatch(/^Server identity = IBM2105 Copy Services\/1\.1\.0 /m);
  });

  it('CP-01, FC-15: a task across LSSs fails with rc 80 (FC_DIFFERENT_LSS) and rsQuery shows both volumes unchanged; a same-LSS task runs (rc 0) and rsQuery shows source/target', async () => {
    expect((await task('flashcopy', 'cross', 'lun0:lun2')).code).toBe(0);
    const refused = await ess('rsExecuteTask', '-s', host, 'cross');
    expect(refused.code).toBe(80);
    expect(refused.stderr).toContain('FC_DIFFERENT_LSS');
    const serial = server.summary.pool.serial;
    const q0 = await ess('rsQuery', '-q', volumeId('lun0'), '-s', host);
    expect(q0.code).toBe(0);
    expect(q0.stdout.trim().split('\n')).toEqual([`Volume ${volumeId('lun0')} found on ${serial}:10 as volume number 000`, 'State=simplex, status=not_suspended, FlashCopy_state=none, Size=1.0_GB']);
    expect((await ess('rsQuery', '-q', volumeId('lun2'), '-s', host)).stdout).toContain('FlashCopy_state=none');

    expect((await task('flashcopy', 'fcsnap', 'lun0:lun1', '--nocopy')).code).toBe(0);
    const run = await ess('rsExecuteTask.sh', '-s', host, 'fcsnap');
    expect(run).toMatchObject({ code: 0, stdout: 'rsExecuteTask: task fcsnap completed successfully\n' });
    const file = path.join(temp.make(), 'volumes');
    writeFileSync(file, `${volumeId('lun0')} ${volumeId('lun1')}\n`);
    const q = await ess('rsQuery', '-f', file, '-s', host);
    expect(q.code).toBe(0);
    expect(q.stdout.trim().split('\n')).toEqual([
      `Volume ${volumeId('lun0')} found on ${serial}:10 as volume number 000`,
      'State=simplex, status=not_suspended, FlashCopy_state=source, Size=1.0_GB',
      `Volume ${volumeId('lun1')} found on ${serial}:10 as volume number 001`,
      'State=simplex, status=not_suspended, FlashCopy_state=target, Size=1.0_GB',
    ]);
    // rsQueryComplete on a NOCOPY task: nothing copies in the background, "not running" -> 80.
    expect((await ess('rsQueryComplete', '-s', host, 'fcsnap')).code).toBe(80);
    expect((await task('withdraw', 'fcwd', 'lun1')).code).toBe(0);
    expect((await ess('rsExecuteTask', '-s', host, 'fcwd')).code).toBe(0);
    expect((await ess('rsQuery', '-q', volumeId('lun0'), '-s', host)).stdout).toContain('FlashCopy_state=none');
    // Withdrawing again: FX7, FC_NO_RELATIONSHIP -> rc 80.
    expect((await ess('rsExecuteTask', '-s', host, 'fcwd')).code).toBe(80);
    const log = await task('log', 'fcwd');
    expect(log.stdout).toMatch(/fcwd: succeeded/);
    expect(log.stdout).toMatch(/fcwd: failed .*FC_NO_RELATIONSHIP/);
  });

  it('§7 item 14: rsQuery needs exactly one of -q and -f (14, 15); a missing file is 17, an empty one 18, three volumes on a line 16, unknown volumes 13', async () => {
    const dir = temp.make();
    const empty = path.join(dir, 'empty');
    const three = path.join(dir, 'three');
    writeFileSync(empty, '\n\n');
    writeFileSync(three, `${volumeId('lun0')} ${volumeId('lun1')} ${volumeId('lun2')}\n`);
    expect((await ess('rsQuery', '-s', host)).code).toBe(14);
    expect((await ess('rsQuery', '-q', volumeId('lun0'), '-f', three, '-s', host)).code).toBe(15);
    expect((await ess('rsQuery', '-f', path.join(dir, 'missing'), '-s', host)).code).toBe(17);
    expect((await ess('rsQuery', '-f', empty, '-s', host)).code).toBe(18);
    expect((await ess('rsQuery', '-f', three, '-s', host)).code).toBe(16);
    expect((await ess('rsQuery', '-q', '0FFFFFFF', '-s', host)).code).toBe(13);
    expect((await ess('rsQuery', '-q', volumeId('lun0'), '-s')).code).toBe(3);
    expect((await ess('rsQuery', '-q', '-s', host)).code).toBe(10);
  });

  it('rsList2105s lists every volume with its 8-character serial; an unknown command and missing -m/-t values have their codes', async () => {
    const list = await ess('rsList2105s', host);
    expect(list.code).toBe(0);
    const lines = list.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^disk name\s+2105 serial number$/);
    expect(lines[1]).toBe('-----');
    for (const name of ['lun0', 'lun1', 'lun2', 'lun3']) expect(lines).toContainEqual(expect.stringMatching(new RegExp(`^${name}\\s+${volumeId(name)}$`)));
    expect((await ess('rsQueryComplete', '-s', host, '-m')).code).toBe(11);
    expect((await ess('rsQueryComplete', '-s', host, '-t')).code).toBe(12);
    expect((await ess('rsQueryComplete', '-s', host)).code).toBe(4);
  });

  it('rsQueryComplete waits on a COPY task’s background copy: running while paused, rc 0 once it completes; rc 80 once completed', async () => {
    const control = new ControlClient(server.url);
    await control.createLun({ name: 'c0', size: '8M', lss: 0x11 });
    await control.createLun({ name: 'c1', size: '8M', lss: 0x11 });
    expect((await task('flashcopy', 'fccopy', 'c0:c1', '--rate', '0')).code).toBe(0);
    expect((await ess('rsExecuteTask', '-s', host, 'fccopy')).code).toBe(0);
    // Threshold 0: complete at once, while the copy is paused.
    const zero = await ess('rsQueryComplete', '-m', '0.001', '-t', '0', '-s', host, 'fccopy');
    expect(zero).toMatchObject({ code: 0 });
    expect(zero.stdout).toContain('rsQueryComplete: task fccopy 0% complete');
    // Default threshold 100%, checking every 60 ms: it waits until the copy runs and ends.
    const waiting = ess('rsQueryComplete', '-m', '0.001', '-s', host, 'fccopy');
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect((await server.cli(['flashcopy', 'rate', 'c0', 'unlimited'])).code).toBe(0);
    const done = await waiting;
    expect(done.code).toBe(0);
    expect(done.stdout).toContain('rsQueryComplete: task fccopy 100% complete');
    expect((await ess('rsQueryComplete', '-m', '0.001', '-s', host, 'fccopy')).code).toBe(80);
  });

  it('PP-37, PP-36 over the CLI: a COPY_ENTIRE PPRC task between two LSSs of this server returns rc 0 while DUPLEX_PENDING; rsQueryComplete waits for DUPLEX (rc 0), then 80', async () => {
    const control = new ControlClient(server.url);
    const pprc = new PprcClient(control);
    const m0 = await control.createLun({ name: 'm0', size: '32M', lss: 0x10 });
    const m1 = await control.createLun({ name: 'm1', size: '32M', lss: 0x11 });
    const serial = server.summary.pool.serial;
    // A link from this ESS to itself at 4 MiB/s: the 32 MiB copy takes about 8 s.
    expect((await server.cli(['pprc', 'link', 'add', '--to', serial, '--id', 'self1'])).code).toBe(0);
    expect((await server.cli(['pprc', 'link', 'fault', 'self1', '--bandwidth', '4M'])).code).toBe(0);
    expect((await task('pprc-path', 'pp_path', '10', serial, '11', '--links', 'self1', '--skip')).code).toBe(0);
    const saved = await task('pprc-establish', 'pp_est', '--pair', 'm0:m1', '--mode', 'COPY_ENTIRE');
    expect(saved).toMatchObject({ code: 0, stdout: 'saved task pp_est: PPRC COPY_ENTIRE m0->m1\n' });
    // Nothing is copying before it ran: 80.
    expect((await ess('rsQueryComplete', '-m', '0.001', '-s', host, 'pp_est')).code).toBe(80);

    const run = await ess('rsExecuteTask', '-s', host, 'pp_path', 'pp_est');
    expect(run).toMatchObject({ code: 0, stdout: 'rsExecuteTask: task pp_path completed successfully\nrsExecuteTask: task pp_est completed successfully\n' });
    // PP-37: established, and still DUPLEX_PENDING.
    const pending = (await pprc.query('m0')) as { role: string; state: string; oosTracks: number };
    expect(pending).toMatchObject({ role: 'source', state: 'DUPLEX_PENDING' });
    expect(pending.oosTracks).toBeGreaterThan(0);
    const q0 = await ess('rsQuery', '-q', m0.volumeId, '-s', host);
    expect(q0.code).toBe(0);
    expect(q0.stdout.trim().split('\n')[1]).toMatch(/^State=source, status=not_suspended, FlashCopy_state=none, /);
    const q1 = await ess('rsQuery', '-q', m1.volumeId, '-s', host);
    expect(q1.stdout.trim().split('\n')[1]).toMatch(/^State=target, status=not_suspended, FlashCopy_state=none, /);

    // PP-36: rsQueryComplete (threshold 100 %) waits, checking every 60 ms, until the pair is DUPLEX.
    const done = await ess('rsQueryComplete', '-m', '0.001', '-s', host, 'pp_est');
    expect(done.code).toBe(0);
    const lines = done.stdout.trim().split('\n');
    expect(lines.length).toBeGreaterThan(1);
    expect(lines[0]).toMatch(/^rsQueryComplete: task pp_est ([0-9]|[1-9][0-9])(\.[0-9]+)?% complete$/);
    expect(lines.at(-1)).toBe('rsQueryComplete: task pp_est 100% complete');
    expect(await pprc.query('m0')).toMatchObject({ role: 'source', state: 'DUPLEX', oosTracks: 0 });
    // Already completed: 80.
    const after = await ess('rsQueryComplete', '-m', '0.001', '-s', host, 'pp_est');
    expect(after.code).toBe(80);
    expect(after.stderr).toContain('rsQueryComplete: task pp_est is not running or has already completed');
    // The pair's path task again: "do not establish paths if they already exist" is success, not executed.
    expect((await ess('rsExecuteTask', '-s', host, 'pp_path')).code).toBe(0);
    // Suspend scheduled with the target storage server (here the same one), then freeze / release of LSS 10.
    expect((await task('pprc-suspend', 'pp_sus', '--pair', 'm0:m1', '--from', 'target')).stdout).toBe('saved task pp_sus: PPRC suspend (scheduled with the target storage server) m0->m1\n');
    expect((await task('pprc-freeze', 'pp_frz', '10')).stdout).toBe('saved task pp_frz: PPRC freeze LSS 10\n');
    expect((await task('pprc-release', 'pp_rel', '10')).code).toBe(0);
    const badPair = await task('pprc-establish', 'pp_bad', '--pair', 'm0');
    expect(badPair.code).toBe(1);
    expect(badPair.stderr).toContain('INVALID_ARGUMENT');
    expect((await ess('rsExecuteTask', '-s', host, 'pp_sus', 'pp_frz', 'pp_rel')).code).toBe(0);
    expect((await ess('rsQuery', '-q', m0.volumeId, '-s', host)).stdout).toContain('State=source, status=suspended');
    expect((await ess('rsQuery', '-q', m1.volumeId, '-s', host)).stdout).toContain('State=target, status=suspended');
    // End the pair through a terminate task: both volumes simplex.
    expect((await task('pprc-terminate', 'pp_term', '--pair', 'm0:m1')).code).toBe(0);
    expect((await ess('rsExecuteTask', '-s', host, 'pp_term')).code).toBe(0);
    expect((await ess('rsQuery', '-q', m1.volumeId, '-s', host)).stdout).toContain('State=simplex, status=not_suspended');
    expect((await ess('rsQuery', '-q', m0.volumeId, '-s', host)).stdout).toContain('State=simplex, status=not_suspended');
  });

  it('FC-23 over the CLI: a group into a group is TASK_GROUP_NESTED; a grouped task cannot be changed until ungrouped; a group runs through rsExecuteTask', async () => {
    expect((await task('flashcopy', 'g_a', 'lun2:lun3', '--nocopy')).code).toBe(0);
    expect((await task('group', 'grp1', 'g_a')).code).toBe(0);
    expect((await task('group', 'grp2')).code).toBe(0);
    const nested = await task('add', 'grp2', 'grp1');
    expect(nested.code).toBe(1);
    expect(nested.stderr).toContain('TASK_GROUP_NESTED');
    const changed = await task('update', 'g_a', '--description', 'nightly');
    expect(changed.code).toBe(1);
    expect(changed.stderr).toContain('TASK_IN_GROUP');
    expect((await task('ungroup', 'grp1', 'g_a')).code).toBe(0);
    expect((await task('update', 'g_a', '--description', 'nightly')).code).toBe(0);
    expect((await task('add', 'grp1', 'g_a')).code).toBe(0);
    expect((await ess('rsExecuteTask', '-s', host, 'grp1')).code).toBe(0);
    expect((await ess('rsQuery', '-q', volumeId('lun3'), '-s', host)).stdout).toContain('FlashCopy_state=target');
    const shown = await task('show', 'grp1');
    expect(shown.stdout).toMatch(/last run:\s+x\d+ grp1: succeeded/);
    expect((await task('create', 'long_name_17_chr', 'flashcopy.withdraw', '--params', '{"volumes":["lun3"]}')).code).toBe(0);
    const tooLong = await task('create', 'long_name_17_char', 'flashcopy.withdraw', '--params', '{"volumes":["lun3"]}');
    expect(tooLong.code).toBe(1);
    expect((await ess('rsExecuteTask', '-s', host, 'long_name_17_chr')).code).toBe(0);
  });

  it('FC-20: while a real NBD client holds the target export open, or a host holds a reservation on it, an establish is refused FC_TARGET_ONLINE (rc 80); with permit-if-target-online it runs', async () => {
    expect((await task('flashcopy', 'online', 'lun0:lun1', '--nocopy')).code).toBe(0);
    expect((await task('flashcopy', 'online_ok', 'lun0:lun1', '--nocopy', '--permit-if-target-online')).code).toBe(0);
    const host1 = await NbdClient.connect({ path: server.socket }, { exportName: 'lun1' });
    try {
      const refused = await ess('rsExecuteTask', '-s', host, 'online');
      expect(refused.code).toBe(80);
      expect(refused.stderr).toContain('FC_TARGET_ONLINE');
      expect((await ess('rsExecuteTask', '-s', host, 'online_ok')).code).toBe(0);
      expect((await ess('rsQuery', '-q', volumeId('lun1'), '-s', host)).stdout).toContain('FlashCopy_state=target');
    } finally {
      await host1.close();
    }
    expect((await server.cli(['flashcopy', 'withdraw', 'lun1'])).code).toBe(0);
    // Closed: the target is offline again, the plain task runs.
    expect((await ess('rsExecuteTask', '-s', host, 'online')).code).toBe(0);
    expect((await server.cli(['flashcopy', 'withdraw', 'lun1'])).code).toBe(0);
    // The other half of "online": a host holding a reservation on the target (last test: a host turns masking on).
    const control = new ControlClient(server.url);
    await control.request('POST', '/v1/hosts', { name: 'h1', luns: ['lun1'] });
    await control.request('POST', '/v1/luns/lun1/reservations', { command: 'reserve', host: 'h1' });
    const reserved = await ess('rsExecuteTask', '-s', host, 'online');
    expect(reserved.code).toBe(80);
    expect(reserved.stderr).toContain('FC_TARGET_ONLINE');
    await control.request('POST', '/v1/luns/lun1/reservations', { command: 'release', host: 'h1' });
    expect((await ess('rsExecuteTask', '-s', host, 'online')).code).toBe(0);
    expect((await server.cli(['flashcopy', 'withdraw', 'lun1'])).code).toBe(0);
  });
});
