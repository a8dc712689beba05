/**
 * The array model is the source of truth and NBD a live view of it: LUNs
 * created with the CLI while `lunrig serve` runs are exports at once, deleted
 * ones disappear (open connections get NBD_ESHUTDOWN), grown ones show their
 * new size to new connections (spec/nbd.md §2.2, §2.5, §4).
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { isLunrigError } from '../../src/errors.js';
import { NbdClient } from '../../src/nbd/client.js';
import { cliJson, startServe, stopAllServes, type ServeProcess } from '../helpers/serve-process.js';
import { MiB, killChildren, missing, pattern, run, runOk } from './nbd-harness.js';

const skip = missing('nbdinfo');
if (skip) console.warn(`serve-nbd-lifecycle: ${skip}`);

let s: ServeProcess;
const clients: NbdClient[] = [];

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

async function listed(): Promise<string[]> {
  return (JSON.parse((await runOk('nbdinfo', ['--list', '--json', `nbd+unix:///?socket=${s.socket}`])).stdout).exports as Array<{ 'export-name': string }>).map((e) => e['export-name']);
}

async function rejection(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => {
      throw new Error('expected the request to fail');
    },
    (err: unknown) => err,
  );
}

describe.skipIf(skip)(`lunrig serve: exports follow the LUNs${skip ? ` (${skip})` : ''}`, () => {
  it('§2.2: a LUN created with the CLI while serving is an export at once (NBD_OPT_LIST, GO, export list)', async () => {
    const created = await cliJson<{ name: string; size: number }>(s, ['lun', 'create', 'fresh', '--size', '16M']);
    expect(created.size).toBe(16 * MiB);
    expect((await runOk('nbdinfo', ['--size', s.uri('fresh')])).stdout.trim()).toBe(String(16 * MiB));
    expect(await listed()).toContain('fresh');
    const { exports } = await cliJson<{ exports: Array<{ name: string; uris: string[] }> }>(s, ['export', 'list']);
    expect(exports.find((e) => e.name === 'fresh')?.uris).toEqual([s.tcpUri('fresh'), s.uri('fresh')]);
    const c = await connect('fresh');
    const data = pattern(64 * 1024, 5);
    await c.write(MiB, data, { fua: true });
    expect(Buffer.from(await c.read(MiB, data.length)).equals(data)).toBe(true);
  });

  it('§2.5 ESHUTDOWN: a deleted LUN disappears; its open connection gets NBD_ESHUTDOWN, new ones NBD_REP_ERR_UNKNOWN', async () => {
    await cliJson(s, ['lun', 'create', 'doomed', '--size', '16M']);
    const c = await connect('doomed');
    await c.write(0, Buffer.alloc(4096, 1));
    expect((await s.cli(['lun', 'delete', 'doomed'])).code).toBe(0);
    const err = await rejection(c.read(0, 4096));
    expect(isLunrigError(err, 'CLOSED')).toBe(true); // NBD_ESHUTDOWN, the client's CLOSED
    expect(String((err as Error).message)).toMatch(/ESHUTDOWN/);
    const go = await run('nbdinfo', [s.uri('doomed')]);
    expect(go.code).not.toBe(0);
    expect(go.stderr).toMatch(/No such file or directory for export: doomed/);
    expect(await listed()).not.toContain('doomed');
  });

  it('a LUN deleted and created again under the same name is a new export: the old connection still gets ESHUTDOWN', async () => {
    await cliJson(s, ['lun', 'create', 'again', '--size', '16M']);
    const old = await connect('again');
    await s.cli(['lun', 'delete', 'again']);
    await cliJson(s, ['lun', 'create', 'again', '--size', '16M']);
    expect(isLunrigError(await rejection(old.write(0, Buffer.alloc(512, 9))), 'CLOSED')).toBe(true);
    const fresh = await connect('again');
    expect(Buffer.from(await fresh.read(0, 512)).every((b) => b === 0)).toBe(true);
  });

  it('§2.2: a grown LUN shows its new size to new connections; an open one keeps the size it negotiated', async () => {
    await cliJson(s, ['lun', 'create', 'grows', '--size', '16M']);
    const before = await connect('grows');
    expect(before.size).toBe(16 * MiB);
    await cliJson(s, ['lun', 'grow', 'grows', '--size', '48M']);
    expect((await runOk('nbdinfo', ['--size', s.tcpUri('grows')])).stdout.trim()).toBe(String(48 * MiB));
    const after = await connect('grows');
    expect(after.size).toBe(48 * MiB);
    await after.write(40 * MiB, Buffer.alloc(4096, 0x77), { fua: true });
    // The old connection still works within its size, and sees data written through the new one.
    expect(Buffer.from(await before.read(16 * MiB - 4096, 4096)).every((b) => b === 0)).toBe(true);
    expect(Buffer.from(await after.read(40 * MiB, 4096)).every((b) => b === 0x77)).toBe(true);
  });
});
