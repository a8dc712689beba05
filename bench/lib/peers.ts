/**
 * Server processes for the NBD benchmark: start nbdkit's file plugin and
 * qemu-nbd on a unix socket, wait until they answer NBD, read their CPU time,
 * and stop them by pid. The process helpers are shared with lunrig-nbd.ts.
 *
 * Every child is recorded in `liveChildren` until it has exited, so a Ctrl-C
 * handler can kill exactly the processes this harness started
 * (killAllChildren). When `setpriv` is on PATH, children also get
 * PR_SET_PDEATHSIG=SIGKILL, so they die with the harness even if it is
 * SIGKILLed itself.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { nbdUnixUri } from './fio.js';

export interface ServerProcess {
  /** Short name used in tables and --servers: lunrig, nbdkit, qemu-nbd. */
  name: string;
  /** What ran, with the options that matter, for the report. */
  description: string;
  uri: string;
  pid: number;
  /** The file the server serves (fdatasync'ed between runs so writeback of one run does not land in the next). */
  backingFile: string;
  /** Seconds of CPU (user + system, all threads) the process has used; undefined when /proc is unavailable. */
  cpuSeconds(): number | undefined;
  /** How the process ended ('exited with 1', 'killed by SIGSEGV'), or undefined while it runs. */
  exitStatus(): string | undefined;
  /** The last few KiB it wrote to stdout and stderr. */
  output(): string;
  /** SIGTERM, then SIGKILL after a grace period; resolves once the process is gone. Idempotent. */
  stop(): Promise<void>;
}

// ---- generic child-process handling ----

interface TrackedChild {
  child: ChildProcess;
  name: string;
  exited: Promise<void>;
  /** Last few KiB of stderr and stdout, for error messages. */
  output(): string;
  exitStatus(): string | undefined;
}

/** pid -> name of every child started here and not yet exited. */
const liveChildren = new Map<number, string>();

let setprivPath: string | null | undefined;
function setpriv(): string | null {
  if (setprivPath === undefined) {
    const r = spawnSync('sh', ['-c', 'command -v setpriv'], { encoding: 'utf8' });
    setprivPath = r.status === 0 && spawnSync(r.stdout.trim(), ['--pdeathsig', 'KILL', '--', 'true']).status === 0 ? r.stdout.trim() : null;
  }
  return setprivPath;
}

/** Whether a command is on PATH. */
export function haveCommand(name: string): boolean {
  return spawnSync('sh', ['-c', `command -v "$1"`, 'sh', name], { stdio: 'ignore' }).status === 0;
}

/** First line of `cmd --version`, or undefined. */
export function versionOf(cmd: string, args = ['--version']): string | undefined {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.split('\n')[0]?.trim() : undefined;
}

