/**
 * Copy-on-write cost as an NBD client sees it, against nbdkit's cow filter in
 * the same run (the yardstick): fio's nbd engine, 4 KiB random writes
 * at QD16 over a unix socket, a fixed number of writes (fio's random map: no
 * block twice), on a prefilled volume, so most writes are the first touch of
 * their grain:
 *   - lunrig, the source LUN alone (plain);
 *   - lunrig, the source of a fresh NOCOPY FlashCopy, 64 KiB and 4 KiB grains, on two servers:
 *     grain copies inside the I/O workers (the default) and through the Volumes
 *     (LUNRIG_FC_WORKER_COPY=0; "copy through Volumes" rows, left out with LUNRIG_FC_NBD_VOLUME_COPY=0);
 *   - nbdkit --filter=cow file, cow-block-size 64 KiB and 4 KiB, fresh overlay.
 * Each variant runs `reps` times (fresh relationship / fresh nbdkit each time);
 * the rows are medians. Needs fio, nbdkit, nbdcopy, nbdinfo and a build (dist/).
 *
 *   npx tsx bench/flashcopy-nbd.bench.ts
 *   env: LUNRIG_FC_NBD_MIB (volume, default 1024), LUNRIG_FC_NBD_IO_MIB (written per run, default 32), LUNRIG_FC_NBD_REPS (default 5),
 *        LUNRIG_FC_NBD_VOLUME_COPY=0 (no second server)
 */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { copyFile, mkdtemp, open, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { ControlClient } from '../src/control/client.js';
import { extractJson, median, nbdUnixUri, parseFioJson, type FioResult } from './lib/fio.js';
import { haveCommand, spawnTracked, stopTracked, versionOf, waitForNbd } from './lib/peers.js';
import type { BenchRow } from './report-types.js';
import { envNumber } from './lib/options.js';

const MiB = 1024 * 1024;
const DEPTH = 16;
const MAIN = path.resolve(import.meta.dirname, '../dist/cli/main.js');

async function run(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    c.stdout.on('data', (b: Buffer) => (out += b.toString()));
    c.stderr.on('data', (b: Buffer) => (out += b.toString()));
    c.on('error', reject);
    c.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`${cmd} ${args.join(' ')} exited ${code}: ${out.slice(-2000)}`))));
  });
}

/** A file of `bytes` non-zero, non-repeating data (so no copy is skipped as a hole). */
async function prefillFile(file: string, bytes: number): Promise<void> {
  const h = await open(file, 'w');
  try {
    const chunk = Buffer.alloc(4 * MiB);
    let x = 0x9e3779b9;
    for (let off = 0; off < bytes; off += chunk.length) {
      for (let i = 0; i < chunk.length; i += 4) {
        x ^= x << 13;
        x ^= x >>> 17;
        x ^= x << 5;
        chunk.writeUInt32LE((x | 1) >>> 0, i);
      }
      await h.write(chunk, 0, Math.min(chunk.length, bytes - off), off);
    }
  } finally {
    await h.close();
  }
}

/** fio: `ioBytes` of 4 KiB random writes at QD16, each block at most once. */
async function fioWrites(uri: string, ioBytes: number, seed: number, output: string): Promise<FioResult> {
  await run('fio', [
    '--name=fc-first-touch',
    '--ioengine=nbd',
    `--uri=${uri}`,
    '--rw=randwrite',
    '--bs=4096',
    `--iodepth=${DEPTH}`,
    '--numjobs=1',
    `--io_size=${ioBytes}`,
    `--randseed=${seed}`,
    '--output-format=json',
    `--output=${output}`,
  ]);
  const { readFile } = await import('node:fs/promises');
  return parseFioJson(extractJson(await readFile(output, 'utf8')), 'randwrite');
}

interface Series {
  name: string;
  runs: FioResult[];
}

