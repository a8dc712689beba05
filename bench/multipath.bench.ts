/**
 * Micro benchmark of the multipath layer's per-I/O cost: 4 KiB reads from a
 * MemoryVolume directly, through the fault-switch layer, and through a
 * MultipathDevice over two in-process ports (round robin, service-time, and
 * round robin with a per-request timeout on the real clock, which arms a
 * timer per I/O). Run directly with `npx tsx bench/multipath.bench.ts`.
 */
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Bench } from 'tinybench';
import { createLocalRig, FaultSwitch, FaultyVolume, type MultipathConfig } from '../src/multipath/index.js';
import { aixProfile, dmProfile } from '../src/multipath/profiles.js';
import type { Volume } from '../src/volume/volume.js';
import { MemoryVolume } from '../src/volume/memory-volume.js';
import type { BenchRow } from './report-types.js';

const KiB = 1024;
const SIZE = 64 * 1024 * KiB;
const BLOCKS = SIZE / (4 * KiB);

function lun(): MemoryVolume {
  const v = new MemoryVolume({ size: SIZE });
  void v.write(0, new Uint8Array(SIZE).fill(1));
  return v;
}

function device(config: MultipathConfig): Volume {
  return createLocalRig({ lun: lun(), paths: ['A', 'B'], config }).device;
}

export async function run(): Promise<BenchRow[]> {
  const contenders: [string, Volume][] = [
    ['MemoryVolume', lun()],
    ['FaultyVolume (no fault)', new FaultyVolume(lun(), new FaultSwitch())],
    ['MultipathDevice round_robin, no timeout', device({ ...aixProfile({ algorithm: 'round_robin', hcheck_interval: 0 }), requestTimeoutMs: undefined, queueDepth: undefined })],
    ['MultipathDevice service-time, no timeout', device({ ...dmProfile({ path_grouping_policy: 'multibus' }), requestTimeoutMs: undefined })],
    ['MultipathDevice round_robin, rw_timeout 30 s', device({ ...aixProfile({ algorithm: 'round_robin', hcheck_interval: 0 }), queueDepth: undefined })],
  ];
  const buf = new Uint8Array(4 * KiB);
  const bench = new Bench({ time: 500, warmupTime: 100 });
  for (const [name, v] of contenders) {
    let i = 0;
    bench.add(name, async () => {
      // Batches of 16 concurrent reads: the selector sees in-flight I/O.
      const ios: Promise<Uint8Array>[] = [];
      for (let k = 0; k < 16; k++) ios.push(v.read(((i++ * 7919) % BLOCKS) * 4 * KiB, 4 * KiB, k === 0 ? buf : undefined));
      await Promise.all(ios);
    });
  }
  await bench.run();
  const rows: BenchRow[] = bench.tasks.map((t) => ({
    group: 'multipath',
    name: `4k read x16: ${t.name}`,
    value: Math.round((t.result?.throughput.mean ?? Number.NaN) * 16),
    unit: 'IOPS',
    note: 'in-process, MemoryVolume, no fault injected',
  }));
  const base = rows[0]!.value;
  const mp = rows[2]!.value;
  rows.push({ group: 'multipath', name: '4k read: MultipathDevice round_robin / MemoryVolume', value: Number((mp / base).toFixed(2)), unit: 'x' });
  return rows;
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  const rows = await run();
  console.table(rows.map((r) => ({ name: r.name, value: r.value, unit: r.unit })));
  process.exit(0); // device health-check timers are off, but ports' switches hold no timers either: exit promptly
}
