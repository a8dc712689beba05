import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isLunrigError } from '../../../src/errors.js';
import * as C from '../../../src/nbd/constants.js';
import { NbdClient } from '../../../src/nbd/client.js';
import { NbdServer } from '../../../src/nbd/server.js';
import { ExportRegistry } from '../../../src/nbd/export-provider.js';
import { MemoryVolume } from '../../../src/volume/memory-volume.js';
import { GatedVolume, MiB, RawConnection, pattern, sleep, startServer, waitFor, type TestServer } from './harness.js';

let ts: TestServer;
let disk: MemoryVolume;
let gate: { held: Set<number>; release: Map<number, () => void> };
const clients: NbdClient[] = [];
const raws: RawConnection[] = [];

async function connect(exportName = 'disk0', o: { structuredReplies?: boolean; metaContexts?: string[] } = {}): Promise<NbdClient> {
  const c = await NbdClient.connect({ path: ts.path }, { exportName, ...o });
  clients.push(c);
  return c;
}

/** Offsets listed in gate.held block in the gated export until released. */
function holdAt(offset: number): () => void {
  gate.held.add(offset);
  return () => {
    gate.held.delete(offset);
    gate.release.get(offset)?.();
    gate.release.delete(offset);
  };
}

beforeEach(async () => {
  disk = new MemoryVolume({ size: 16 * MiB, identity: { name: 'disk0' } });
  gate = { held: new Set(), release: new Map() };
  const gated = new GatedVolume(new MemoryVolume({ size: 16 * MiB }), (_op, offset) =>
    gate.held.has(offset) ? new Promise<void>((resolve) => gate.release.set(offset, resolve)) : Promise.resolve(),
  );
  ts = await startServer({
    exports: [
      { name: 'disk0', volume: disk },
      { name: 'ro', volume: new MemoryVolume({ size: MiB }), readOnly: true },
      { name: 'slowzero', volume: new MemoryVolume({ size: MiB, fastZero: false }) },
      { name: 'gated', volume: gated },
    ],
    server: { limits: { maxWriteDrain: 40 * MiB } },
  });
});

afterEach(async () => {
  for (const c of clients.splice(0)) c.destroy();
  for (const r of raws.splice(0)) r.destroy();
  for (const release of gate.release.values()) release();
  await ts.close();
});

