/**
 * fio through the multipath layer (spec/multipath.md §5.3), all in one run
 * and one process, so the variants share the machine's state:
 *
 * - direct: fio -> target port A (a pool LUN on the worker engine, unix socket);
 * - mpath x1: fio -> NbdServer re-exporting a MultipathDevice -> 1 NbdPathVolume -> port A;
 * - mpath x2 rr: the same over 2 paths (ports A and B), round robin.
 *
 * Ratios printed: mpath x1 / direct (the layer's overhead, which includes
 * the second NBD hop a re-export needs) and mpath x2 / mpath x1 (what a
 * second healthy path buys). Writes a table between
 * `<!-- bench:multipath:start -->` and `<!-- bench:multipath:end -->` in
 * README.md and bench/results/multipath.json unless --no-save.
 *
 *   npm run bench:mp                     # 1 rep x 3 s per workload and variant (a smoke run)
 *   npm run bench:mp -- --reps 3 --runtime 10
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { MultipathDevice, NbdPathVolume, TargetPort } from '../src/multipath/index.js';
import { dmProfile } from '../src/multipath/profiles.js';
import { ExportRegistry } from '../src/nbd/export-provider.js';
import { NbdServer } from '../src/nbd/server.js';
import { Pool } from '../src/store/pool.js';
import { median, nbdUnixUri, runFio, type Workload } from './lib/fio.js';
import { machineLine, markdownTable, saveResults, updateReadme } from './lib/report.js';
import type { BenchRow } from './report-types.js';

const MiB = 1024 * 1024;
const SIZE = 256 * MiB;

const WORKLOADS: Workload[] = [
  { id: 'randread-4k', label: '4k randread QD32', rw: 'randread', bs: 4096, iodepth: 32, headline: 'iops' },
  { id: 'randwrite-4k', label: '4k randwrite QD32', rw: 'randwrite', bs: 4096, iodepth: 32, headline: 'iops' },
  { id: 'read-1m', label: '1M read QD8', rw: 'read', bs: MiB, iodepth: 8, headline: 'mbps' },
];

const VARIANTS = ['direct', 'mpath x1', 'mpath x2 rr'] as const;
type Variant = (typeof VARIANTS)[number];

interface Options {
  reps: number;
  runtime: number;
  save: boolean;
}

function parseOptions(argv: string[]): Options {
  const o: Options = { reps: 1, runtime: 3, save: true };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--reps') o.reps = Number(argv[++i]);
    else if (a === '--runtime') o.runtime = Number(argv[++i]);
    else if (a === '--no-save') o.save = false;
    else throw new Error(`unknown option ${a}: use --reps N, --runtime S, --no-save`);
  }
  if (!(o.reps >= 1) || !(o.runtime >= 1)) throw new Error('--reps and --runtime must be >= 1');
  return o;
}

export async function run(o: Options): Promise<{ rows: BenchRow[]; table: string[] }> {
  const dir = await mkdtemp(path.join(tmpdir(), 'lunrig-mp-bench-'));
  const stops: (() => Promise<unknown>)[] = [];
  try {
    const pool = await Pool.open({ dir: path.join(dir, 'pool') });
    stops.push(() => pool.close());
    await pool.createLun({ name: 'lun0', size: SIZE });
    const lun = pool.volume('lun0');
    const chunk = new Uint8Array(4 * MiB).map((_, i) => (i * 31 + 7) & 0xff);
    for (let off = 0; off < SIZE; off += chunk.length) await lun.write(off, chunk);
    await lun.flush();

    const ports = ['A', 'B'].map((name) => new TargetPort({ name, luns: [{ name: 'lun0', volume: lun }], listen: { path: path.join(dir, `${name}.sock`) } }));
    for (const p of ports) {
      await p.start();
      stops.push(() => p.stop());
    }
    const config = { ...dmProfile({ path_grouping_policy: 'multibus', path_selector: 'round-robin 0', polling_interval: 5 }), requestTimeoutMs: 30_000 };
    const device = async (n: number): Promise<MultipathDevice> => {
      const paths = await Promise.all(ports.slice(0, n).map((p) => NbdPathVolume.open(p.target, { exportName: 'lun0', maxInFlight: 64 })));
      for (const v of paths) stops.push(() => v.close());
      const d = new MultipathDevice({ name: `mpath${n}`, paths: paths.map((volume, i) => ({ name: `p${i}`, volume })), config });
      stops.push(() => d.close());
      return d;
    };
    const reexport = new NbdServer({
      exports: new ExportRegistry([
        { name: 'mpath1', volume: await device(1) },
        { name: 'mpath2', volume: await device(2) },
      ]),
    });
    const sock = path.join(dir, 'mpath.sock');
    await reexport.listen({ path: sock });
    stops.push(() => reexport.close());
    const uris: Record<Variant, string> = {
      direct: nbdUnixUri('lun0', path.join(dir, 'A.sock')),
      'mpath x1': nbdUnixUri('mpath1', sock),
      'mpath x2 rr': nbdUnixUri('mpath2', sock),
    };

    const rows: BenchRow[] = [];
    const table: string[] = [];
    for (const w of WORKLOADS) {
      const value: Record<string, number> = {};
      for (const v of VARIANTS) {
        const samples: number[] = [];
        for (let r = 0; r < o.reps; r++) {
          const res = await runFio(w, { uri: uris[v], runtime: o.runtime, output: path.join(dir, 'fio.json'), name: `${w.id}-${v.replace(/ /g, '-')}` });
          samples.push(w.headline === 'iops' ? res.iops : res.bwBytes / MiB);
        }
        value[v] = median(samples);
        const unit = w.headline === 'iops' ? 'IOPS' : 'MiB/s';
        rows.push({ group: `multipath ${w.label}`, name: v, value: Math.round(value[v]!), unit, note: `fio nbd engine, ${o.reps} x ${o.runtime} s` });
      }
      const overhead = value['mpath x1']! / value.direct!;
      const twoPaths = value['mpath x2 rr']! / value['mpath x1']!;
      rows.push({ group: `multipath ${w.label}`, name: 'mpath x1 / direct', value: Number(overhead.toFixed(2)), unit: 'x' });
      rows.push({ group: `multipath ${w.label}`, name: 'mpath x2 rr / mpath x1', value: Number(twoPaths.toFixed(2)), unit: 'x' });
      table.push(
        `${w.label.padEnd(18)} direct ${Math.round(value.direct!)}  mpath x1 ${Math.round(value['mpath x1']!)}  mpath x2 rr ${Math.round(value['mpath x2 rr']!)} ${w.headline === 'iops' ? 'IOPS' : 'MiB/s'}   x1/direct ${overhead.toFixed(2)}x   x2/x1 ${twoPaths.toFixed(2)}x`,
      );
    }
    return { rows, table };
  } finally {
    for (const f of stops.reverse()) await f().catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const o = parseOptions(process.argv.slice(2));
  process.stderr.write(`multipath bench: ${WORKLOADS.length} workloads x ${VARIANTS.length} variants x ${o.reps} x ${o.runtime} s\n`);
  const { rows, table } = await run(o);
  process.stdout.write(`\n${table.join('\n')}\n`);
  if (!o.save) return;
  process.stdout.write(`results: ${saveResults('multipath', rows)}\n`);
  const section = [
    markdownTable(rows),
    '',
    `- direct: fio to one target port; mpath x1 / x2 rr: fio to an NbdServer re-exporting a MultipathDevice over 1 / 2 NbdPathVolume paths (dm round robin), all in one Node process with the target ports`,
    `- ${o.reps} rep(s) x ${o.runtime} s per cell, pool LUN on the worker engine, unix sockets; machine: ${machineLine()}`,
  ].join('\n');
  process.stdout.write(updateReadme('multipath', section) ? 'README.md: section multipath updated\n' : 'README.md: no <!-- bench:multipath:start --> markers; section not written\n');
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  main().then(
    () => process.exit(0),
    (err: unknown) => {
      process.stderr.write(`multipath bench failed: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exit(1);
    },
  );
}
