/**
 * Shared by the NBD interop tests: an in-process NbdServer on a unix socket in
 * a temp dir, child processes that are always cleaned up, and tool detection
 * so a missing client skips its tests with a visible reason. Children are
 * spawned asynchronously: the server runs in this process and must keep
 * serving while they run.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ExportRegistry, type ExportEntry } from '../../src/nbd/export-provider.js';
import { NbdServer } from '../../src/nbd/server.js';
import type { NbdServerOptions } from '../../src/nbd/server-options.js';

export const MiB = 1024 * 1024;

const toolCache = new Map<string, boolean>();

/** Whether a command is on PATH. */
export function haveTool(name: string): boolean {
  if (!toolCache.has(name)) toolCache.set(name, spawnSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' }).status === 0);
  return toolCache.get(name)!;
}

/** Reason to skip when a tool is missing (printed by the test runner as the skipped test's name). */
export function missing(...tools: string[]): string | undefined {
  const absent = tools.filter((t) => !haveTool(t));
  return absent.length ? `skipped: ${absent.join(', ')} not installed` : undefined;
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

const children = new Set<ChildProcess>();

/** Run a command asynchronously, killing it after `timeoutMs`. */
export function run(cmd: string, args: string[], o: { timeoutMs?: number; onSpawn?: (child: ChildProcess) => void } = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(child);
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), o.timeoutMs ?? 60_000);
    child.on('error', (err) => {
      clearTimeout(timer);
      children.delete(child);
      reject(err);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      children.delete(child);
      resolve({ code, signal, stdout, stderr });
    });
    o.onSpawn?.(child);
  });
}

/** Run and require exit status 0. */
export async function runOk(cmd: string, args: string[], o: { timeoutMs?: number } = {}): Promise<RunResult> {
  const r = await run(cmd, args, o);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.code ?? r.signal}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  return r;
}

export interface Daemon {
  child: ChildProcess;
  stop(): Promise<void>;
}

/** Start a long-running server process and wait until its unix socket accepts connections. */
export async function startDaemon(cmd: string, args: string[], socketPath: string, timeoutMs = 10_000): Promise<Daemon> {
  const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  children.add(child);
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<void>((resolve) => child.once('close', () => resolve()));
  const deadline = Date.now() + timeoutMs;
  // The socket file exists from bind(), before listen(): probe with a real connect.
  while (!(await accepts(socketPath))) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`${cmd} did not start: ${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  return {
    child,
    async stop() {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
      await exited;
      clearTimeout(timer);
      children.delete(child);
    },
  };
}

function accepts(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = net.connect({ path });
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
}

export function killChildren(): void {
  for (const c of children) c.kill('SIGKILL');
  children.clear();
}

export interface InteropServer {
  server: NbdServer;
  registry: ExportRegistry;
  dir: string;
  path: string;
  uri(exportName: string): string;
  close(): Promise<void>;
}

export async function startInteropServer(exports: ExportEntry[], options: Partial<NbdServerOptions> = {}): Promise<InteropServer> {
  const dir = await mkdtemp(join(tmpdir(), 'lunrig-nbd-it-'));
  const path = join(dir, 'nbd.sock');
  const registry = new ExportRegistry(exports);
  const server = new NbdServer({ ...options, exports: registry });
  await server.listen({ path });
  return {
    server,
    registry,
    dir,
    path,
    uri: (exportName) => `nbd+unix:///${exportName}?socket=${path}`,
    async close() {
      killChildren();
      await server.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export async function sha256File(path: string, length?: number): Promise<string> {
  const h = createHash('sha256');
  const stream = createReadStream(path, length === undefined ? {} : { start: 0, end: length - 1 });
  for await (const chunk of stream) h.update(chunk as Buffer);
  return h.digest('hex');
}

export function sha256(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Deterministic pseudo-random bytes (the shared test helper, re-exported for the integration tests). */
export { pattern } from '../helpers/patterns.js';