describe('§2.4 commands with structured replies (what qemu, libnbd and fio negotiate)', () => {
  it('negotiates structured replies, base:allocation and the advertised flags', async () => {
    const c = await connect();
    expect(c.structuredReplies).toBe(true);
    expect([...c.metaContexts]).toEqual([['base:allocation', 1]]);
    expect(c.blockSize).toEqual({ minimum: 1, preferred: 4096, maximum: 32 * MiB });
    const f = c.transmissionFlags;
    for (const flag of [
      C.NBD_FLAG_HAS_FLAGS,
      C.NBD_FLAG_SEND_FLUSH,
      C.NBD_FLAG_SEND_FUA,
      C.NBD_FLAG_SEND_TRIM,
      C.NBD_FLAG_SEND_WRITE_ZEROES,
      C.NBD_FLAG_SEND_DF,
      C.NBD_FLAG_CAN_MULTI_CONN,
      C.NBD_FLAG_SEND_CACHE,
      C.NBD_FLAG_SEND_FAST_ZERO,
    ]) {
      expect(f & flag).toBe(flag);
    }
    expect(f & (C.NBD_FLAG_READ_ONLY | C.NBD_FLAG_ROTATIONAL | C.NBD_FLAG_SEND_RESIZE)).toBe(0);
    expect(c.identity()).toEqual(disk.identity());
  });

  it('READ, WRITE (+FUA), FLUSH, TRIM, WRITE_ZEROES (+NO_HOLE), CACHE and BLOCK_STATUS do what the spec says', async () => {
    const c = await connect();
    const data = pattern(300_000, 3);
    await c.write(1000, data, { fua: true });
    expect(Buffer.from(await c.read(1000, data.length)).equals(data)).toBe(true);
    await c.flush();
    await c.cache(0, MiB);
    await c.trim(0, 128 * 1024);
    await c.writeZeroes(128 * 1024, 64 * 1024, { noHole: true });
    expect(Buffer.from(await c.read(0, 192 * 1024)).every((b) => b === 0)).toBe(true);
    expect(await c.blockStatus(0, 512 * 1024)).toEqual([
      { offset: 0, length: 128 * 1024, kind: 'hole' },
      { offset: 128 * 1024, length: 64 * 1024, kind: 'zero' },
      { offset: 192 * 1024, length: 128 * 1024, kind: 'data' }, // rest of the write, rounded to 64 KiB chunks
      { offset: 320 * 1024, length: 192 * 1024, kind: 'hole' },
    ]);
    expect(await disk.blockStatus(0, 512 * 1024)).toEqual(await c.blockStatus(0, 512 * 1024));
  });

  it('BLOCK_STATUS with REQ_ONE returns exactly one extent no longer than the request', async () => {
    const c = await connect();
    await c.write(64 * 1024, Buffer.alloc(64 * 1024, 1));
    const r = await c.request({ type: C.NBD_CMD_BLOCK_STATUS, flags: C.NBD_CMD_FLAG_REQ_ONE, offset: 0, length: 200 * 1024 });
    expect(r.errno).toBe(0);
    expect(r.blockStatus.get(1)).toEqual([{ length: 64 * 1024, flags: C.NBD_STATE_HOLE | C.NBD_STATE_ZERO }]);
    const all = await c.request({ type: C.NBD_CMD_BLOCK_STATUS, offset: 0, length: 100 });
    expect(all.blockStatus.get(1)).toEqual([{ length: 100, flags: 3 }]);
    expect(all.chunkTypes).toEqual([C.NBD_REPLY_TYPE_BLOCK_STATUS]);
  });

  it('reads of holes come back as OFFSET_HOLE chunks, data as OFFSET_DATA; DF asks for one chunk', async () => {
    const c = await connect();
    const data = pattern(64 * 1024, 9);
    await c.write(128 * 1024, data);
    const r = await c.request({ type: C.NBD_CMD_READ, offset: 0, length: 256 * 1024 });
    expect(r.chunkTypes).toEqual([C.NBD_REPLY_TYPE_OFFSET_HOLE, C.NBD_REPLY_TYPE_OFFSET_DATA, C.NBD_REPLY_TYPE_OFFSET_HOLE]);
    expect(r.data!.subarray(128 * 1024, 192 * 1024).equals(data)).toBe(true);
    expect(r.data!.subarray(0, 128 * 1024).every((b) => b === 0)).toBe(true);
    const df = await c.request({ type: C.NBD_CMD_READ, flags: C.NBD_CMD_FLAG_DF, offset: 0, length: 256 * 1024 });
    expect(df.chunkTypes).toEqual([C.NBD_REPLY_TYPE_OFFSET_DATA]);
    expect(df.data!.equals(r.data!)).toBe(true);
    const allHole = await c.request({ type: C.NBD_CMD_READ, offset: MiB, length: MiB });
    expect(allHole.chunkTypes).toEqual([C.NBD_REPLY_TYPE_OFFSET_HOLE]);
    const empty = await c.request({ type: C.NBD_CMD_READ, offset: 0, length: 0 });
    expect(empty).toMatchObject({ errno: 0, chunkTypes: [C.NBD_REPLY_TYPE_NONE] });
  });

  it('reads and writes larger than the advertised maximum payload are split by the client', async () => {
    const t = await startServer({ server: { blockSize: { maximum: MiB } } });
    try {
      const c = await NbdClient.connect({ path: t.path }, { exportName: 'disk0' });
      expect(c.blockSize?.maximum).toBe(MiB);
      const data = pattern(5 * MiB + 123, 5);
      await c.write(777, data);
      expect(Buffer.from(await c.read(777, data.length)).equals(data)).toBe(true);
      expect(t.server.stats()[0]!.requests).toBe(12); // 6 writes + 6 reads of at most 1 MiB
      const r = await c.request({ type: C.NBD_CMD_READ, length: MiB + 1 });
      expect(r.errno).toBe(C.NBD_EINVAL);
      await c.close();
    } finally {
      await t.close();
    }
  });
});

