/**
 * fio over NBD: the workloads, the command line, running fio and reading its
 * JSON, and the arithmetic the report needs (medians, ratios). Everything but
 * runFio() is pure, so test/unit/bench/ checks it without starting anything.
 *
 * fio's nbd engine (engines/nbd.c, libnbd) takes the export size from the
 * server, opens one short connection in setup() to read that size and a second
 * one per job for the I/O, sends plain NBD_CMD_READ/WRITE without FUA, and
 * never flushes unless asked to. A failed connect makes fio exit 1 while its
 * JSON still says `"error": 0` with zero I/O, so a run is checked on the exit
 * status, the job error and the bytes moved, not on one of them.
 */
import { spawn } from 'node:child_process';
import { readFile, rm } from 'node:fs/promises';

export type FioRw = 'randread' | 'randwrite' | 'read' | 'write';

export interface Workload {
  /** Short id for --workloads and file names, e.g. `randread-4k`. */
  id: string;
  /** Human label, e.g. `4k randread QD32`. */
  label: string;
  rw: FioRw;
  /** Block size in bytes. */
  bs: number;
  iodepth: number;
  /** The figure that headlines this workload. */
  headline: 'iops' | 'mbps';
}

export const WORKLOADS: readonly Workload[] = Object.freeze([
  { id: 'randread-4k', label: '4k randread QD32', rw: 'randread', bs: 4096, iodepth: 32, headline: 'iops' },
  { id: 'randwrite-4k', label: '4k randwrite QD32', rw: 'randwrite', bs: 4096, iodepth: 32, headline: 'iops' },
  { id: 'read-1m', label: '1M read QD8', rw: 'read', bs: 1 << 20, iodepth: 8, headline: 'mbps' },
  { id: 'write-1m', label: '1M write QD8', rw: 'write', bs: 1 << 20, iodepth: 8, headline: 'mbps' },
]);

/** `nbd+unix:///EXPORT?socket=SOCK` (RFC-style NBD URI; the export name is percent-encoded). */
export function nbdUnixUri(exportName: string, socket: string): string {
  return `nbd+unix:///${encodeURIComponent(exportName)}?socket=${encodeURI(socket)}`;
}

export interface FioRunOptions {
  uri: string;
  /** Measured seconds (time_based). */
  runtime: number;
  /** Seconds run before measuring starts (fio's ramp_time; adds to the wall time). */
  ramp?: number;
  /** Where fio writes its JSON (--output): keeps engine chatter on stdout out of the JSON. */
  output: string;
  /** Job name (shows in fio's JSON). */
  name?: string;
}

/** The fio command line for one run: one job, one connection, time based, JSON out. */
export function fioArgs(w: Workload, o: FioRunOptions): string[] {
  const args = [
    `--name=${o.name ?? w.id}`,
    '--ioengine=nbd',
    `--uri=${o.uri}`,
    `--rw=${w.rw}`,
    `--bs=${w.bs}`,
    `--iodepth=${w.iodepth}`,
    '--numjobs=1',
    '--time_based',
    `--runtime=${o.runtime}`,
    '--output-format=json',
    `--output=${o.output}`,
  ];
  if (o.ramp && o.ramp > 0) args.push(`--ramp_time=${o.ramp}`);
  return args;
}

/** What one fio run measured, for its one data direction. */
export interface FioResult {
  rw: FioRw;
  iops: number;
  /** Bytes per second. */
  bwBytes: number;
  ioBytes: number;
  totalIos: number;
  /** Completion latency percentiles (clat_ns.percentile), in nanoseconds. */
  clatP50Ns: number;
  clatP99Ns: number;
  clatMeanNs: number;
  /** Measured milliseconds (fio's per-direction runtime). */
  runtimeMs: number;
  /** fio's own CPU, in percent of one core. */
  usrCpu: number;
  sysCpu: number;
}

export class FioError extends Error {
  override name = 'FioError';
}

/**
 * fio writes engine messages into the --output file ahead of the JSON (a
 * failed connect puts `fio: nbd_connect_uri: ...` there): start at the first
 * line that opens an object.
 */
