/**
 * A PPRC primary keeps the NBD fast path (nbd/fast-path.ts SlotPassingLayer):
 * its mirror layer sits directly on the LUN, WRITE payloads and READ replies
 * stay in the engine's slots, both sides get the data, every slot comes back;
 * a consistency-group hold makes held writes use their own copy.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { PprcManager } from '../../../src/copy/pprc/index.js';
import { MiB, pattern, startFastFixture, type FastFixture } from '../nbd/fast-path-fixture.js';

let f: FastFixture | undefined;
let pprc: PprcManager | undefined;

afterEach(async () => {
  await pprc?.close();
  pprc = undefined;
  await f?.close();
  f = undefined;
});

async function pairedFixture(): Promise<{ f: FastFixture; pprc: PprcManager }> {
  f = await startFastFixture();
  const lss = f.pool.lunInfo('lun0').lss;
  await f.pool.createLun({ name: 'sec', size: 64 * MiB, lss: lss + 1 });
  pprc = await PprcManager.open(f.pool);
  await pprc.addLink({ id: 'self', to: f.pool.serial });
  await pprc.establishPath({ lss, to: f.pool.serial, targetLss: lss + 1, links: ['self'] });
  await pprc.establish({ primary: 'lun0', secondary: { volume: 'sec' }, mode: 'copy-entire' });
  await pprc.waitForCopy('lun0');
  return { f, pprc };
}

describe('PPRC and the NBD fast path', () => {
  it('WRITEs and READs of a DUPLEX primary take the fast path; the secondary gets every write; no slot leaks', async () => {
    const { f, pprc } = await pairedFixture();
    const c = await f.connect();
    const writes = Array.from({ length: 48 }, (_, i) => ({ offset: (i * 7 + 3) * 65536 + (i % 3) * 4096, data: pattern(i % 4 === 0 ? 65536 : 4096, 300 + i) }));
    await Promise.all(writes.map((w) => c.write(w.offset, w.data)));
    for (const w of writes) expect(Buffer.from(await c.read(w.offset, w.data.length)).equals(w.data)).toBe(true);
    const stats = f.server.stats()[0]!;
    expect(stats.fastRequests).toBe(2 * writes.length);
    expect(pprc.query('lun0')).toMatchObject({ state: 'DUPLEX', oosTracks: 0 });
    expect((await pprc.audit('lun0')).differing).toEqual([]);
    await f.expectNoLeaks();
  });

  it('held writes (consistency group) do not keep arena slots: they complete from their own copy on release', async () => {
    const { f, pprc } = await pairedFixture();
    const lss = f.pool.lunInfo('lun0').lss;
    await pprc.setLss(lss, { consistencyGroup: true, consistencyTimeoutSec: 600 });
    await pprc.freeze([lss]);
    const c = await f.connect();
    const held = Array.from({ length: 8 }, (_, i) => c.write(i * 65536, pattern(4096, 400 + i)));
    // Every slot is back while the writes wait for the release.
    await f.expectNoLeaks();
    await pprc.release([lss]);
    await Promise.all(held);
    for (let i = 0; i < 8; i++) expect(Buffer.from(await c.read(i * 65536, 4096)).equals(pattern(4096, 400 + i))).toBe(true);
    expect(pprc.outOfSyncTracks('lun0')).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    await f.expectNoLeaks();
  });
});
