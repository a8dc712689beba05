/**
 * `lunrig ess ...`: the ESS Copy Services command line (spec §4.4, §6.3 of
 * the Redbook), with its return codes and output strings, so the document's
 * scripts run unchanged against a lunrig server:
 *
 *   rsExecuteTask    [-v] [-u user -p password] -s server [-b backup] TASK...
 *   rsQuery          [-v] [-u user -p password] -s server [-b backup] (-q VOLUME | -f FILE)
 *   rsQueryComplete  [-v] [-u user -p password] [-m minutes] [-t threshold] -s server [-b backup] TASK...
 *   rsList2105s      [-s server | server]
 *   rsTestConnection [-v] -s server
 *
 * The server is a host name or address (the control API's default port
 * 10810), HOST:PORT or an http:// URL. Return codes (§6.3.4): 0 success;
 * 1/2 user name / password missing (given one without the other: lunrig
 * has no CLI users, so credentials are otherwise not checked); 3 no server;
 * 4 no task names; 10 a parameter without its value; 11/12 -m/-t without a
 * value; 13 none of the volumes exists; 14 neither -q nor -f; 15 both;
 * 16 more than two volumes on a line of the -f file; 17 the file does not
 * exist; 18 no volumes in it; 40 rsTestConnection could not reach the
 * server; 41 the primary is down and no backup was given; 42 primary and
 * backup are down; 43 something answered that is not a lunrig server;
 * 80 the command failed (a refused FlashCopy or PPRC operation, an unknown
 * task, a task that is not running for rsQueryComplete, or whose copy stopped
 * short of the threshold: a PPRC pair that suspended while it waited).
 */
import { existsSync, readFileSync } from 'node:fs';
import { ControlClient, type ExportInfo, type LunInfo } from '../control/client.js';
import { DEFAULT_CONTROL_PORT } from '../control/defaults.js';
import { isLunrigError } from '../errors.js';
import { FlashCopyClient } from './commands-flashcopy.js';
import { TaskClient } from './commands-task.js';

export const RC = {
  OK: 0,
  NO_USER: 1,
  NO_PASSWORD: 2,
  NO_SERVER: 3,
  NO_TASKS: 4,
  MISSING_PARAMETERS: 10,
  NO_MINUTES: 11,
  NO_THRESHOLD: 12,
  NO_VOLUMES_FOUND: 13,
  NO_VOLUME_LIST: 14,
  CONFLICTING: 15,
  TOO_MANY_PER_LINE: 16,
  NO_FILE: 17,
  NO_VOLUMES: 18,
  CONNECT_FAILED: 40,
  PRIMARY_DOWN: 41,
  BOTH_DOWN: 42,
  COMMUNICATION: 43,
  FAILED: 80,
} as const;

export interface EssIo {
  out(line: string): void;
  err(line: string): void;
  sleep(ms: number): Promise<void>;
}

const processIo: EssIo = {
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
};

interface Parsed {
  flags: Map<string, string | true>;
  args: string[];
}

/** Flags that take a value; everything else starting with '-' is a switch. */
const VALUE_FLAGS = new Set(['-u', '-p', '-s', '-b', '-q', '-f', '-m', '-t', '-d']);

class EssExit extends Error {
  constructor(
    readonly rc: number,
    message: string,
  ) {
    super(message);
  }
}

function fail(rc: number, message: string): never {
  throw new EssExit(rc, message);
}

function parse(argv: readonly string[]): Parsed {
  const flags = new Map<string, string | true>();
  const args: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith('-') || a === '-') {
      args.push(a);
      continue;
    }
    if (!VALUE_FLAGS.has(a)) {
      flags.set(a, true);
      continue;
    }
    const v = argv[i + 1];
    if (v === undefined || (v.startsWith('-') && VALUE_FLAGS.has(v))) {
      if (a === '-s') fail(RC.NO_SERVER, 'Server name not specified');
      if (a === '-m') fail(RC.NO_MINUTES, 'Missing parameter minutes between samples');
      if (a === '-t') fail(RC.NO_THRESHOLD, 'Missing parameter threshold');
      fail(RC.MISSING_PARAMETERS, `Missing parameters: ${a}`);
    }
    flags.set(a, v);
    i++;
  }
  return { flags, args };
}

