/**
 * One conformance suite for every IoEngine: both must give the same answers.
 * The worker engine runs compiled workers from dist/ (npm run build first).
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { isLunrigError } from '../../../src/errors.js';
import type { IoEngine, LunBackend, LunBackendSpec } from '../../../src/io/backend.js';
import { FsIoEngine } from '../../../src/io/fs-engine.js';
import { WorkerIoEngine } from '../../../src/io/worker-engine.js';
import type { WorkerLunBackend } from '../../../src/io/worker-backend.js';
import { makeLunSpec } from '../../helpers/lun-spec.js';
import { pattern } from '../../helpers/patterns.js';
import { seededRandom, testSeed } from '../../helpers/seeded-random.js';
import { tempDirs } from '../../helpers/temp-dir.js';

const MiB = 1024 * 1024;
const SEGMENT = MiB;

interface EngineCase {
  name: string;
  start(): Promise<IoEngine & { fdatasyncCount(): number }>;
}

const engines: EngineCase[] = [
  { name: 'WorkerIoEngine', start: () => WorkerIoEngine.start({ workers: 2 }) },
  // Every read through a worker, none from the page cache on the calling thread.
  { name: 'WorkerIoEngine (no cached reads)', start: () => WorkerIoEngine.start({ workers: 2, cachedReadMax: 0 }) },
  { name: 'FsIoEngine', start: async () => new FsIoEngine() },
];

/** What the files hold, concatenated (holes and short files read as zeros). */
function fileContents(spec: LunBackendSpec): Buffer {
  const out = Buffer.alloc(spec.size);
  spec.segments.forEach((file, i) => {
    const data = fs.readFileSync(file);
    data.copy(out, i * spec.segmentSize, 0, Math.min(data.length, spec.size - i * spec.segmentSize));
  });
  return out;
}

function allocatedBytes(spec: LunBackendSpec): number {
  return spec.segments.reduce((sum, file) => sum + fs.statSync(file).blocks * 512, 0);
}

async function expectCode(promise: Promise<unknown>, code: string): Promise<void> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, `expected ${code}`).toBeDefined();
  expect(isLunrigError(err), `expected a LunrigError, got ${String(err)}`).toBe(true);
  expect((err as { code: string }).code).toBe(code);
}

