/** Shared set-up for the FlashCopy tests: pools with a manager, patterns, and an error-code matcher. */
import { expect } from 'vitest';
import { FlashCopyManager, type FlashCopyManagerOptions, type RelationshipInfo } from '../../../src/copy/flashcopy/index.js';
import { CowEngine } from '../../../src/copy/flashcopy/cow-engine.js';
import { GrainBitmaps, bitmapSizes } from '../../../src/copy/flashcopy/grain-bitmaps.js';
import { GrainCommitter } from '../../../src/copy/flashcopy/grain-committer.js';
import { VolumeGrainCopier } from '../../../src/copy/flashcopy/grain-copier.js';
import { GrainGeometry } from '../../../src/copy/flashcopy/grain-geometry.js';
import { SourceLayer } from '../../../src/copy/flashcopy/source-layer.js';
import { TargetLayer } from '../../../src/copy/flashcopy/target-layer.js';
import { isLunrigError, type ErrorCode } from '../../../src/errors.js';
import { MemoryBitmapStore } from '../../../src/store/bitmap-journal.js';
import { Pool, type CreateLunRequest } from '../../../src/store/pool.js';
import type { EngineKind } from '../../../src/store/open-engine.js';
import { VirtualClock } from '../../../src/util/clock.js';
import { MemoryVolume } from '../../../src/volume/memory-volume.js';
import type { Volume } from '../../../src/volume/volume.js';
import { tempDirs } from '../../helpers/temp-dir.js';

export const KiB = 1024;
export const MiB = 1024 * KiB;
export const GiB = 1024 * MiB;
export const BLOCK = 4 * KiB;

/** A block of pattern `tag` at `offset`: not uniform, different per block and per tag. */
export function patternBlock(tag: number, offset: number, length = BLOCK): Buffer {
  const b = Buffer.allocUnsafe(length);
  const seed = (Math.imul(tag + 1, 0x9e3779b1) ^ Math.floor(offset / 512)) >>> 0;
  for (let i = 0; i < length; i++) b[i] = (seed + i * 7 + (i >> 9) * 13) & 0xff;
  return b;
}

/** Uniform block: a host write whose value is easy to recognise. */
export function uniform(byte: number, length = BLOCK): Buffer {
  return Buffer.alloc(length, byte);
}

export async function readBuf(v: Volume, offset: number, length: number): Promise<Buffer> {
  return Buffer.from(await v.read(offset, length));
}

export async function expectCode(promise: Promise<unknown> | (() => unknown), code: ErrorCode): Promise<void> {
  try {
    await (typeof promise === 'function' ? promise() : promise);
  } catch (err) {
    if (!isLunrigError(err)) throw err;
    expect(err.code).toBe(code);
    return;
  }
  throw new Error(`expected ${code}, but it succeeded`);
}

/**
 * The volume with every operation started after a random number of event-loop
 * turns, so requests overlap the way they do on real queues (a MemoryVolume
 * alone completes everything at once and hides races).
 */
export function jittered<V extends Volume>(below: V, rand: () => number): V {
  const turns = async (): Promise<void> => {
    for (let n = Math.floor(rand() ** 2 * 16); n > 0; n--) await new Promise((r) => setImmediate(r));
  };
  const wrap =
    <A extends unknown[], R>(fn: (...args: A) => Promise<R>) =>
    async (...args: A): Promise<R> => {
      await turns();
      return fn.apply(below, args);
    };
  return Object.assign(Object.create(below) as V, {
    read: wrap(below.read),
    write: wrap(below.write),
    writeZeroes: wrap(below.writeZeroes),
    trim: wrap(below.trim),
    flush: wrap(below.flush),
    blockStatus: wrap(below.blockStatus),
  });
}

/** A source/target pair of MemoryVolumes wired through a CowEngine (no pool, no persistence); `jitter` makes their I/O overlap. */
export function memoryPair(options: { size: number; targetSize?: number; grainSize: number; incremental?: boolean; jitter?: () => number }) {
  const memSource = new MemoryVolume({ size: options.size, chunkSize: 4096 });
  const memTarget = new MemoryVolume({ size: options.targetSize ?? options.size, chunkSize: 4096 });
  const rawSource = options.jitter ? jittered(memSource, options.jitter) : memSource;
  const rawTarget = options.jitter ? jittered(memTarget, options.jitter) : memTarget;
  const geometry = new GrainGeometry(options.grainSize, options.size);
  const store = new MemoryBitmapStore(bitmapSizes(geometry.grains, options.incremental ?? false));
  const bitmaps = new GrainBitmaps(store, geometry.grains);
  const committer = new GrainCommitter(bitmaps, () => rawTarget.flush());
  const engine = new CowEngine(geometry, bitmaps, committer, rawSource, rawTarget);
  return {
    rawSource,
    rawTarget,
    engine,
    bitmaps,
    committer,
    source: new SourceLayer(rawSource, engine),
    target: new TargetLayer(rawTarget, engine),
    copier: new VolumeGrainCopier((g) => engine.copyGrain(g)),
  };
}

