/**
 * nbdinfo (libnbd) against a real `lunrig serve`: every LUN is an export
 * named after it, on TCP and on the unix socket, with the LUN's identity in
 * its description (spec/nbd.md §2.2, §2.3, §2.6, §2.7, §3).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NbdClient } from '../../src/nbd/client.js';
import { cliJson, startServe, stopAllServes, type ServeProcess } from '../helpers/serve-process.js';
import { MiB, killChildren, missing, run, runOk } from './nbd-harness.js';

const GiB = 1024 * MiB;
const skip = missing('nbdinfo');
if (skip) console.warn(`serve-nbd-nbdinfo: ${skip}`);

/** What map0 holds: written data at these ranges, everything else reads as zeros. */
const DATA = [
  [MiB, 128 * 1024],
  [40 * MiB, 4096],
] as const;

let s: ServeProcess;

beforeAll(async () => {
  s = await startServe({ args: ['--serial', 'FCA24'] });
  await cliJson(s, ['lun', 'create', 'map0', '--size', '64M']);
  const c = await NbdClient.connect({ path: s.socket }, { exportName: 'map0' });
  try {
    for (const [offset, length] of DATA) await c.write(offset, Buffer.alloc(length, 0xab));
    await c.writeZeroes(8 * MiB, 64 * 1024, { noHole: true });
    await c.write(20 * MiB, Buffer.alloc(64 * 1024, 1));
    await c.trim(20 * MiB, 64 * 1024); // written, then discarded: a hole again
    await c.flush();
  } finally {
    await c.close();
  }
});

afterAll(async () => {
  killChildren();
  await stopAllServes();
});

describe.skipIf(skip)(`lunrig serve + nbdinfo${skip ? ` (${skip})` : ''}`, () => {
  it('§2.2/§2.3/§2.6: a LUN reports its size, transmission flags and block sizes, over TCP and the unix socket alike', async () => {
    for (const uri of [s.tcpUri('lun0'), s.uri('lun0')]) {
      const info = JSON.parse((await runOk('nbdinfo', ['--json', uri])).stdout);
      expect(info).toMatchObject({ protocol: 'newstyle-fixed', TLS: false, structured: true });
      expect(info.exports[0]).toMatchObject({
        'export-name': 'lun0',
        'export-size': GiB,
        contexts: ['base:allocation'],
        is_read_only: false,
        can_flush: true,
        can_fua: true,
        can_trim: true,
        can_zero: true,
        can_fast_zero: true,
        can_multi_conn: true,
        can_cache: true,
        can_df: true,
        block_size_minimum: 1,
        block_size_preferred: 4096,
        block_size_maximum: 32 * MiB,
      });
      expect(info.exports[0].description).toBe('lunrig-identity name=lun0 volumeId=000FCA24 uniqueId=' + (await lunInfo('lun0')).uniqueId + ' serial=FCA24 lss=0x10');
    }
  });

  it('§2.7 base:allocation: --map shows the written extents as data and everything else as zeros (holes)', async () => {
    const map = JSON.parse((await runOk('nbdinfo', ['--map', '--json', s.uri('map0')])).stdout) as { offset: number; length: number; type: number }[];
    // Contiguous and covering the LUN.
    expect(map[0]!.offset).toBe(0);
    for (let i = 1; i < map.length; i++) expect(map[i]!.offset).toBe(map[i - 1]!.offset + map[i - 1]!.length);
    expect(map.at(-1)!.offset + map.at(-1)!.length).toBe(64 * MiB);
    const data = map.filter((e) => (e.type & 2) === 0).map((e) => [e.offset, e.length]);
    expect(data).toEqual(DATA.map(([o, l]) => [o, l]));
    // The write-zeroes and the discarded range read as zeros (bit 1, NBD_STATE_ZERO) like the never-written rest.
    for (const e of map.filter((x) => (x.type & 2) !== 0)) expect(e.type === 2 || e.type === 3).toBe(true);
    const totals = await runOk('nbdinfo', ['--map', '--totals', s.uri('map0')]);
    expect(totals.stdout).toMatch(new RegExp(`^\\s*${128 * 1024 + 4096}\\s+[\\d.]+%\\s+0 data`, 'm'));
  });

  it('§2.2 NBD_OPT_LIST: --list shows every LUN, each with its identity token', async () => {
    const listed = JSON.parse((await runOk('nbdinfo', ['--list', '--json', `nbd+unix:///?socket=${s.socket}`])).stdout).exports as Array<{ 'export-name': string; description: string; 'export-size': number }>;
    const { luns } = await cliJson<{ luns: Array<{ name: string; size: number; volumeId: string }> }>(s, ['lun', 'list']);
    expect(listed.map((e) => [e['export-name'], e['export-size']])).toEqual(luns.map((l) => [l.name, l.size]));
    for (const [i, e] of listed.entries()) expect(e.description).toContain(`name=${luns[i]!.name} volumeId=${luns[i]!.volumeId} `);
    expect(listed.map((e) => e['export-name'])).toEqual(['lun0', 'lun1', 'lun2', 'lun3', 'map0']);
  });

  it('identity: NbdClient.identity() returns the LUN\'s volume id, unique id, serial and LSS', async () => {
    const c = await NbdClient.connect({ host: s.tcp!.host, port: s.tcp!.port }, { exportName: 'lun2' });
    try {
      const lun = await lunInfo('lun2');
      expect(c.identity()).toEqual({ name: 'lun2', volumeId: lun.volumeId, uniqueId: lun.uniqueId, serial: 'FCA24', lss: 0x11 });
      expect(lun.volumeId).toBe('100FCA24');
    } finally {
      await c.close();
    }
  });

  it('§4 NBD_REP_ERR_UNKNOWN: an export that is no LUN is refused; the server keeps serving', async () => {
    const r = await run('nbdinfo', [s.uri('nosuch')]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/No such file or directory for export: nosuch/); // libnbd's words for NBD_REP_ERR_UNKNOWN
    expect((await runOk('nbdinfo', ['--size', s.uri('lun1')])).stdout.trim()).toBe(String(GiB));
  });
});

function lunInfo(name: string): Promise<{ uniqueId: string; volumeId: string }> {
  return cliJson(s, ['lun', 'info', name]);
}
