/**
 * The secondary side of a remote link (remote/link-exports.ts) keeps the NBD
 * fast path: a link export's channel hands the NBD server its LUN's slot
 * arena while only the gate sits on the LUN, so mirrored WRITEs land from
 * the slot (no copy) like host writes to a plain LUN. A FlashCopy layer
 * under the gate (CB-05) turns it off per request; reads through the channel
 * never open the gate for a host (PP-07) even when they reuse a slot.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { PprcManager } from '../../../src/copy/pprc/index.js';
import { PprcLinkExports } from '../../../src/copy/pprc/remote/link-exports.js';
import { FlashCopyManager } from '../../../src/copy/flashcopy/manager.js';
import { NbdClient } from '../../../src/nbd/client.js';
import { NbdServer } from '../../../src/nbd/server.js';
import { MiB, pattern, startFastFixture, type FastFixture } from '../nbd/fast-path-fixture.js';

let f: FastFixture | undefined;
let pprc: PprcManager | undefined;
let fc: FlashCopyManager | undefined;
let links: PprcLinkExports | undefined;
let linkServer: NbdServer | undefined;
const clients: NbdClient[] = [];

afterEach(async () => {
  for (const c of clients.splice(0)) c.destroy();
  await linkServer?.close();
  await links?.close();
  await pprc?.close();
  await fc?.close();
  await f?.close();
  [f, pprc, fc, links, linkServer] = [undefined, undefined, undefined, undefined, undefined];
});

async function linkFixture(): Promise<{ f: FastFixture; link: NbdClient; exportName: string }> {
  f = await startFastFixture({ luns: [{ name: 'lun0', size: 16 * MiB }] });
  const lss = f.pool.lunInfo('lun0').lss;
  await f.pool.createLun({ name: 'sec', size: 16 * MiB, lss: lss + 1 });
  await f.pool.createLun({ name: 'tgt', size: 16 * MiB, lss: lss + 1 });
  fc = await FlashCopyManager.open(f.pool);
  pprc = await PprcManager.open(f.pool, { flashcopy: fc });
  await pprc.addLink({ id: 'self', to: f.pool.serial });
  await pprc.establishPath({ lss, to: f.pool.serial, targetLss: lss + 1, links: ['self'] });
  await pprc.establish({ primary: 'lun0', secondary: { volume: 'sec' }, mode: 'no-copy' });
  const pairId = pprc.query('lun0').pair!.id;
  const manager = pprc;
  links = new PprcLinkExports({ secondary: () => manager.asSecondary() });
  const exportName = await links.open('sec', pairId, 0);
  linkServer = new NbdServer({ exports: links });
  const path = `${f.path}.links`;
  await linkServer.listen({ path });
  const link = await NbdClient.connect({ path }, { exportName });
  clients.push(link);
  return { f, link, exportName };
}

describe('PPRC link exports and the NBD fast path', () => {
  it('PP-07: mirrored WRITEs and READs over a link export take the fast path; the secondary has the data; hosts still get EPERM; no slot leaks', async () => {
    const { f, link } = await linkFixture();
    const writes = Array.from({ length: 24 }, (_, i) => ({ offset: (i * 5 + 1) * 65536 + (i % 4) * 4096, data: pattern(i % 3 === 0 ? 65536 : 4096, 700 + i) }));
    await Promise.all(writes.map((w) => link.write(w.offset, w.data)));
    for (const w of writes) expect(Buffer.from(await link.read(w.offset, w.data.length)).equals(w.data)).toBe(true);
    expect(linkServer!.stats()[0]!.fastRequests).toBe(2 * writes.length);
    // The data is on the secondary LUN (below its gate).
    const lun = f.pool.volume('sec').base;
    for (const w of writes) expect(Buffer.from(await lun.read(w.offset, w.data.length)).equals(w.data)).toBe(true);
    // A host on the pool's exports, after channel reads that used the shared slots: still refused.
    const host = await f.connect('sec');
    await expect(host.read(writes[0]!.offset, 4096)).rejects.toMatchObject({ details: { errno: 1 } }) // NBD_EPERM;
    await f.expectNoLeaks();
  });

  it('CB-05: with a FlashCopy layer under the gate the link export takes the generic path, and copy-on-write keeps the T0 data on the target', async () => {
    const { f, link } = await linkFixture();
    await link.write(0, pattern(65536, 1));
    const before = linkServer!.stats()[0]!.fastRequests;
    await fc!.establish('sec', 'tgt', { mode: 'nocopy' });
    await link.write(0, pattern(65536, 2));
    expect(linkServer!.stats()[0]!.fastRequests).toBe(before);
    expect(Buffer.from(await link.read(0, 65536)).equals(pattern(65536, 2))).toBe(true);
    expect(Buffer.from(await f.pool.volume('tgt').read(0, 65536)).equals(pattern(65536, 1))).toBe(true);
    await f.expectNoLeaks();
  });
});
