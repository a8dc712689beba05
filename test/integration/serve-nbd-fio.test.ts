/**
 * fio's nbd engine against a real `lunrig serve`: one probe connection, then
 * one I/O connection per job, READ/WRITE only; every block written is read
 * back and checked with crc32c (spec/nbd.md §3, §9.5).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliJson, startServe, stopAllServes, type ServeProcess } from '../helpers/serve-process.js';
import { killChildren, missing, runOk } from './nbd-harness.js';

const skip = missing('fio');
if (skip) console.warn(`serve-nbd-fio: ${skip}`);

let s: ServeProcess;

beforeAll(async () => {
  s = await startServe();
  await cliJson(s, ['lun', 'create', 'fio0', '--size', '64M']);
});

afterAll(async () => {
  killChildren();
  await stopAllServes();
});

// verify_state_save=0: fio would otherwise drop *-verify.state files into the working directory.
const fio = (uri: string, extra: string[]) =>
  runOk('fio', ['--name=lunrig', '--ioengine=nbd', `--uri=${uri}`, '--group_reporting', '--verify=crc32c', '--verify_fatal=1', '--verify_state_save=0', ...extra], { timeoutMs: 150_000 });

describe.skipIf(skip)(`lunrig serve + fio nbd engine${skip ? ` (${skip})` : ''}`, () => {
  it('§2.4 4k random writes at queue depth 32 over the unix socket, verified with crc32c', { timeout: 180_000 }, async () => {
    const r = await fio(s.uri('fio0'), ['--rw=randwrite', '--bs=4k', '--iodepth=32', '--size=32M', '--do_verify=1']);
    expect(r.stdout).toMatch(/err= 0/);
    expect(r.stdout + r.stderr).not.toMatch(/verify: bad/);
  });

  it('§9.5 two jobs (one connection each) over TCP, mixed block sizes, verified with crc32c', { timeout: 180_000 }, async () => {
    const r = await fio(s.tcpUri('fio0'), ['--rw=randwrite', '--bsrange=512-256k', '--iodepth=16', '--numjobs=2', '--offset_increment=32M', '--size=16M']);
    expect(r.stdout).toMatch(/err= 0/);
  });
});
