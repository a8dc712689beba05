/**
 * 4 KiB random reads and writes at queue depth 32 on a prefilled 1 GiB file
 * (re-read into the page cache before every measurement): WorkerIoEngine vs plain fs.promises (FileHandle.read /
 * write, one libuv call per request) on the same file in the same run, and the
 * FsIoEngine fallback for reference. Rounds alternate between contenders and the
 * median round is reported.
 *
 *   npx tsc -p tsconfig.build.json && npx tsx bench/io.bench.ts
 *   env: LUNRIG_BENCH_SECONDS (per measurement, default 2), LUNRIG_BENCH_ROUNDS (default 3),
 *        LUNRIG_BENCH_MIB (file size, default 1024), LUNRIG_BENCH_WORKERS
 */
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { LunBackend, LunBackendSpec } from '../src/io/backend.js';
import { FsIoEngine } from '../src/io/fs-engine.js';
import { WorkerIoEngine } from '../src/io/worker-engine.js';
import type { BenchRow } from './report-types.js';
import { envNumber, xorshift32 } from './lib/options.js';

const BLOCK = 4096;
const DEPTH = 32;

interface Contender {
  name: string;
  read(offset: number, into: Uint8Array): Promise<unknown>;
  write(offset: number, data: Uint8Array): Promise<unknown>;
}

async function prefill(file: string, bytes: number): Promise<void> {
  const fd = fs.openSync(file, 'w');
  try {
    const chunk = Buffer.alloc(1024 * 1024);
    for (let off = 0; off < bytes; off += chunk.length) {
      chunk.fill(off / chunk.length);
      fs.writeSync(fd, chunk, 0, chunk.length, off);
    }
    // Clean pages: background writeback must not disturb the measurements.
    fs.fdatasyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Reads the whole file so it is in the page cache: on VMs with proactive reclaim
 * (DAMON) cold pages leave the cache within seconds and reads would hit the disk.
 */
function warm(file: string, bytes: number): void {
  const fd = fs.openSync(file, 'r');
  try {
    const chunk = Buffer.allocUnsafe(1024 * 1024);
    for (let off = 0; off < bytes; off += chunk.length) fs.readSync(fd, chunk, 0, chunk.length, off);
  } finally {
    fs.closeSync(fd);
  }
}

async function measure(c: Contender, op: 'read' | 'write', blocks: number, seconds: number, seed: number): Promise<number> {
  const next = xorshift32(seed);
  const run = async (until: number): Promise<number> => {
    let count = 0;
    const lanes = Array.from({ length: DEPTH }, async () => {
      const buf = Buffer.alloc(BLOCK, 0x5a);
      while (performance.now() < until) {
        const offset = (next() % blocks) * BLOCK;
        if (op === 'read') await c.read(offset, buf);
        else await c.write(offset, buf);
        count++;
      }
    });
    await Promise.all(lanes);
    return count;
  };
  await run(performance.now() + 300); // warm-up
  const start = performance.now();
  const count = await run(start + seconds * 1000);
  return count / ((performance.now() - start) / 1000);
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

function backendContender(name: string, b: LunBackend): Contender {
  return { name, read: (o, into) => b.read(o, BLOCK, into), write: (o, d) => b.write(o, d, false) };
}

export async function run(): Promise<BenchRow[]> {
  const seconds = envNumber('LUNRIG_BENCH_SECONDS', 2);
  const rounds = envNumber('LUNRIG_BENCH_ROUNDS', 3);
  const bytes = envNumber('LUNRIG_BENCH_MIB', 1024) * 1024 * 1024;
  const workers = process.env.LUNRIG_BENCH_WORKERS ? Number(process.env.LUNRIG_BENCH_WORKERS) : undefined;
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'lunrig-io-bench-'));
  const file = path.join(dir, 'lun.0');
  const spec: LunBackendSpec = { segments: [file], segmentSize: bytes, size: bytes, readOnly: false };
  const engine = await WorkerIoEngine.start(workers ? { workers } : {});
  const fsEngine = new FsIoEngine();
  let handle: fsp.FileHandle | undefined;
  try {
    await prefill(file, bytes);
    handle = await fsp.open(file, 'r+');
    const fh = handle;
    const contenders: Contender[] = [
      backendContender('WorkerIoEngine', await engine.open(spec)),
      {
        name: 'fs.promises FileHandle',
        read: (o, into) => fh.read(into, 0, BLOCK, o),
        write: (o, d) => fh.write(d, 0, BLOCK, o),
      },
      backendContender('FsIoEngine', await fsEngine.open(spec)),
    ];
    const blocks = bytes / BLOCK;
    const results = new Map<string, number[]>();
    for (let round = 0; round < rounds; round++) {
      for (const op of ['read', 'write'] as const) {
        // Alternate the order each round so neither contender always runs on a warmer cache.
        const order = round % 2 === 0 ? contenders : [...contenders].reverse();
        for (const c of order) {
          warm(file, bytes);
          const iops = await measure(c, op, blocks, seconds, 0x9e3779b9 ^ (round * 7919));
          const key = `${op}|${c.name}`;
          results.set(key, [...(results.get(key) ?? []), iops]);
        }
      }
    }
    const rows: BenchRow[] = [];
    const note = `QD${DEPTH}, ${bytes / 2 ** 20} MiB file in page cache, median of ${rounds} x ${seconds}s, ${os.availableParallelism()} CPUs`;
    for (const op of ['read', 'write'] as const) {
      for (const c of contenders) {
        rows.push({ group: 'io', name: `4k rand${op} QD${DEPTH}: ${c.name}`, value: Math.round(median(results.get(`${op}|${c.name}`)!)), unit: 'IOPS', note });
      }
      const worker = median(results.get(`${op}|WorkerIoEngine`)!);
      const plain = median(results.get(`${op}|fs.promises FileHandle`)!);
      rows.push({ group: 'io', name: `4k rand${op} QD${DEPTH}: WorkerIoEngine / fs.promises`, value: Number((worker / plain).toFixed(2)), unit: 'x' });
    }
    return rows;
  } finally {
    await handle?.close();
    await engine.close();
    await fsEngine.close();
    await fsp.rm(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  const rows = await run();
  console.table(rows.map((r) => ({ name: r.name, value: r.value, unit: r.unit })));
  if (rows[0]?.note) console.log(rows[0].note);
}