function value(p: Parsed, flag: string): string | undefined {
  const v = p.flags.get(flag);
  return typeof v === 'string' ? v : undefined;
}

export function serverUrl(server: string): string {
  if (/^https?:\/\//.test(server)) return server;
  if (/^\[.*\]:\d+$/.test(server) || /^[^:]+:\d+$/.test(server)) return `http://${server}`;
  return `http://${server.includes(':') ? `[${server}]` : server}:${DEFAULT_CONTROL_PORT}`;
}

/** -u / -p: lunrig has no CLI users; one without the other is still the document's error. */
function checkCredentials(p: Parsed): void {
  const user = p.flags.has('-u');
  const password = p.flags.has('-p');
  if (password && !user) fail(RC.NO_USER, 'User name not specified');
  if (user && !password) fail(RC.NO_PASSWORD, 'Password not specified');
}

/** The first of primary and backup that answers (41 / 42 when none does, 43 when something else answers). */
async function connect(p: Parsed, io: EssIo): Promise<ControlClient> {
  const primary = value(p, '-s');
  if (primary === undefined) fail(RC.NO_SERVER, 'Server name not specified');
  const backup = value(p, '-b');
  const verbose = p.flags.has('-v');
  for (const [i, server] of [primary, backup].entries()) {
    if (server === undefined) continue;
    const client = new ControlClient(serverUrl(server), { timeoutMs: 24 * 3600_000 });
    try {
      const system = await new ControlClient(client.baseUrl, { timeoutMs: 10_000 }).system();
      if (verbose) {
        // The ESS's connection log (spec §4.4), with the port actually used.
        io.out(`rsClientImpl: Successfully connected to Name Server, port = ${new URL(client.baseUrl).port || DEFAULT_CONTROL_PORT}`);
        io.out(`Server identity = IBM2105 Copy Services/1.1.0 (lunrig ${system.version}, ${i === 0 ? 'primary' : 'backup'} server ${server})`);
      }
      return client;
    } catch (err) {
      if (isLunrigError(err, 'UNREACHABLE')) continue;
      fail(RC.COMMUNICATION, `failed while creating communication to server ${server}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  if (backup === undefined) fail(RC.PRIMARY_DOWN, 'Primary server down and no backup server specified');
  fail(RC.BOTH_DOWN, 'Primary and backup server down');
}

function describeError(err: unknown): string {
  return isLunrigError(err) ? `${err.code}: ${err.message}` : err instanceof Error ? err.message : String(err);
}

async function rsExecuteTask(p: Parsed, io: EssIo): Promise<number> {
  checkCredentials(p);
  if (value(p, '-s') === undefined) fail(RC.NO_SERVER, 'Server name not specified');
  if (p.args.length === 0) fail(RC.NO_TASKS, 'No task names specified');
  const tasks = new TaskClient(await connect(p, io));
  // One after another, each to completion ("waits for these tasks to complete execution"); the first failure stops the list.
  for (const name of p.args) {
    let run;
    try {
      run = await tasks.execute(name);
    } catch (err) {
      io.err(`rsExecuteTask: task ${name} failed: ${describeError(err)}`);
      return RC.FAILED;
    }
    if (run.status !== 'succeeded') {
      io.err(`rsExecuteTask: task ${name} failed: ${run.error ? `${run.error.code}: ${run.error.message}` : run.status}`);
      return RC.FAILED;
    }
    io.out(`rsExecuteTask: task ${name} completed successfully`);
  }
  return RC.OK;
}

/** The volumes of an rsQuery -f file: one per line, or pairs of serial numbers. */
function volumeFile(file: string): string[] {
  if (!existsSync(file)) fail(RC.NO_FILE, `Volume list file "${file}" does not exist`);
  const volumes: string[] = [];
  for (const line of readFileSync(file, 'utf8').split(/\r?\n/)) {
    const words = line.trim().split(/\s+/).filter(Boolean);
    if (words.length > 2) fail(RC.TOO_MANY_PER_LINE, `More volume/s per line: ${line.trim()}`);
    volumes.push(...words);
  }
  if (volumes.length === 0) fail(RC.NO_VOLUMES, 'No volumes specified');
  return volumes;
}

async function rsQuery(p: Parsed, io: EssIo): Promise<number> {
  checkCredentials(p);
  if (value(p, '-s') === undefined) fail(RC.NO_SERVER, 'Server name not specified');
  const q = value(p, '-q');
  const f = value(p, '-f');
  if (q !== undefined && f !== undefined) fail(RC.CONFLICTING, 'Conflicting parameters: -q and -f were both specified');
  if (q === undefined && f === undefined) fail(RC.NO_VOLUME_LIST, 'Volume list not specified');
  const volumes = q !== undefined ? [q] : volumeFile(f!);
  const client = await connect(p, io);
  const fc = new FlashCopyClient(client);
  let luns: LunInfo[];
  try {
    luns = await client.listLuns();
  } catch (err) {
    io.err(`rsQuery: ${describeError(err)}`);
    return RC.FAILED;
  }
  let found = 0;
  for (const id of volumes) {
    const lun = luns.find((l) => l.volumeId.toUpperCase() === id.toUpperCase());
    if (!lun) {
      io.err(`Volume ${id} not found`);
      continue;
    }
    try {
      const [where, state, ...notes] = (await fc.query(lun.name)).ess;
      io.out(where!);
      io.out(state!);
      for (const n of notes) io.err(n);
      found++;
    } catch (err) {
      io.err(`rsQuery: volume ${id}: ${describeError(err)}`);
      return RC.FAILED;
    }
  }
  return found === 0 ? RC.NO_VOLUMES_FOUND : RC.OK;
}

async function rsQueryComplete(p: Parsed, io: EssIo): Promise<number> {
  checkCredentials(p);
  const minutesText = value(p, '-m') ?? '1';
  const thresholdText = value(p, '-t') ?? '100';
  const minutes = Number(minutesText);
  const threshold = Number(thresholdText);
  if (!(minutes > 0)) fail(RC.NO_MINUTES, `Missing parameter minutes between samples: '${minutesText}' is not a positive number`);
  if (!(threshold >= 0 && threshold <= 100)) fail(RC.NO_THRESHOLD, `Missing parameter threshold: '${thresholdText}' is not a percentage`);
  if (value(p, '-s') === undefined) fail(RC.NO_SERVER, 'Server name not specified');
  if (p.args.length === 0) fail(RC.NO_TASKS, 'No task names specified');
  const tasks = new TaskClient(await connect(p, io));
  const pending = new Set(p.args);
  let first = true;
  for (;;) {
    for (const name of [...pending]) {
      let progress;
      try {
        progress = await tasks.progress(name);
      } catch (err) {
        io.err(`rsQueryComplete: task ${name}: ${describeError(err)}`);
        return RC.FAILED;
      }
      // "returns 80 if the task is not running or has already completed" (App. A.2).
      if (first && !progress.running) {
        io.err(`rsQueryComplete: task ${name} is not running or has already completed`);
        return RC.FAILED;
      }
      io.out(`rsQueryComplete: task ${name} ${progress.percent}% complete`);
      // A copy that stopped short of the threshold (a PPRC pair suspended, the pair terminated) never completes.
      if (!progress.running && progress.percent < threshold) {
        const stopped = progress.items.filter((i) => i.percent < threshold).map((i) => `${i.name} ${i.state}`);
        io.err(`rsQueryComplete: task ${name} stopped copying at ${progress.percent}%${stopped.length > 0 ? ` (${stopped.join(', ')})` : ''}`);
        return RC.FAILED;
      }
      if (progress.percent >= threshold || !progress.running) pending.delete(name);
    }
    first = false;
    if (pending.size === 0) return RC.OK;
    await io.sleep(minutes * 60_000);
  }
}

async function rsList2105s(p: Parsed, io: EssIo): Promise<number> {
  if (value(p, '-s') === undefined && p.args[0] !== undefined) p.flags.set('-s', p.args[0]);
  if (value(p, '-s') === undefined) fail(RC.NO_SERVER, 'Server name not specified');
  const client = await connect(p, io);
  let luns: LunInfo[];
  let exports: ExportInfo[];
  try {
    [luns, exports] = await Promise.all([client.listLuns(), client.listExports()]);
  } catch (err) {
    io.err(`rsList2105s: ${describeError(err)}`);
    return RC.FAILED;
  }
  if (luns.length === 0) fail(RC.NO_VOLUMES_FOUND, 'No 2105 volumes found');
  // A lunrig host "disk" is an NBD export: its name stands where hdiskN would.
  const width = Math.max(14, ...luns.map((l) => l.name.length + 1));
  io.out(`${'disk name'.padEnd(width)} 2105 serial number`);
  io.out('-----');
  for (const lun of luns) io.out(`${(exports.some((e) => e.name === lun.name) ? lun.name : `(${lun.name})`).padEnd(width)} ${lun.volumeId}`);
  return RC.OK;
}

async function rsTestConnection(p: Parsed, io: EssIo): Promise<number> {
  const server = value(p, '-s');
  if (server === undefined) fail(RC.NO_SERVER, 'Server name not specified');
  const verbose = p.flags.has('-v');
  if (verbose) io.out(`rsWebTest: Using ${server} as server name`);
  try {
    await new ControlClient(serverUrl(server), { timeoutMs: 10_000 }).system();
  } catch (err) {
    io.err(`rsWebTest: Failed to connect to server ${server}: ${describeError(err)}`);
    return isLunrigError(err, 'UNREACHABLE') ? RC.CONNECT_FAILED : RC.COMMUNICATION;
  }
  io.out('rsWebTest: HeartBeat to the server was successful.');
  if (verbose) io.out('rsWebTest: command successful');
  return RC.OK;
}

const COMMANDS: Record<string, (p: Parsed, io: EssIo) => Promise<number>> = {
  rsExecuteTask,
  rsQuery,
  rsQueryComplete,
  rsList2105s,
  rsTestConnection,
};

export const ESS_USAGE = `usage: lunrig ess <command> [ESS CLI arguments]
  rsExecuteTask    [-v] [-u user -p password] -s server [-b backup] TASK...
  rsQuery          [-v] [-u user -p password] -s server [-b backup] (-q VOLUME | -f FILE)
  rsQueryComplete  [-v] [-u user -p password] [-m minutes] [-t threshold] -s server [-b backup] TASK...
  rsList2105s      [-s server | server]
  rsTestConnection [-v] -s server
The server is HOST (port ${DEFAULT_CONTROL_PORT}), HOST:PORT or an http:// URL. Return codes as the ESS CLI (0, 1-18, 40-43, 80).`;

/** Run one ESS CLI command (argv after `ess`); returns its return code. */
export async function runEss(argv: readonly string[], io: EssIo = processIo): Promise<number> {
  const [name, ...rest] = argv;
  // The scripts' names end in .sh or .bat; both are accepted.
  const command = name === undefined ? undefined : COMMANDS[name.replace(/\.(sh|bat)$/, '')];
  if (!command) {
    io.err(name === undefined || name === '--help' || name === '-h' ? ESS_USAGE : `lunrig ess: unknown command '${name}'\n${ESS_USAGE}`);
    return name === '--help' || name === '-h' ? RC.OK : RC.MISSING_PARAMETERS;
  }
  try {
    return await command(parse(rest), io);
  } catch (err) {
    if (err instanceof EssExit) {
      io.err(err.message);
      return err.rc;
    }
    io.err(`System exception occurred: ${describeError(err)}`);
    return 60;
  }
}