/** Spawn a long-running child and track it until it exits. `stdin: 'pipe'` lets the child notice our death by EOF. */
export function spawnTracked(name: string, cmd: string, args: string[], o: { stdin?: 'pipe' | 'ignore'; env?: NodeJS.ProcessEnv } = {}): TrackedChild {
  const sp = setpriv();
  const [file, argv] = sp ? [sp, ['--pdeathsig', 'KILL', '--', cmd, ...args]] : [cmd, args];
  const child = spawn(file, argv, { stdio: [o.stdin ?? 'ignore', 'pipe', 'pipe'], env: o.env ?? process.env });
  let buf = '';
  const keep = (b: Buffer): void => {
    buf = (buf + b.toString()).slice(-8192);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  let status: string | undefined;
  const exited = new Promise<void>((resolve) => {
    child.on('error', (err) => {
      status = `failed to start: ${err.message}`;
      resolve();
    });
    child.on('exit', (code, signal) => {
      status = signal ? `killed by ${signal}` : `exited with ${code}`;
      resolve();
    });
  }).finally(() => {
    if (child.pid !== undefined) liveChildren.delete(child.pid);
  });
  const tracked: TrackedChild = { child, name, exited, output: () => buf.trim(), exitStatus: () => status };
  if (child.pid !== undefined) liveChildren.set(child.pid, name);
  return tracked;
}

/** SIGTERM, wait up to `graceMs`, then SIGKILL; only this pid, never a process group or a name. */
export async function stopTracked(t: TrackedChild, graceMs = 5000): Promise<void> {
  if (t.exitStatus() !== undefined) return;
  t.child.kill('SIGTERM');
  let timer: NodeJS.Timeout | undefined;
  const killed = new Promise<void>((resolve) => {
    timer = setTimeout(() => {
      t.child.kill('SIGKILL');
      resolve();
    }, graceMs);
  });
  await Promise.race([t.exited, killed]);
  clearTimeout(timer);
  await t.exited;
}

/**
 * Signal every child still alive, by pid. SIGTERM lets fio stop its job
 * processes and servers shut down; SIGKILL (the default) is the synchronous
 * last resort for exit handlers and forgets the children.
 */
export function killAllChildren(signal: NodeJS.Signals = 'SIGKILL'): void {
  for (const pid of [...liveChildren.keys()]) {
    try {
      process.kill(pid, signal);
    } catch {
      /* already gone */
    }
    if (signal === 'SIGKILL') liveChildren.delete(pid);
  }
}

/** Track a short-lived child (fio) by pid so killAllChildren reaches it too. */
export function trackPid(pid: number, name: string): void {
  liveChildren.set(pid, name);
}

export function untrackPid(pid: number): void {
  liveChildren.delete(pid);
}

let clockTicks: number | undefined;
/** utime + stime of a process from /proc/PID/stat, in seconds (covers all its threads). */
export function processCpuSeconds(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name, which sits in parentheses and may contain spaces.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // rest[0] is field 3 (state); utime and stime are fields 14 and 15.
    const ticks = Number(rest[11]) + Number(rest[12]);
    clockTicks ??= Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;
    return Number.isFinite(ticks) ? ticks / clockTicks : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Wait until an NBD server answers on `uri` with an export of `size` bytes
 * (nbdinfo --size), or fail with the server's output when it exits or the
 * time runs out.
 */
export async function waitForNbd(t: TrackedChild, uri: string, size: number, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    const status = t.exitStatus();
    if (status !== undefined) throw new Error(`${t.name} ${status} before serving ${uri}${t.output() ? `:\n${t.output()}` : ''}`);
    const r = await new Promise<{ code: number | null; out: string }>((resolve) => {
      const c = spawn('nbdinfo', ['--size', uri], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      c.stdout.on('data', (b: Buffer) => (out += b.toString()));
      c.stderr.on('data', (b: Buffer) => (out += b.toString()));
      c.on('error', (err) => resolve({ code: -1, out: err.message }));
      c.on('close', (code) => resolve({ code, out: out.trim() }));
    });
    if (r.code === 0) {
      if (Number(r.out) !== size) throw new Error(`${t.name} serves ${r.out} bytes at ${uri}, expected ${size}`);
      return;
    }
    last = r.out;
    if (Date.now() > deadline) throw new Error(`${t.name} did not answer NBD at ${uri} within ${timeoutMs} ms (nbdinfo: ${last})${t.output() ? `\n${t.output()}` : ''}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

export function serverProcess(t: TrackedChild, o: { name: string; description: string; uri: string; backingFile: string }): ServerProcess {
  const pid = t.child.pid!;
  let stopping: Promise<void> | undefined;
  return {
    ...o,
    pid,
    cpuSeconds: () => processCpuSeconds(pid),
    exitStatus: () => t.exitStatus(),
    output: () => t.output(),
    stop: () => (stopping ??= stopTracked(t)),
  };
}

// ---- nbdkit ----

export interface NbdkitOptions {
  socket: string;
  file: string;
  exportName: string;
  size: number;
  /**
   * Threads per connection (nbdkit -t). The file plugin's thread model is
   * `parallel`, so up to this many requests of one connection run at once,
   * each a pread/pwrite on its own thread; nbdkit's default is 16.
   */
  threads?: number;
}

export async function startNbdkit(o: NbdkitOptions): Promise<ServerProcess> {
  const threads = o.threads ?? 16;
  // -f: stay in the foreground, so the pid we hold is the server; --exit-with-parent: die with us.
  const args = ['-f', '--exit-with-parent', '-U', o.socket, '--threads', String(threads), 'file', `file=${o.file}`];
  const t = spawnTracked('nbdkit', 'nbdkit', args);
  const uri = nbdUnixUri(o.exportName, o.socket);
  try {
    await waitForNbd(t, uri, o.size);
  } catch (err) {
    await stopTracked(t);
    throw err;
  }
  const version = versionOf('nbdkit') ?? 'nbdkit';
  return serverProcess(t, { name: 'nbdkit', description: `${version}, file plugin, --threads ${threads} (thread model parallel), page cache`, uri, backingFile: o.file });
}

// ---- qemu-nbd ----

export type QemuAio = 'threads' | 'io_uring' | 'native';
export type QemuCache = 'writeback' | 'writethrough' | 'none' | 'directsync' | 'unsafe';

export interface QemuNbdOptions {
  socket: string;
  file: string;
  exportName: string;
  size: number;
  /**
   * writeback (default): the page cache, flush = fdatasync, as lunrig and
   * nbdkit's file plugin do. `none` would add O_DIRECT (disk, not page cache)
   * and `unsafe` would drop flushes: neither compares like with like.
   */
  cache?: QemuCache;
  /** io_uring (default here): fewer thread hops than `threads`; `native` needs cache=none. */
  aio?: QemuAio;
}

export async function startQemuNbd(o: QemuNbdOptions): Promise<ServerProcess> {
  const cache = o.cache ?? 'writeback';
  const aio = o.aio ?? 'io_uring';
  // -t (--persistent): fio's nbd engine connects once for the size, disconnects, then connects for the
  // job; without -t qemu-nbd exits when that first client leaves. --shared=1 (default) is enough.
  const args = ['-f', 'raw', '-t', '-k', o.socket, '-x', o.exportName, `--cache=${cache}`, `--aio=${aio}`, o.file];
  const t = spawnTracked('qemu-nbd', 'qemu-nbd', args);
  const uri = nbdUnixUri(o.exportName, o.socket);
  try {
    await waitForNbd(t, uri, o.size);
  } catch (err) {
    await stopTracked(t);
    throw err;
  }
  const version = versionOf('qemu-nbd')?.replace(/\s*\(.*\)\s*$/, '') ?? 'qemu-nbd';
  return serverProcess(t, { name: 'qemu-nbd', description: `${version}, -f raw --cache=${cache} --aio=${aio}`, uri, backingFile: o.file });
}
