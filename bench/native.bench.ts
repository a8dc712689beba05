/**
 * Micro benchmarks of the native addon against the TypeScript fallback:
 * CRC32C throughput on 4 KiB and 1 MiB buffers, and whole-bitmap scans
 * (popcount, findNextSet, findNextClear) over a 2 MiB bitmap.
 * Run directly with `npx tsx bench/native.bench.ts`.
 */
import { randomFillSync } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import { Bench } from 'tinybench';
import { nativeAddon, nativeLoadError, typescriptRoutines } from '../src/native/index.js';
import { loadAddon } from '../src/native/load-addon.js';
import type { NativeRoutines } from '../src/native/types.js';
import type { BenchRow } from './report-types.js';

const KiB = 1024;
const MiB = 1024 * KiB;

const impls: [string, NativeRoutines][] = [['typescript', typescriptRoutines]];
if (nativeAddon) impls.unshift(['native', nativeAddon]);

/** Runs tasks and returns ops/s per task name. */
async function measure(tasks: Record<string, () => unknown>): Promise<Map<string, number>> {
  const bench = new Bench({ time: 500, warmupTime: 100 });
  for (const [name, fn] of Object.entries(tasks)) bench.add(name, fn);
  await bench.run();
  return new Map(bench.tasks.map((t) => [t.name, t.result?.throughput.mean ?? Number.NaN]));
}

function ratioRow(group: string, rows: BenchRow[]): BenchRow[] {
  const [n, t] = ['native', 'typescript'].map((name) => rows.find((r) => r.group === group && r.name === name));
  return n && t ? [{ group, name: 'native / typescript', value: n.value / t.value, unit: 'x' }] : [];
}

async function crcRows(size: number, label: string): Promise<BenchRow[]> {
  const data = randomFillSync(new Uint8Array(size));
  const ops = await measure(Object.fromEntries(impls.map(([name, r]) => [name, () => r.crc32c(data)])));
  const group = `crc32c ${label}`;
  const implementation = loadAddon().addon?.crc32cImplementation;
  const rows: BenchRow[] = impls.map(([name]) => ({
    group,
    name,
    value: ((ops.get(name) ?? Number.NaN) * size) / 1e6,
    unit: 'MB/s',
    ...(name === 'native' && implementation ? { note: implementation } : {}),
  }));
  return [...rows, ...ratioRow(group, rows)];
}

/** A 2 MiB bitmap whose only odd bit is the very last: each find scans it all. */
function scanRows(): Promise<BenchRow[]> {
  const bits = 2 * MiB * 8;
  const zeros = new Uint8Array(2 * MiB);
  const ones = new Uint8Array(2 * MiB).fill(0xff);
  zeros[zeros.length - 1] = 0x80;
  ones[ones.length - 1] = 0x7f;
  const random = randomFillSync(new Uint8Array(2 * MiB));
  const groups: [string, (r: NativeRoutines) => () => unknown][] = [
    ['bitmap 2 MiB popcount', (r) => () => r.popcount(random, 0, bits)],
    ['bitmap 2 MiB findNextSet (full scan)', (r) => () => r.findNextSet(zeros, 0, bits)],
    ['bitmap 2 MiB findNextClear (full scan)', (r) => () => r.findNextClear(ones, 0, bits)],
    ['bitmap testBit (per-call cost)', (r) => () => r.testBit(random, 12345)],
  ];
  return groups.reduce<Promise<BenchRow[]>>(async (acc, [group, make]) => {
    const rows = await acc;
    const ops = await measure(Object.fromEntries(impls.map(([name, r]) => [name, make(r)])));
    const mine = impls.map(([name]): BenchRow => ({ group, name, value: ops.get(name) ?? Number.NaN, unit: 'ops/s' }));
    // The per-call row is why lunrig's `native` keeps testBit and short ranges in JS.
    if (group.includes('per-call') && mine[0]?.name === 'native') mine[0].note = 'addon call; `native` uses JS here';
    return [...rows, ...mine, ...ratioRow(group, mine)];
  }, Promise.resolve([]));
}

export async function run(): Promise<BenchRow[]> {
  const rows = [...(await crcRows(4 * KiB, '4 KiB')), ...(await crcRows(MiB, '1 MiB')), ...(await scanRows())];
  if (!nativeAddon) rows.push({ group: 'native', name: 'addon', value: 0, unit: '', note: `not loaded: ${nativeLoadError?.message}` });
  return rows;
}

function format(value: number): string {
  return value >= 100 ? Math.round(value).toLocaleString('en-US') : value.toFixed(2);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const rows = await run();
  const width = Math.max(...rows.map((r) => r.group.length));
  for (const r of rows) {
    const figure = `${format(r.value)} ${r.unit}`.padStart(18);
    console.log(`${r.group.padEnd(width)}  ${r.name.padEnd(20)}${figure}${r.note ? `  (${r.note})` : ''}`);
  }
}
