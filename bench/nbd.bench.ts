/**
 * fio over NBD against lunrig, nbdkit's file plugin and qemu-nbd in one run.
 *
 * Four workloads (4k randread/randwrite at QD32, 1M read/write at QD8), one
 * fio job and one connection each, over unix sockets. Every server serves its
 * own copy of one prefilled file of the same size (non-zero bytes, fully
 * allocated, in the page cache), so reads hit data, not holes. The servers are
 * started fresh by this script and run side by side; each workload runs on
 * each server in turn, the order rotating every repetition (A B C, B C A,
 * C A B, ...), and the median of the repetitions is reported. Backing files
 * are fdatasync'ed before every run so one run's writeback does not land in
 * the next run.
 *
 *   npm run build && tsx bench/nbd.bench.ts [options]
 *
 *   --runtime S        measured seconds per run (default 10)       LUNRIG_NBD_BENCH_RUNTIME
 *   --ramp S           unmeasured warm-up seconds per run (1)      LUNRIG_NBD_BENCH_RAMP
 *   --reps N           repetitions per workload and server (3)     LUNRIG_NBD_BENCH_REPS
 *   --size SIZE        export size, e.g. 1G (default 1G)           LUNRIG_NBD_BENCH_SIZE
 *   --servers LIST     lunrig,nbdkit,qemu-nbd                      LUNRIG_NBD_BENCH_SERVERS
 *   --workloads LIST   randread-4k,randwrite-4k,read-1m,write-1m   LUNRIG_NBD_BENCH_WORKLOADS
 *   --dir DIR          where the temporary files go (os.tmpdir())  LUNRIG_NBD_BENCH_DIR
 *   --nbdkit-threads N nbdkit --threads (default 16, nbdkit's own default)
 *   --qemu-aio MODE    qemu-nbd --aio: io_uring (default) or threads
 *   --lunrig-workers N lunrig I/O worker threads (default: the engine's)
 *   --no-save          print only: leave bench/results, README.md and images/ alone
 */
