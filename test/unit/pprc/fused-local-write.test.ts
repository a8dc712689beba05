/**
 * A local pair's mirror write as one I/O-worker request (Pair.fusedWrite,
 * OP_MIRROR_WRITE): taken when nothing between would act on the request,
 * with the outcomes of the two-request route (spec §3.5 W1, W2): the host's
 * ack only after both sides have the data, the primary untouched when the
 * secondary's ack is late, and the ordinary route whenever a link fault, a
 * FlashCopy layer on the secondary (CB-05) or a device fault is in the way.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { FlashCopyManager } from '../../../src/copy/flashcopy/manager.js';
import { PprcManager } from '../../../src/copy/pprc/index.js';
import { MiB, pattern, startFastFixture, type FastFixture } from '../nbd/fast-path-fixture.js';

let f: FastFixture | undefined;
let pprc: PprcManager | undefined;
let fc: FlashCopyManager | undefined;

afterEach(async () => {
  vi.restoreAllMocks();
  await pprc?.close();
  await fc?.close();
  await f?.close();
  [f, pprc, fc] = [undefined, undefined, undefined];
});

async function localPair(options: { remoteAckTimeoutMs?: number } = {}): Promise<{ f: FastFixture; pprc: PprcManager; fused: () => number }> {
  f = await startFastFixture({ luns: [{ name: 'lun0', size: 16 * MiB }] });
  const lss = f.pool.lunInfo('lun0').lss;
  await f.pool.createLun({ name: 'sec', size: 16 * MiB, lss: lss + 1 });
  await f.pool.createLun({ name: 'tgt', size: 16 * MiB, lss: lss + 1 });
  fc = await FlashCopyManager.open(f.pool);
  pprc = await PprcManager.open(f.pool, { flashcopy: fc, ...options });
  await pprc.addLink({ id: 'self', to: f.pool.serial });
  await pprc.establishPath({ lss, to: f.pool.serial, targetLss: lss + 1, links: ['self'] });
  await pprc.establish({ primary: 'lun0', secondary: { volume: 'sec' }, mode: 'no-copy' });
  const m = pprc;
  return { f, pprc, fused: () => m.links().find((l) => l.id === 'self')!.fused };
}

const secondaryLun = (f: FastFixture) => f.pool.volume('sec').base;

describe('PPRC local pair: the fused mirror write', () => {
  it('W1: writes over NBD and through the library go to both LUNs in one worker request each; both sides identical, no slot leaks', async () => {
    const { f, pprc, fused } = await localPair();
    const c = await f.connect();
    // The first write opens the link's channel by the ordinary route.
    await c.write(0, pattern(4096, 1));
    const writes = Array.from({ length: 40 }, (_, i) => ({ offset: (i * 3 + 1) * 65536 + (i % 5) * 4096, data: pattern(i % 4 === 0 ? 65536 : 4096, 100 + i) }));
    await Promise.all(writes.map((w, i) => (i % 2 === 0 ? c.write(w.offset, w.data) : f.pool.volume('lun0').write(w.offset, w.data))));
    expect(fused()).toBe(writes.length);
    for (const w of writes) {
      expect(Buffer.from(await c.read(w.offset, w.data.length)).equals(w.data)).toBe(true);
      expect(Buffer.from(await secondaryLun(f).read(w.offset, w.data.length)).equals(w.data)).toBe(true);
    }
    expect(pprc.query('lun0')).toMatchObject({ state: 'DUPLEX', oosTracks: 0 });
    expect((await pprc.audit('lun0')).differing).toEqual([]);
    await f.expectNoLeaks();
  });

  it('W2: an ack later than remoteAckTimeoutMs fails the host write (PPRC_ACK_TIMEOUT), the primary keeps its old data, the track is out of sync', async () => {
    const { f, pprc, fused } = await localPair({ remoteAckTimeoutMs: 5000 });
    const p = f.pool.volume('lun0');
    await p.write(0, pattern(4096, 1));
    await p.write(2 * 65536, pattern(4096, 2));
    const before = fused();
    // The deadline the worker checks is computed from Date.now() here: make it lie in the past.
    const now = Date.now();
    vi.spyOn(Date, 'now').mockReturnValue(now - 60_000);
    await expect(p.write(2 * 65536, pattern(4096, 3))).rejects.toMatchObject({ code: 'PPRC_ACK_TIMEOUT' });
    vi.restoreAllMocks();
    expect(fused()).toBe(before + 1);
    expect(Buffer.from(await p.base.read(2 * 65536, 4096)).equals(pattern(4096, 2))).toBe(true);
    expect(Buffer.from(await secondaryLun(f).read(2 * 65536, 4096)).equals(pattern(4096, 3))).toBe(true);
    expect(pprc.query('lun0')).toMatchObject({ state: 'SUSPENDED' });
    expect(pprc.outOfSyncTracks('lun0')).toContain(2);
  });

  it('the ordinary route whenever something acts on the request: link latency, a FlashCopy layer on the secondary (CB-05), a device fault', async () => {
    const { f, pprc, fused } = await localPair();
    const p = f.pool.volume('lun0');
    await p.write(0, pattern(4096, 1));
    await p.write(65536, pattern(4096, 2));
    const base = fused();
    expect(base).toBe(1);
    await pprc.setLinkFault('self', { latencyMs: 1 });
    await p.write(65536, pattern(4096, 3));
    expect(fused()).toBe(base);
    await pprc.setLinkFault('self', { latencyMs: 0 });
    await fc!.establish('sec', 'tgt', { mode: 'nocopy' });
    await p.write(65536, pattern(4096, 4));
    expect(fused()).toBe(base);
    // Copy-on-write ran: the target keeps the secondary's T0 data.
    expect(Buffer.from(await f.pool.volume('tgt').read(65536, 4096)).equals(pattern(4096, 3))).toBe(true);
    expect(Buffer.from(await secondaryLun(f).read(65536, 4096)).equals(pattern(4096, 4))).toBe(true);
    expect(pprc.query('lun0')).toMatchObject({ state: 'DUPLEX' });
    // PP-22: a failed secondary device fails the mirror write on the ordinary route; the primary keeps its data.
    await fc!.withdraw('sec');
    pprc.setSecondaryDeviceFault('sec', true);
    await expect(p.write(65536, pattern(4096, 5))).rejects.toMatchObject({ code: 'IO_ERROR' });
    expect(fused()).toBe(base);
    expect(Buffer.from(await p.base.read(65536, 4096)).equals(pattern(4096, 4))).toBe(true);
    expect(pprc.query('lun0')).toMatchObject({ state: 'SUSPENDED' });
  });
});
