/**
 * FlashCopy on a pool (worker I/O engine, real files):
 *  - establish time of a 1 GiB and a 1 TiB pair (copy paused): T0 must not cost more for more data;
 *  - 4 KiB random writes at QD16 on a NOCOPY source, 4 KiB and 64 KiB grains, against the same
 *    LUN with no relationship: IOPS and p99 latency (most writes are first touches of a grain,
 *    so each pays a grain copy, a target flush and a journal commit, shared by group commit);
 *  - first touches only (each 4 KiB write at QD16 hits a grain nobody wrote since T0, 64 KiB grains)
 *    against the same writes with no relationship, under both copy-on-write durabilities
 *    ('process', the default, and 'power'; src/copy/flashcopy/README.md "Durability of copy-on-write");
 *  - the NOCOPY rows twice, interleaved: grain copies inside the I/O workers (OP_COPY, the default)
 *    and through the Volumes ("copy through Volumes", workerCopy: false);
 *  - background copy throughput of a prefilled source, piscina bulk copier and Volume copier;
 *  - over NBD, against nbdkit's cow filter in the same run (bench/flashcopy-nbd.bench.ts; skipped
 *    with LUNRIG_BENCH_NBD=0 or when fio/nbdkit/nbdcopy/nbdinfo are missing).
 * The results go to bench/results/flashcopy.json and into src/copy/flashcopy/README.md between
 * `<!-- bench:flashcopy:start -->` and `<!-- bench:flashcopy:end -->`.
 *
 *   npm run bench:fc
 *   env: LUNRIG_BENCH_SECONDS (per write measurement, default 2), LUNRIG_BENCH_MIB (volume size, default 256),
 *        LUNRIG_FC_NBD_MIB / LUNRIG_FC_NBD_IO_MIB / LUNRIG_FC_NBD_REPS (see bench/flashcopy-nbd.bench.ts)
 */
import { readFileSync, writeFileSync } from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { FlashCopyManager, type CowDurability } from '../src/copy/flashcopy/index.js';
import { runNbd } from './flashcopy-nbd.bench.js';
import { haveCommand } from './lib/peers.js';
import { machineLine, markdownTable, saveResults } from './lib/report.js';
import { Pool } from '../src/store/pool.js';
import type { Volume } from '../src/volume/volume.js';
import type { BenchRow } from './report-types.js';
import { envNumber, xorshift32 } from './lib/options.js';

const BLOCK = 4096;
const DEPTH = 16;
const MiB = 1024 * 1024;

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

async function prefill(v: Volume, bytes: number): Promise<void> {
  const chunk = Buffer.alloc(4 * MiB);
  for (let off = 0; off < bytes; off += chunk.length) {
    chunk.fill((off / chunk.length) & 0xff);
    await v.write(off, chunk.subarray(0, Math.min(chunk.length, bytes - off)));
  }
  await v.flush();
}

/** 4 KiB random writes at QD16 for `seconds`: IOPS and p99 latency in ms. */
async function randomWrites(v: Volume, bytes: number, seconds: number, seed: number): Promise<{ iops: number; p99: number }> {
  const next = xorshift32(seed);
  const blocks = bytes / BLOCK;
  const latencies: number[] = [];
  const start = performance.now();
  const until = start + seconds * 1000;
  await Promise.all(
    Array.from({ length: DEPTH }, async () => {
      const buf = Buffer.alloc(BLOCK, 0x5a);
      while (performance.now() < until) {
        const t = performance.now();
        await v.write((next() % blocks) * BLOCK, buf);
        latencies.push(performance.now() - t);
      }
    }),
  );
  const elapsed = (performance.now() - start) / 1000;
  latencies.sort((a, b) => a - b);
  return { iops: Math.round(latencies.length / elapsed), p99: Number(quantile(latencies, 0.99).toFixed(2)) };
}