import { closeSync, existsSync, fdatasyncSync, openSync, readSync, writeSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, open, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { parseLunSize, formatSize } from '../src/util/size.js';
import { FioError, WORKLOADS, formatRatio, ratio, runFio, summarize, type MeasuredRun, type RunSummary, type Workload } from './lib/fio.js';
import { prepareLunrigPool, startLunrig } from './lib/lunrig-nbd.js';
import { haveCommand, killAllChildren, startNbdkit, startQemuNbd, trackPid, untrackPid, versionOf, type QemuAio, type ServerProcess } from './lib/peers.js';
import { REPO_ROOT, machineLine, renderPlot, saveResults, updateReadme } from './lib/report.js';
import type { BenchRow } from './report-types.js';
import { nonNegative } from './lib/options.js';

export const SERVER_NAMES = ['lunrig', 'nbdkit', 'qemu-nbd'] as const;
export type ServerName = (typeof SERVER_NAMES)[number];
const EXPORT_NAME = 'bench';

export interface NbdBenchOptions {
  runtime: number;
  ramp: number;
  reps: number;
  size: number;
  servers: ServerName[];
  workloads: Workload[];
  dir: string;
  nbdkitThreads: number;
  qemuAio: QemuAio;
  lunrigWorkers?: number;
  /** Progress lines (default: stderr). */
  log?: (line: string) => void;
}

export interface NbdBenchResult {
  options: NbdBenchOptions;
  /** server name -> description with the options that matter. */
  servers: Map<ServerName, string>;
  /** `${workload.id}|${server}` -> summary of the repetitions. */
  summaries: Map<string, RunSummary>;
  rows: BenchRow[];
}

// ---- options ----

function listOption<T extends string>(value: string, allowed: readonly T[], what: string): T[] {
  const items = value.split(',').map((s) => s.trim()).filter(Boolean);
  for (const i of items) if (!allowed.includes(i as T)) throw new Error(`unknown ${what} '${i}' (choose from ${allowed.join(', ')})`);
  if (items.length === 0) throw new Error(`no ${what} given`);
  return items as T[];
}

export function parseOptions(argv: string[], env: NodeJS.ProcessEnv = process.env): NbdBenchOptions & { save: boolean } {
  const { values } = parseArgs({
    args: argv,
    options: {
      runtime: { type: 'string' },
      ramp: { type: 'string' },
      reps: { type: 'string' },
      size: { type: 'string' },
      servers: { type: 'string' },
      workloads: { type: 'string' },
      dir: { type: 'string' },
      'nbdkit-threads': { type: 'string' },
      'qemu-aio': { type: 'string' },
      'lunrig-workers': { type: 'string' },
      'no-save': { type: 'boolean' },
    },
  });
  const runtime = nonNegative(values.runtime ?? env.LUNRIG_NBD_BENCH_RUNTIME, 10, 'runtime');
  const reps = nonNegative(values.reps ?? env.LUNRIG_NBD_BENCH_REPS, 3, 'reps', true);
  if (runtime < 1 || reps < 1) throw new Error('runtime and reps must be at least 1');
  const qemuAio = values['qemu-aio'] ?? 'io_uring';
  if (!['io_uring', 'threads'].includes(qemuAio)) throw new Error(`--qemu-aio must be io_uring or threads (native needs O_DIRECT), got '${qemuAio}'`);
  const lunrigWorkers = values['lunrig-workers'] ? nonNegative(values['lunrig-workers'], 0, 'lunrig-workers', true) : undefined;
  const workloadIds = listOption(values.workloads ?? env.LUNRIG_NBD_BENCH_WORKLOADS ?? WORKLOADS.map((w) => w.id).join(','), WORKLOADS.map((w) => w.id), 'workload');
  return {
    runtime,
    ramp: nonNegative(values.ramp ?? env.LUNRIG_NBD_BENCH_RAMP, 1, 'ramp'),
    reps,
    size: parseLunSize(values.size ?? env.LUNRIG_NBD_BENCH_SIZE ?? '1G'),
    servers: listOption(values.servers ?? env.LUNRIG_NBD_BENCH_SERVERS ?? SERVER_NAMES.join(','), SERVER_NAMES, 'server'),
    workloads: WORKLOADS.filter((w) => workloadIds.includes(w.id)),
    dir: values.dir ?? env.LUNRIG_NBD_BENCH_DIR ?? os.tmpdir(),
    nbdkitThreads: nonNegative(values['nbdkit-threads'], 16, 'nbdkit-threads', true) || 16,
    qemuAio: qemuAio as QemuAio,
    lunrigWorkers: lunrigWorkers || undefined,
    save: !values['no-save'],
  };
}

// ---- files ----

/** xorshift32 bytes: cheap, non-zero almost everywhere, the same on every run. */
function patternChunk(bytes: number): Buffer {
  const buf = Buffer.allocUnsafe(bytes);
  let x = 0x9e3779b9;
  for (let i = 0; i < bytes; i += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    buf.writeUInt32LE(x >>> 0, i);
  }
  return buf;
}

/** Write `size` bytes of data (no holes) and fdatasync, so the pages are in the cache and clean. */
export function writePrefill(file: string, size: number): void {
  const CHUNK = 1 << 20;
  const chunk = patternChunk(CHUNK);
  const fd = openSync(file, 'w');
  try {
    for (let off = 0; off < size; off += CHUNK) {
      const len = Math.min(CHUNK, size - off);
      // Stamp every 4 KiB block with its offset: no two blocks alike.
      for (let b = 0; b < len; b += 4096) chunk.writeDoubleLE(off + b, b);
      let done = 0;
      while (done < len) done += writeSync(fd, chunk, done, len - done, off + done);
    }
    fdatasyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

async function copyPrefill(from: string, to: string): Promise<void> {
  await copyFile(from, to);
  const h = await open(to, 'r+');
  try {
    await h.datasync();
  } finally {
    await h.close();
  }
}

/** Read a file once so all of it sits in the page cache before the first run. */
function warmCache(file: string): void {
  const buf = Buffer.allocUnsafe(1 << 20);
  const fd = openSync(file, 'r');
  try {
    let off = 0;
    for (let n; (n = readSync(fd, buf, 0, buf.length, off)) > 0; ) off += n;
  } finally {
    closeSync(fd);
  }
}

/** Write back dirty pages of a backing file (outside the measured time). */
function syncFile(file: string): void {
  const fd = openSync(file, 'r');
  try {
    fdatasyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

// ---- the run ----

let interrupted = false;

export async function run(o: NbdBenchOptions): Promise<NbdBenchResult> {
  const log = o.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const needed = ['fio', 'nbdinfo', ...(o.servers.includes('nbdkit') ? ['nbdkit'] : []), ...(o.servers.includes('qemu-nbd') ? ['qemu-nbd'] : [])];
  const missing = needed.filter((c) => !haveCommand(c));
  if (missing.length > 0) throw new Error(`missing ${missing.join(', ')}: install them, or leave the server out with --servers`);
  if (o.servers.includes('lunrig') && !existsSync(path.join(REPO_ROOT, 'dist/io/io-worker.js'))) {
    throw new Error('dist/ is missing: run `npm run build` first (lunrig I/O workers load compiled JavaScript)');
  }

  await mkdir(o.dir, { recursive: true });
  const tmp = await mkdtemp(path.join(o.dir, 'lunrig-nbd-bench-'));
  const servers: ServerProcess[] = [];
  let cleaning: Promise<void> | undefined;
  const cleanup = (): Promise<void> =>
    (cleaning ??= (async () => {
      killAllChildren('SIGTERM'); // fio (if running) stops its jobs; servers begin to shut down
      await Promise.allSettled(servers.map((s) => s.stop()));
      killAllChildren();
      await rm(tmp, { recursive: true, force: true });
    })());
  const onSignal = (signal: NodeJS.Signals): void => {
    if (interrupted) {
      killAllChildren();
      process.exit(130);
    }
    interrupted = true;
    log(`\n${signal}: stopping the servers and removing ${tmp}`);
    void cleanup().finally(() => process.exit(130));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('exit', () => killAllChildren());

  try {
    const sockets = path.join(tmp, 's');
    await mkdir(sockets);
    const prefill = path.join(tmp, 'prefill.img');
    let t0 = performance.now();
    writePrefill(prefill, o.size);
    log(`prefilled ${formatSize(o.size)} in ${((performance.now() - t0) / 1000).toFixed(1)} s (${tmp})`);
    t0 = performance.now();
    const files = new Map<ServerName, string>();
    for (const name of o.servers) {
      if (name === 'lunrig') {
        files.set(name, await prepareLunrigPool({ dir: path.join(tmp, 'pool'), lunName: EXPORT_NAME, size: o.size, prefill }));
      } else {
        const file = path.join(tmp, `${name}.img`);
        await copyPrefill(prefill, file);
        files.set(name, file);
      }
    }
    await rm(prefill);
    log(`copied it for ${o.servers.join(', ')} in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

    for (const name of o.servers) {
      const socket = path.join(sockets, `${name}.sock`);
      const file = files.get(name)!;
      const common = { socket, exportName: EXPORT_NAME, size: o.size };
      const s =
        name === 'lunrig'
          ? await startLunrig({ ...common, data: path.join(tmp, 'pool'), backingFile: file, workers: o.lunrigWorkers })
          : name === 'nbdkit'
            ? await startNbdkit({ ...common, file, threads: o.nbdkitThreads })
            : await startQemuNbd({ ...common, file, aio: o.qemuAio });
      servers.push(s);
      log(`started ${s.name} (pid ${s.pid}): ${s.description}`);
    }

    for (const s of servers) warmCache(s.backingFile);
    const measured = new Map<string, MeasuredRun[]>();
    const total = o.reps * o.workloads.length * servers.length;
    let n = 0;
    for (let rep = 0; rep < o.reps; rep++) {
      for (const w of o.workloads) {
        const order = servers.map((_, i) => servers[(i + rep) % servers.length]!);
        for (const s of order) {
          if (interrupted) throw new Error('interrupted');
          const dead = servers.find((x) => x.exitStatus() !== undefined);
          if (dead) throw new Error(`${dead.name} ${dead.exitStatus()} between runs${dead.output() ? `:\n${dead.output()}` : ''}`);
          for (const other of servers) syncFile(other.backingFile);
          const cpu0 = s.cpuSeconds();
          const wall0 = performance.now();
          let fio;
          try {
            fio = await runFio(w, {
              uri: s.uri,
              runtime: o.runtime,
              ramp: o.ramp,
              output: path.join(tmp, 'fio.json'),
              name: `${w.id}-${s.name}`,
              onSpawn: (pid) => trackPid(pid, 'fio'),
              onExit: (pid) => untrackPid(pid),
            });
          } catch (err) {
            if (interrupted) throw new Error('interrupted');
            const output = s.output().split('\n').slice(-20).join('\n');
            const why = `\n${s.name} ${s.exitStatus() ?? 'still running'}${output ? `; its last output:\n${output}` : ''}`;
            throw new FioError(`${(err as Error).message}${why}`);
          }
          const wallSeconds = (performance.now() - wall0) / 1000;
          const cpu1 = s.cpuSeconds();
          const serverCpuSeconds = cpu0 !== undefined && cpu1 !== undefined ? cpu1 - cpu0 : undefined;
          const key = `${w.id}|${s.name}`;
          measured.set(key, [...(measured.get(key) ?? []), { fio, serverCpuSeconds, wallSeconds }]);
          n++;
          const cpu = serverCpuSeconds !== undefined ? `, server ${(serverCpuSeconds / wallSeconds).toFixed(2)} cores` : '';
          log(
            `[${n}/${total}] rep ${rep + 1} ${w.label.padEnd(17)} ${s.name.padEnd(8)} ${Math.round(fio.iops).toLocaleString('en-US').padStart(8)} IOPS ${(fio.bwBytes / 1e6).toFixed(0).padStart(5)} MB/s  p50 ${(fio.clatP50Ns / 1000).toFixed(0)} µs  p99 ${(fio.clatP99Ns / 1000).toFixed(0)} µs${cpu}`,
          );
        }
      }
    }

    const summaries = new Map<string, RunSummary>();
    for (const [key, runs] of measured) summaries.set(key, summarize(runs));
    const serverInfo = new Map(servers.map((s) => [s.name as ServerName, s.description]));
    return { options: o, servers: serverInfo, summaries, rows: buildRows(o, summaries) };
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    if (!interrupted) await cleanup();
  }
}

// ---- reporting ----

const round1 = (v: number): number => Math.round(v * 10) / 10;

/**
 * One row per workload, server and figure (IOPS, MB/s, p50, p99), plus
 * lunrig's throughput ratio to each peer. Groups carry the workload and the
 * figure, so the plot gets one panel per workload and unit.
 */
export function buildRows(o: Pick<NbdBenchOptions, 'servers' | 'workloads' | 'reps' | 'runtime'>, summaries: Map<string, RunSummary>): BenchRow[] {
  const rows: BenchRow[] = [];
  for (const w of o.workloads) {
    for (const name of o.servers) {
      const s = summaries.get(`${w.id}|${name}`);
      if (!s) continue;
      const note = `median of ${s.runs} x ${o.runtime}s; IOPS within ±${Math.round(s.iopsSpread * 100)}%${s.serverCpuUsPerIo !== undefined ? `; server ${s.serverCpuUsPerIo.toFixed(1)} µs CPU/IO` : ''}`;
      rows.push({ group: w.label, name, value: Math.round(s.iops), unit: 'IOPS', note });
      rows.push({ group: w.label, name, value: round1(s.mbps), unit: 'MB/s', note });
      rows.push({ group: `${w.label} p50 clat`, name, value: Math.round(s.p50Us), unit: 'µs' });
      rows.push({ group: `${w.label} p99 clat`, name, value: Math.round(s.p99Us), unit: 'µs' });
    }
    const ours = summaries.get(`${w.id}|lunrig`);
    for (const peer of o.servers.filter((n) => n !== 'lunrig')) {
      const theirs = summaries.get(`${w.id}|${peer}`);
      const r = ours && theirs ? ratio(ours.iops, theirs.iops) : undefined;
      if (r !== undefined) rows.push({ group: `${w.label} lunrig ÷ peer`, name: `lunrig / ${peer}`, value: Number(r.toFixed(2)), unit: 'x', note: 'IOPS ratio, > 1: lunrig faster' });
    }
  }
  return rows;
}

const fmtInt = (v: number): string => Math.round(v).toLocaleString('en-US');

/** The wide table for the terminal and README: one line per workload and server. */
export function resultsTable(o: Pick<NbdBenchOptions, 'servers' | 'workloads'>, summaries: Map<string, RunSummary>): string {
  const hasLunrig = o.servers.includes('lunrig');
  const lines = [
    `| workload | server | IOPS | MB/s | p50 µs | p99 µs | IOPS spread | server CPU µs/IO |${hasLunrig ? ' lunrig ÷ this |' : ''}`,
    `|---|---|---:|---:|---:|---:|---:|---:|${hasLunrig ? '---:|' : ''}`,
  ];
  for (const w of o.workloads) {
    const ours = summaries.get(`${w.id}|lunrig`);
    for (const name of o.servers) {
      const s = summaries.get(`${w.id}|${name}`);
      if (!s) continue;
      const cells = [
        w.label,
        name,
        fmtInt(s.iops),
        fmtInt(s.mbps),
        fmtInt(s.p50Us),
        fmtInt(s.p99Us),
        `±${Math.round(s.iopsSpread * 100)}%`,
        s.serverCpuUsPerIo !== undefined ? s.serverCpuUsPerIo.toFixed(1) : 'n/a',
      ];
      if (hasLunrig) cells.push(name === 'lunrig' ? '' : formatRatio(ours ? ratio(ours.iops, s.iops) : undefined));
      lines.push(`| ${cells.join(' | ')} |`);
    }
  }
  return lines.join('\n');
}

/** What the figure shows: each workload's headline throughput (IOPS for 4k, MB/s for 1M) and its p99. */
export function plotRows(workloads: readonly Workload[], rows: readonly BenchRow[]): BenchRow[] {
  const keep = new Set<string>();
  for (const w of workloads) {
    keep.add(`${w.label}|${w.headline === 'iops' ? 'IOPS' : 'MB/s'}`);
    keep.add(`${w.label} p99 clat|µs`);
  }
  return rows.filter((r) => keep.has(`${r.group}|${r.unit}`));
}

export function readmeSection(r: NbdBenchResult): string {
  const o = r.options;
  const fio = versionOf('fio') ?? 'fio';
  return [
    `fio over NBD, one job and one connection, unix sockets, ${formatSize(o.size)} export prefilled with data (page cache). ` +
      `Median of ${o.reps} runs of ${o.runtime} s (+${o.ramp} s warm-up) per workload and server, servers interleaved. ` +
      `Latency is fio's completion latency (clat); MB/s is 10^6 bytes/s; "lunrig ÷ this" is the IOPS ratio; ` +
      `server CPU is the server process's user+system time per request, approximate.`,
    '',
    resultsTable(o, r.summaries),
    '',
    ...[...r.servers].map(([name, desc]) => `- ${name}: ${desc}`),
    `- client: ${fio}, \`--ioengine=nbd --numjobs=1 --time_based\``,
    `- machine: ${machineLine()}`,
  ].join('\n');
}

async function main(): Promise<void> {
  const { save, ...options } = parseOptions(process.argv.slice(2));
  const est = options.reps * options.workloads.length * options.servers.length * (options.runtime + options.ramp + 0.5);
  process.stderr.write(
    `nbd bench: ${options.servers.join(', ')} x ${options.workloads.map((w) => w.id).join(', ')}, ${options.reps} reps x ${options.runtime} s, about ${Math.ceil(est / 60)} min\n`,
  );
  const result = await run(options);
  const section = readmeSection(result);
  process.stdout.write(`\n${resultsTable(options, result.summaries)}\n\n`);
  for (const [name, desc] of result.servers) process.stdout.write(`${name}: ${desc}\n`);
  if (!save) return;
  process.stdout.write(`\nresults: ${saveResults('nbd', result.rows)}\n`);
  process.stdout.write(`plot: ${await renderPlot('nbd-bench', 'fio over NBD (unix socket, page cache)', plotRows(options.workloads, result.rows))}\n`);
  let updated = false;
  try {
    updated = updateReadme('nbd', section);
  } catch (err) {
    process.stdout.write(`README.md: ${(err as Error).message}\n`);
  }
  process.stdout.write(updated ? 'README.md: section nbd updated\n' : 'README.md: no <!-- bench:nbd:start --> / <!-- bench:nbd:end --> markers; section not written\n');
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  main().catch((err: unknown) => {
    if (interrupted) return;
    process.stderr.write(`nbd bench failed: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  });
}
