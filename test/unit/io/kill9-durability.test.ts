/**
 * Durability across kill -9: a child process (compiled dist/ code) writes with
 * FUA, or writes then flushes, and prints "acked <block>" for every write whose
 * promise resolved; the parent SIGKILLs it at a seeded random moment and checks
 * that every acknowledged block is on disk. Also: an engine nobody closed does
 * not keep its process alive.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { makeLunSpec } from '../../helpers/lun-spec.js';
import { seededRandom, testSeed } from '../../helpers/seeded-random.js';
import { tempDirs } from '../../helpers/temp-dir.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const DIST_IO = pathToFileURL(path.join(ROOT, 'dist/io/')).href;
const BLOCK = 4096;
const MiB = 1024 * 1024;
/** Sparse and large enough that the child never runs out of blocks before the kill. */
const LUN_SIZE = 256 * MiB;
const SEGMENT = 64 * MiB;

/** Block contents: a function of (seed, block) only, so the parent can check without the child. */
const BLOCK_PATTERN = `
function blockData(seed, block) {
  const b = Buffer.allocUnsafe(${BLOCK});
  let x = (seed ^ Math.imul(block + 1, 2654435761)) >>> 0 || 1;
  for (let i = 0; i < ${BLOCK}; i += 4) {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    b.writeUInt32LE(x, i);
  }
  return b;
}`;

const CHILD = `
import { WorkerIoEngine } from '${DIST_IO}worker-engine.js';
import { FsIoEngine } from '${DIST_IO}fs-engine.js';
${BLOCK_PATTERN}
const [specJson, seedText, mode, engineName] = process.argv.slice(2);
const spec = JSON.parse(specJson);
const seed = Number(seedText);
const engine = engineName === 'fs' ? new FsIoEngine() : await WorkerIoEngine.start();
const lun = await engine.open(spec);
// A seeded permutation of the blocks: each block is written once.
const blocks = Array.from({ length: spec.size / ${BLOCK} }, (_, i) => i);
let r = seed >>> 0 || 1;
for (let i = blocks.length - 1; i > 0; i--) {
  r ^= r << 13; r >>>= 0; r ^= r >>> 17; r ^= r << 5; r >>>= 0;
  const j = r % (i + 1);
  [blocks[i], blocks[j]] = [blocks[j], blocks[i]];
}
let next = 0;
const ack = (block) => process.stdout.write('acked ' + block + '\\n'); // pipes are synchronous on Linux
if (mode === 'fua') {
  await Promise.all(Array.from({ length: 8 }, async () => {
    while (next < blocks.length) {
      const block = blocks[next++];
      await lun.write(block * ${BLOCK}, blockData(seed, block), true);
      ack(block);
    }
  }));
} else {
  while (next < blocks.length) {
    const group = blocks.slice(next, next + 16);
    next += group.length;
    await Promise.all(group.map((block) => lun.write(block * ${BLOCK}, blockData(seed, block), false)));
    await lun.flush();
    for (const block of group) ack(block);
  }
}
process.stdout.write('done\\n');
setInterval(() => {}, 1000); // wait to be killed
`;

const UNCLOSED_CHILD = `
import { WorkerIoEngine } from '${DIST_IO}worker-engine.js';
const spec = JSON.parse(process.argv[2]);
const engine = await WorkerIoEngine.start();
const lun = await engine.open(spec);
await lun.write(0, Buffer.from('x'), true);
console.log('wrote');
// no close(): the process must still exit by itself
`;

function blockData(seed: number, block: number): Buffer {
  return new Function(`${BLOCK_PATTERN}; return blockData;`)()(seed, block) as Buffer;
}

describe('durability across kill -9', () => {
  let dir: string;
  const children: ChildProcess[] = [];

  const tmp = tempDirs('lunrig-io-kill9-');
  beforeEach(() => {
    dir = tmp.make();
    if (!fs.existsSync(path.join(ROOT, 'dist/io/worker-engine.js'))) throw new Error('dist/ is missing: run npm run build');
  });
  afterEach(() => {
    for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    tmp.cleanup();
  });

  const makeSpec = () => makeLunSpec(dir, 'lun', LUN_SIZE, SEGMENT);

  function runChild(script: string, args: string[]): { child: ChildProcess; lines: string[]; exited: Promise<void>; firstAck: Promise<void> } {
    const file = path.join(dir, 'child.mjs');
    fs.writeFileSync(file, script);
    const child = spawn(process.execPath, [file, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    const lines: string[] = [];
    let partial = '';
    let stderr = '';
    let onFirst!: () => void;
    const firstAck = new Promise<void>((resolve) => (onFirst = resolve));
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      const parts = (partial + chunk).split('\n');
      partial = parts.pop()!;
      for (const line of parts) {
        lines.push(line);
        if (lines.length === 1) onFirst();
      }
    });
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const exited = new Promise<void>((resolve) =>
      child.on('exit', (code, signal) => {
        if (code !== 0 && signal !== 'SIGKILL' && stderr) console.error(stderr);
        onFirst();
        resolve();
      }),
    );
    return { child, lines, exited, firstAck };
  }

  it.each([
    ['worker', 'fua'],
    ['worker', 'flush'],
    ['fs', 'fua'],
  ])('every write acknowledged by the %s engine (%s) is on disk after SIGKILL', async (engineName, mode) => {
    const seed = testSeed(`kill9 ${engineName}/${mode}`, 0x6b1119);
    const killAfterMs = 100 + Math.floor(seededRandom(seed)() * 400);
    console.log(`kill9 ${engineName}/${mode}: SIGKILL ${killAfterMs} ms after the first ack`);
    const spec = makeSpec();
    const { child, lines, exited, firstAck } = runChild(CHILD, [JSON.stringify(spec), String(seed), mode!, engineName!]);
    await firstAck;
    await new Promise((resolve) => setTimeout(resolve, killAfterMs));
    child.kill('SIGKILL');
    await exited;
    const acked = lines.filter((l) => l.startsWith('acked ')).map((l) => Number(l.slice(6)));
    console.log(`kill9 ${engineName}/${mode}: ${acked.length} of ${LUN_SIZE / BLOCK} writes acknowledged before the kill`);
    expect(acked.length, `seed=${seed}: the child acknowledged nothing`).toBeGreaterThan(0);
    expect(lines, 'the child finished before the kill; the test proves less').not.toContain('done');
    const fds = spec.segments.map((f) => fs.openSync(f, 'r'));
    const onDisk = Buffer.alloc(BLOCK);
    const lost = acked.filter((block) => {
      const offset = block * BLOCK;
      fs.readSync(fds[Math.floor(offset / SEGMENT)]!, onDisk, 0, BLOCK, offset % SEGMENT);
      return !onDisk.equals(blockData(seed, block));
    });
    for (const fd of fds) fs.closeSync(fd);
    expect(lost, `seed=${seed}: acknowledged blocks missing after kill -9`).toEqual([]);
  });

  it('an engine that was never closed does not keep its process alive', async () => {
    const spec = makeSpec();
    const { lines, exited } = runChild(UNCLOSED_CHILD, [JSON.stringify(spec)]);
    const timeout = new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), 15_000));
    expect(await Promise.race([exited.then(() => 'exited' as const), timeout])).toBe('exited');
    expect(lines).toContain('wrote');
    expect(fs.readFileSync(spec.segments[0]!).subarray(0, 1).toString()).toBe('x');
  });
});