/** One 4 KiB write at QD16 into each of `grains` distinct grains (random order): IOPS and p99 in ms. */
async function distinctGrainWrites(v: Volume, grains: number, grainSize: number, seed: number): Promise<{ iops: number; p99: number }> {
  const next = xorshift32(seed);
  const order = Array.from({ length: grains }, (_, i) => i);
  for (let i = order.length - 1; i > 0; i--) {
    const j = next() % (i + 1);
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  const latencies: number[] = [];
  let i = 0;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: DEPTH }, async () => {
      const buf = Buffer.alloc(BLOCK, 0x6b);
      while (i < order.length) {
        const g = order[i++]!;
        const t = performance.now();
        await v.write(g * grainSize + BLOCK, buf);
        latencies.push(performance.now() - t);
      }
    }),
  );
  const elapsed = (performance.now() - start) / 1000;
  latencies.sort((a, b) => a - b);
  return { iops: Math.round(latencies.length / elapsed), p99: Number(quantile(latencies, 0.99).toFixed(2)) };
}

async function timeMs(fn: () => Promise<unknown>): Promise<number> {
  const t = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t) / 1e6;
}

export async function run(): Promise<BenchRow[]> {
  const seconds = envNumber('LUNRIG_BENCH_SECONDS', 2);
  const bytes = envNumber('LUNRIG_BENCH_MIB', 256) * MiB;
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'lunrig-fc-bench-'));
  const pool = await Pool.open({ dir, serial: 'FCA24' });
  let fc: FlashCopyManager | undefined;
  const rows: BenchRow[] = [];
  try {
    fc = await FlashCopyManager.open(pool);
    for (const name of ['g-s', 'g-t']) await pool.createLun({ name, size: '1G' });
    for (const name of ['t-s', 't-t']) await pool.createLun({ name, size: '1T' });
    for (const name of ['w-s', 'w-t', 'c-s', 'c-t']) await pool.createLun({ name, size: bytes });

    // Establish: median of 5, paused copy.
    for (const [label, s, t] of [['1 GiB', 'g-s', 'g-t'], ['1 TiB', 't-s', 't-t']] as const) {
      const times: number[] = [];
      for (let i = 0; i < 5; i++) {
        times.push(await timeMs(() => fc!.establish(s, t, { rate: 0 })));
        await fc.withdraw(s);
      }
      times.sort((a, b) => a - b);
      rows.push({ group: 'flashcopy', name: `establish ${label} pair (64K grains, copy paused)`, value: Number(quantile(times, 0.5).toFixed(2)), unit: 'ms', note: 'median of 5' });
    }

    // Random writes on a NOCOPY source vs the same LUN alone.
    const source = pool.volume('w-s');
    await prefill(source, bytes);
    const note = `QD${DEPTH}, ${bytes / MiB} MiB prefilled source, ${seconds}s, ${os.availableParallelism()} CPUs`;
    const plain = await randomWrites(source, bytes, seconds, 1);
    rows.push({ group: 'flashcopy', name: '4k randwrite: plain LUN', value: plain.iops, unit: 'IOPS', note });
    rows.push({ group: 'flashcopy', name: '4k randwrite p99: plain LUN', value: plain.p99, unit: 'ms' });
    await fc.close();
    // Grain copies inside the I/O workers (the default) and, for comparison, through the Volumes.
    for (const grain of ['4K', '64K']) {
      for (const [workerCopy, label] of [[true, ''], [false, ', copy through Volumes']] as const) {
        fc = await FlashCopyManager.open(pool, { workerCopy });
        await fc.establish('w-s', 'w-t', { mode: 'nocopy', grainSize: grain });
        const r = await randomWrites(source, bytes, seconds, 2);
        rows.push({ group: 'flashcopy', name: `4k randwrite: NOCOPY source, ${grain} grains${label}`, value: r.iops, unit: 'IOPS', note });
        rows.push({ group: 'flashcopy', name: `4k randwrite p99: NOCOPY source, ${grain} grains${label}`, value: r.p99, unit: 'ms' });
        await fc.withdraw('w-s');
        await fc.close();
      }
    }

    // First touches only: plain, then NOCOPY under each durability, interleaved over three rounds.
    const grainSize = 64 * 1024;
    const grains = bytes / grainSize;
    const ft = new Map<string, Array<{ iops: number; p99: number }>>();
    const record = (label: string, r: { iops: number; p99: number }): void => void ft.set(label, [...(ft.get(label) ?? []), r]);
    // Grain copies inside the I/O workers (OP_COPY, the default) against the same copies through the
    // Volumes (read to this thread, write back through a worker), interleaved in the same rounds.
    const copyPaths = [
      { workerCopy: true, label: '' },
      { workerCopy: false, label: ', copy through Volumes' },
    ];
    for (let round = 0; round < 3; round++) {
      record('plain LUN', await distinctGrainWrites(source, grains, grainSize, 10 + round));
      for (const durability of ['process', 'power'] as CowDurability[]) {
        for (const { workerCopy, label } of round % 2 === 0 ? copyPaths : [...copyPaths].reverse()) {
          fc = await FlashCopyManager.open(pool, { cowDurability: durability, workerCopy });
          await fc.establish('w-s', 'w-t', { mode: 'nocopy', grainSize });
          record(`NOCOPY source, 64K grains, '${durability}' durability${label}`, await distinctGrainWrites(source, grains, grainSize, 20 + round));
          await fc.withdraw('w-s');
          await fc.close();
        }
      }
    }
    const ftNote = `QD${DEPTH}, one write into each of ${grains} grains, median of 3 interleaved rounds`;
    for (const [label, runs] of ft) {
      const med = (xs: number[]): number => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
      rows.push({ group: 'flashcopy', name: `4k first-touch write: ${label}`, value: med(runs.map((r) => r.iops)), unit: 'IOPS', ...(label === 'plain LUN' && { note: ftNote }) });
      rows.push({ group: 'flashcopy', name: `4k first-touch write p99: ${label}`, value: med(runs.map((r) => r.p99)), unit: 'ms' });
    }

    // Background copy throughput, both copiers.
    await prefill(pool.volume('c-s'), bytes);
    for (const copyEngine of ['bulk', 'volume'] as const) {
      fc = await FlashCopyManager.open(pool, { copyEngine });
      const manager = fc;
      const done = new Promise((resolve) => manager.once('completed', resolve));
      const ms = await timeMs(async () => {
        await manager.establish('c-s', 'c-t');
        await done;
      });
      rows.push({ group: 'flashcopy', name: `background copy (${copyEngine === 'bulk' ? 'piscina bulk' : 'through Volumes'}), 64K grains`, value: Math.round(bytes / MiB / (ms / 1000)), unit: 'MiB/s', note: `${bytes / MiB} MiB prefilled, unlimited rate` });
      await fc.close();
    }
    fc = undefined;
    return rows;
  } finally {
    await fc?.close();
    await pool.close();
    await fsp.rm(dir, { recursive: true, force: true });
  }
}