export async function runNbd(): Promise<BenchRow[]> {
  const missing = ['fio', 'nbdkit', 'nbdcopy', 'nbdinfo'].filter((c) => !haveCommand(c));
  if (missing.length > 0) throw new Error(`flashcopy-nbd bench needs ${missing.join(', ')}`);
  const size = envNumber('LUNRIG_FC_NBD_MIB', 1024) * MiB;
  const ioBytes = envNumber('LUNRIG_FC_NBD_IO_MIB', 32) * MiB;
  const reps = envNumber('LUNRIG_FC_NBD_REPS', 5);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'lunrig-fc-nbd-bench-'));
  const out = path.join(dir, 'fio.json');
  const series: Series[] = [];
  const add = (name: string, r: FioResult): void => {
    let s = series.find((x) => x.name === name);
    if (!s) series.push((s = { name, runs: [] }));
    s.runs.push(r);
  };
  try {
    const prefill = path.join(dir, 'prefill.img');
    await prefillFile(prefill, size);

    // lunrig serve: the source LUN plain, then with a fresh NOCOPY relationship per run. Two
    // servers: grain copies inside the I/O workers (the default) and, for comparison, through
    // the Volumes (LUNRIG_FC_WORKER_COPY=0); LUNRIG_FC_NBD_VOLUME_COPY=0 leaves the second out.
    const variants = [{ tag: 'a', label: '', env: {} as NodeJS.ProcessEnv }];
    if (process.env.LUNRIG_FC_NBD_VOLUME_COPY !== '0') variants.push({ tag: 'b', label: ', copy through Volumes', env: { LUNRIG_FC_WORKER_COPY: '0' } });
    const servers: { label: string; lunrig: (grain: string | null, rep: number) => Promise<void>; stop: () => Promise<void> }[] = [];
    try {
      for (const v of variants) {
        const socket = path.join(dir, `lunrig-${v.tag}.sock`);
        const serve = spawnTracked(`lunrig-${v.tag}`, process.execPath, [MAIN, 'serve', '--json', '--data', path.join(dir, `pool-${v.tag}`), '--control', '127.0.0.1:0', '--nbd', 'none', '--nbd-socket', socket], {
          env: { ...process.env, ...v.env },
        });
        servers.push({ label: v.label, lunrig: async () => undefined, stop: () => stopTracked(serve) });
        const summary = await new Promise<{ control: string }>((resolve, reject) => {
          createInterface({ input: serve.child.stdout! }).on('line', (line) => {
            if (line.startsWith('{')) resolve(JSON.parse(line) as { control: string });
          });
          void serve.exited.then(() => reject(new Error(`lunrig serve exited: ${serve.output()}`)));
        });
        const control = new ControlClient(summary.control);
        await control.createLun({ name: 'src', size, lss: 0x10 });
        await control.createLun({ name: 'tgt', size, lss: 0x10 });
        const uri = nbdUnixUri('src', socket);
        await run('nbdcopy', ['--flush', prefill, uri]);
        servers[servers.length - 1]!.lunrig = async (grain, rep) => {
          if (grain === null) return add(`lunrig, plain LUN${v.label}`, await fioWrites(uri, ioBytes, 1000 + rep, out));
          await control.request('POST', '/v1/flashcopy', { source: 'src', target: 'tgt', mode: 'nocopy', grainSize: grain });
          add(`lunrig, NOCOPY source, ${grain} grains${v.label}`, await fioWrites(uri, ioBytes, 1000 + rep, out));
          await control.request('DELETE', '/v1/flashcopy/volumes/src');
        };
      }
      // nbdkit's cow filter: a fresh overlay (a fresh process) per run.
      const nbdkit = async (block: number, rep: number): Promise<void> => {
        const file = path.join(dir, 'nbdkit.img');
        await copyFile(prefill, file);
        const sock = path.join(dir, `nbdkit-${block}-${rep}.sock`);
        const t = spawnTracked('nbdkit', 'nbdkit', ['--foreground', '--exit-with-parent', '--unix', sock, '--filter=cow', 'file', file, `cow-block-size=${block}`]);
        try {
          const nbdUri = nbdUnixUri('', sock);
          await waitForNbd(t, nbdUri, size);
          add(`nbdkit cow filter, ${block / 1024}K blocks`, await fioWrites(nbdUri, ioBytes, 1000 + rep, out));
        } finally {
          await stopTracked(t);
          await rm(file, { force: true });
        }
      };
      // Interleaved, so a load change on the machine hits every variant alike (the two servers
      // take turns going first). The plain LUN runs on the first server only.
      for (let rep = 0; rep < reps; rep++) {
        const order = rep % 2 === 0 ? servers : [...servers].reverse();
        await nbdkit(64 * 1024, rep);
        await servers[0]!.lunrig(null, rep);
        for (const sv of order) await sv.lunrig('64K', rep);
        await nbdkit(4096, rep);
        for (const sv of order) await sv.lunrig('4K', rep);
      }
    } finally {
      for (const sv of servers) await sv.stop();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  const note = `fio nbd engine, 4k randwrite QD${DEPTH}, ${ioBytes / MiB} MiB per run (no block twice) on a ${size / MiB} MiB prefilled volume, median of ${reps}, ${os.availableParallelism()} CPUs; ${versionOf('nbdkit') ?? 'nbdkit'}`;
  return series.flatMap((s, i) => [
    { group: 'flashcopy over NBD', name: `4k first-touch randwrite: ${s.name}`, value: Math.round(median(s.runs.map((r) => r.iops))), unit: 'IOPS', ...(i === 0 && { note }) },
    { group: 'flashcopy over NBD', name: `4k first-touch randwrite p99: ${s.name}`, value: Number((median(s.runs.map((r) => r.clatP99Ns)) / 1e6).toFixed(2)), unit: 'ms' },
  ]);
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  const rows = await runNbd();
  console.table(rows.map((r) => ({ name: r.name, value: r.value, unit: r.unit })));
  console.log(rows[0]?.note);
}
