import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isLunrigError } from '../../../src/errors.js';
import { ByteQueue } from '../../../src/nbd/byte-queue.js';
import * as C from '../../../src/nbd/constants.js';
import { NbdClient } from '../../../src/nbd/client.js';
import { decodeOptionHeader, encodeExportNameReply, encodeGreeting, encodeOptionReply } from '../../../src/nbd/handshake-codec.js';
import { encodeInfoItem } from '../../../src/nbd/option-data-codec.js';
import { encodeSimpleReply } from '../../../src/nbd/reply-codec.js';
import { decodeRequestHeader } from '../../../src/nbd/request-codec.js';
import { MemoryVolume } from '../../../src/volume/memory-volume.js';
import { GatedVolume, MiB, startServer, waitFor, type TestServer } from './harness.js';

let ts: TestServer;
beforeEach(async () => {
  ts = await startServer({
    exports: [
      { name: 'disk0', volume: new MemoryVolume({ size: 4 * MiB, identity: { name: 'disk0', serial: 'FCA24' } }) },
      { name: 'plain', volume: new MemoryVolume({ size: MiB }), description: 'no identity here' },
    ],
  });
});
afterEach(async () => {
  await ts.close();
});

/**
 * A scripted server for the paths our own server never takes: answers every
 * option but EXPORT_NAME with `optionReply`, then runs `onRequest` for requests.
 */
