/**
 * Fuzzing the server with fast-check: random byte streams, and random
 * mutations of valid handshakes and request streams. Each case must end in
 * bounded time (the server replies and/or closes once the client stops
 * sending), never crash the process or leave an unhandled rejection, keep the
 * server's buffering bounded, and never disturb a well-behaved client running
 * alongside. Set FUZZ_SEED to replay a run; FUZZ_RUNS to run longer.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import net from 'node:net';
import * as C from '../../../src/nbd/constants.js';
import { NbdClient } from '../../../src/nbd/client.js';
import { encodeClientFlags, encodeOption } from '../../../src/nbd/handshake-codec.js';
import { encodeGoRequest, encodeMetaContextRequest } from '../../../src/nbd/option-data-codec.js';
import { encodeRequestHeader } from '../../../src/nbd/request-codec.js';
import { MemoryVolume } from '../../../src/volume/memory-volume.js';
import { MiB, startServer, type TestServer } from './harness.js';

const SEED = Number(process.env.FUZZ_SEED ?? Date.now() % 2 ** 31);
const RUNS = Number(process.env.FUZZ_RUNS ?? 150);
/** How long one case may take to end after the client stops sending. */
const CASE_DEADLINE_MS = 3000;

const LIMITS = {
  maxOptionLength: 4096,
  maxOptionDrain: 64 * 1024,
  maxOutstandingBytes: 4 * MiB,
  maxWriteDrain: 2 * MiB,
  handshakeTimeoutMs: 5000,
  closeGraceMs: 1000,
};

let ts: TestServer;
let good: NbdClient;
let goodLoop: Promise<void>;
let stopGood = false;
let goodOps = 0;

beforeAll(async () => {
  console.log(`NBD fuzz seed: ${SEED} (replay with FUZZ_SEED=${SEED}), runs: ${RUNS}`);
  ts = await startServer({
    exports: [
      { name: 'disk0', volume: new MemoryVolume({ size: MiB, chunkSize: 4096 }) },
      { name: 'ro', volume: new MemoryVolume({ size: MiB }), readOnly: true },
    ],
    server: { limits: LIMITS, blockSize: { maximum: MiB } },
  });
  // A well-behaved client keeps doing verified I/O while the fuzz cases run.
  const keeper = new MemoryVolume({ size: 64 * 1024 });
  ts.registry.add({ name: 'keeper', volume: keeper });
  good = await NbdClient.connect({ path: ts.path }, { exportName: 'keeper' });
  goodLoop = (async () => {
    let i = 0;
    while (!stopGood) {
      const data = Buffer.alloc(4096, i & 0xff);
      await good.write((i % 16) * 4096, data);
      const back = Buffer.from(await good.read((i % 16) * 4096, 4096));
      if (!back.equals(data)) throw new Error('well-behaved client saw corrupted data');
      i++;
      goodOps++;
      await new Promise((r) => setImmediate(r));
    }
  })();
});

afterAll(async () => {
  stopGood = true;
  await goodLoop;
  await good.close();
  await ts.close();
});

interface CaseResult {
  received: number;
  closedInTime: boolean;
}

/** Send `chunks` (then half-close) and wait for the server to end the connection. */
function runCase(chunks: Uint8Array[]): Promise<CaseResult> {
  return new Promise((resolve) => {
    const s = net.connect({ path: ts.path });
    let received = 0;
    let done = false;
    const finish = (closedInTime: boolean): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      s.destroy();
      resolve({ received, closedInTime });
    };
    const timer = setTimeout(() => finish(false), CASE_DEADLINE_MS);
    s.on('data', (d: Buffer) => {
      received += d.length;
    });
    s.on('error', () => undefined);
    s.on('close', () => finish(true));
    s.on('connect', () => {
      for (const c of chunks) s.write(c);
      s.end();
    });
  });
}

/** A valid session: handshake, then requests of every kind. */
function validSession(exportName: string, structured: boolean): Buffer[] {
  const parts: Buffer[] = [encodeClientFlags(C.NBD_FLAG_C_FIXED_NEWSTYLE | C.NBD_FLAG_C_NO_ZEROES)];
  parts.push(encodeOption(C.NBD_OPT_LIST));
  if (structured) {
    parts.push(encodeOption(C.NBD_OPT_STRUCTURED_REPLY));
    parts.push(encodeOption(C.NBD_OPT_SET_META_CONTEXT, encodeMetaContextRequest({ exportName, queries: ['base:allocation'] })));
  }
  parts.push(encodeOption(C.NBD_OPT_INFO, encodeGoRequest({ exportName, infoRequests: [3, 1, 2] })));
  parts.push(encodeOption(C.NBD_OPT_GO, encodeGoRequest({ exportName, infoRequests: [3] })));
  const req = (type: number, offset: number, length: number, flags = 0, cookie = 1n): Buffer => encodeRequestHeader({ type, flags, cookie, offset, length });
  parts.push(Buffer.concat([req(C.NBD_CMD_WRITE, 4096, 8192, C.NBD_CMD_FLAG_FUA, 2n), Buffer.alloc(8192, 0xab)]));
  parts.push(req(C.NBD_CMD_READ, 0, 65536, 0, 3n));
  parts.push(req(C.NBD_CMD_BLOCK_STATUS, 0, MiB, C.NBD_CMD_FLAG_REQ_ONE, 4n));
  parts.push(req(C.NBD_CMD_WRITE_ZEROES, 0, 4096, C.NBD_CMD_FLAG_NO_HOLE, 5n));
  parts.push(req(C.NBD_CMD_TRIM, 8192, 4096, 0, 6n));
  parts.push(req(C.NBD_CMD_FLUSH, 0, 0, 0, 7n));
  parts.push(req(C.NBD_CMD_CACHE, 0, 4096, 0, 8n));
  parts.push(req(C.NBD_CMD_DISC, 0, 0, 0, 9n));
  return parts;
}

