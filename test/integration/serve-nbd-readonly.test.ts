/**
 * Read-only exports of a real `lunrig serve`: `lun create --read-only` and
 * `export set NAME --read-only | --read-write` (PATCH /v1/luns/NAME). A
 * read-only export advertises NBD_FLAG_READ_ONLY and refuses WRITE, TRIM and
 * WRITE_ZEROES with NBD_EPERM, but serves reads (spec/nbd.md §2.3, §2.5, §4).
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { isLunrigError } from '../../src/errors.js';
import { NbdClient } from '../../src/nbd/client.js';
import * as NBD from '../../src/nbd/constants.js';
import { cliJson, startServe, stopAllServes, type ServeProcess } from '../helpers/serve-process.js';
import { MiB, killChildren, missing, pattern, run, runOk } from './nbd-harness.js';

const skip = missing('nbdinfo', 'qemu-io');
if (skip) console.warn(`serve-nbd-readonly: ${skip}`);

let s: ServeProcess;
const clients: NbdClient[] = [];
const DATA = pattern(256 * 1024, 0x0bad);

beforeAll(async () => {
  s = await startServe();
});

afterEach(async () => {
  for (const c of clients.splice(0)) c.destroy();
});

afterAll(async () => {
  killChildren();
  await stopAllServes();
});

async function connect(name: string): Promise<NbdClient> {
  const c = await NbdClient.connect({ path: s.socket }, { exportName: name });
  clients.push(c);
  return c;
}

/** WRITE, TRIM and WRITE_ZEROES sent as they are (the client would refuse them itself on a READ_ONLY export). */
async function writeErrnos(c: NbdClient): Promise<number[]> {
  return [
    (await c.request({ type: NBD.NBD_CMD_WRITE, offset: 0, data: Buffer.alloc(4096, 1) })).errno,
    (await c.request({ type: NBD.NBD_CMD_TRIM, offset: 0, length: 4096 })).errno,
    (await c.request({ type: NBD.NBD_CMD_WRITE_ZEROES, offset: 0, length: 4096 })).errno,
  ];
}

