import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Pool } from '../../src/store/pool.js';
import { runUntilKilled } from '../helpers/kill-child.js';
import { seededRandom, testSeed } from '../helpers/seeded-random.js';
import { tempDirs } from '../helpers/temp-dir.js';

const temp = tempDirs();
afterEach(() => temp.cleanup());

const FIXTURE = path.resolve(import.meta.dirname, '../fixtures/crash-metadata.mjs');

function runAndKill(dir: string, acknowledged: number): Promise<string> {
  return runUntilKilled([FIXTURE, dir], /^ok /gm, acknowledged);
}

/** Per LUN, the sizes it may have after the crash; 0 means "may be absent". */
function expectedLuns(log: string): Map<string, Set<number>> {
  const states = new Map<string, Set<number>>();
  for (const line of log.split('\n')) {
    const parts = line.trim().split(' ');
    const ok = parts[0] === 'ok';
    const [op, name, sizeText] = ok ? parts.slice(1) : parts;
    if (!op || !name) continue;
    const size = Number(sizeText);
    if (op === 'create') states.set(name, ok ? new Set([size]) : new Set([0, size]));
    else if (op === 'grow') states.set(name, ok ? new Set([size]) : new Set([...states.get(name)!, size]));
    else if (op === 'delete') states.set(name, ok ? new Set([0]) : new Set([...states.get(name)!, 0]));
  }
  return states;
}

describe('pool metadata crash safety', () => {
  it('kill -9 during create/grow/delete: the pool reopens with every acknowledged change and nothing half-made', async () => {
    const seed = testSeed('metadata-kill9');
    const rand = seededRandom(seed);
    const dir = temp.make();
    let log = '';
    for (let round = 0; round < 4; round++) {
      log += await runAndKill(dir, 5 + Math.floor(rand() * 40));
      const pool = await Pool.open({ dir, engine: 'fs' });
      try {
        const present = new Map(pool.listLuns().map((l) => [l.name, l.size]));
        for (const [name, sizes] of expectedLuns(log)) {
          const size = present.get(name) ?? 0;
          expect(sizes.has(size), `${name}: size ${size} not in {${[...sizes].join(',')}}`).toBe(true);
          if (size) {
            // The files match the metadata and the LUN serves I/O to its last byte.
            const lun = pool.getLun(name);
            await lun.write(size - 512, Buffer.alloc(512, 1));
            expect(Buffer.from(await lun.read(size - 512, 512))).toEqual(Buffer.alloc(512, 1));
          }
        }
        for (const name of present.keys()) expect(expectedLuns(log).has(name), `unexpected LUN ${name}`).toBe(true);
      } finally {
        await pool.close();
      }
    }
  });
});