export interface Rig {
  dir: string;
  pool: Pool;
  fc: FlashCopyManager;
  clock: VirtualClock;
  /** Reopen the manager (and the pool, with `pool: true`) on the same directory. */
  reopen(options?: { pool?: boolean; manager?: FlashCopyManagerOptions }): Promise<void>;
}

/** Pools and managers made by `rig`, closed by `closeRigs` (call it in afterEach). */
const rigs: Rig[] = [];
const temp = tempDirs('lunrig-fc-');

export async function rig(options: { luns: CreateLunRequest[]; engine?: EngineKind; manager?: FlashCopyManagerOptions }): Promise<Rig> {
  const dir = temp.make();
  const engine = options.engine ?? 'fs';
  const clock = new VirtualClock(Date.UTC(2001, 1, 1));
  const pool = await Pool.open({ dir, serial: 'FCA24', engine });
  for (const lun of options.luns) await pool.createLun(lun);
  const managerOptions = (extra?: FlashCopyManagerOptions): FlashCopyManagerOptions => ({ clock, ...options.manager, ...extra });
  const r: Rig = {
    dir,
    pool,
    fc: await FlashCopyManager.open(pool, managerOptions()),
    clock,
    async reopen(again = {}) {
      await r.fc.close();
      if (again.pool) {
        await r.pool.close();
        r.pool = await Pool.open({ dir, engine });
      }
      r.fc = await FlashCopyManager.open(r.pool, managerOptions(again.manager));
    },
  };
  rigs.push(r);
  return r;
}

export async function closeRigs(): Promise<void> {
  for (const r of rigs.splice(0)) {
    await r.fc.close().catch(() => undefined);
    await r.pool.close().catch(() => undefined);
  }
  temp.cleanup();
}

/** Write pattern `tag` over `blocks` blocks spread evenly across [0, size) (sparse filling of big volumes). */
export async function spreadPattern(v: Volume, tag: number, size: number, blocks: number): Promise<number[]> {
  const step = Math.max(BLOCK, Math.floor(size / blocks / BLOCK) * BLOCK);
  const offsets: number[] = [];
  for (let o = 0; o + BLOCK <= size && offsets.length < blocks; o += step) offsets.push(o);
  await Promise.all(offsets.map((o) => v.write(o, patternBlock(tag, o))));
  return offsets;
}

/** Fill every block of [0, size) with pattern `tag`, in 1 MiB writes. */
export async function fillPattern(v: Volume, tag: number, size: number): Promise<void> {
  const chunk = MiB;
  for (let o = 0; o < size; o += chunk) {
    const n = Math.min(chunk, size - o);
    const buf = Buffer.allocUnsafe(n);
    for (let b = 0; b < n; b += BLOCK) patternBlock(tag, o + b, Math.min(BLOCK, n - b)).copy(buf, b);
    await v.write(o, buf);
  }
}

/** The expected bytes of pattern `tag` over [offset, offset + length), block-aligned. */
export function expectedPattern(tag: number, offset: number, length: number): Buffer {
  const buf = Buffer.allocUnsafe(length);
  for (let b = 0; b < length; b += BLOCK) patternBlock(tag, offset + b, Math.min(BLOCK, length - b)).copy(buf, b);
  return buf;
}

/** The next `event` of the manager (for relationship `id`, when given). */
export function nextEvent(fc: FlashCopyManager, event: 'established' | 'completed' | 'withdrawn' | 'refreshed' | 'progress', id?: string): Promise<RelationshipInfo> {
  return new Promise((resolve) => {
    const on = (info: RelationshipInfo): void => {
      if (id !== undefined && info.id !== id) return;
      fc.off(event, on);
      resolve(info);
    };
    fc.on(event, on);
  });
}

/** Poll (real time) until `cond` holds; fails after `ms`. */
export async function until(cond: () => boolean, what: string, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

/**
 * Run virtual time until `cond` holds: whenever everything waits on the
 * clock, jump to the next timer; while real I/O is under way, wait for it.
 * So virtual time passes only where a rule (a rate limit) says it does.
 */
export async function drive(clock: VirtualClock, cond: () => boolean, what: string, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    if (clock.pending > 0) await clock.advanceToNext();
    else await new Promise((r) => setTimeout(r, 1));
  }
}
