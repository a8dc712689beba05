/**
 * nbdinfo (libnbd) against lunrig's server: the client that first sends
 * NBD_OPT_STRUCTURED_REPLY, then INFO with BLOCK_SIZE/NAME/DESCRIPTION,
 * LIST_META_CONTEXT and GO (spec/nbd.md §3), and checks INFO reply lengths.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryVolume } from '../../src/volume/memory-volume.js';
import { MiB, missing, runOk, startInteropServer, type InteropServer } from './nbd-harness.js';

const skip = missing('nbdinfo');
if (skip) console.warn(`nbd-nbdinfo: ${skip}`);

describe.skipIf(skip)(`nbdinfo interop${skip ? ` (${skip})` : ''}`, () => {
  let s: InteropServer;
  beforeAll(async () => {
    const disk = new MemoryVolume({ size: 64 * MiB, identity: { name: 'disk0', serial: 'FCA24' } });
    await disk.write(MiB, Buffer.alloc(128 * 1024, 0xab));
    await disk.writeZeroes(4 * MiB, 64 * 1024, { noHole: true });
    s = await startInteropServer([
      { name: 'disk0', volume: disk },
      { name: 'ro', volume: new MemoryVolume({ size: 8 * MiB }), readOnly: true, description: 'a read-only export' },
    ]);
  });
  afterAll(async () => {
    await s.close();
  });

  it('§2.2/§2.3: reports size, protocol, flags and block sizes (one NBD_REP_INFO per item, exact lengths)', async () => {
    const { stdout } = await runOk('nbdinfo', ['--json', s.uri('disk0')]);
    const info = JSON.parse(stdout);
    expect(info).toMatchObject({ protocol: 'newstyle-fixed', TLS: false, structured: true });
    const e = info.exports[0];
    expect(e).toMatchObject({
      'export-name': 'disk0',
      'export-size': 64 * MiB,
      contexts: ['base:allocation'],
      is_read_only: false,
      is_rotational: false,
      can_cache: true,
      can_df: true,
      can_fast_zero: true,
      can_flush: true,
      can_fua: true,
      can_multi_conn: true,
      can_trim: true,
      can_zero: true,
      block_size_minimum: 1,
      block_size_preferred: 4096,
      block_size_maximum: 32 * MiB,
    });
    expect(e.description).toMatch(/^lunrig-identity name=disk0 .*serial=FCA24/);
  });

  it('§2.3: a read-only export advertises READ_ONLY and no write features', async () => {
    const { stdout } = await runOk('nbdinfo', ['--json', s.uri('ro')]);
    const e = JSON.parse(stdout).exports[0];
    expect(e).toMatchObject({ is_read_only: true, can_trim: false, can_zero: false, can_fua: false, can_flush: true, description: 'a read-only export' });
  });

  it('§2.7: --map shows holes, data and allocated zeros from base:allocation', async () => {
    const { stdout } = await runOk('nbdinfo', ['--map', '--json', s.uri('disk0')]);
    const map = JSON.parse(stdout) as { offset: number; length: number; type: number }[];
    expect(map).toEqual([
      expect.objectContaining({ offset: 0, length: MiB, type: 3 }),
      expect.objectContaining({ offset: MiB, length: 128 * 1024, type: 0 }),
      expect.objectContaining({ offset: MiB + 128 * 1024, length: 4 * MiB - MiB - 128 * 1024, type: 3 }),
      expect.objectContaining({ offset: 4 * MiB, length: 64 * 1024, type: 2 }),
      expect.objectContaining({ offset: 4 * MiB + 64 * 1024, length: 60 * MiB - 64 * 1024, type: 3 }),
    ]);
    const totals = await runOk('nbdinfo', ['--map', '--totals', s.uri('disk0')]);
    expect(totals.stdout).toMatch(/131072\s+0\.2%\s+0 data/);
  });

  it('NBD_OPT_LIST: --list shows every export with its description', async () => {
    const { stdout } = await runOk('nbdinfo', ['--list', '--json', `nbd+unix:///?socket=${s.path}`]);
    const names = JSON.parse(stdout).exports.map((e: { 'export-name': string }) => e['export-name']);
    expect(names).toEqual(['disk0', 'ro']);
  });

  it('--size and --can answer from GO alone', async () => {
    expect((await runOk('nbdinfo', ['--size', s.uri('disk0')])).stdout.trim()).toBe(String(64 * MiB));
    await runOk('nbdinfo', ['--can', 'multi-conn', s.uri('disk0')]);
    await runOk('nbdinfo', ['--is', 'read-only', s.uri('ro')]);
  });
});