describe('§2.4 simple replies (structured replies not negotiated, like the kernel client)', () => {
  it('serves every command with simple replies and refuses BLOCK_STATUS', async () => {
    const c = await connect('disk0', { structuredReplies: false });
    expect(c.structuredReplies).toBe(false);
    expect(c.metaContexts.size).toBe(0);
    expect(c.transmissionFlags & C.NBD_FLAG_SEND_DF).toBe(0); // DF MUST be clear without structured replies
    await c.write(0, Buffer.from('hello'));
    expect(Buffer.from(await c.read(0, 5)).toString()).toBe('hello');
    await c.writeZeroes(0, 5);
    expect(Buffer.from(await c.read(0, 5)).every((b) => b === 0)).toBe(true);
    expect(await c.blockStatus(0, 100)).toEqual([{ offset: 0, length: 100, kind: 'data' }]); // no context: safe answer
    const bs = await c.request({ type: C.NBD_CMD_BLOCK_STATUS, offset: 0, length: 4096 });
    expect(bs).toMatchObject({ errno: C.NBD_EINVAL, simple: true });
    const rd = await c.request({ type: C.NBD_CMD_READ, offset: 16 * MiB, length: 10 });
    expect(rd).toMatchObject({ errno: C.NBD_EINVAL, simple: true, data: undefined }); // no data after an error header
    await c.write(10, Buffer.from('ok'));
    expect(Buffer.from(await c.read(10, 2)).toString()).toBe('ok');
  });
});

describe('§4 request validation over the wire', () => {
  it('answers each invalid request with the errno the spec names, and the connection stays usable', async () => {
    const c = await connect();
    const cases: [string, Parameters<NbdClient['request']>[0], number][] = [
      ['unknown command', { type: 42 }, C.NBD_EINVAL],
      ['unknown flag', { type: C.NBD_CMD_READ, flags: 0x100, length: 1 }, C.NBD_EINVAL],
      ['NO_HOLE on READ', { type: C.NBD_CMD_READ, flags: C.NBD_CMD_FLAG_NO_HOLE, length: 1 }, C.NBD_EINVAL],
      ['READ past the end', { type: C.NBD_CMD_READ, offset: 16 * MiB - 1, length: 2 }, C.NBD_EINVAL],
      ['TRIM past the end', { type: C.NBD_CMD_TRIM, offset: 16 * MiB, length: 1 }, C.NBD_EINVAL],
      ['WRITE_ZEROES past the end', { type: C.NBD_CMD_WRITE_ZEROES, offset: 16 * MiB, length: 1 }, C.NBD_ENOSPC],
      ['WRITE past the end', { type: C.NBD_CMD_WRITE, offset: 16 * MiB - 2, data: Buffer.alloc(4) }, C.NBD_ENOSPC],
      ['WRITE with NO_HOLE', { type: C.NBD_CMD_WRITE, flags: C.NBD_CMD_FLAG_NO_HOLE, data: Buffer.alloc(4096, 9) }, C.NBD_EINVAL],
      ['FLUSH with a length', { type: C.NBD_CMD_FLUSH, length: 1 }, C.NBD_EINVAL],
      ['BLOCK_STATUS of length 0', { type: C.NBD_CMD_BLOCK_STATUS, length: 0 }, C.NBD_EINVAL],
      ['READ over 32 MiB', { type: C.NBD_CMD_READ, length: 32 * MiB + 1 }, C.NBD_EINVAL],
      ['offset near 2^64', { type: C.NBD_CMD_READ, offset: 2 ** 64 - 4096, length: 1 }, C.NBD_EINVAL],
    ];
    for (const [what, req, errno] of cases) {
      const r = await c.request(req);
      expect({ what, errno: r.errno }).toEqual({ what, errno });
      expect(r.message.length).toBeGreaterThan(0); // structured error chunks carry a message
    }
    // The rejected WRITE payloads were consumed: the stream is still in sync.
    expect(Buffer.from(await c.read(0, 4096)).every((b) => b === 0)).toBe(true);
    await c.write(0, Buffer.from('in sync'));
    expect(Buffer.from(await c.read(0, 7)).toString()).toBe('in sync');
  });

  it('an oversize WRITE is drained and refused with EINVAL; one beyond the drain limit ends the connection', async () => {
    const c = await connect();
    const r = await c.request({ type: C.NBD_CMD_WRITE, offset: 0, data: Buffer.alloc(32 * MiB + 4096, 1) });
    expect(r.errno).toBe(C.NBD_EINVAL);
    expect(Buffer.from(await c.read(0, 4096)).every((b) => b === 0)).toBe(true);

    const raw = await RawConnection.open(ts.path);
    raws.push(raw);
    await raw.attach('disk0');
    raw.sendRequest({ type: C.NBD_CMD_WRITE, cookie: 5n, length: 0xffffffff });
    expect(await raw.simpleReply()).toMatchObject({ error: C.NBD_EINVAL, cookie: 5n });
    await raw.expectClosed();
  });

  it('FAST_ZERO where zeroing is not fast -> ENOTSUP (client: NOT_SUPPORTED); without FAST_ZERO it zeroes', async () => {
    const c = await connect('slowzero');
    await c.write(0, Buffer.alloc(100, 1));
    await expect(c.writeZeroes(0, 100, { fastZero: true })).rejects.toSatisfy((e: unknown) => isLunrigError(e, 'NOT_SUPPORTED'));
    const r = await c.request({ type: C.NBD_CMD_WRITE_ZEROES, flags: C.NBD_CMD_FLAG_FAST_ZERO, length: 100 });
    expect(r.errno).toBe(C.NBD_ENOTSUP);
    await c.writeZeroes(0, 100);
    expect(Buffer.from(await c.read(0, 100)).every((b) => b === 0)).toBe(true);
  });

  it('read-only export: READ_ONLY advertised, writes refused with EPERM (payload still consumed)', async () => {
    const c = await connect('ro');
    expect(c.readOnly).toBe(true);
    expect(c.transmissionFlags & (C.NBD_FLAG_SEND_TRIM | C.NBD_FLAG_SEND_WRITE_ZEROES | C.NBD_FLAG_SEND_FUA)).toBe(0);
    await expect(c.write(0, Buffer.alloc(1))).rejects.toSatisfy((e: unknown) => isLunrigError(e, 'READ_ONLY'));
    for (const type of [C.NBD_CMD_WRITE, C.NBD_CMD_TRIM, C.NBD_CMD_WRITE_ZEROES]) {
      const r = await c.request({ type, length: 4096, data: type === C.NBD_CMD_WRITE ? Buffer.alloc(4096, 7) : undefined });
      expect(r.errno).toBe(C.NBD_EPERM);
    }
    expect(Buffer.from(await c.read(0, 4096)).every((b) => b === 0)).toBe(true);
    await c.flush();
  });
});

