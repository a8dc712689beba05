/**
 * `lunrig serve` and `lunrig lun ...` as a user runs them: real child
 * processes on a free port and a temp pool. Needs a build (`npm run build`).
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_LUNS } from '../../src/cli/defaults.js';
import { parseHostPort } from '../../src/cli/commands-serve.js';
import { GiB } from '../../src/util/size.js';
import { VERSION } from '../../src/version.js';
import { tempDirs } from '../helpers/temp-dir.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const MAIN = path.join(ROOT, 'dist/cli/main.js');
const temp = tempDirs('lunrig-cli-');
const children = new Set<ChildProcess>();

beforeAll(() => {
  if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: run \`npm run build\` (or npx tsc -p tsconfig.build.json) first`);
});

afterEach(async () => {
  // Only the servers this file started; SIGKILL whatever a test left running.
  await Promise.all([...children].map((child) => stopChild(child, 'SIGKILL')));
  temp.cleanup();
});

/** The caller's environment without lunrig's own variables, so a developer's settings cannot leak in. */
function cleanEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const name of ['LUNRIG_SERVER', 'LUNRIG_DATA', 'LUNRIG_IO']) delete env[name];
  return env;
}

interface Served {
  child: ChildProcess;
  url: string;
  /** The one JSON object `serve --json` printed. */
  summary: { version: string; pool: { dir: string; serial: string; poolId: string }; control: string; services: Array<{ name: string; url: string }>; luns: Array<Record<string, unknown>> };
  stderr: () => string;
}

/** Start `lunrig serve --json` on a free port and wait for its summary line (a later --io wins). */
async function serve(dataDir: string, extra: string[] = []): Promise<Served> {
  const child = spawn(process.execPath, [MAIN, 'serve', '--json', '--data', dataDir, '--control', '127.0.0.1:0', '--nbd', '127.0.0.1:0', '--io', 'fs', ...extra], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: cleanEnv(),
  });
  children.add(child);
  child.once('exit', () => children.delete(child));
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const firstLine = new Promise<string>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! });
    lines.once('line', resolve);
    child.once('exit', (code) => reject(new Error(`lunrig serve exited (${code}) before serving: ${stderr}`)));
    // Generous: creating the default LUNs fsyncs a dozen times, slow on a busy shared disk.
    setTimeout(() => reject(new Error(`lunrig serve printed nothing in 45 s: ${stderr}`)), 45_000).unref();
  });
  const summary = JSON.parse(await firstLine) as Served['summary'];
  return { child, url: summary.control, summary, stderr: () => stderr };
}

function exited(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
}

