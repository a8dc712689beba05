/**
 * FlashCopy as an NBD client sees it: the pool's exports (PoolExports) are
 * the LUNs' host-facing VolumeStacks, so a FlashCopy established while
 * connections are open applies to their next requests, fast path or not
 * (FC-01, FC-03, FC-07 over the wire).
 */
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { NbdClient } from '../../src/nbd/client.js';
import { PoolExports } from '../../src/nbd/pool-exports.js';
import { NbdServer } from '../../src/nbd/server.js';
import { tempDirs } from '../helpers/temp-dir.js';
import { BLOCK, KiB, MiB, closeRigs, expectedPattern, fillPattern, rig, uniform } from '../unit/flashcopy/harness.js';

const temp = tempDirs('lunrig-fc-nbd-');
const closers: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close().catch(() => undefined);
  await closeRigs();
  temp.cleanup();
});

describe('FlashCopy over NBD', () => {
  it('FC-01, FC-03, FC-07: open NBD connections see T0 on the target, copy-on-write on the source, sticky target writes', async () => {
    const size = 4 * MiB;
    const grain = 64 * KiB;
    const r = await rig({ luns: [{ name: 's', size }, { name: 't', size }], engine: 'worker' });
    const server = new NbdServer({ exports: new PoolExports(r.pool) });
    const socket = path.join(temp.make(), 'nbd.sock');
    await server.listen({ path: socket });
    closers.push(() => server.close());
    const s = await NbdClient.connect({ path: socket }, { exportName: 's' });
    const t = await NbdClient.connect({ path: socket }, { exportName: 't' });
    closers.push(() => s.close(), () => t.close());

    await fillPattern(s, 1, size); // before the relationship: the plain-LUN fast path
    await fillPattern(t, 2, size);
    await r.fc.establish('s', 't', { rate: 0 });
    expect(Buffer.from(await t.read(0, size)).equals(expectedPattern(1, 0, size))).toBe(true);
    await s.write(3 * grain, uniform(0xaa, grain));
    await t.write(5 * grain + BLOCK, uniform(0xbb));
    await s.flush();
    const want = expectedPattern(1, 0, size);
    uniform(0xbb).copy(want, 5 * grain + BLOCK);
    expect(Buffer.from(await t.read(0, size)).equals(want)).toBe(true);
    expect(r.fc.query('s').remainingGrains).toBe(size / grain - 2);
    expect(Buffer.from(await s.read(3 * grain, grain)).every((b) => b === 0xaa)).toBe(true);
    // After withdraw the same connections are back on plain LUNs: T shows its own blocks (FC-14), S's writes stay on S.
    await r.fc.withdraw('s');
    await s.write(0, uniform(0xcc, grain));
    expect(Buffer.from(await t.read(0, grain)).equals(expectedPattern(2, 0, grain))).toBe(true);
    expect(Buffer.from(await t.read(3 * grain, grain)).equals(expectedPattern(1, 3 * grain, grain))).toBe(true);
  });
});