describe.each(engines)('IoEngine conformance: $name', ({ name: engineName, start }) => {
  let engine: Awaited<ReturnType<EngineCase['start']>>;
  let dir: string;
  const open: LunBackend[] = [];

  async function lun(size: number, options: { segmentSize?: number; readOnly?: boolean; name?: string } = {}): Promise<{ spec: LunBackendSpec; b: LunBackend }> {
    const spec = makeLunSpec(dir, options.name ?? `lun${open.length}`, size, options.segmentSize ?? SEGMENT, options.readOnly ?? false);
    const b = await engine.open(spec);
    open.push(b);
    return { spec, b };
  }

  beforeAll(async () => {
    engine = await start();
  });
  afterAll(async () => {
    await engine.close();
  });
  const tmp = tempDirs('lunrig-io-conf-');
  beforeEach(() => {
    dir = tmp.make();
  });
  afterEach(async () => {
    await Promise.allSettled(open.splice(0).map((b) => b.close()));
    tmp.cleanup();
  });

  it('round-trips writes at unaligned offsets and lengths', async () => {
    const { spec, b } = await lun(2 * MiB);
    const cases: [number, number][] = [
      [0, 1],
      [1, 511],
      [4095, 2],
      [12_345, 77_777],
      [2 * MiB - 3, 3],
      [500_000, 4096],
    ];
    for (const [offset, length] of cases) {
      const data = pattern(length, offset);
      await b.write(offset, data, false);
      expect(Buffer.from(await b.read(offset, length)).equals(data), `${offset}+${length}`).toBe(true);
    }
    // The files hold exactly what was written, last write wins.
    const model = Buffer.alloc(spec.size);
    for (const [offset, length] of cases) pattern(length, offset).copy(model, offset);
    expect(fileContents(spec).equals(model)).toBe(true);
  });

  it('reads into a caller buffer and sees every earlier write', async () => {
    const { b } = await lun(MiB);
    const into = Buffer.alloc(10_000);
    for (let i = 0; i < 20; i++) {
      const data = pattern(10_000, 1000 + i);
      await b.write(4096 + i * 3, data, false);
      const got = await b.read(4096 + i * 3, 10_000, into);
      expect(got).toBe(into);
      expect(into.equals(data)).toBe(true);
    }
    const empty = await b.read(0, 0);
    expect(empty.length).toBe(0);
  });

  it('splits requests that cross segment boundaries', async () => {
    const { spec, b } = await lun(4 * MiB + 12_345);
    expect(spec.segments.length).toBe(5);
    const data = pattern(3 * MiB + 1000, 7);
    const offset = SEGMENT - 500; // starts in segment 0, ends in segment 3
    await b.write(offset, data, false);
    expect(Buffer.from(await b.read(offset, data.length)).equals(data)).toBe(true);
    // Each file holds its own piece.
    expect(fs.readFileSync(spec.segments[0]!).subarray(SEGMENT - 500).equals(data.subarray(0, 500))).toBe(true);
    expect(fs.readFileSync(spec.segments[1]!).equals(data.subarray(500, 500 + SEGMENT))).toBe(true);
    // The short last segment.
    const tail = pattern(12_345 + 100, 8);
    await b.write(4 * MiB - 100, tail, false);
    expect(Buffer.from(await b.read(4 * MiB - 100, tail.length)).equals(tail)).toBe(true);
    expect(fs.statSync(spec.segments[4]!).size).toBe(12_345);
  });

  it('keeps many concurrent random writes, zeroes and trims consistent with a model', async () => {
    const seed = testSeed(`io conformance random-ops ${engineName}`, 0x10c0f);
    const rnd = seededRandom(seed);
    const size = 4 * MiB;
    const { spec, b } = await lun(size);
    const model = Buffer.alloc(size);
    for (let batch = 0; batch < 12; batch++) {
      // Requests in flight together never overlap: their order is not defined.
      const taken: [number, number][] = [];
      const ops: Promise<unknown>[] = [];
      const effects: (() => void)[] = [];
      for (let tries = 0; tries < 200 && ops.length < 64; tries++) {
        const length = 1 + Math.floor(rnd() * (rnd() < 0.2 ? 300_000 : 9000));
        const offset = Math.floor(rnd() * (size - length));
        if (taken.some(([o, l]) => offset < o + l && o < offset + length)) continue;
        taken.push([offset, length]);
        const kind = rnd();
        if (kind < 0.6) {
          const data = pattern(length, seed + batch * 1000 + ops.length);
          ops.push(b.write(offset, data, rnd() < 0.1));
          effects.push(() => data.copy(model, offset));
        } else if (kind < 0.7) {
          ops.push(b.writeZeroes(offset, length, { noHole: rnd() < 0.5, fua: false }));
          effects.push(() => model.fill(0, offset, offset + length));
        } else if (kind < 0.8) {
          ops.push(b.trim(offset, length, false));
          effects.push(() => model.fill(0, offset, offset + length));
        } else {
          const expected = Buffer.from(model.subarray(offset, offset + length));
          ops.push(b.read(offset, length).then((got) => expect(Buffer.from(got).equals(expected), `read ${offset}+${length} seed=${seed}`).toBe(true)));
        }
      }
      if (batch % 4 === 3) ops.push(b.flush());
      await Promise.all(ops);
      for (const apply of effects) apply();
    }
    expect(Buffer.from(await b.read(0, size)).equals(model), `seed=${seed}`).toBe(true);
    expect(fileContents(spec).equals(model), `seed=${seed}`).toBe(true);
    expect(b.stats().inFlight).toBe(0);
    expect(b.stats().errors).toBe(0);
  });

  it('trim and writeZeroes read back zeros; trim and plain writeZeroes free space, NO_HOLE keeps it', async () => {
    const { spec, b } = await lun(4 * MiB);
    await b.write(0, pattern(4 * MiB, 3), false);
    const full = allocatedBytes(spec);
    expect(full).toBeGreaterThanOrEqual(4 * MiB);

    await b.trim(SEGMENT - 64 * 1024, 256 * 1024, false); // crosses a segment boundary
    expect(Buffer.from(await b.read(SEGMENT - 64 * 1024, 256 * 1024)).equals(Buffer.alloc(256 * 1024))).toBe(true);
    const afterTrim = allocatedBytes(spec);
    expect(afterTrim).toBeLessThanOrEqual(full - 256 * 1024);

    await b.writeZeroes(2 * MiB, 128 * 1024, { noHole: false, fua: false });
    expect(Buffer.from(await b.read(2 * MiB, 128 * 1024)).equals(Buffer.alloc(128 * 1024))).toBe(true);
    const afterZero = allocatedBytes(spec);
    expect(afterZero).toBeLessThanOrEqual(afterTrim - 128 * 1024);

    await b.writeZeroes(3 * MiB, 128 * 1024, { noHole: true, fua: true });
    expect(Buffer.from(await b.read(3 * MiB, 128 * 1024)).equals(Buffer.alloc(128 * 1024))).toBe(true);
    expect(allocatedBytes(spec)).toBe(afterZero);

    // Unaligned edges zero exactly the asked bytes.
    await b.trim(1000, 5000, false);
    const around = Buffer.from(await b.read(0, 8192));
    const expected = pattern(4 * MiB, 3).subarray(0, 8192);
    expected.fill(0, 1000, 6000);
    expect(around.equals(expected)).toBe(true);
    expect(b.stats()).toMatchObject({ trims: 2, zeroes: 2 });
  });

  it('blockStatus reports written extents as data and the rest as holes, merged across segments', async () => {
    const { b } = await lun(4 * MiB);
    expect(await b.blockStatus(0, 4 * MiB)).toEqual([{ offset: 0, length: 4 * MiB, kind: 'hole' }]);
    await b.write(64 * 1024, pattern(64 * 1024, 1), false);
    await b.write(SEGMENT - 128 * 1024, pattern(256 * 1024, 2), false); // spans segments 0-1
    await b.write(3 * MiB, pattern(4096, 3), false);
    expect(await b.blockStatus(0, 4 * MiB)).toEqual([
      { offset: 0, length: 64 * 1024, kind: 'hole' },
      { offset: 64 * 1024, length: 64 * 1024, kind: 'data' },
      { offset: 128 * 1024, length: SEGMENT - 256 * 1024, kind: 'hole' },
      { offset: SEGMENT - 128 * 1024, length: 256 * 1024, kind: 'data' },
      { offset: SEGMENT + 128 * 1024, length: 2 * MiB - 128 * 1024, kind: 'hole' },
      { offset: 3 * MiB, length: 4096, kind: 'data' },
      { offset: 3 * MiB + 4096, length: MiB - 4096, kind: 'hole' },
    ]);
    // A sub-range is clipped to the range asked for.
    expect(await b.blockStatus(100 * 1024, 50 * 1024)).toEqual([
      { offset: 100 * 1024, length: 28 * 1024, kind: 'data' },
      { offset: 128 * 1024, length: 22 * 1024, kind: 'hole' },
    ]);
    await b.trim(SEGMENT - 128 * 1024, 256 * 1024, false);
    expect((await b.blockStatus(0, 4 * MiB)).filter((e) => e.kind === 'data')).toEqual([
      { offset: 64 * 1024, length: 64 * 1024, kind: 'data' },
      { offset: 3 * MiB, length: 4096, kind: 'data' },
    ]);
  });

  it('blockStatus describes fragmented files completely (many extents)', async () => {
    const { b } = await lun(8 * MiB, { segmentSize: 8 * MiB });
    const writes: Promise<void>[] = [];
    for (let i = 0; i < 8 * MiB / 8192; i++) writes.push(b.write(i * 8192, pattern(4096, i), false));
    await Promise.all(writes);
    const extents = await b.blockStatus(0, 8 * MiB);
    expect(extents.length).toBe(2 * 1024);
    expect(extents.every((e, i) => e.offset === i * 4096 && e.length === 4096 && e.kind === (i % 2 === 0 ? 'data' : 'hole'))).toBe(true);
  });

  it('FUA writes and flush call fdatasync', async () => {
    const { b } = await lun(2 * MiB);
    const before = engine.fdatasyncCount();
    await b.write(0, pattern(4096, 1), true);
    expect(engine.fdatasyncCount()).toBeGreaterThan(before);
    const afterFua = engine.fdatasyncCount();
    await b.write(4096, pattern(4096, 2), false);
    expect(engine.fdatasyncCount()).toBe(afterFua);
    await b.flush();
    // A flush syncs every segment of the LUN.
    expect(engine.fdatasyncCount()).toBeGreaterThanOrEqual(afterFua + 2);
    await b.trim(0, 4096, true);
    await b.writeZeroes(8192, 4096, { noHole: true, fua: true });
    expect(b.stats()).toMatchObject({ writes: 2, flushes: 1, trims: 1, zeroes: 1, errors: 0 });
  });

  it('groups concurrent FUA writes into few fdatasyncs', async () => {
    const { b } = await lun(MiB);
    const before = engine.fdatasyncCount();
    await Promise.all(Array.from({ length: 32 }, (_, i) => b.write(i * 4096, pattern(4096, i), true)));
    const syncs = engine.fdatasyncCount() - before;
    expect(syncs).toBeGreaterThanOrEqual(1);
    expect(syncs).toBeLessThan(32);
  });

  // OP_COPY: a worker-engine request (WorkerLunBackend.copyFrom); FsIoEngine has no such op
  // (FlashCopy copies through its Volumes there), so the FsIoEngine case has nothing to check.
  it.skipIf(engineName === 'FsIoEngine')('copies ranges between LUNs (OP_COPY) consistently with a model, across segment boundaries and holes', async () => {
    const seed = testSeed(`io conformance copy ${engineName}`, 0xc0b1);
    const rnd = seededRandom(seed);
    const size = 4 * MiB + 12_345;
    // Different segment sizes, so source and target pieces break at different offsets.
    const { b: srcB } = await lun(size, { name: 'src' });
    const { spec: dstSpec, b: dstB } = await lun(size, { name: 'dst', segmentSize: 768 * 1024 });
    const src = srcB as WorkerLunBackend;
    const dst = dstB as WorkerLunBackend;
    // Source: data with holes between (every other 256 KiB stays a hole); target: old data everywhere.
    const srcModel = Buffer.alloc(size);
    for (let off = 0; off < size; off += 512 * 1024) {
      const data = pattern(Math.min(256 * 1024, size - off), seed + off);
      await src.write(off, data, false);
      data.copy(srcModel, off);
    }
    const dstModel = pattern(size, seed ^ 0x5555);
    await dst.write(0, dstModel, false);
    for (let batch = 0; batch < 6; batch++) {
      // Copies in flight together never overlap on the target (their order is not defined).
      const taken: [number, number][] = [];
      const ops: Promise<unknown>[] = [];
      const effects: (() => void)[] = [];
      for (let tries = 0; tries < 200 && ops.length < 32; tries++) {
        const length = 1 + Math.floor(rnd() * (rnd() < 0.3 ? 1_500_000 : 70_000));
        const from = Math.floor(rnd() * (size - length));
        const to = rnd() < 0.5 ? from : Math.floor(rnd() * (size - length));
        if (taken.some(([o, l]) => to < o + l && o < to + length)) continue;
        taken.push([to, length]);
        const expected = Buffer.from(srcModel.subarray(from, from + length));
        ops.push(dst.copyFrom(src, from, to, length, rnd() < 0.2));
        effects.push(() => expected.copy(dstModel, to));
      }
      await Promise.all(ops);
      for (const apply of effects) apply();
      expect(Buffer.from(await dst.read(0, size)).equals(dstModel), `batch ${batch} seed=${seed}`).toBe(true);
    }
    expect(fileContents(dstSpec).equals(dstModel), `seed=${seed}`).toBe(true);
    expect(dst.stats()).toMatchObject({ inFlight: 0, errors: 0 });
    // A copy of a source hole leaves a hole (no blocks written), unlike a copy of data.
    const { spec: holeSpec, b: holeB } = await lun(2 * MiB, { name: 'holes' });
    const holes = holeB as WorkerLunBackend;
    const old = pattern(2 * MiB, 77);
    await holes.write(0, old, false);
    const full = allocatedBytes(holeSpec);
    await holes.copyFrom(src, 256 * 1024, 0, 256 * 1024, false); // a hole of src (see the fill above)
    expect(allocatedBytes(holeSpec)).toBe(full - 256 * 1024);
    await holes.copyFrom(src, 0, MiB, 256 * 1024, false);
    expect(allocatedBytes(holeSpec)).toBe(full - 256 * 1024);
    const want = Buffer.from(old);
    want.fill(0, 0, 256 * 1024);
    srcModel.copy(want, MiB, 0, 256 * 1024);
    expect(Buffer.from(await holes.read(0, 2 * MiB)).equals(want)).toBe(true);
  });

  it.skipIf(engineName === 'FsIoEngine')('OP_COPY: FUA takes part in the group commit; ranges, read-only and foreign LUNs are refused', async () => {
    const { b: a } = await lun(2 * MiB, { name: 'a' });
    const { b: t } = await lun(2 * MiB, { name: 't' });
    const src = a as WorkerLunBackend;
    const dst = t as WorkerLunBackend;
    await src.write(0, pattern(2 * MiB, 3), false);
    const before = engine.fdatasyncCount();
    await dst.copyFrom(src, 0, 0, 64 * 1024, false);
    expect(engine.fdatasyncCount()).toBe(before);
    // 32 concurrent FUA copies: durable on completion, sharing few fdatasyncs.
    await Promise.all(Array.from({ length: 32 }, (_, i) => dst.copyFrom(src, i * 65536, i * 65536, 65536, true)));
    const syncs = engine.fdatasyncCount() - before;
    expect(syncs).toBeGreaterThanOrEqual(1);
    expect(syncs).toBeLessThan(32);
    expect(Buffer.from(await dst.read(0, 2 * MiB)).equals(pattern(2 * MiB, 3))).toBe(true);
    expect(src.stats()).toMatchObject({ reads: 33, bytesRead: 33 * 65536 });

    await expectCode(dst.copyFrom(src, 2 * MiB - 10, 0, 20, false), 'OUT_OF_RANGE');
    await expectCode(dst.copyFrom(src, 0, 2 * MiB - 10, 20, false), 'OUT_OF_RANGE');
    const { b: ro } = await lun(MiB, { readOnly: true, name: 'ro' });
    await expectCode((ro as WorkerLunBackend).copyFrom(src, 0, 0, 10, false), 'READ_ONLY');
    const other = await WorkerIoEngine.start({ workers: 1 });
    try {
      const foreign = await other.openBackend(makeLunSpec(dir, 'foreign', MiB, SEGMENT));
      await expectCode(dst.copyFrom(foreign, 0, 0, 10, false), 'INVALID_ARGUMENT');
      await foreign.close();
    } finally {
      await other.close();
    }
    // A closed source refuses, and the target is left with nothing in flight.
    await src.close();
    await expectCode(dst.copyFrom(src, 0, 0, 10, false), 'INVALID_ARGUMENT');
    expect(dst.stats().inFlight).toBe(0);
  });

  it('resize adopts new segments', async () => {
    const { spec, b } = await lun(MiB + 4096);
    expect(spec.segments.length).toBe(2);
    // The store grows the last file and adds new ones.
    fs.truncateSync(spec.segments[1]!, SEGMENT);
    const extra = path.join(dir, 'grown.2');
    fs.writeFileSync(extra, '');
    fs.truncateSync(extra, SEGMENT);
    const grown: LunBackendSpec = { ...spec, size: 3 * MiB, segments: [...spec.segments, extra] };
    await b.resize(grown);
    const data = pattern(MiB, 9);
    await b.write(2 * MiB - 4096, data, false); // spans the old last and the new segment
    expect(Buffer.from(await b.read(2 * MiB - 4096, MiB)).equals(data)).toBe(true);
    expect(fs.readFileSync(extra).subarray(0, MiB - 4096).equals(data.subarray(4096))).toBe(true);
    await expectCode(b.resize({ ...grown, size: MiB }), 'SHRINK_NOT_SUPPORTED');
    await expectCode(b.resize({ ...grown, segmentSize: 2 * MiB }), 'INVALID_ARGUMENT');
  });

  it('close waits for in-flight requests, then refuses new ones', async () => {
    const { spec, b } = await lun(2 * MiB);
    const data = pattern(2 * MiB, 5);
    const writes: Promise<void>[] = [];
    for (let i = 0; i < 64; i++) writes.push(b.write(i * 32 * 1024, data.subarray(i * 32 * 1024, (i + 1) * 32 * 1024), false));
    expect(b.stats().inFlight).toBeGreaterThan(0);
    let done = 0;
    for (const w of writes) void w.then(() => done++);
    const settled = Promise.allSettled(writes);
    await b.close();
    expect(done).toBe(64);
    expect(b.stats().inFlight).toBe(0);
    expect((await settled).every((r) => r.status === 'fulfilled')).toBe(true);
    expect(fileContents(spec).equals(data)).toBe(true);
    await expectCode(b.read(0, 10), 'CLOSED');
    await expectCode(b.write(0, Buffer.alloc(1), false), 'CLOSED');
    await expectCode(b.flush(), 'CLOSED');
    await b.close(); // idempotent
  });

  it('surfaces errors as typed LunrigErrors', async () => {
    const { b: ro } = await lun(MiB, { readOnly: true, name: 'ro' });
    await expectCode(ro.write(0, Buffer.alloc(10), false), 'READ_ONLY');
    await expectCode(ro.trim(0, 10, false), 'READ_ONLY');
    await expectCode(ro.writeZeroes(0, 10, { noHole: false, fua: false }), 'READ_ONLY');
    expect((await ro.read(0, 10)).length).toBe(10);

    // /dev/full refuses every write with ENOSPC.
    const full = await engine.open({ segments: ['/dev/full'], segmentSize: MiB, size: MiB, readOnly: false });
    open.push(full);
    await expectCode(full.write(0, Buffer.alloc(4096, 1), false), 'NO_SPACE');
    expect(full.stats().errors).toBe(1);

    await expectCode(engine.open({ segments: [path.join(dir, 'missing')], segmentSize: MiB, size: MiB, readOnly: false }), 'IO_ERROR');
    await expectCode(engine.open({ segments: [], segmentSize: MiB, size: MiB, readOnly: false }), 'INVALID_ARGUMENT');

    // The engine keeps serving after request errors.
    const { b } = await lun(MiB);
    await b.write(0, Buffer.from('still fine'), false);
    expect(Buffer.from(await b.read(0, 10)).toString()).toBe('still fine');
  });

  it('reports an I/O error when the fd under a LUN is gone', async () => {
    const { spec, b } = await lun(MiB);
    const fdDir = '/proc/self/fd';
    const fd = fs
      .readdirSync(fdDir)
      .map(Number)
      .find((n) => {
        try {
          return fs.readlinkSync(`${fdDir}/${n}`) === spec.segments[0];
        } catch {
          return false;
        }
      });
    expect(fd).toBeDefined();
    // Swap the fd for a read-only decoy: the lowest free number is reused, so the
    // LUN's fd now names a file it cannot write (EBADF), never somebody else's file.
    const decoyPath = path.join(dir, 'decoy');
    fs.writeFileSync(decoyPath, 'decoy');
    fs.closeSync(fd!);
    const decoy = fs.openSync(decoyPath, 'r');
    try {
      expect(decoy, 'another thread took the fd number; not writing through it').toBe(fd);
      await expectCode(b.write(0, Buffer.alloc(4096, 1), false), 'IO_ERROR');
      expect(fs.readFileSync(decoyPath, 'utf8')).toBe('decoy');
    } finally {
      fs.closeSync(decoy);
    }
    await b.close().catch(() => undefined); // its fd is already gone
    open.splice(open.indexOf(b), 1);
  });
});