async function stopChild(child: ChildProcess, signal: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  const done = exited(child);
  if (child.exitCode === null && child.signalCode === null) child.kill(signal);
  return done;
}

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Run the CLI to completion. */
function lunrig(args: string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [MAIN, ...args], { env: { ...cleanEnv(), ...env }, timeout: 30_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

/** The CLI against a running server, with --json, parsed. */
async function lunJson<T = any>(url: string, args: string[]): Promise<T> {
  const run = await lunrig(['lun', ...args, '--server', url, '--json']);
  expect(run.stderr).toBe('');
  expect(run.code).toBe(0);
  return JSON.parse(run.stdout) as T;
}

/** A failed command: the exit code and exactly one stderr line `lunrig: CODE: message`. */
function expectFailure(run: Run, exitCode: number, code: string): string {
  expect(run.code).toBe(exitCode);
  expect(run.stdout).toBe('');
  const lines = run.stderr.split('\n');
  expect(lines.at(-1)).toBe('');
  expect(lines).toHaveLength(2);
  expect(lines[0]).toMatch(new RegExp(`^lunrig: ${code}: \\S`));
  return lines[0]!;
}

async function freePortUrl(): Promise<string> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const { port } = s.address() as { port: number };
  await new Promise((resolve) => s.close(resolve));
  return `http://127.0.0.1:${port}`;
}

describe('lunrig serve', () => {
  it('CP-01: an empty pool gets the default LUNs: lun0, lun1 in LSS 10 and lun2, lun3 in LSS 11, 1 GiB each', async () => {
    const { summary, url } = await serve(temp.make(), ['--serial', 'FCA24']);
    expect(summary.version).toBe(VERSION);
    expect(summary.pool.serial).toBe('FCA24');
    expect(summary.services).toEqual([
      { name: 'control', url },
      { name: 'nbd', url: expect.stringMatching(/^nbd:\/\/127\.0\.0\.1:\d+\/$/) },
    ]);
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(summary.luns.map((l) => [l.name, l.size, l.lssAddress, l.volumeId])).toEqual([
      ['lun0', GiB, '2105:FCA24:10', '000FCA24'],
      ['lun1', GiB, '2105:FCA24:10', '001FCA24'],
      ['lun2', GiB, '2105:FCA24:11', '100FCA24'],
      ['lun3', GiB, '2105:FCA24:11', '101FCA24'],
    ]);
    expect(summary.luns.map((l) => l.name)).toEqual(DEFAULT_LUNS.map((l) => l.name));
    const { luns } = await lunJson<{ luns: unknown[] }>(url, ['list']);
    expect(luns).toEqual(summary.luns);
    // Sparse: provisioning 4 GiB occupies (almost) nothing.
    expect((await lunJson(url, ['info', 'lun0'])).allocatedBytes).toBeLessThan(1 << 20);
  });

  it('SIGTERM shuts down with exit 0; the pool reopens with its LUNs and no new defaults', async () => {
    const dir = temp.make();
    // The default engine (worker threads) here; the rest of the file uses --io fs to start faster.
    const first = await serve(dir, ['--io', 'worker']);
    await lunJson(first.url, ['create', 'keep', '--size', '64M']);
    await lunJson(first.url, ['delete', 'lun3']);
    expect(await stopChild(first.child, 'SIGTERM')).toEqual({ code: 0, signal: null });
    expect(first.stderr()).toBe('');

    const second = await serve(dir);
    expect(second.summary.pool).toEqual(first.summary.pool);
    expect(second.summary.luns.map((l) => l.name)).toEqual(['lun0', 'lun1', 'lun2', 'keep']);
    expect(await stopChild(second.child, 'SIGINT')).toEqual({ code: 0, signal: null });
  });

  it('refuses a second server on the same pool with one line and exit 1 (POOL_LOCKED)', async () => {
    const dir = temp.make();
    await serve(dir);
    const run = await lunrig(['serve', '--data', dir, '--control', '127.0.0.1:0', '--nbd', '127.0.0.1:0', '--io', 'fs']);
    expectFailure(run, 1, 'POOL_LOCKED');
  });

  it('prints pool, serial, control URL and a LUN table for people', async () => {
    const dir = temp.make();
    const child = spawn(process.execPath, [MAIN, 'serve', '--data', dir, '--control', '127.0.0.1:0', '--nbd', '127.0.0.1:0', '--serial', 'ABC12', '--io', 'fs'], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(child);
    let out = '';
    await new Promise<void>((resolve, reject) => {
      child.stdout!.on('data', (chunk: Buffer) => {
        out += chunk.toString();
        if (out.includes('Stop with')) resolve();
      });
      child.once('exit', () => reject(new Error(`exited early: ${out}`)));
    });
    expect(out).toContain(`serving pool ${path.resolve(dir)} (serial ABC12)`);
    expect(out).toMatch(/control\s+http:\/\/127\.0\.0\.1:\d+/);
    expect(out).toMatch(/NAME\s+SIZE\s+LSS\s+VOL\s+VOLUME ID\s+MODE\s+UNIQUE ID/);
    expect(out).toMatch(/lun2\s+1G\s+11\s+00\s+100ABC12\s+rw\s+[0-9a-f]{32}/);
    const closed = new Promise((resolve) => child.once('close', resolve));
    expect(await stopChild(child, 'SIGINT')).toEqual({ code: 0, signal: null });
    await closed;
    expect(out.trimEnd().split('\n').at(-1)).toBe(`stopped; pool ${path.resolve(dir)} flushed and unlocked`);
  });

  it('rejects a bad --serial with INVALID_ARGUMENT and a bad --control as a usage error', async () => {
    expectFailure(await lunrig(['serve', '--data', temp.make(), '--control', '127.0.0.1:0', '--nbd', 'none', '--io', 'fs', '--serial', 'toolong']), 1, 'INVALID_ARGUMENT');
    expectFailure(await lunrig(['serve', '--data', temp.make(), '--control', 'localhost']), 2, 'USAGE');
  });
});

describe('lunrig lun', () => {
  it('CP-01: create, list, info, grow and delete, for people and with --json', async () => {
    const { url } = await serve(temp.make(), ['--serial', 'FCA24']);

    const created = await lunrig(['lun', 'create', 'db0', '--size', '10G', '--lss', '11', '--server', url]);
    expect(created).toMatchObject({ code: 0, stderr: '' });
    expect(created.stdout).toBe('created LUN db0: 10G, LSS 11 (2105:FCA24:11), volume id 102FCA24\n');

    const ro = await lunJson(url, ['create', 'ro0', '--size', '1073741824', '--read-only']);
    expect(ro).toMatchObject({ name: 'ro0', size: GiB, lss: 0x10, volumeId: '002FCA24', readOnly: true, uniqueId: expect.stringMatching(/^[0-9a-f]{32}$/) });

    const list = await lunrig(['lun', 'list', '--server', url]);
    expect(list.code).toBe(0);
    const rows = list.stdout.trimEnd().split('\n');
    expect(rows[0]).toMatch(/^NAME\s+SIZE\s+LSS\s+VOL\s+VOLUME ID\s+MODE\s+UNIQUE ID$/);
    expect(rows.slice(1).map((r) => r.split(/\s+/).slice(0, 6))).toEqual([
      ['lun0', '1G', '10', '00', '000FCA24', 'rw'],
      ['lun1', '1G', '10', '01', '001FCA24', 'rw'],
      ['lun2', '1G', '11', '00', '100FCA24', 'rw'],
      ['lun3', '1G', '11', '01', '101FCA24', 'rw'],
      ['db0', '10G', '11', '02', '102FCA24', 'rw'],
      ['ro0', '1G', '10', '02', '002FCA24', 'ro'],
    ]);
    // Aligned: every row starts its SIZE column at the same place.
    const sizeColumn = rows[0]!.indexOf('SIZE');
    for (const row of rows) expect(row.slice(sizeColumn - 2, sizeColumn)).toBe('  ');

    const info = await lunrig(['lun', 'info', 'db0', '--server', url]);
    expect(info.code).toBe(0);
    expect(info.stdout).toMatch(/^name:\s+db0$/m);
    expect(info.stdout).toMatch(/^size:\s+10G \(10737418240 bytes\)$/m);
    expect(info.stdout).toMatch(/^LSS:\s+11 \(2105:FCA24:11\)$/m);
    expect(info.stdout).toMatch(/^volume id:\s+102FCA24$/m);
    expect(info.stdout).toMatch(/^allocated:\s+\S+/m);
    expect(await lunJson(url, ['info', 'db0'])).toMatchObject({ name: 'db0', size: 10 * GiB, allocatedBytes: expect.any(Number) });

    const grown = await lunrig(['lun', 'grow', 'db0', '--size', '20G', '--server', url]);
    expect(grown).toEqual({ code: 0, stdout: 'LUN db0 is now 20G (21474836480 bytes)\n', stderr: '' });
    expect((await lunJson(url, ['grow', 'db0', '--size', '21G'])).size).toBe(21 * GiB);

    const deleted = await lunrig(['lun', 'delete', 'db0', '--server', url]);
    expect(deleted).toEqual({ code: 0, stdout: 'deleted LUN db0\n', stderr: '' });
    expect(await lunJson(url, ['delete', 'ro0'])).toEqual({ deleted: 'ro0' });
    expect((await lunJson<{ luns: Array<{ name: string }> }>(url, ['list'])).luns.map((l) => l.name)).toEqual(['lun0', 'lun1', 'lun2', 'lun3']);
  });

  it('finds the server through $LUNRIG_SERVER, and --json works before the subcommand too', async () => {
    const { url } = await serve(temp.make());
    const run = await lunrig(['--json', 'lun', 'ls'], { LUNRIG_SERVER: url });
    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout).luns).toHaveLength(4);
  });

  it('API errors: exit 1 and one stderr line `lunrig: CODE: message`; nothing changes', async () => {
    const { url } = await serve(temp.make());
    const s = ['--server', url];
    const cases: Array<[string[], string]> = [
      [['info', 'x'], 'LUN_NOT_FOUND'],
      [['delete', 'x'], 'LUN_NOT_FOUND'],
      [['grow', 'x', '--size', '2G'], 'LUN_NOT_FOUND'],
      [['create', 'lun0', '--size', '1G'], 'LUN_EXISTS'],
      [['create', 'y', '--size', '1000'], 'INVALID_SIZE'],
      [['create', 'y', '--size', '0'], 'INVALID_SIZE'],
      [['create', 'y', '--size', 'lots'], 'INVALID_SIZE'],
      [['create', 'y', '--size', '1G', '--lss', '20'], 'LSS_NOT_FOUND'],
      [['create', 'bad/name', '--size', '1G'], 'INVALID_ARGUMENT'],
      [['grow', 'lun0', '--size', '512M'], 'SHRINK_NOT_SUPPORTED'],
      // --json does not change how failures are reported.
      [['info', 'x', '--json'], 'LUN_NOT_FOUND'],
    ];
    const runs = await Promise.all(cases.map(([args]) => lunrig(['lun', ...args, ...s])));
    runs.forEach((run, i) => expectFailure(run, 1, cases[i]![1]));
    expect(runs[0]!.stderr).toBe("lunrig: LUN_NOT_FOUND: no LUN named 'x'\n");
    const { luns } = await lunJson<{ luns: Array<{ name: string; size: number }> }>(url, ['list']);
    expect(luns.map((l) => [l.name, l.size])).toEqual(DEFAULT_LUNS.map((l) => [l.name, GiB]));
  });

  it('no server: exit 1 with UNREACHABLE and a hint', async () => {
    const url = await freePortUrl();
    const line = expectFailure(await lunrig(['lun', 'list', '--server', url]), 1, 'UNREACHABLE');
    expect(line).toBe(`lunrig: UNREACHABLE: cannot reach lunrig server at ${url}: is \`lunrig serve\` running?`);
    expectFailure(await lunrig(['lun', 'list', '--server', 'not a url']), 1, 'INVALID_ARGUMENT');
  });

  it('usage errors: exit 2 with one stderr line', async () => {
    const cases = [['lun', 'create', 'y'], ['lun', 'create'], ['lun', 'creat', 'y'], ['lun', 'list', '--bogus'], ['frobnicate'], ['serve', '--io', 'magic']];
    const runs = await Promise.all(cases.map((args) => lunrig(args)));
    for (const run of runs) expectFailure(run, 2, 'USAGE');
    expect(runs[0]!.stderr).toBe("lunrig: USAGE: required option '--size <size>' not specified (see lunrig --help)\n");
  });
});

describe('lunrig', () => {
  it('--version prints the package version', async () => {
    expect(await lunrig(['--version'])).toEqual({ code: 0, stdout: `${VERSION}\n`, stderr: '' });
  });

  it('--control accepts HOST:PORT, [v6]:PORT and :PORT', () => {
    expect(parseHostPort('0.0.0.0:10810')).toEqual({ host: '0.0.0.0', port: 10810 });
    expect(parseHostPort('[::1]:0')).toEqual({ host: '::1', port: 0 });
    expect(parseHostPort(':9000')).toEqual({ host: '127.0.0.1', port: 9000 });
    for (const bad of ['localhost', '1.2.3.4:', '1.2.3.4:99999', '::1:80', 'h:p']) expect(() => parseHostPort(bad), bad).toThrow();
  });
});
