/**
 * lunrig as an NBD server process for the benchmark.
 *
 * Harness side (imported): prepareLunrigPool() creates a pool with one LUN
 * and copies the prefill bytes into the LUN's segment file while no server has
 * the pool open, and startLunrig() runs the server as a child process on a
 * unix socket. The LUN is not prefilled by writing through lunrig: the copy
 * gives every server byte-identical, fully allocated files laid down the same
 * way, and takes a second instead of a benchmark of its own.
 *
 * Server side (run as a script): open the pool on worker threads, export its
 * LUN with NbdServer, serve until SIGTERM/SIGINT or until stdin closes (the
 * harness died), then close the server and the pool.
 *
 *   node --import tsx bench/lib/lunrig-nbd.ts --socket S --data DIR --export NAME [--workers N]
 *
 * Workers load from dist/, so `npm run build` must have run.
 */
import { copyFile, open, readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { nbdUnixUri } from './fio.js';
import { spawnTracked, stopTracked, waitForNbd, serverProcess, type ServerProcess } from './peers.js';

const SCRIPT = fileURLToPath(import.meta.url);

export interface LunrigLaunch {
  socket: string;
  /** Pool directory (prepared by prepareLunrigPool). */
  data: string;
  exportName: string;
  /** I/O worker threads (default: the engine's own, min(2, cores)). */
  workers?: number;
}

/**
 * The command that serves the pool. This is the one line to change when
 * `lunrig serve --nbd-socket` exists (the export is then the LUN's name):
 *
 *   return [process.execPath, [fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url)), 'serve', '--nbd-socket', o.socket, '--data', o.data, '--control', '127.0.0.1:0']];
 */
export function lunrigCommand(o: LunrigLaunch): [string, string[]] {
  return [process.execPath, ['--import', import.meta.resolve('tsx'), SCRIPT, '--socket', o.socket, '--data', o.data, '--export', o.exportName, ...(o.workers ? ['--workers', String(o.workers)] : [])]];
}

export async function startLunrig(o: LunrigLaunch & { size: number; backingFile: string }): Promise<ServerProcess> {
  const [cmd, args] = lunrigCommand(o);
  // stdin is a pipe we never write: the server exits when it reads EOF, i.e. when we are gone.
  const t = spawnTracked('lunrig', cmd, args, { stdin: 'pipe' });
  const uri = nbdUnixUri(o.exportName, o.socket);
  try {
    await waitForNbd(t, uri, o.size);
  } catch (err) {
    await stopTracked(t);
    throw err;
  }
  const { VERSION } = await import('../../src/version.js');
  const workers = o.workers ? `${o.workers} I/O workers` : 'default I/O workers';
  return serverProcess(t, { name: 'lunrig', description: `lunrig ${VERSION}, NbdServer defaults, worker engine (${workers}), Node ${process.version}`, uri, backingFile: o.backingFile });
}

/**
 * Create a pool in `dir` with one LUN of `size` bytes and put the bytes of
 * `prefill` into its segment file. The pool is closed again before the copy,
 * so nothing of lunrig holds the file. Returns the segment file's path.
 */
export async function prepareLunrigPool(o: { dir: string; lunName: string; size: number; prefill: string }): Promise<string> {
  const { Pool } = await import('../../src/store/pool.js');
  const pool = await Pool.open({ dir: o.dir, engine: 'fs' });
  let uniqueId: string;
  try {
    uniqueId = (await pool.createLun({ name: o.lunName, size: o.size })).uniqueId;
  } finally {
    await pool.close();
  }
  const lunDir = path.join(o.dir, 'luns', uniqueId);
  const segments = (await readdir(lunDir)).filter((f) => /^segment-\d+\.img$/.test(f)).sort();
  if (segments.length !== 1) throw new Error(`expected one segment file in ${lunDir}, found ${segments.length}: the pool layout changed`);
  const segment = path.join(lunDir, segments[0]!);
  if ((await stat(segment)).size !== o.size) throw new Error(`${segment} is not ${o.size} bytes: the pool layout changed`);
  await copyFile(o.prefill, segment);
  if ((await stat(segment)).size !== o.size) throw new Error(`copying ${o.prefill} changed the size of ${segment}`);
  const h = await open(segment, 'r+');
  try {
    await h.datasync();
  } finally {
    await h.close();
  }
  return segment;
}

// ---- server side ----

async function serve(): Promise<void> {
  const { values } = parseArgs({
    options: {
      socket: { type: 'string' },
      data: { type: 'string' },
      export: { type: 'string' },
      workers: { type: 'string' },
    },
  });
  if (!values.socket || !values.data || !values.export) throw new Error('usage: lunrig-nbd.ts --socket PATH --data DIR --export NAME [--workers N]');
  const { Pool } = await import('../../src/store/pool.js');
  const { NbdServer } = await import('../../src/nbd/server.js');
  const { ExportRegistry } = await import('../../src/nbd/export-provider.js');
  let engine: import('../../src/io/backend.js').IoEngine | undefined;
  // LUNRIG_BENCH_CACHED_READ_MAX: compare with page-cache reads on the event loop off (0) or bounded differently.
  const cachedReadMax = process.env['LUNRIG_BENCH_CACHED_READ_MAX'];
  // LUNRIG_BENCH_SPIN_MICROS: let workers poll their ring this long before sleeping.
  const spinMicros = process.env['LUNRIG_BENCH_SPIN_MICROS'];
  if (values.workers || cachedReadMax || spinMicros) {
    const { WorkerIoEngine } = await import('../../src/io/worker-engine.js');
    engine = await WorkerIoEngine.start({
      ...(values.workers ? { workers: Number(values.workers) } : {}),
      ...(cachedReadMax ? { cachedReadMax: Number(cachedReadMax) } : {}),
      ...(spinMicros ? { spinMicros: Number(spinMicros) } : {}),
    });
  }
  const pool = await Pool.open({ dir: values.data, engine: engine ?? 'worker', createIfMissing: false });
  const server = new NbdServer({ exports: new ExportRegistry([{ name: values.export, volume: pool.getLun(values.export) }]) });
  await server.listen({ path: values.socket });
  process.stdout.write(`lunrig-nbd: serving '${values.export}' on ${values.socket} (pid ${process.pid})\n`);

  let stopping: Promise<void> | undefined;
  const stop = (why: string): Promise<void> =>
    (stopping ??= (async () => {
      process.stdout.write(`lunrig-nbd: stopping (${why})\n`);
      await server.close();
      await pool.close();
      await engine?.close();
    })());
  await new Promise<void>((resolve, reject) => {
    const done = (why: string) => () => stop(why).then(resolve, reject);
    process.once('SIGTERM', done('SIGTERM'));
    process.once('SIGINT', done('SIGINT'));
    process.stdin.on('end', done('stdin closed'));
    process.stdin.on('error', done('stdin error'));
    process.stdin.resume();
  });
  process.exit(0);
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  serve().catch((err: unknown) => {
    process.stderr.write(`lunrig-nbd: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  });
}