const mutation = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), xor: fc.integer({ min: 1, max: 255 }) }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), bytes: fc.uint8Array({ maxLength: 64 }) }),
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), n: fc.integer({ min: 1, max: 32 }) }),
  fc.record({ kind: fc.constant('u32' as const), at: fc.nat(), value: fc.oneof(fc.constant(0xffffffff), fc.constant(0x80000000), fc.nat()) }),
);

type Mutation = typeof mutation extends fc.Arbitrary<infer T> ? T : never;

function mutate(stream: Buffer, muts: Mutation[]): Buffer {
  let b = Buffer.from(stream);
  for (const m of muts) {
    if (b.length === 0) break;
    const at = m.at % b.length;
    if (m.kind === 'flip') b[at] = b[at]! ^ m.xor;
    else if (m.kind === 'truncate') b = b.subarray(0, at);
    else if (m.kind === 'insert') b = Buffer.concat([b.subarray(0, at), m.bytes, b.subarray(at)]);
    else if (m.kind === 'delete') b = Buffer.concat([b.subarray(0, at), b.subarray(at + m.n)]);
    else if (at + 4 <= b.length) b.writeUInt32BE(m.value >>> 0, at);
  }
  return b;
}

/** Split a stream into socket writes at arbitrary points. */
function split(b: Buffer, cuts: number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => (b.length ? c % b.length : 0)))].sort((x, y) => x - y);
  const out: Buffer[] = [];
  let prev = 0;
  for (const p of points) {
    out.push(b.subarray(prev, p));
    prev = p;
  }
  out.push(b.subarray(prev));
  return out.filter((c) => c.length > 0);
}

async function checkCase(chunks: Buffer[]): Promise<void> {
  const r = await runCase(chunks);
  expect(r.closedInTime, 'the server ended the connection after the client stopped').toBe(true);
  // A session that sent n bytes cannot make the server write much more than a few replies' worth.
  expect(r.received).toBeLessThan(4 * MiB);
}

describe(`NBD server fuzz (seed ${SEED})`, () => {
  it('random byte streams: no crash, no hang, bounded memory', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 2048 }), fc.array(fc.nat(), { maxLength: 4 }), async (bytes, cuts) => {
        await checkCase(split(Buffer.from(bytes), cuts));
      }),
      { seed: SEED, numRuns: RUNS },
    );
  });

  it('random bytes after a valid greeting, option stream or GO', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 6 }), fc.uint8Array({ minLength: 1, maxLength: 1024 }), fc.boolean(), async (prefixParts, tail, structured) => {
        const session = validSession('disk0', structured);
        const prefix = Buffer.concat(session.slice(0, Math.min(prefixParts, structured ? 6 : 4)));
        await checkCase([prefix, Buffer.from(tail)]);
      }),
      { seed: SEED + 1, numRuns: RUNS },
    );
  });

  it('mutated valid handshakes and request streams', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('disk0', 'ro', 'missing', ''),
        fc.boolean(),
        fc.array(mutation, { minLength: 1, maxLength: 4 }),
        fc.array(fc.nat(), { maxLength: 6 }),
        async (exportName, structured, muts, cuts) => {
          const stream = mutate(Buffer.concat(validSession(exportName, structured)), muts);
          await checkCase(split(stream, cuts));
        },
      ),
      { seed: SEED + 2, numRuns: RUNS * 2 },
    );
  });

  it('after all cases: bounded buffering, no leaked connections, and the well-behaved client kept working', async () => {
    // Input queue + reserved payloads + unsent replies stayed within the configured limits.
    const bound = LIMITS.maxOutstandingBytes + LIMITS.maxOptionLength + MiB + 256 * 1024;
    expect(ts.server.peakBufferedBytes).toBeLessThan(bound);
    expect(goodOps).toBeGreaterThan(0);
    await good.flush();
    for (let i = 0; i < 100 && ts.server.connectionCount > 1; i++) await new Promise((r) => setTimeout(r, 10));
    expect(ts.server.connectionCount).toBe(1); // only the well-behaved client
  });
});