async function fakeServer(
  dir: string,
  script: { optionReply: number; onRequest: (socket: net.Socket, req: ReturnType<typeof decodeRequestHeader>) => void },
): Promise<{ path: string; close: () => Promise<void> }> {
  const path = join(dir, 'fake.sock');
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('error', () => undefined);
    const q = new ByteQueue();
    let phase: 'flags' | 'options' | 'transmission' = 'flags';
    s.write(encodeGreeting(C.NBD_FLAG_FIXED_NEWSTYLE));
    s.on('data', (chunk: Buffer) => {
      q.push(chunk);
      for (;;) {
        if (phase === 'flags') {
          if (q.length < 4) return;
          q.take(4);
          phase = 'options';
        } else if (phase === 'options') {
          if (q.length < 16) return;
          const { option, length } = decodeOptionHeader(q.peek(16));
          if (q.length < 16 + length) return;
          q.take(16);
          const data = q.take(length);
          if (option === C.NBD_OPT_EXPORT_NAME) {
            if (data.toString() !== 'disk') return void s.destroy();
            s.write(encodeExportNameReply(MiB, C.NBD_FLAG_HAS_FLAGS | C.NBD_FLAG_SEND_FLUSH, false));
            phase = 'transmission';
          } else s.write(encodeOptionReply(option, script.optionReply));
        } else {
          if (q.length < 28) return;
          const req = decodeRequestHeader(q.take(28));
          if (req.type === C.NBD_CMD_WRITE) q.take(req.length);
          script.onRequest(s, req);
        }
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(path, resolve));
  return {
    path,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

describe('NbdClient as a Volume', () => {
  it('carries the volume identity through the export description', async () => {
    const c = await NbdClient.connect({ path: ts.path }, { exportName: 'disk0' });
    expect(c.identity()).toMatchObject({ name: 'disk0', serial: 'FCA24', lss: 0x10 });
    expect(c.description).toMatch(/^lunrig-identity /);
    await c.close();
  });

  it('derives a stable identity when the description has no identity token', async () => {
    const a = await NbdClient.connect({ path: ts.path }, { exportName: 'plain' });
    const b = await NbdClient.connect({ path: ts.path }, { exportName: 'plain' });
    expect(a.identity().name).toBe('plain');
    expect(a.identity().uniqueId).toMatch(/^[0-9a-f]{32}$/);
    expect(a.identity()).toEqual(b.identity());
    await Promise.all([a.close(), b.close()]);
  });

  it('listExports uses NBD_OPT_LIST and NBD_OPT_ABORT', async () => {
    const list = await NbdClient.listExports({ path: ts.path });
    expect(list.map((e) => e.name)).toEqual(['disk0', 'plain']);
    expect(list[1]!.description).toBe('no identity here');
  });

  it('checks ranges and read-only locally, with the same typed errors as any Volume', async () => {
    const c = await NbdClient.connect({ path: ts.path }, { exportName: 'disk0' });
    await expect(c.read(4 * MiB - 1, 2)).rejects.toSatisfy((e: unknown) => isLunrigError(e, 'OUT_OF_RANGE'));
    await expect(c.write(-1, Buffer.alloc(1))).rejects.toSatisfy((e: unknown) => isLunrigError(e, 'INVALID_ARGUMENT'));
    await expect(c.blockStatus(0, 5 * MiB)).rejects.toSatisfy((e: unknown) => isLunrigError(e, 'OUT_OF_RANGE'));
    await c.close();
  });

  it('trim() reads back as zeros (sent as WRITE_ZEROES that may punch holes)', async () => {
    const c = await NbdClient.connect({ path: ts.path }, { exportName: 'disk0' });
    await c.write(0, Buffer.alloc(128 * 1024, 5));
    await c.trim(0, 128 * 1024, { fua: true });
    expect(Buffer.from(await c.read(0, 128 * 1024)).every((b) => b === 0)).toBe(true);
    expect(await c.blockStatus(0, 128 * 1024)).toEqual([{ offset: 0, length: 128 * 1024, kind: 'hole' }]);
    await c.close();
  });

  it('close() waits for requests in flight, sends NBD_CMD_DISC, and later calls fail with CLOSED', async () => {
    const c = await NbdClient.connect({ path: ts.path }, { exportName: 'disk0' });
    const reasons: string[] = [];
    ts.server.on('disconnect', ({ reason }) => reasons.push(reason));
    const w = c.write(0, Buffer.alloc(MiB, 1));
    const closing = c.close();
    await w;
    await closing;
    expect(c.closed).toBe(true);
    await expect(c.read(0, 1)).rejects.toSatisfy((e: unknown) => isLunrigError(e, 'CLOSED'));
    for (let i = 0; i < 50 && reasons.length === 0; i++) await new Promise((r) => setTimeout(r, 5));
    expect(reasons).toEqual(['NBD_CMD_DISC']);
  });

  it('fails requests in flight with UNREACHABLE and emits disconnect when the connection is lost', async () => {
    const c = await NbdClient.connect({ path: ts.path }, { exportName: 'disk0' });
    const lost = new Promise<Error>((resolve) => c.once('disconnect', resolve));
    await ts.server.close(); // idle connection: closed at once
    const err = await lost;
    expect(isLunrigError(err, 'UNREACHABLE')).toBe(true);
    await expect(c.read(0, 1)).rejects.toSatisfy((e: unknown) => isLunrigError(e, 'UNREACHABLE'));
  });

  it('keeps at most maxInFlight requests on the wire; the rest wait in the client', async () => {
    let open!: () => void;
    const gate = new Promise<void>((resolve) => (open = resolve));
    ts.registry.add({ name: 'slow', volume: new GatedVolume(new MemoryVolume({ size: MiB }), () => gate) });
    const c = await NbdClient.connect({ path: ts.path }, { exportName: 'slow', maxInFlight: 3 });
    const reads = Promise.all(Array.from({ length: 10 }, (_, i) => c.read(i * 4096, 4096)));
    await waitFor(() => ts.server.stats().find((x) => x.exportName === 'slow')?.inFlight === 3, 3000, '3 requests at the server');
    await new Promise((r) => setTimeout(r, 50));
    expect(c.inFlight).toBe(10);
    expect(ts.server.stats().find((x) => x.exportName === 'slow')!.inFlight).toBe(3);
    open();
    await reads;
    expect(c.inFlight).toBe(0);
    await c.close();
  });

  it('connecting to nothing, or to a missing export, fails with a typed error', async () => {
    await expect(NbdClient.connect({ path: join(ts.dir, 'none.sock') }, { exportName: 'x' })).rejects.toSatisfy((e: unknown) => isLunrigError(e, 'UNREACHABLE'));
    await expect(NbdClient.connect({ path: ts.path }, { exportName: 'missing' })).rejects.toSatisfy((e: unknown) => isLunrigError(e, 'LUN_NOT_FOUND'));
    await expect(NbdClient.connect({ path: ts.path }, { exportName: 'x'.repeat(5000) })).rejects.toSatisfy((e: unknown) => isLunrigError(e, 'INVALID_ARGUMENT'));
  });
});

describe('NbdClient against other servers', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'lunrig-nbd-fake-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('falls back to NBD_OPT_EXPORT_NAME when GO is unsupported, and uses simple replies', async () => {
    const fake = await fakeServer(dir, {
      optionReply: C.NBD_REP_ERR_UNSUP,
      onRequest: (s, req) => {
        if (req.type === C.NBD_CMD_READ) s.write(Buffer.concat([encodeSimpleReply(0, req.cookie), Buffer.alloc(req.length, 0x5a)]));
        else if (req.type !== C.NBD_CMD_DISC) s.write(encodeSimpleReply(0, req.cookie));
      },
    });
    try {
      const c = await NbdClient.connect({ path: fake.path }, { exportName: 'disk' });
      expect(c.structuredReplies).toBe(false);
      expect(c.size).toBe(MiB);
      expect(Buffer.from(await c.read(10, 3))).toEqual(Buffer.from([0x5a, 0x5a, 0x5a]));
      // No SEND_FUA, no SEND_WRITE_ZEROES: FUA becomes write + flush, zeroes become writes.
      await c.write(0, Buffer.alloc(4), { fua: true });
      await c.writeZeroes(0, 100);
      await expect(c.writeZeroes(0, 100, { fastZero: true })).rejects.toSatisfy((e: unknown) => isLunrigError(e, 'NOT_SUPPORTED'));
      await c.close();
      await expect(NbdClient.connect({ path: fake.path }, { exportName: 'other' })).rejects.toSatisfy((e: unknown) => isLunrigError(e, 'LUN_NOT_FOUND'));
    } finally {
      await fake.close();
    }
  });

  it('drops the connection on a protocol violation (reply for an unknown cookie)', async () => {
    const fake = await fakeServer(dir, {
      optionReply: C.NBD_REP_ERR_UNSUP,
      onRequest: (s) => s.write(encodeSimpleReply(0, 0xdeadn)),
    });
    try {
      const c = await NbdClient.connect({ path: fake.path }, { exportName: 'disk' });
      const err = await c.flush().catch((e: unknown) => e);
      expect(isLunrigError(err, 'UNREACHABLE')).toBe(true);
      expect((err as Error).message).toMatch(/protocol violation.*unknown cookie/);
    } finally {
      await fake.close();
    }
  });

  it('reports a server that answers GO with an unexpected error', async () => {
    const fake = await fakeServer(dir, { optionReply: C.NBD_REP_ERR_POLICY, onRequest: () => undefined });
    try {
      await expect(NbdClient.connect({ path: fake.path }, { exportName: 'disk' })).rejects.toThrow(/NBD_REP_ERR_POLICY/);
    } finally {
      await fake.close();
    }
  });

  it('rejects an INFO_EXPORT of the wrong length (the bug that breaks libnbd with tiny-nbd-server)', async () => {
    const path = join(dir, 'bad.sock');
    const server = net.createServer((s) => {
      s.on('error', () => undefined);
      s.write(encodeGreeting(C.NBD_FLAG_FIXED_NEWSTYLE | C.NBD_FLAG_NO_ZEROES));
      const q = new ByteQueue();
      let flagsRead = false;
      s.on('data', (chunk: Buffer) => {
        q.push(chunk);
        if (!flagsRead && q.length >= 4) {
          q.take(4);
          flagsRead = true;
        }
        while (flagsRead && q.length >= 16) {
          const { option, length } = decodeOptionHeader(q.peek(16));
          if (q.length < 16 + length) return;
          q.take(16 + length);
          const bad = Buffer.concat([
            encodeInfoItem({ type: C.NBD_INFO_EXPORT, size: MiB, transmissionFlags: 1 }),
            encodeInfoItem({ type: C.NBD_INFO_BLOCK_SIZE, minimum: 1, preferred: 4096, maximum: MiB }),
          ]);
          s.write(option === C.NBD_OPT_GO ? encodeOptionReply(option, C.NBD_REP_INFO, bad) : encodeOptionReply(option, C.NBD_REP_ERR_UNSUP));
        }
      });
    });
    await new Promise<void>((resolve) => server.listen(path, resolve));
    try {
      await expect(NbdClient.connect({ path }, { exportName: 'x', structuredReplies: false })).rejects.toThrow(/NBD_INFO_EXPORT of 26 bytes/);
    } finally {
      server.close();
    }
  });
});