describe.skipIf(skip)(`lunrig serve: read-only exports${skip ? ` (${skip})` : ''}`, () => {
  it('§2.3/§4: a LUN created --read-only exports READ_ONLY; writes get NBD_EPERM, reads are served', async () => {
    await cliJson(s, ['lun', 'create', 'ro0', '--size', '16M', '--read-only']);
    const info = JSON.parse((await runOk('nbdinfo', ['--json', s.uri('ro0')])).stdout).exports[0];
    expect(info).toMatchObject({ is_read_only: true, can_trim: false, can_zero: false, can_fua: false, can_flush: true });
    const c = await connect('ro0');
    expect(c.readOnly).toBe(true);
    expect(await writeErrnos(c)).toEqual([NBD.NBD_EPERM, NBD.NBD_EPERM, NBD.NBD_EPERM]);
    expect(Buffer.from(await c.read(0, 4096)).every((b) => b === 0)).toBe(true);
    const q = await run('qemu-io', ['-f', 'raw', '-c', 'write -P 1 0 4k', s.uri('ro0')]);
    expect(q.code).not.toBe(0);
    expect(q.stdout + q.stderr).toMatch(/read-only|Operation not permitted|Permission denied/i);
    expect((await runOk('qemu-io', ['-f', 'raw', '-r', '-c', 'read -P 0 0 1M', s.uri('ro0')])).stdout).not.toMatch(/failed/);
  });

  it('export set --read-only switches a live LUN: an open writable connection gets NBD_EPERM, new ones see READ_ONLY; --read-write switches back', async () => {
    await cliJson(s, ['lun', 'create', 'sw', '--size', '16M']);
    const writer = await connect('sw');
    await writer.write(MiB, DATA, { fua: true });

    const set = await s.cli(['export', 'set', 'sw', '--read-only']);
    expect(set).toEqual({ code: 0, stdout: 'export sw is now read-only\n', stderr: '' });
    // The open connection negotiated a writable export; the LUN refuses the write itself.
    const err = await writer.write(0, Buffer.alloc(512, 2)).then(() => undefined, (e: unknown) => e);
    expect(isLunrigError(err, 'READ_ONLY')).toBe(true);
    expect(String((err as Error).message)).toMatch(/EPERM/);
    expect(Buffer.from(await writer.read(MiB, DATA.length)).equals(DATA)).toBe(true);

    const reader = await connect('sw');
    expect(reader.readOnly).toBe(true);
    expect(await writeErrnos(reader)).toEqual([NBD.NBD_EPERM, NBD.NBD_EPERM, NBD.NBD_EPERM]);
    expect(Buffer.from(await reader.read(MiB, DATA.length)).equals(DATA)).toBe(true);
    expect(await cliJson(s, ['lun', 'info', 'sw'])).toMatchObject({ readOnly: true });

    expect(await cliJson(s, ['export', 'set', 'sw', '--read-write'])).toMatchObject({ name: 'sw', readOnly: false });
    const again = await connect('sw');
    expect(again.readOnly).toBe(false);
    await again.write(0, Buffer.alloc(512, 3), { fua: true });
    // Even the connection opened before the first switch writes again: it was never told otherwise.
    await writer.write(512, Buffer.alloc(512, 4), { fua: true });
    expect(Buffer.from(await again.read(0, 1024))).toEqual(Buffer.concat([Buffer.alloc(512, 3), Buffer.alloc(512, 4)]));
  });

  it('export list shows mode, size and URIs, for people and with --json', async () => {
    await cliJson(s, ['lun', 'create', 'listed', '--size', '8M', '--read-only']);
    const { exports } = await cliJson<{ exports: Array<{ name: string; size: number; readOnly: boolean; uris: string[] }> }>(s, ['export', 'list']);
    expect(exports.find((e) => e.name === 'listed')).toEqual({ name: 'listed', size: 8 * MiB, readOnly: true, uris: [s.tcpUri('listed'), s.uri('listed')] });
    expect(exports.find((e) => e.name === 'lun0')).toMatchObject({ readOnly: false, uris: [s.tcpUri('lun0'), s.uri('lun0')] });
    const human = await s.cli(['export', 'ls']);
    expect(human.code).toBe(0);
    const rows = human.stdout.trimEnd().split('\n');
    expect(rows[0]).toMatch(/^NAME\s+SIZE\s+MODE\s+URI 1\s+URI 2$/);
    expect(rows).toContainEqual(expect.stringMatching(new RegExp(`^listed\\s+8M\\s+ro\\s+${escape(s.tcpUri('listed'))}\\s+${escape(s.uri('listed'))}$`)));
  });

  it('export set errors: one stderr line; exit 1 for an unknown LUN, 2 for a wrong command line', async () => {
    const cases: Array<[string[], number, string]> = [
      [['export', 'set', 'nosuch', '--read-only'], 1, "lunrig: LUN_NOT_FOUND: no LUN named 'nosuch'"],
      [['export', 'set', 'lun0'], 2, 'lunrig: USAGE: export set needs --read-only or --read-write (see lunrig --help)'],
      [['export', 'set', 'lun0', '--read-only', '--read-write'], 2, "lunrig: USAGE: option '--read-only' cannot be used with option '--read-write' (see lunrig --help)"],
      [['export', 'set', '--read-only'], 2, "lunrig: USAGE: missing required argument 'name' (see lunrig --help)"],
    ];
    for (const [args, code, line] of cases) expect(await s.cli(args)).toEqual({ code, stdout: '', stderr: `${line}\n` });
    expect(await cliJson(s, ['lun', 'info', 'lun0'])).toMatchObject({ readOnly: false });
  });

  it('control API: PATCH /v1/luns/{name} and GET /v1/exports are in the OpenAPI document; a bad body is INVALID_ARGUMENT', async () => {
    const doc = (await (await fetch(`${s.url}/openapi.json`)).json()) as { paths: Record<string, Record<string, { operationId?: string }>> };
    expect(doc.paths['/v1/exports']?.get?.operationId).toBe('listExports');
    expect(doc.paths['/v1/luns/{name}']?.patch?.operationId).toBe('updateLun');
    for (const body of ['{}', '{"readOnly":"yes"}', '{"readOnly":true,"size":1}']) {
      const res = await fetch(`${s.url}/v1/luns/lun0`, { method: 'PATCH', headers: { 'content-type': 'application/json' }, body });
      expect(res.status).toBe(400);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('INVALID_ARGUMENT');
    }
  });
});

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}
