/**
 * When the fast path steps aside, and that errors on it look exactly like
 * errors on the generic path (spec/nbd.md §4, errno-map.ts): a copy-service
 * layer stacked mid-stream (VolumeStack.restack) takes the requests issued
 * after the swap and the fast path comes back when it is removed; restack
 * still drains fast-path requests; the read-only switch gives EPERM; a
 * deleted LUN gives ESHUTDOWN; refused WRITEs are drained; MemoryVolume
 * exports and TLS connections never take it.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { isLunrigError } from '../../../src/errors.js';
import * as C from '../../../src/nbd/constants.js';
import { ExportRegistry } from '../../../src/nbd/export-provider.js';
import { NbdServer } from '../../../src/nbd/server.js';
import { NbdClient } from '../../../src/nbd/client.js';
import type { Volume } from '../../../src/volume/volume.js';
import { MemoryVolume } from '../../../src/volume/memory-volume.js';
import { MiB, pattern, startFastFixture, type FastFixture } from './fast-path-fixture.js';

let f: FastFixture;

afterEach(async () => {
  await f?.close();
});

/** A copy-service-like layer: logs the writes it sees, otherwise the Volume below. */
function loggingLayer(below: Volume, log: number[]): Volume {
  return Object.assign(Object.create(below) as Volume, {
    write: async (offset: number, data: Uint8Array, o?: { fua?: boolean }) => {
      log.push(offset);
      // Copy like a layer that keeps the data for later would: the buffer must be intact here.
      const mine = Buffer.from(data);
      return below.write(offset, mine, o);
    },
  });
}

describe('fast path and copy-service layers (VolumeStack.restack)', () => {
  it('a layer stacked mid-stream gets every request issued after the swap; removing it brings the fast path back', async () => {
    f = await startFastFixture();
    const c = await f.connect();
    const stack = f.pool.volume('lun0');
    const lun = f.pool.getLun('lun0');
    await c.write(0, pattern(8192, 1));
    const fastBefore = f.server.stats()[0]!.fastRequests;
    expect(fastBefore).toBe(1);

    // Restack while a burst of fast-path writes is in flight: the swap must wait for them.
    let inFlightAtSwap = -1;
    const log: number[] = [];
    const burst = Array.from({ length: 64 }, (_, i) => c.write(MiB + i * 65536, pattern(65536, 100 + i)));
    await new Promise((r) => setImmediate(r));
    const restacked = stack.restack((top) => {
      inFlightAtSwap = lun.stats().inFlight;
      return loggingLayer(top, log);
    });
    await Promise.all([...burst, restacked]);
    expect(inFlightAtSwap).toBe(0);

    const fastWithLayer = f.server.stats()[0]!.fastRequests;
    const writes = Array.from({ length: 10 }, (_, i) => ({ offset: 20 * MiB + i * 12345, data: pattern(5000 + i, 200 + i) }));
    for (const w of writes) await c.write(w.offset, w.data);
    for (const w of writes) expect(Buffer.from(await c.read(w.offset, w.data.length)).equals(w.data)).toBe(true);
    expect(log).toEqual(expect.arrayContaining(writes.map((w) => w.offset)));
    expect(f.server.stats()[0]!.fastRequests).toBe(fastWithLayer); // none on the fast path while the layer is there

    await stack.restack(() => lun);
    await c.write(30 * MiB, pattern(4096, 9));
    expect(Buffer.from(await c.read(30 * MiB, 4096)).equals(pattern(4096, 9))).toBe(true);
    expect(f.server.stats()[0]!.fastRequests).toBe(fastWithLayer + 2);
    for (let i = 0; i < 64; i++) expect(Buffer.from(await c.read(MiB + i * 65536, 65536)).equals(pattern(65536, 100 + i))).toBe(true);
    await f.expectNoLeaks();
  });

  it('a layer stacked while a WRITE payload is arriving gets that write, with its own copy of the data', async () => {
    f = await startFastFixture();
    const c = await f.connect();
    const stack = f.pool.volume('lun0');
    const log: number[] = [];
    const data = pattern(8 * MiB, 5);
    const w = c.write(3 * MiB, data); // a large payload takes several socket reads
    await stack.restack((top) => loggingLayer(top, log));
    await w;
    expect(Buffer.from(await c.read(3 * MiB, data.length)).equals(data)).toBe(true);
    await f.expectNoLeaks();
  });
});

