/**
 * What synchronous mirroring (PPRC) costs a host, in one run: fio's nbd
 * engine, 4 KiB random writes at QD16, one job and one connection over the
 * primary's unix socket, against
 *   - an unpaired LUN;
 *   - the primary of a DUPLEX pair whose secondary is in another LSS of the
 *     same server (in-process SecondaryEss);
 *   - the primary of a DUPLEX pair whose secondary is on a second `lunrig
 *     serve` over loopback (RemoteSecondaryEss: HTTP control, one NBD
 *     connection per link, two links);
 * each run `reps` times, the three variants interleaved (order rotating), the
 * median reported with the p99 completion latency and the ratio to unpaired
 * (targets: local >= 0.5, remote >= 0.33). Then resync throughput: suspend,
 * write `resync` bytes of 1 MiB sequential writes to the primary, resume
 * (copy out-of-sync tracks only) and time it to DUPLEX, local and remote.
 * Needs fio and a build (dist/).
 *
 *   npm run bench:pprc [-- options]
 *
 *   --runtime S     measured seconds per fio run (default 10)     LUNRIG_PPRC_BENCH_RUNTIME
 *   --ramp S        unmeasured warm-up per run (default 1)
 *   --reps N        repetitions per variant (default 3)           LUNRIG_PPRC_BENCH_REPS
 *   --size SIZE     LUN size (default 1G)                         LUNRIG_PPRC_BENCH_SIZE
 *   --resync SIZE   data written while suspended (default 256M)   LUNRIG_PPRC_BENCH_RESYNC
 *   --dir DIR       where the pools go (os.tmpdir())
 *   --main FILE     the lunrig CLI to serve with (default dist/cli/main.js; an older build for A/B)
 *   --no-save       print only: leave bench/results and README.md alone
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { ControlClient } from '../src/control/client.js';
import { PprcClient, type PprcQuery } from '../src/control/pprc-client.js';
import { formatSize, parseLunSize } from '../src/util/size.js';
import { median, nbdUnixUri, runFio, type FioResult, type Workload } from './lib/fio.js';
import { haveCommand, killAllChildren, spawnTracked, stopTracked, versionOf } from './lib/peers.js';
import { machineLine, markdownTable, saveResults, updateReadme } from './lib/report.js';
import type { BenchRow } from './report-types.js';
import { nonNegative } from './lib/options.js';

const DEFAULT_MAIN = path.resolve(import.meta.dirname, '../dist/cli/main.js');
const MiB = 1024 * 1024;
const WORKLOAD: Workload = { id: 'randwrite-4k-qd16', label: '4k randwrite QD16', rw: 'randwrite', bs: 4096, iodepth: 16, headline: 'iops' };

export interface PprcBenchOptions {
  runtime: number;
  ramp: number;
  reps: number;
  size: number;
  resync: number;
  dir: string;
  /** The lunrig CLI to serve with (default dist/cli/main.js; another build for A/B runs). */
  main?: string;
  log?: (line: string) => void;
}

type Variant = 'unpaired' | 'local' | 'remote';
const VARIANTS: readonly Variant[] = ['unpaired', 'local', 'remote'];
const LABEL: Record<Variant, string> = {
  unpaired: 'unpaired LUN',
  local: 'DUPLEX, local secondary (same server, other LSS)',
  remote: 'DUPLEX, remote secondary (second server, loopback NBD, 2 links)',
};
/** Primary LUN of each variant. */
const LUN: Record<Variant, string> = { unpaired: 'plain', local: 'loc', remote: 'rem' };
export const TARGETS: Record<Exclude<Variant, 'unpaired'>, number> = { local: 0.5, remote: 1 / 3 };

export interface PprcBenchResult {
  options: PprcBenchOptions;
  runs: Map<Variant, FioResult[]>;
  /** CPU time of the serving process(es) per I/O, in microseconds (primary + secondary server), per run. */
  cpuPerIo: Map<Variant, number[]>;
  resync: Array<{ variant: 'local' | 'remote'; bytes: number; seconds: number }>;
  rows: BenchRow[];
}

interface Serve {
  pid: number | undefined;
  control: string;
  socket: string;
  tcp: { host: string; port: number } | undefined;
  stop(): Promise<void>;
}

