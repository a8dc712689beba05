/**
 * `lunrig pprc ...` against a running server (startServer in this process,
 * the CLI through runCli): human and --json output, exit codes, and the
 * serve wiring (PprcManager, routes, link exports) it relies on
 * (spec/copy-services.md §4.4, §5.5).
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { runCli } from '../../../src/cli/program.js';
import { startServer, type RunningServer } from '../../../src/cli/serve.js';
import { tempDirs } from '../../helpers/temp-dir.js';

const MiB = 1024 * 1024;
const temp = tempDirs('lunrig-pprc-cli-');
let server: RunningServer;

beforeAll(async () => {
  server = await startServer({
    dataDir: temp.make(),
    serial: 'FCA24',
    io: 'fs',
    control: { host: '127.0.0.1', port: 0 },
    nbd: {},
    defaultLuns: [
      { name: 'p', size: 4 * MiB, lss: 0x10 },
      { name: 's', size: 4 * MiB, lss: 0x11 },
    ],
  });
});

afterAll(async () => {
  await server.stop();
  temp.cleanup();
});

async function cli(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const o = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => ((out += String(chunk)), true));
  const e = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => ((err += String(chunk)), true));
  try {
    const code = await runCli(['node', 'lunrig', ...args, '--server', server.url]);
    return { code, out, err };
  } finally {
    o.mockRestore();
    e.mockRestore();
  }
}

async function json<T = Record<string, unknown>>(...args: string[]): Promise<T> {
  const r = await cli(...args, '--json');
  expect(r.code, r.err).toBe(0);
  return JSON.parse(r.out) as T;
}

describe('lunrig pprc', () => {
  it('serve opens PPRC: the manager, its routes and the ESS listing', async () => {
    expect(server.pprc.serial).toBe('FCA24');
    const r = await cli('pprc', 'ess', 'list');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/this ESS: FCA24\nno remote ESSs/);
  });

  it('links, faults and paths, human and --json', async () => {
    expect((await cli('pprc', 'link', 'add', '--to', 'FCA24', '--id', 'l1')).out).toBe('added link l1 to ESS FCA24\n');
    const down = await cli('pprc', 'link', 'fault', 'l1', '--down', '--latency', '3', '--bandwidth', '10M');
    expect(down.out).toMatch(/^ID\s+TO\s+INDEX.*\nl1\s+FCA24\s+0\s+0\s+down\s+\+3 ms\s+10M\/s/);
    expect((await json<{ down: boolean; latencyMs: number }>('pprc', 'link', 'fault', 'l1', '--clear'))).toMatchObject({ down: false, latencyMs: 0 });
    const bad = await cli('pprc', 'link', 'fault', 'l1');
    expect(bad.code).toBe(1);
    expect(bad.err).toMatch(/^lunrig: INVALID_ARGUMENT: say what to change/);
    expect((await cli('pprc', 'path', 'establish', '10', 'FCA24', '11', '--links', 'l1')).out).toBe('established path 10 -> FCA24:11 over l1\n');
    expect((await cli('pprc', 'path', 'establish', '10', 'FCA24', '11', '--links', 'l1', '--skip')).out).toBe('path 10 -> FCA24:11 exists: not executed\n');
    expect((await json<{ paths: unknown[] }>('pprc', 'path', 'list')).paths).toEqual([{ lss: 16, to: 'FCA24', targetLss: 17, links: ['l1'] }]);
  });

  it('establish --wait, query, list, suspend, resume --wait, audit, terminate', async () => {
    const est = await cli('pprc', 'establish', 'p', 's', '--mode', 'copy-entire', '--wait');
    expect(est.code, est.err).toBe(0);
    expect(est.out).toMatch(/^established PPRC p -> local:s \(copy-entire\): DUPLEX_PENDING/);
    expect(est.out).toMatch(/PPRC p: DUPLEX, 0 of 64 tracks out of sync \(100% copied\)\n$/);
    const q = await cli('pprc', 'query', 's');
    expect(q.out).toMatch(/^Volume \S+ found on FCA24:11 as volume number 000\nState=target, status=not_suspended/);
    expect((await cli('pprc', 'list')).out).toMatch(/pp\d+\s+FCA24:p\s+FCA24:s\s+DUPLEX\s+0\s+no\s+no/);
    expect(await json('pprc', 'suspend', 'p')).toMatchObject({ state: 'SUSPENDED', suspended: true });
    const resumed = await cli('pprc', 'resume', 'p', '--wait');
    expect(resumed.out).toMatch(/PPRC p: DUPLEX/);
    expect(await json('pprc', 'audit', 'p')).toMatchObject({ volume: 'p', differing: [] });
    expect((await cli('pprc', 'terminate', 'p')).out).toBe('terminated PPRC pair of p\n');
    const again = await cli('pprc', 'suspend', 'p');
    expect(again.code).toBe(1);
    expect(again.err).toMatch(/^lunrig: PPRC_NOT_IN_PAIR: /);
  });

  it('LSS settings and power cycle; a wrong mode is a usage error', async () => {
    expect(await json('pprc', 'lss', '10', '--critical-heavy', 'on', '--timeout', '7')).toMatchObject({ criticalHeavy: true, criticalHeavyActive: false, consistencyTimeoutSec: 7 });
    expect((await cli('pprc', 'power-cycle')).out).toMatch(/power cycled/);
    expect(server.pprc.lssSettings(0x10).criticalHeavyActive).toBe(true);
    expect((await cli('pprc', 'establish', 'p', 's', '--mode', 'bogus')).code).toBe(2);
  });
});
