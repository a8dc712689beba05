import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { isLunrigError } from '../../../src/errors.js';
import { MemoryVolume } from '../../../src/volume/memory-volume.js';
import { pattern } from './harness.js';

const KiB = 1024;

describe('MemoryVolume', () => {
  it('starts as one hole and reads zeros', async () => {
    const v = new MemoryVolume({ size: 1024 * KiB });
    expect(await v.blockStatus(0, v.size)).toEqual([{ offset: 0, length: 1024 * KiB, kind: 'hole' }]);
    expect(Buffer.from(await v.read(100, 50)).equals(Buffer.alloc(50))).toBe(true);
    expect(v.allocatedBytes).toBe(0);
  });

  it('writes allocate whole chunks and read back, unaligned and across chunks', async () => {
    const v = new MemoryVolume({ size: 1024 * KiB, chunkSize: 4 * KiB });
    const data = pattern(10_000, 1);
    await v.write(3000, data);
    expect(Buffer.from(await v.read(3000, 10_000)).equals(data)).toBe(true);
    expect(await v.blockStatus(0, 16 * KiB)).toEqual([
      { offset: 0, length: 16 * KiB, kind: 'data' }, // chunks 0..3 hold bytes 3000..12999
    ]);
    const into = new Uint8Array(20);
    expect(await v.read(3000, 20, into)).toBe(into);
  });

  it('trim and write-zeroes punch whole chunks, zero partial ones; noHole leaves zero extents', async () => {
    const v = new MemoryVolume({ size: 64 * KiB, chunkSize: 4 * KiB });
    await v.write(0, Buffer.alloc(64 * KiB, 0xaa));
    await v.trim(2 * KiB, 8 * KiB); // partial chunk 0, whole chunk 1, partial chunk 2
    await v.writeZeroes(16 * KiB, 8 * KiB, { noHole: true });
    await v.writeZeroes(32 * KiB, 4 * KiB);
    expect(Buffer.from(await v.read(2 * KiB, 8 * KiB)).equals(Buffer.alloc(8 * KiB))).toBe(true);
    expect(Buffer.from(await v.read(0, 2 * KiB)).equals(Buffer.alloc(2 * KiB, 0xaa))).toBe(true);
    expect(await v.blockStatus(0, 64 * KiB)).toEqual([
      { offset: 0, length: 4 * KiB, kind: 'data' },
      { offset: 4 * KiB, length: 4 * KiB, kind: 'hole' },
      { offset: 8 * KiB, length: 8 * KiB, kind: 'data' },
      { offset: 16 * KiB, length: 8 * KiB, kind: 'zero' },
      { offset: 24 * KiB, length: 8 * KiB, kind: 'data' },
      { offset: 32 * KiB, length: 4 * KiB, kind: 'hole' },
      { offset: 36 * KiB, length: 28 * KiB, kind: 'data' },
    ]);
  });

  it('blockStatus clips to the request and to the size, and stays fast on a huge sparse volume', async () => {
    const v = new MemoryVolume({ size: 2 ** 44 + 100 }); // 16 TiB + 100 bytes
    await v.write(2 ** 40, Buffer.alloc(10, 1));
    const t0 = Date.now();
    const ext = await v.blockStatus(0, v.size);
    expect(Date.now() - t0).toBeLessThan(500);
    expect(ext).toEqual([
      { offset: 0, length: 2 ** 40, kind: 'hole' },
      { offset: 2 ** 40, length: 64 * KiB, kind: 'data' },
      { offset: 2 ** 40 + 64 * KiB, length: 2 ** 44 + 100 - 2 ** 40 - 64 * KiB, kind: 'hole' },
    ]);
    expect(await v.blockStatus(2 ** 40 + 5, 3)).toEqual([{ offset: 2 ** 40 + 5, length: 3, kind: 'data' }]);
    expect(await v.blockStatus(v.size - 10, 10)).toEqual([{ offset: v.size - 10, length: 10, kind: 'hole' }]);
  });

  it('refuses out-of-range, read-only, closed, and slow fast-zero requests with typed errors', async () => {
    const v = new MemoryVolume({ size: 4096, fastZero: false });
    await expect(v.read(4000, 200)).rejects.toSatisfy((e: unknown) => isLunrigError(e, 'OUT_OF_RANGE'));
    await expect(v.writeZeroes(0, 10, { fastZero: true })).rejects.toSatisfy((e: unknown) => isLunrigError(e, 'NOT_SUPPORTED'));
    const ro = new MemoryVolume({ size: 4096, readOnly: true });
    await expect(ro.write(0, Buffer.alloc(1))).rejects.toSatisfy((e: unknown) => isLunrigError(e, 'READ_ONLY'));
    await expect(ro.trim(0, 1)).rejects.toSatisfy((e: unknown) => isLunrigError(e, 'READ_ONLY'));
    expect(ro.readOnly).toBe(true);
    v.close();
    await expect(v.flush()).rejects.toSatisfy((e: unknown) => isLunrigError(e, 'CLOSED'));
  });

  it('identity is complete, overridable, with a fresh uniqueId each time', () => {
    const a = new MemoryVolume({ size: 512, identity: { name: 'lun7', serial: 'ABCDE' } });
    const b = new MemoryVolume({ size: 512 });
    expect(a.identity()).toMatchObject({ name: 'lun7', serial: 'ABCDE', lss: 0x10 });
    expect(a.identity().volumeId).toMatch(/^[0-9A-F]{3}ABCDE$/);
    expect(a.identity().uniqueId).toMatch(/^[0-9a-f]{32}$/);
    expect(a.identity().uniqueId).not.toBe(b.identity().uniqueId);
  });

  it('grows but does not shrink', async () => {
    const v = new MemoryVolume({ size: 4096 });
    v.resize(8192);
    await v.write(8000, Buffer.alloc(192, 1));
    expect(() => v.resize(100)).toThrow(/cannot resize/);
  });

  it('matches a flat reference model under random operations (property)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.record({
            op: fc.constantFrom('write', 'trim', 'zero', 'zeroNoHole'),
            offset: fc.integer({ min: 0, max: 40_000 }),
            length: fc.integer({ min: 0, max: 20_000 }),
            seed: fc.integer({ min: 1, max: 1000 }),
          }),
          { maxLength: 30 },
        ),
        async (ops) => {
          const size = 64 * KiB;
          const v = new MemoryVolume({ size, chunkSize: 4 * KiB });
          const model = Buffer.alloc(size);
          for (const o of ops) {
            const len = Math.min(o.length, size - o.offset);
            if (o.op === 'write') {
              const d = pattern(len, o.seed);
              await v.write(o.offset, d);
              d.copy(model, o.offset);
            } else {
              if (o.op === 'trim') await v.trim(o.offset, len);
              else await v.writeZeroes(o.offset, len, { noHole: o.op === 'zeroNoHole' });
              model.fill(0, o.offset, o.offset + len);
            }
          }
          expect(Buffer.from(await v.read(0, size)).equals(model)).toBe(true);
          const ext = await v.blockStatus(0, size);
          let cursor = 0;
          for (const e of ext) {
            expect(e.offset).toBe(cursor);
            if (e.kind !== 'data') expect(model.subarray(e.offset, e.offset + e.length).every((x) => x === 0)).toBe(true);
            cursor += e.length;
          }
          expect(cursor).toBe(size);
        },
      ),
      { seed: 1234, numRuns: 100 },
    );
  });
});