describe('§9.3 many requests in flight, replies out of order', () => {
  it('a fast request overtakes a slow one (replies in completion order, matched by cookie)', async () => {
    const c = await connect('gated');
    const release = holdAt(0);
    const order: string[] = [];
    const slow = c.read(0, 4096).then(() => order.push('slow'));
    const fast = c.read(8192, 4096).then(() => order.push('fast'));
    await fast;
    expect(order).toEqual(['fast']);
    release();
    await slow;
    expect(order).toEqual(['fast', 'slow']);
  });

  it('keeps hundreds of mixed requests in flight on one connection', async () => {
    const c = await NbdClient.connect({ path: ts.path }, { exportName: 'disk0', maxInFlight: 512 });
    clients.push(c);
    const n = 300;
    await Promise.all(Array.from({ length: n }, (_, i) => c.write(i * 8192, pattern(8192, i + 1))));
    const reads = await Promise.all(Array.from({ length: n }, (_, i) => c.read(i * 8192, 8192)));
    reads.forEach((r, i) => expect(Buffer.from(r).equals(pattern(8192, i + 1))).toBe(true));
  });

  it('stops reading from a client past maxInFlight, and resumes as requests complete (backpressure)', async () => {
    const gatedVol = new GatedVolume(new MemoryVolume({ size: MiB }), (_op, offset) =>
      gate.held.has(offset) ? new Promise<void>((resolve) => gate.release.set(offset, resolve)) : Promise.resolve(),
    );
    const t = await startServer({ exports: [{ name: 'g', volume: gatedVol }], server: { limits: { maxInFlight: 4 } } });
    try {
      const c = await NbdClient.connect({ path: t.path }, { exportName: 'g', maxInFlight: 64 });
      const releases = Array.from({ length: 10 }, (_, i) => holdAt(i * 4096));
      const all = Promise.all(Array.from({ length: 10 }, (_, i) => c.read(i * 4096, 4096)));
      await waitFor(() => t.server.stats()[0]?.inFlight === 4, 3000, '4 requests in flight');
      await sleep(50);
      expect(t.server.stats()[0]!.inFlight).toBe(4); // and no more are read
      releases.forEach((r) => r());
      await all;
      await c.close();
    } finally {
      await t.close();
    }
  });

  it('bounds the bytes a connection holds: outstanding write payloads stay under the limit', async () => {
    let open!: () => void;
    const opened = new Promise<void>((resolve) => (open = resolve));
    const gatedVol = new GatedVolume(new MemoryVolume({ size: 64 * MiB }), (op) => (op === 'write' ? opened : Promise.resolve()));
    const limit = 4 * MiB;
    const t = await startServer({ exports: [{ name: 'g', volume: gatedVol }], server: { limits: { maxOutstandingBytes: limit } } });
    try {
      const c = await NbdClient.connect({ path: t.path }, { exportName: 'g', maxInFlight: 256 });
      const writes = Promise.all(Array.from({ length: 32 }, (_, i) => c.write(i * MiB, Buffer.alloc(MiB, i))));
      await waitFor(() => t.server.stats()[0]?.inFlight === 4, 3000, '4 writes in flight');
      await sleep(50);
      const s = t.server.stats()[0]!;
      expect(s.outstandingBytes).toBeLessThanOrEqual(limit);
      expect(s.inFlight).toBe(4);
      open();
      await writes;
      expect(Buffer.from(await c.read(31 * MiB, 1))[0]).toBe(31);
      // Input queue + reserved payloads + unsent replies never exceeded the limit by more than one socket read.
      expect(t.server.stats()[0]!.peakBufferedBytes).toBeLessThan(limit + MiB);
      await c.close();
    } finally {
      await t.close();
    }
  });
});

