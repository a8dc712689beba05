import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Pool } from '../../src/store/pool.js';
import { acceptableValues } from '../helpers/durability-log.js';
import { runUntilKilled } from '../helpers/kill-child.js';
import { seededRandom, testSeed } from '../helpers/seeded-random.js';
import { tempDirs } from '../helpers/temp-dir.js';

const temp = tempDirs();
afterEach(() => temp.cleanup());

const FIXTURE = path.resolve(import.meta.dirname, '../fixtures/crash-writer.mjs');

/** Run the crash writer until it has logged `durableEvents` durable points, then SIGKILL it. Returns its log. */
function runAndKill(dir: string, engine: string, seed: number, durableEvents: number): Promise<string> {
  return runUntilKilled([FIXTURE, dir, engine, String(seed)], /^(f|fua .*)$/gm, durableEvents);
}

describe.each(['worker', 'fs'] as const)('kill -9 durability (%s engine)', (engine) => {
  it('acknowledged FUA writes and flushed writes survive SIGKILL; LUN metadata reopens intact', async () => {
    const seed = testSeed(`kill9-${engine}`);
    const rand = seededRandom(seed);
    const dir = temp.make();
    let firstInfos: unknown;
    for (let round = 0; round < 3; round++) {
      const log = await runAndKill(dir, engine, seed + round, 20 + Math.floor(rand() * 200));
      const pool = await Pool.open({ dir, engine: 'fs' });
      try {
        const infos = pool.listLuns();
        expect(infos.map((l) => l.name)).toEqual(['crash', 'other']);
        firstInfos ??= infos;
        expect(infos).toEqual(firstInfos);
        const lun = pool.getLun('crash');
        const acceptable = acceptableValues(log);
        expect(acceptable.size).toBeGreaterThan(0);
        for (const [offset, values] of acceptable) {
          const block = Buffer.from(await lun.read(offset, 4096));
          const byte = block[0]!;
          if (!values.has(byte) || block.some((b) => b !== byte)) {
            throw new Error(`round ${round}: block at ${offset} holds ${byte} (uniform: ${block.every((b) => b === byte)}), acceptable: ${[...values].join(',')}`);
          }
        }
      } finally {
        await pool.close();
      }
    }
  });
});
