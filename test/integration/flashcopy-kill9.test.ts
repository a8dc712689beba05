/**
 * FC-26 (and FX8): kill -9 lunrig in the middle of heavy copy-on-write traffic
 * and background copy, at seeded random moments, several times over; after
 * every restart the target still reads as source@T0 plus the target writes,
 * for every block, and in the end background copy resumes and completes with
 * the same result on the target's own blocks. Needs a build (dist/).
 */
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { FlashCopyManager } from '../../src/copy/flashcopy/index.js';
import { Pool } from '../../src/store/pool.js';
import type { Volume } from '../../src/volume/volume.js';
import { requireBuild } from '../helpers/serve-process.js';
import { runUntilKilled } from '../helpers/kill-child.js';
import { seededRandom, testSeed } from '../helpers/seeded-random.js';
import { tempDirs } from '../helpers/temp-dir.js';
import { BLOCK, MiB, expectedPattern, fillPattern, nextEvent } from '../unit/flashcopy/harness.js';

const temp = tempDirs('lunrig-fc-kill9-');
afterEach(() => temp.cleanup());

const FIXTURE = path.resolve(import.meta.dirname, '../fixtures/flashcopy-crash-writer.mjs');
const SIZE = 32 * MiB;
const P = 11; // the source at T0
const Q = 12; // the target before T0

/** Per block of one volume: the value a write made certain, and the one write possibly in flight. */
class BlockModel {
  private readonly settled = new Map<number, number>();
  private readonly inFlight = new Map<number, number>();
  readonly written = new Set<number>();

  issue(offset: number, byte: number): void {
    this.inFlight.set(offset, byte);
    this.written.add(offset);
  }

  ack(offset: number, byte: number): void {
    this.settled.set(offset, byte);
    this.inFlight.delete(offset);
  }

  /** After a kill: an unacknowledged write may or may not have landed (kill -9 keeps what reached the page cache). */
  crash(actual: (offset: number) => number | undefined): void {
    for (const [offset, byte] of this.inFlight) if (actual(offset) === byte) this.settled.set(offset, byte);
    this.inFlight.clear();
  }

  /** Acceptable uniform values of a written block; undefined = the T0 pattern is expected. */
  acceptable(offset: number): { values: Set<number>; t0: boolean } {
    const values = new Set<number>();
    const s = this.settled.get(offset);
    if (s !== undefined) values.add(s);
    const f = this.inFlight.get(offset);
    if (f !== undefined) values.add(f);
    return { values, t0: s === undefined };
  }
}

function runAndKill(dir: string, engine: string, seed: number, round: number, acks: number): Promise<string> {
  return runUntilKilled([FIXTURE, dir, String(seed), String(round)], /^a /gm, acks, { ...process.env, LUNRIG_IO: engine });
}

/** Check every block of `v` against the T0 pattern and the writes the model allows. */
async function verify(v: Volume, model: BlockModel, what: string): Promise<void> {
  const all = Buffer.from(await v.read(0, SIZE));
  const t0 = expectedPattern(P, 0, SIZE);
  for (let offset = 0; offset < SIZE; offset += BLOCK) {
    const block = all.subarray(offset, offset + BLOCK);
    const { values, t0: t0Allowed } = model.acceptable(offset);
    const isT0 = block.equals(t0.subarray(offset, offset + BLOCK));
    const uniform = block.every((b) => b === block[0]);
    if ((isT0 && t0Allowed) || (uniform && values.has(block[0]!))) continue;
    throw new Error(`${what}: block at ${offset} holds ${isT0 ? 'the T0 pattern' : uniform ? `uniform ${block[0]}` : 'a mix'}; acceptable: ${t0Allowed ? 'T0, ' : ''}${[...values].join(',')}`);
  }
}

function replay(log: string, models: Record<'s' | 't', BlockModel>): void {
  for (const line of log.split('\n')) {
    const [kind, vol, offset, byte] = line.split(' ');
    if ((kind !== 'w' && kind !== 'a') || (vol !== 's' && vol !== 't') || byte === undefined) continue;
    if (kind === 'w') models[vol].issue(Number(offset), Number(byte));
    else models[vol].ack(Number(offset), Number(byte));
  }
}

describe.each(['worker', 'fs'] as const)('FlashCopy kill -9 (%s I/O engine)', (engine) => {
  it('FC-26: after kill -9 at random moments the target still reads as source@T0 plus target writes, and background copy resumes to completion', { timeout: 240_000 }, async () => {
    requireBuild();
    const seed = testSeed(`fc-kill9-${engine}`, engine === 'worker' ? 0xfc26 : 0xfc27);
    const rand = seededRandom(seed);
    const dir = temp.make();
    {
      const pool = await Pool.open({ dir, serial: 'FCA24' });
      await pool.createLun({ name: 's', size: SIZE });
      await pool.createLun({ name: 't', size: SIZE });
      await fillPattern(pool.volume('s'), P, SIZE);
      await fillPattern(pool.volume('t'), Q, SIZE / 2);
      const fc = await FlashCopyManager.open(pool);
      await fc.establish('s', 't', { grainSize: '16K', rate: '1M' });
      await fc.close();
      await pool.close();
    }
    const models = { s: new BlockModel(), t: new BlockModel() };
    let copiedBefore = 0;
    for (let round = 0; round < 4; round++) {
      const log = await runAndKill(dir, engine, seed + round, round, 200 + Math.floor(rand() * 1500));
      replay(log, models);
      const pool = await Pool.open({ dir, engine });
      const fc = await FlashCopyManager.open(pool);
      try {
        expect(fc.recovery.resumed).toEqual(['fc1']);
        const info = fc.list()[0]!;
        expect(info.progress.copiedGrains).toBeGreaterThanOrEqual(copiedBefore);
        copiedBefore = info.progress.copiedGrains;
        await fc.setRate('s', 0); // hold background copy while we read
        const s = Buffer.from(await pool.volume('s').read(0, SIZE));
        for (const vol of ['s', 't'] as const) {
          const actual = vol === 's' ? s : Buffer.from(await pool.volume('t').read(0, SIZE));
          models[vol].crash((offset) => (actual.subarray(offset, offset + BLOCK).every((b) => b === actual[offset]) ? actual[offset] : undefined));
        }
        await verify(pool.volume('t'), models.t, `round ${round}: target`);
        await verify(pool.volume('s'), models.s, `round ${round}: source`);
        await fc.setRate('s', '1M');
      } finally {
        await fc.close();
        await pool.close();
      }
    }
    // Restart once more and let background copy finish: the target's own blocks must hold the same image.
    const pool = await Pool.open({ dir, engine });
    const fc = await FlashCopyManager.open(pool);
    try {
      expect(fc.list()[0]!.progress.remainingGrains).toBeGreaterThan(0); // the rate kept it from finishing before
      const done = nextEvent(fc, 'completed');
      await fc.setRate('s', null);
      expect((await done).state).toBe('none');
      await verify(pool.getLun('t'), models.t, 'after completion, physical target');
      expect(fc.list()).toEqual([]);
    } finally {
      await fc.close();
      await pool.close();
    }
  });
});