const README = path.resolve(import.meta.dirname, '../src/copy/flashcopy/README.md');

/** Replace the text between the bench markers in src/copy/flashcopy/README.md. */
function updateFlashCopyReadme(body: string): boolean {
  const text = readFileSync(README, 'utf8');
  const start = '<!-- bench:flashcopy:start -->';
  const end = '<!-- bench:flashcopy:end -->';
  const i = text.indexOf(start);
  const j = text.indexOf(end);
  if (i < 0 || j < i) return false;
  writeFileSync(README, `${text.slice(0, i + start.length)}\n${body}\n${text.slice(j)}`);
  return true;
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  const rows = await run();
  const nbdTools = ['fio', 'nbdkit', 'nbdcopy', 'nbdinfo'].every(haveCommand);
  if (process.env.LUNRIG_BENCH_NBD !== '0' && nbdTools) rows.push(...(await runNbd()));
  else console.log(`over-NBD rows skipped (${nbdTools ? 'LUNRIG_BENCH_NBD=0' : 'fio, nbdkit, nbdcopy or nbdinfo missing'})`);
  console.table(rows.map((r) => ({ name: r.name, value: r.value, unit: r.unit })));
  const saved = saveResults('flashcopy', rows);
  const load = `load average ${os.loadavg()[0]!.toFixed(1)} at the end of the run`;
  const body = [`Measured ${new Date().toISOString().slice(0, 10)} on ${machineLine()}, ${load} (\`npm run bench:fc\`; raw rows in \`${path.relative(path.resolve(import.meta.dirname, '..'), saved)}\`).`, '', markdownTable(rows)].join('\n');
  console.log(updateFlashCopyReadme(body) ? 'src/copy/flashcopy/README.md: bench section updated' : 'src/copy/flashcopy/README.md: no bench markers; section not written');
}