/** utime + stime of a process (all its threads: the I/O workers too), in seconds. */
function cpuSeconds(pid: number | undefined): number {
  if (pid === undefined) return 0;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100; // USER_HZ is 100 on Linux
  } catch {
    return 0;
  }
}

async function serve(main: string, name: string, dir: string, serial: string): Promise<Serve> {
  const socket = path.join(dir, `${name}.sock`);
  const t = spawnTracked(name, process.execPath, [main, 'serve', '--json', '--data', path.join(dir, name), '--serial', serial, '--control', '127.0.0.1:0', '--nbd', '127.0.0.1:0', '--nbd-socket', socket]);
  const summary = await new Promise<{ control: string; services: Array<{ name: string; url: string }> }>((resolve, reject) => {
    createInterface({ input: t.child.stdout! }).on('line', (line) => {
      if (line.startsWith('{')) resolve(JSON.parse(line) as { control: string; services: Array<{ name: string; url: string }> });
    });
    void t.exited.then(() => reject(new Error(`lunrig serve (${name}) exited: ${t.output()}`)));
  });
  const tcpUrl = summary.services.find((s) => s.url.startsWith('nbd://'))?.url;
  return {
    pid: t.child.pid,
    control: summary.control,
    socket,
    tcp: tcpUrl ? { host: new URL(tcpUrl).hostname, port: Number(new URL(tcpUrl).port) } : undefined,
    stop: () => stopTracked(t),
  };
}

/** `bytes` of 1 MiB sequential writes from offset 0 (what a resync then has to copy). */
function fill(uri: string, bytes: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('fio', ['--name=pprc-fill', '--ioengine=nbd', `--uri=${uri}`, '--rw=write', '--bs=1M', '--iodepth=8', `--size=${bytes}`], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (b: Buffer) => (err += b.toString()));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`fio fill exited ${code}: ${err.slice(-1000)}`))));
  });
}

