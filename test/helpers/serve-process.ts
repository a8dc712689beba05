/**
 * `lunrig serve` as a real child process for integration tests: a temp pool,
 * the control API and NBD on free TCP ports, NBD also on a unix socket in the
 * temp dir; ready when `serve --json` has printed its summary. Processes are
 * stopped by pid and temp dirs removed by `stopAllServes()` (call it in
 * afterAll/afterEach), also when a test failed. Needs a build
 * (`npx tsc -p tsconfig.build.json`).
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { ServeSummary } from '../../src/cli/serve.js';
import { tempDirs } from './temp-dir.js';

export const LUNRIG_MAIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../dist/cli/main.js');

export function requireBuild(): void {
  if (!existsSync(LUNRIG_MAIN)) throw new Error(`${LUNRIG_MAIN} is missing: run \`npm run build\` (or npx tsc -p tsconfig.build.json) first`);
}

/** The caller's environment without lunrig's own variables, so a developer's settings cannot leak in. */
export function cleanEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const name of ['LUNRIG_SERVER', 'LUNRIG_DATA', 'LUNRIG_IO']) delete env[name];
  return env;
}

export interface ServeOptions {
  /** Pool directory; a fresh temp one when absent (pass the previous one to restart on the same pool). */
  dataDir?: string;
  /** Extra `serve` arguments (a later flag wins, e.g. `--nbd none`). */
  args?: string[];
  /** Serve NBD on a unix socket in the temp dir too (default true). */
  socket?: boolean;
  /** Summary wait (default 45 s: creating the default LUNs fsyncs a dozen times, slow on a busy disk). */
  timeoutMs?: number;
}

export interface ServeProcess {
  child: ChildProcess;
  pid: number;
  dataDir: string;
  /** The NBD unix socket. */
  socket: string;
  /** The control API URL. */
  url: string;
  /** The one JSON document `serve --json` printed. */
  summary: ServeSummary;
  /** NBD TCP listener, when there is one. */
  tcp: { host: string; port: number } | undefined;
  stderr(): string;
  /** `nbd+unix:///NAME?socket=...` */
  uri(exportName: string): string;
  /** `nbd://HOST:PORT/NAME` */
  tcpUri(exportName: string): string;
  /** Run `lunrig ARGS --server URL` to completion. */
  cli(args: string[]): Promise<CliRun>;
  /** Signal the process by pid (default SIGTERM) and wait for it to exit. */
  stop(signal?: NodeJS.Signals): Promise<Exit>;
}

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

const temp = tempDirs('lunrig-serve-');

export async function startServe(options: ServeOptions = {}): Promise<ServeProcess> {
  const { child, pid, dataDir, socket, lines, stderr, exited } = await spawnServe(['--json', ...(options.args ?? [])], options, (line) => line.startsWith('{'));
  const summary = JSON.parse(lines[0]!) as ServeSummary;
  const tcpUrl = summary.services.find((s) => s.url.startsWith('nbd://'))?.url;
  const tcp = tcpUrl ? { host: new URL(tcpUrl).hostname, port: Number(new URL(tcpUrl).port) } : undefined;
  const served: ServeProcess = {
    child,
    pid,
    dataDir,
    socket,
    url: summary.control,
    summary,
    tcp,
    stderr,
    uri: (name) => `nbd+unix:///${name}?socket=${socket}`,
    tcpUri: (name) => {
      if (!tcp) throw new Error('this server has no NBD TCP listener');
      return `nbd://${tcp.host}:${tcp.port}/${name}`;
    },
    cli: (cliArgs) => runLunrig([...cliArgs, '--server', summary.control]),
    stop: (signal = 'SIGTERM') => stopByPid(pid, child, exited, signal),
  };
  return served;
}

/** `serve` without --json: resolves once the human summary is out ("Stop with ..."); `stdout()` keeps growing. */
export async function startServeHuman(options: ServeOptions = {}): Promise<{ pid: number; stdout(): string; stderr(): string; stop(signal?: NodeJS.Signals): Promise<Exit> }> {
  const { child, pid, lines, stderr, exited } = await spawnServe(options.args ?? [], options, (line) => line.startsWith('Stop with'));
  return { pid, stdout: () => lines.join('\n'), stderr, stop: (signal = 'SIGTERM') => stopByPid(pid, child, exited, signal) };
}

type Exit = { code: number | null; signal: NodeJS.Signals | null };

const running = new Map<number, () => Promise<Exit>>();

/** Start `serve` with a temp pool, free ports and a socket in the temp dir; resolve when `ready` accepts a stdout line. */
async function spawnServe(extra: string[], options: ServeOptions, ready: (line: string) => boolean) {
  requireBuild();
  const dir = temp.make();
  const dataDir = options.dataDir ?? path.join(dir, 'pool');
  const socket = path.join(dir, 'nbd.sock');
  const socketArgs = options.socket === false ? [] : ['--nbd-socket', socket];
  const args = [LUNRIG_MAIN, 'serve', '--data', dataDir, '--control', '127.0.0.1:0', '--nbd', '127.0.0.1:0', ...socketArgs, ...extra];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env: cleanEnv() });
  const pid = child.pid;
  const exited = new Promise<Exit>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  if (pid === undefined) throw new Error('lunrig serve did not start');
  running.set(pid, () => stopByPid(pid, child, exited, 'SIGKILL'));
  let stderrText = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderrText += chunk.toString()));
  const lines: string[] = [];
  const timeoutMs = options.timeoutMs ?? 45_000;
  let timer: NodeJS.Timeout | undefined;
  try {
    await new Promise<void>((resolve, reject) => {
      createInterface({ input: child.stdout! }).on('line', (line) => {
        lines.push(line);
        if (ready(line)) resolve();
      });
      void exited.then(({ code, signal }) => reject(new Error(`lunrig serve exited (${code ?? signal}) before serving: ${stderrText}`)));
      timer = setTimeout(() => reject(new Error(`lunrig serve was not ready in ${timeoutMs} ms: ${stderrText}`)), timeoutMs);
    });
  } catch (err) {
    await stopByPid(pid, child, exited, 'SIGKILL');
    throw err;
  } finally {
    clearTimeout(timer);
  }
  return { child, pid, dataDir, socket, lines, stderr: () => stderrText, exited };
}

/** Signal by pid and wait for the exit; a process already gone just reports how it ended. */
async function stopByPid(pid: number, child: ChildProcess, exited: Promise<Exit>, signal: NodeJS.Signals): Promise<Exit> {
  if (child.exitCode === null && child.signalCode === null) {
    try {
      process.kill(pid, signal);
    } catch {
      // exited meanwhile
    }
  }
  const result = await exited;
  running.delete(pid);
  return result;
}

/** Kill (SIGKILL, by pid) every server still running and remove the temp dirs. */
export async function stopAllServes(): Promise<void> {
  await Promise.all([...running.values()].map((kill) => kill()));
  temp.cleanup();
}

/** Run the CLI to completion. */
export function runLunrig(args: string[], env: Record<string, string> = {}): Promise<CliRun> {
  return new Promise((resolve) => {
    execFile(process.execPath, [LUNRIG_MAIN, ...args], { env: { ...cleanEnv(), ...env }, timeout: 30_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

/** The CLI with --json against a running server; fails unless it exits 0 with nothing on stderr. */
export async function cliJson<T = unknown>(server: ServeProcess, args: string[]): Promise<T> {
  const run = await server.cli([...args, '--json']);
  if (run.code !== 0 || run.stderr !== '') throw new Error(`lunrig ${args.join(' ')} exited ${run.code}: ${run.stderr}`);
  return JSON.parse(run.stdout) as T;
}