describe('exports appearing and disappearing at runtime', () => {
  it('a LUN added while serving becomes an export; a removed one stops being offered and its connections get ESHUTDOWN', async () => {
    const extra = new MemoryVolume({ size: MiB, identity: { name: 'late' } });
    await expect(NbdClient.connect({ path: ts.path }, { exportName: 'late' })).rejects.toSatisfy((e: unknown) => isLunrigError(e, 'LUN_NOT_FOUND'));
    ts.registry.add({ name: 'late', volume: extra });
    const c = await connect('late');
    await c.write(0, Buffer.from('late data'));
    expect((await NbdClient.listExports({ path: ts.path })).map((e) => e.name)).toContain('late');

    ts.registry.remove('late');
    expect((await NbdClient.listExports({ path: ts.path })).map((e) => e.name)).not.toContain('late');
    const r = c.read(0, 9);
    await expect(r).rejects.toSatisfy((e: unknown) => isLunrigError(e, 'CLOSED'));
    // ESHUTDOWN makes the client soft-disconnect.
    for (let i = 0; i < 100 && !c.closed; i++) await sleep(5);
    expect(c.closed).toBe(true);
    const other = await connect('disk0');
    await other.flush();
  });

  it('an export replaced by a new volume of the same name: old connections get ESHUTDOWN, new ones see the new volume', async () => {
    const v1 = new MemoryVolume({ size: MiB });
    const v2 = new MemoryVolume({ size: 2 * MiB });
    ts.registry.add({ name: 'swap', volume: v1 });
    const old = await connect('swap');
    ts.registry.remove('swap');
    ts.registry.add({ name: 'swap', volume: v2 });
    await expect(old.write(0, Buffer.alloc(1))).rejects.toSatisfy((e: unknown) => isLunrigError(e, 'CLOSED'));
    const fresh = await connect('swap');
    expect(fresh.size).toBe(2 * MiB);
  });

  it('a volume that fails (deleted LUN: CLOSED) gives errors, not a crash', async () => {
    const v = new MemoryVolume({ size: MiB });
    ts.registry.add({ name: 'dying', volume: v });
    const c = await connect('dying');
    v.close();
    await expect(c.read(0, 10)).rejects.toSatisfy((e: unknown) => isLunrigError(e, 'CLOSED'));
    const other = await connect('disk0');
    await other.flush();
  });
});