async function waitDuplex(pprc: PprcClient, volume: string): Promise<PprcQuery> {
  for (;;) {
    const q = await pprc.query(volume);
    if (q.state === 'DUPLEX') return q;
    if (q.suspended) throw new Error(`${volume} suspended while copying: ${String(q['suspendReason'])}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export async function run(o: PprcBenchOptions): Promise<PprcBenchResult> {
  const log = o.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  if (!haveCommand('fio')) throw new Error('the pprc bench needs fio');
  const dir = await mkdtemp(path.join(o.dir, 'lunrig-pprc-bench-'));
  const servers: Serve[] = [];
  try {
    const [primary, secondary] = await Promise.all([serve(o.main ?? DEFAULT_MAIN, 'primary', dir, 'PRIM1'), serve(o.main ?? DEFAULT_MAIN, 'secondary', dir, 'SECD2')]);
    servers.push(primary, secondary);
    const p = new ControlClient(primary.control, { timeoutMs: 600_000 });
    const s = new ControlClient(secondary.control);
    const pprc = new PprcClient(p);
    for (const [name, lss] of [['plain', 0x10], ['loc', 0x10], ['loc-r', 0x11], ['rem', 0x10]] as const) await p.createLun({ name, size: o.size, lss });
    await s.createLun({ name: 'rem-r', size: o.size, lss: 0x10 });
    // Local: a link to this ESS itself; remote: two links to the second server.
    await pprc.addEss({ controlUrl: secondary.control, nbd: secondary.tcp!, serial: 'SECD2' });
    await pprc.addLink({ to: 'PRIM1', id: 'self1' });
    await pprc.addLink({ to: 'SECD2', id: 'r1' });
    await pprc.addLink({ to: 'SECD2', id: 'r2' });
    await pprc.establishPath({ lss: 0x10, to: 'PRIM1', targetLss: 0x11, links: ['self1'] });
    await pprc.establishPath({ lss: 0x10, to: 'SECD2', targetLss: 0x10, links: ['r1', 'r2'] });
    // Both sides are fresh sparse LUNs (all zeros): no-copy puts them straight into DUPLEX, identical.
    await pprc.establish({ primary: 'loc', secondary: { volume: 'loc-r' }, mode: 'no-copy' });
    await pprc.establish({ primary: 'rem', secondary: { ess: 'SECD2', volume: 'rem-r' }, mode: 'no-copy' });

    const out = path.join(dir, 'fio.json');
    const runs = new Map<Variant, FioResult[]>(VARIANTS.map((v) => [v, []]));
    const cpuPerIo = new Map<Variant, number[]>(VARIANTS.map((v) => [v, []]));
    const cpu = (): number => cpuSeconds(primary.pid) + cpuSeconds(secondary.pid);
    for (let rep = 0; rep < o.reps; rep++) {
      const order = VARIANTS.map((_, i) => VARIANTS[(i + rep) % VARIANTS.length]!);
      for (const v of order) {
        // Server CPU over the whole fio run (ramp included), divided by every I/O it served (ramp estimated at the measured rate).
        const cpu0 = cpu();
        const r = await runFio(WORKLOAD, { uri: nbdUnixUri(LUN[v], primary.socket), runtime: o.runtime, ramp: o.ramp, output: out, name: `pprc-${v}` });
        const ios = r.totalIos * (1 + o.ramp / Math.max(o.runtime, 1e-9));
        const perIo = ios > 0 ? ((cpu() - cpu0) / ios) * 1e6 : 0;
        runs.get(v)!.push(r);
        cpuPerIo.get(v)!.push(perIo);
        log(`rep ${rep + 1}/${o.reps} ${v}: ${Math.round(r.iops)} IOPS, p99 ${(r.clatP99Ns / 1000).toFixed(0)} µs, server CPU ${perIo.toFixed(1)} µs/IO`);
        if (v !== 'unpaired') {
          const q = await pprc.query(LUN[v]);
          if (q.state !== 'DUPLEX') throw new Error(`${LUN[v]} left DUPLEX during the run: ${q.state} (${String(q['suspendReason'])})`);
        }
      }
    }

    // Resync: suspend, write `resync` bytes sequentially, resume, time to DUPLEX.
    const resync: PprcBenchResult['resync'] = [];
    for (const v of ['local', 'remote'] as const) {
      const volume = LUN[v];
      await pprc.suspend(volume);
      await fill(nbdUnixUri(volume, primary.socket), o.resync);
      const before = await pprc.query(volume);
      const trackSize = Number((before['pair'] as { trackSize?: number } | undefined)?.trackSize ?? 65536);
      const bytes = before.oosTracks * trackSize;
      const t0 = performance.now();
      await pprc.resume(volume);
      await waitDuplex(pprc, volume);
      const elapsed = (performance.now() - t0) / 1000;
      const audit = await pprc.audit(volume);
      if (Array.isArray(audit['differing']) && audit['differing'].length > 0) throw new Error(`${volume}: audit after resync found ${audit['differing'].length} differing tracks`);
      resync.push({ variant: v, bytes, seconds: elapsed });
      log(`resync ${v}: ${formatSize(bytes)} in ${elapsed.toFixed(2)} s = ${(bytes / MiB / elapsed).toFixed(0)} MiB/s`);
    }
    return { options: o, runs, cpuPerIo, resync, rows: rowsOf(o, runs, cpuPerIo, resync) };
  } finally {
    for (const s of servers.reverse()) await s.stop().catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  }
}

function rowsOf(o: PprcBenchOptions, runs: Map<Variant, FioResult[]>, cpuPerIo: Map<Variant, number[]>, resync: PprcBenchResult['resync']): BenchRow[] {
  const base = median(runs.get('unpaired')!.map((r) => r.iops));
  const rows: BenchRow[] = [];
  for (const v of VARIANTS) {
    const rs = runs.get(v)!;
    const iops = median(rs.map((r) => r.iops));
    const note = v === 'unpaired' ? `median of ${o.reps} x ${o.runtime} s` : `${(iops / base).toFixed(2)}x unpaired (target >= ${TARGETS[v].toFixed(2)})`;
    rows.push({ group: 'pprc 4k randwrite QD16', name: LABEL[v], value: Math.round(iops), unit: 'IOPS', note });
    rows.push({ group: 'pprc 4k randwrite QD16 p99', name: LABEL[v], value: Math.round(median(rs.map((r) => r.clatP99Ns)) / 1000), unit: 'µs' });
    rows.push({ group: 'pprc 4k randwrite QD16 server CPU per I/O', name: LABEL[v], value: Number(median(cpuPerIo.get(v)!).toFixed(1)), unit: 'µs', note: 'primary + secondary server processes' });
  }
  for (const r of resync) {
    rows.push({ group: 'pprc resync (out-of-sync tracks)', name: r.variant === 'local' ? 'local secondary' : 'remote secondary', value: Number((r.bytes / MiB / r.seconds).toFixed(1)), unit: 'MiB/s', note: `${formatSize(r.bytes)} in ${r.seconds.toFixed(2)} s` });
  }
  return rows;
}

export function readmeSection(r: PprcBenchResult): string {
  const o = r.options;
  return [
    `fio's nbd engine, 4 KiB random writes at QD16, one job and one connection over the primary's unix socket, ${formatSize(o.size)} LUNs; ` +
      `median of ${o.reps} runs of ${o.runtime} s (+${o.ramp} s warm-up) per variant, variants interleaved. Resync: ${formatSize(o.resync)} written sequentially while suspended, then timed from resume to DUPLEX (audited).`,
    '',
    markdownTable(r.rows),
    '',
    `- client: ${versionOf('fio') ?? 'fio'}; remote secondary: a second \`lunrig serve\` on loopback, two links`,
    `- machine: ${machineLine()}`,
  ].join('\n');
}

function parseOptions(argv: string[]): PprcBenchOptions & { save: boolean } {
  const { values } = parseArgs({
    args: argv,
    options: {
      runtime: { type: 'string' },
      ramp: { type: 'string' },
      reps: { type: 'string' },
      size: { type: 'string' },
      resync: { type: 'string' },
      dir: { type: 'string' },
      main: { type: 'string' },
      'no-save': { type: 'boolean' },
    },
  });
  const env = process.env;
  return {
    runtime: nonNegative(values.runtime ?? env.LUNRIG_PPRC_BENCH_RUNTIME, 10, 'runtime'),
    ramp: nonNegative(values.ramp, 1, 'ramp'),
    reps: Math.max(1, nonNegative(values.reps ?? env.LUNRIG_PPRC_BENCH_REPS, 3, 'reps', true)),
    size: parseLunSize(values.size ?? env.LUNRIG_PPRC_BENCH_SIZE ?? '1G'),
    resync: parseLunSize(values.resync ?? env.LUNRIG_PPRC_BENCH_RESYNC ?? '256M'),
    dir: values.dir ?? os.tmpdir(),
    ...(values.main !== undefined && { main: path.resolve(values.main) }),
    save: values['no-save'] !== true,
  };
}

async function main(): Promise<void> {
  const { save, ...options } = parseOptions(process.argv.slice(2));
  process.stderr.write(`pprc bench: 3 variants x ${options.reps} reps x ${options.runtime + options.ramp} s, plus two resyncs of ${formatSize(options.resync)}\n`);
  const result = await run(options);
  process.stdout.write(`\n${markdownTable(result.rows)}\n\n`);
  const base = median(result.runs.get('unpaired')!.map((r) => r.iops));
  for (const v of ['local', 'remote'] as const) {
    const ratio = median(result.runs.get(v)!.map((r) => r.iops)) / base;
    process.stdout.write(`${v}: ${ratio.toFixed(2)}x unpaired (target >= ${TARGETS[v].toFixed(2)}): ${ratio >= TARGETS[v] ? 'met' : 'NOT met'}\n`);
  }
  if (!save) return;
  process.stdout.write(`\nresults: ${saveResults('pprc', result.rows)}\n`);
  const updated = updateReadme('pprc', readmeSection(result));
  process.stdout.write(updated ? 'README.md: section pprc updated\n' : 'README.md: no <!-- bench:pprc:start --> / <!-- bench:pprc:end --> markers; section not written\n');
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  const interrupt = (): void => {
    killAllChildren();
    process.exit(130);
  };
  process.once('SIGINT', interrupt);
  process.once('SIGTERM', interrupt);
  main().catch((err: unknown) => {
    killAllChildren();
    process.stderr.write(`pprc bench failed: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  });
}