export function extractJson(text: string): unknown {
  const line = /^\{\s*$/m.exec(text);
  const start = line ? line.index : text.indexOf('{');
  if (start < 0) throw new FioError(`fio produced no JSON: ${text.slice(0, 200) || '(empty output)'}`);
  try {
    return JSON.parse(text.slice(start));
  } catch (err) {
    throw new FioError(`fio JSON does not parse: ${(err as Error).message}`);
  }
}

type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

function num(o: Json, key: string, where: string): number {
  const v = o[key];
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new FioError(`fio JSON: ${where}.${key} is missing or not a number`);
  return v;
}

/** The percentile closest to `p` among fio's keys ("50.000000", "99.000000", ...). */
export function percentile(table: Json, p: number, where: string): number {
  let best: number | undefined;
  let bestDist = Infinity;
  for (const [k, v] of Object.entries(table)) {
    const d = Math.abs(Number(k) - p);
    if (typeof v === 'number' && d < bestDist) {
      best = v;
      bestDist = d;
    }
  }
  if (best === undefined || bestDist > 1e-6) throw new FioError(`fio JSON: ${where} has no ${p}th percentile`);
  return best;
}

/**
 * Read one run's figures out of fio's JSON and refuse a run that did not
 * really happen: a job error, no I/O, or I/O in the wrong direction.
 */
export function parseFioJson(json: unknown, rw: FioRw): FioResult {
  if (!isObject(json) || !Array.isArray(json.jobs)) throw new FioError('fio JSON has no jobs array');
  if (json.jobs.length !== 1) throw new FioError(`fio JSON has ${json.jobs.length} jobs, expected 1`);
  const job = json.jobs[0];
  if (!isObject(job)) throw new FioError('fio JSON job is not an object');
  const error = job.error;
  if (error !== 0) throw new FioError(`fio job '${String(job.jobname)}' failed with error ${String(error)}`);
  const dir = rw === 'read' || rw === 'randread' ? 'read' : 'write';
  const other = dir === 'read' ? 'write' : 'read';
  const d = job[dir];
  if (!isObject(d)) throw new FioError(`fio JSON job has no ${dir} section`);
  const ioBytes = num(d, 'io_bytes', dir);
  const totalIos = num(d, 'total_ios', dir);
  if (ioBytes <= 0 || totalIos <= 0) throw new FioError(`fio moved no data (${dir}.io_bytes = ${ioBytes}): the run did not happen`);
  const o = job[other];
  if (isObject(o) && typeof o.io_bytes === 'number' && o.io_bytes > 0) throw new FioError(`fio did ${other}s in a ${rw} run`);
  const clat = d.clat_ns;
  if (!isObject(clat) || !isObject(clat.percentile)) throw new FioError(`fio JSON: ${dir}.clat_ns.percentile is missing`);
  return {
    rw,
    iops: num(d, 'iops', dir),
    bwBytes: num(d, 'bw_bytes', dir),
    ioBytes,
    totalIos,
    clatP50Ns: percentile(clat.percentile, 50, `${dir}.clat_ns.percentile`),
    clatP99Ns: percentile(clat.percentile, 99, `${dir}.clat_ns.percentile`),
    clatMeanNs: num(clat, 'mean', `${dir}.clat_ns`),
    runtimeMs: num(d, 'runtime', dir),
    usrCpu: typeof job.usr_cpu === 'number' ? job.usr_cpu : 0,
    sysCpu: typeof job.sys_cpu === 'number' ? job.sys_cpu : 0,
  };
}

export interface RunFioOptions extends FioRunOptions {
  fio?: string;
  /** Kill fio when the run takes this long past runtime + ramp (default 60 s). */
  graceMs?: number;
  /** Told the child's pid at spawn, so a Ctrl-C handler can kill it. */
  onSpawn?: (pid: number) => void;
  onExit?: (pid: number) => void;
}

/** Run fio once; throw FioError with fio's stderr when the run failed in any way. */
export async function runFio(w: Workload, o: RunFioOptions): Promise<FioResult> {
  const args = fioArgs(w, o);
  const limitMs = ((o.runtime + (o.ramp ?? 0)) * 1000) + (o.graceMs ?? 60_000);
  await rm(o.output, { force: true });
  const { code, signal, stdout, stderr } = await new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>(
    (resolve, reject) => {
      const child = spawn(o.fio ?? 'fio', args, { stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
      child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
      const timer = setTimeout(() => child.kill('SIGKILL'), limitMs);
      if (child.pid !== undefined) o.onSpawn?.(child.pid);
      child.on('error', (err) => {
        clearTimeout(timer);
        reject(new FioError(`cannot run fio: ${err.message}`));
      });
      child.on('close', (code, signal) => {
        clearTimeout(timer);
        if (child.pid !== undefined) o.onExit?.(child.pid);
        resolve({ code, signal, stdout, stderr });
      });
    },
  );
  const what = `fio ${w.label} on ${o.uri}`;
  const tail = [stderr.trim(), stdout.trim()].filter(Boolean).join('\n').slice(-2000);
  if (code !== 0) throw new FioError(`${what} exited with ${code ?? signal}${tail ? `:\n${tail}` : ''}`);
  const text = await readFile(o.output, 'utf8').catch(() => '');
  try {
    return parseFioJson(extractJson(text), w.rw);
  } catch (err) {
    throw new FioError(`${what}: ${(err as Error).message}${tail ? `\n${tail}` : ''}`);
  }
}

// ---- summary arithmetic ----

/** Median; the mean of the middle two for an even count. */
export function median(values: readonly number[]): number {
  if (values.length === 0) throw new RangeError('median of no values');
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** Largest relative distance of a value from the median: a noise indicator (0.1 = ±10 %). */
export function spread(values: readonly number[]): number {
  const m = median(values);
  if (m === 0) return 0;
  return Math.max(...values.map((v) => Math.abs(v - m) / m));
}

/** Per-metric medians of several runs of one workload on one server. */
export interface RunSummary {
  runs: number;
  iops: number;
  mbps: number;
  p50Us: number;
  p99Us: number;
  /** Server CPU per request in microseconds (median), when measured. */
  serverCpuUsPerIo?: number;
  /** Max relative distance from the median IOPS. */
  iopsSpread: number;
}

export interface MeasuredRun {
  fio: FioResult;
  /** Server process CPU seconds (user + system) spent during the run, when known. */
  serverCpuSeconds?: number;
  /** Wall seconds of the whole fio run (ramp included), to which serverCpuSeconds belongs. */
  wallSeconds?: number;
}

export function summarize(runs: readonly MeasuredRun[]): RunSummary {
  if (runs.length === 0) throw new RangeError('no runs to summarize');
  const iops = runs.map((r) => r.fio.iops);
  const cpu = runs
    .filter((r) => r.serverCpuSeconds !== undefined && r.wallSeconds !== undefined && r.wallSeconds > 0)
    // CPU was sampled over the whole wall time; requests over the measured time scale to it by rate.
    .map((r) => (r.serverCpuSeconds! * 1e6) / (r.fio.iops * r.wallSeconds!));
  return {
    runs: runs.length,
    iops: median(iops),
    mbps: median(runs.map((r) => r.fio.bwBytes / 1e6)),
    p50Us: median(runs.map((r) => r.fio.clatP50Ns / 1000)),
    p99Us: median(runs.map((r) => r.fio.clatP99Ns / 1000)),
    serverCpuUsPerIo: cpu.length > 0 ? median(cpu) : undefined,
    iopsSpread: spread(iops),
  };
}

/** lunrig's throughput over a peer's (1.20 = 20 % faster); undefined when the peer did nothing. */
export function ratio(ours: number, theirs: number): number | undefined {
  if (!(theirs > 0) || !Number.isFinite(ours)) return undefined;
  return ours / theirs;
}

export function formatRatio(r: number | undefined): string {
  return r === undefined ? 'n/a' : `${r.toFixed(2)}x`;
}