describe('ending connections', () => {
  it('NBD_CMD_DISC: in-flight requests finish and are answered, then the server closes', async () => {
    const raw = await RawConnection.open(ts.path);
    raws.push(raw);
    await raw.attach('disk0');
    raw.sendRequest({ type: C.NBD_CMD_WRITE, cookie: 11n, offset: 0 }, Buffer.from('before disc'));
    raw.sendRequest({ type: C.NBD_CMD_DISC, cookie: 12n });
    raw.sendRequest({ type: C.NBD_CMD_WRITE, cookie: 13n, offset: 100 }, Buffer.from('after disc'));
    expect(await raw.simpleReply()).toMatchObject({ error: 0, cookie: 11n });
    await raw.expectClosed();
    expect(Buffer.from(await disk.read(0, 11)).toString()).toBe('before disc');
    expect(Buffer.from(await disk.read(100, 10)).every((b) => b === 0)).toBe(true);
  });

  it('a client that half-closes gets its replies, then the connection ends', async () => {
    const raw = await RawConnection.open(ts.path);
    raws.push(raw);
    await raw.attach('disk0');
    raw.sendRequest({ type: C.NBD_CMD_WRITE, cookie: 1n, offset: 0 }, Buffer.from('x'));
    raw.sendRequest({ type: C.NBD_CMD_FLUSH, cookie: 2n });
    raw.socket.end();
    const replies = [await raw.simpleReply(), await raw.simpleReply()];
    expect(replies.map((r) => r.cookie).sort()).toEqual([1n, 2n]);
    await raw.expectClosed();
  });

  it('close() lets in-flight requests finish, then closes every connection and the listener', async () => {
    const c = await connect('gated');
    const release = holdAt(4096);
    const pending = c.read(4096, 4096);
    await waitFor(() => ts.server.stats().some((x) => x.inFlight > 0), 3000, 'the read in flight');
    const closing = ts.server.close();
    await sleep(20);
    release();
    await expect(pending).resolves.toBeInstanceOf(Uint8Array);
    await closing;
    expect(ts.server.connectionCount).toBe(0);
    await expect(NbdClient.connect({ path: ts.path }, { exportName: 'disk0', connectTimeoutMs: 500 })).rejects.toThrow();
  });

  it('a killed client mid-request does not affect the next client', async () => {
    const raw = await RawConnection.open(ts.path);
    await raw.attach('disk0', { structured: true });
    raw.sendRequest({ type: C.NBD_CMD_WRITE, cookie: 1n, length: MiB }, Buffer.alloc(1000));
    raw.destroy();
    const c = await connect();
    await c.write(0, Buffer.from('next'));
    expect(Buffer.from(await c.read(0, 4)).toString()).toBe('next');
  });
});

describe('listeners', () => {
  it('listens on TCP (127.0.0.1, TCP_NODELAY) and a unix socket at once', async () => {
    const registry = new ExportRegistry([{ name: 'd', volume: new MemoryVolume({ size: MiB }) }]);
    const server = new NbdServer({ exports: registry });
    const path = `${ts.dir}/second.sock`;
    try {
      const r = await server.listen({ host: '127.0.0.1', port: 0, path });
      expect(r.tcp?.address).toBe('127.0.0.1');
      const viaTcp = await NbdClient.connect({ host: '127.0.0.1', port: r.tcp!.port }, { exportName: 'd' });
      const viaUnix = await NbdClient.connect({ path }, { exportName: 'd' });
      await viaTcp.write(0, Buffer.from('shared'));
      await viaTcp.flush();
      // CAN_MULTI_CONN: one Volume behind both connections, so the write is visible on the other.
      expect(Buffer.from(await viaUnix.read(0, 6)).toString()).toBe('shared');
      await viaTcp.close();
      await viaUnix.close();
      await expect(server.listen({ path })).rejects.toSatisfy((e: unknown) => isLunrigError(e, 'BUSY'));
    } finally {
      await server.close();
    }
  });
});