describe('errors on the fast path are the generic path errors', () => {
  it('read-only switch mid-stream: WRITE gets EPERM, READ goes on, switching back allows writes again', async () => {
    f = await startFastFixture();
    const c = await f.connect();
    await c.write(0, pattern(4096, 1));
    await f.pool.setReadOnly('lun0', true);
    const r = await c.request({ type: C.NBD_CMD_WRITE, offset: 0, data: pattern(4096, 2) });
    expect(r.errno).toBe(C.NBD_EPERM);
    const big = await c.request({ type: C.NBD_CMD_WRITE, offset: MiB, data: pattern(MiB, 2) });
    expect(big.errno).toBe(C.NBD_EPERM);
    expect(Buffer.from(await c.read(0, 4096)).equals(pattern(4096, 1))).toBe(true);
    await f.pool.setReadOnly('lun0', false);
    await c.write(0, pattern(4096, 3));
    expect(Buffer.from(await c.read(0, 4096)).equals(pattern(4096, 3))).toBe(true);
    await f.expectNoLeaks();
  });

  it('a LUN deleted under a connection: requests in flight finish or get ESHUTDOWN, later ones get ESHUTDOWN', async () => {
    f = await startFastFixture({ luns: [{ name: 'lun0', size: 64 * MiB }, { name: 'lun1', size: 8 * MiB }] });
    const c = await f.connect('lun1');
    const idle = await f.connect('lun1');
    await c.write(0, pattern(MiB, 1));
    const inFlight = Array.from({ length: 32 }, (_, i) =>
      c.request({ type: i % 2 ? C.NBD_CMD_READ : C.NBD_CMD_WRITE, offset: (i % 8) * MiB, length: i % 2 ? MiB : undefined, data: i % 2 ? undefined : pattern(MiB, i) }),
    );
    await f.pool.deleteLun('lun1');
    const replies = await Promise.all(inFlight);
    for (const r of replies) expect([0, C.NBD_ESHUTDOWN]).toContain(r.errno);
    const after = await idle.request({ type: C.NBD_CMD_READ, offset: 0, length: 4096 });
    expect(after.errno).toBe(C.NBD_ESHUTDOWN);
    await f.expectNoLeaks();
  });

  it('refused WRITEs (past the end, over the maximum payload) are drained and the stream stays in sync', async () => {
    f = await startFastFixture({ luns: [{ name: 'lun0', size: 8 * MiB }], server: { limits: { maxWriteDrain: 40 * MiB } } });
    const c = await f.connect();
    const past = await c.request({ type: C.NBD_CMD_WRITE, offset: 8 * MiB - 100, data: pattern(4096, 1) });
    expect(past.errno).toBe(C.NBD_ENOSPC);
    const huge = await c.request({ type: C.NBD_CMD_WRITE, offset: 0, data: pattern(32 * MiB + 1, 2) });
    expect(huge.errno).toBe(C.NBD_EINVAL);
    const readPast = await c.request({ type: C.NBD_CMD_READ, offset: 8 * MiB - 100, length: 4096 });
    expect(readPast.errno).toBe(C.NBD_EINVAL);
    await c.write(100, pattern(70_000, 3));
    expect(Buffer.from(await c.read(100, 70_000)).equals(pattern(70_000, 3))).toBe(true);
    await f.expectNoLeaks();
  });

  it('a closed I/O engine fails fast-path requests with ESHUTDOWN, not a hang', async () => {
    f = await startFastFixture();
    const [reader, writer] = [await f.connect(), await f.connect()];
    await writer.write(0, pattern(4096, 1));
    await f.engine.close();
    // Each client soft-disconnects after its ESHUTDOWN (spec §2.5), hence one request each.
    const r = await reader.request({ type: C.NBD_CMD_READ, offset: 0, length: 4096 });
    expect(r.errno).toBe(C.NBD_ESHUTDOWN);
    const w = await writer.request({ type: C.NBD_CMD_WRITE, offset: 0, data: pattern(4096, 2) });
    expect(w.errno).toBe(C.NBD_ESHUTDOWN);
    expect(f.server.stats().every((s) => s.fastRequests >= 1)).toBe(true);
  });
});

describe('exports and connections that keep the generic path', () => {
  it('a MemoryVolume export next to a LUN export: only the LUN takes the fast path', async () => {
    f = await startFastFixture();
    const registry = new ExportRegistry([
      { name: 'mem', volume: new MemoryVolume({ size: 4 * MiB }) },
      { name: 'lun', volume: f.pool.volume('lun0') },
    ]);
    const server = new NbdServer({ exports: registry });
    const path = `${f.dir}/mixed.sock`;
    await server.listen({ path });
    try {
      const mem = await NbdClient.connect({ path }, { exportName: 'mem' });
      const lun = await NbdClient.connect({ path }, { exportName: 'lun' });
      for (const c of [mem, lun]) {
        await c.write(10, pattern(9000, 7));
        expect(Buffer.from(await c.read(10, 9000)).equals(pattern(9000, 7))).toBe(true);
      }
      const byExport = new Map(server.stats().map((s) => [s.exportName, s]));
      expect(byExport.get('mem')).toMatchObject({ fastRequests: 0, directReads: false });
      expect(byExport.get('lun')).toMatchObject({ fastRequests: 2, directReads: true });
      await mem.close();
      await lun.close();
    } finally {
      await server.close();
    }
  });

  it('TLS connections to a LUN stay on the generic path', async () => {
    const key = 'a1'.repeat(32);
    f = await startFastFixture({ server: { tls: { mode: 'optional', psk: { alice: key } } } });
    const c = await NbdClient.connect({ path: f.path }, { exportName: 'lun0', tls: { mode: 'require', psk: { identity: 'alice', key } } });
    try {
      await c.write(10, pattern(70_000, 7));
      expect(Buffer.from(await c.read(10, 70_000)).equals(pattern(70_000, 7))).toBe(true);
      expect(f.server.stats()[0]).toMatchObject({ fastRequests: 0, directReads: false });
    } finally {
      c.destroy();
    }
  });
});

describe('errors are LunrigErrors on the client side too', () => {
  it('EPERM surfaces as READ_ONLY through NbdClient.write', async () => {
    f = await startFastFixture();
    const c = await f.connect();
    await f.pool.setReadOnly('lun0', true);
    const err = await c.write(0, pattern(4096, 1)).catch((e: unknown) => e);
    expect(isLunrigError(err) && err.code).toBe('READ_ONLY');
  });
});
