/**
 * Guard for the one Node internal the NBD server uses (src/nbd/direct-read.ts):
 * switching an accepted server socket to Node's `onread` user-buffer mode.
 * If a Node release changes net.Socket's kBuffer / kBufferCb / kBufferGen
 * fields or `_handle.useUserBuffer`, enableDirectReads returns false and the
 * server quietly keeps reading 'data' events (the ordinary path, slower on
 * large writes). These tests fail then, so the change is noticed.
 */
import net from 'node:net';
import tls from 'node:tls';
import { afterEach, describe, expect, it } from 'vitest';
import { enableDirectReads, type DirectReadSink } from '../../../src/nbd/direct-read.js';
import { waitFor } from './harness.js';

interface Pair {
  server: net.Server;
  client: net.Socket;
  accepted: net.Socket;
}

let pair: Pair | undefined;

afterEach(async () => {
  if (!pair) return;
  pair.client.destroy();
  pair.accepted.destroy();
  await new Promise((r) => pair!.server.close(r));
  pair = undefined;
});

async function connectPair(onAccept?: (s: net.Socket) => void): Promise<Pair> {
  const server = net.createServer({ allowHalfOpen: true });
  const accepted = new Promise<net.Socket>((resolve) =>
    server.once('connection', (s) => {
      onAccept?.(s);
      resolve(s);
    }),
  );
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const client = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  await new Promise((r) => client.once('connect', r));
  pair = { server, client, accepted: await accepted };
  return pair;
}

/** A sink that hands out `sizes` in turn (last one repeats) from fresh buffers and records what landed. */
function recordingSink(sizes: number[]): DirectReadSink & { got: Buffer[]; handedOut: Uint8Array[] } {
  let i = 0;
  const got: Buffer[] = [];
  const handedOut: Uint8Array[] = [];
  return {
    got,
    handedOut,
    next() {
      const b = new Uint8Array(sizes[Math.min(i++, sizes.length - 1)]!);
      handedOut.push(b);
      return b;
    },
    onRead(n, buffer) {
      expect(buffer).toBe(handedOut[handedOut.length - 1]);
      got.push(Buffer.from(buffer.buffer, buffer.byteOffset, n));
    },
  };
}

describe('enableDirectReads (Node internal: net.Socket onread mode on an accepted socket)', () => {
  it(`works on this Node (${process.version}): reads land in the sink's buffers, no 'data' events, 'end' still comes`, async () => {
    const sink = recordingSink([5, 3, 64 * 1024]);
    const { client, accepted } = await connectPair();
    let dataEvents = 0;
    accepted.on('data', () => dataEvents++);
    // Switch inside a 'data' handler, as the NBD server does after the handshake.
    const first = await new Promise<Buffer>((resolve) => {
      accepted.once('data', (chunk: Buffer) => {
        expect(enableDirectReads(accepted, sink)).toBe(true);
        resolve(chunk);
      });
      client.write('hello');
    });
    expect(first.toString()).toBe('hello');
    client.write('0123456789abcdef');
    await waitFor(() => Buffer.concat(sink.got).length === 16, 2000, 'direct reads');
    expect(Buffer.concat(sink.got).toString()).toBe('0123456789abcdef');
    // Each read filled at most the buffer handed out for it: 5 bytes, then 3, then 64 KiB.
    expect(sink.got[0]!.length).toBeLessThanOrEqual(5);
    expect(sink.got[1]!.length).toBeLessThanOrEqual(3);
    expect(dataEvents).toBe(1); // only the chunk before the switch
    const ended = new Promise((r) => accepted.once('end', r));
    client.end();
    await ended;
  });

  it('pause() stops reading and resume() starts again', async () => {
    const sink = recordingSink([1024]);
    const { client, accepted } = await connectPair();
    expect(enableDirectReads(accepted, sink)).toBe(true);
    accepted.pause();
    client.write('abc');
    await new Promise((r) => setTimeout(r, 100));
    expect(sink.got).toHaveLength(0);
    accepted.resume();
    await waitFor(() => sink.got.length === 1, 2000, 'read after resume');
    expect(sink.got[0]!.toString()).toBe('abc');
  });

  it('a SharedArrayBuffer view is a valid read target (what a slot is)', async () => {
    const sab = new SharedArrayBuffer(4096);
    const slot = Buffer.from(sab, 64, 1024);
    let filled = 0;
    const { client, accepted } = await connectPair();
    expect(
      enableDirectReads(accepted, {
        next: () => slot.subarray(filled),
        onRead: (n) => void (filled += n),
      }),
    ).toBe(true);
    client.write(Buffer.alloc(1000, 7));
    await waitFor(() => filled === 1000, 2000, 'bytes in the shared buffer');
    expect(Buffer.from(sab, 64, 1000).every((b) => b === 7)).toBe(true);
  });

  it('changes nothing and returns false for a socket with buffered data, and for a TLS socket', async () => {
    const { client, accepted } = await connectPair();
    accepted.pause();
    client.write('buffered');
    await waitFor(() => accepted.readableLength > 0, 2000, 'data buffered in the stream');
    expect(enableDirectReads(accepted, recordingSink([16]))).toBe(false);
    accepted.resume();
    const chunk = await new Promise<Buffer>((r) => accepted.once('data', r));
    expect(chunk.toString()).toBe('buffered');
    const wrapped = new tls.TLSSocket(new net.Socket());
    expect(enableDirectReads(wrapped, recordingSink([16]))).toBe(false);
    wrapped.destroy();
  });
});
