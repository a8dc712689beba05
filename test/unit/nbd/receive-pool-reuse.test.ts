/**
 * Direct reads land in a receive pool that is reused once nothing refers to
 * its bytes (server-connection.ts nextReadBuffer). A generic-path WRITE (here:
 * a layer that does not pass slots is stacked on the LUN) may hold its
 * payload as pool bytes until it completes: while it does, later requests
 * must not be read over them.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { PassThroughLayer } from '../../../src/volume/pass-through-layer.js';
import type { Volume, WriteOptions } from '../../../src/volume/volume.js';
import { MiB, pattern, startFastFixture, type FastFixture } from './fast-path-fixture.js';

let f: FastFixture | undefined;

afterEach(async () => {
  await f?.close();
  f = undefined;
});

/** Holds the first write until released; the others pass. */
class HoldFirstWrite extends PassThroughLayer {
  private held = false;
  release!: () => void;
  private readonly gate = new Promise<void>((resolve) => (this.release = resolve));
  arrived!: () => void;
  readonly firstArrived = new Promise<void>((resolve) => (this.arrived = resolve));

  constructor(below: Volume) {
    super(below);
  }

  override async write(offset: number, data: Uint8Array, options?: WriteOptions): Promise<void> {
    if (!this.held) {
      this.held = true;
      this.arrived();
      await this.gate;
    }
    return this.below.write(offset, data, options);
  }
}

describe('NBD receive pool reuse', () => {
  it('a generic-path WRITE holding receive-pool bytes keeps them intact while 200 later requests are read', async () => {
    f = await startFastFixture({ luns: [{ name: 'lun0', size: 16 * MiB }] });
    let layer: HoldFirstWrite | undefined;
    await f.pool.volume('lun0').restack((top) => (layer = new HoldFirstWrite(top)));
    const c = await f.connect();
    expect(f.server.stats()[0]!.directReads).toBe(true);
    const first = c.write(0, pattern(4096, 1));
    await layer!.firstArrived;
    // Enough traffic to wrap the 128 KiB pool several times over while the first payload is held.
    for (let round = 0; round < 10; round++) {
      await Promise.all(Array.from({ length: 20 }, (_, i) => c.write((1 + round * 20 + i) * 8192, pattern(4096, 100 + round * 20 + i))));
    }
    layer!.release();
    await first;
    expect(Buffer.from(await c.read(0, 4096)).equals(pattern(4096, 1))).toBe(true);
    for (let k = 1; k <= 200; k++) expect(Buffer.from(await c.read(k * 8192, 4096)).equals(pattern(4096, 99 + k))).toBe(true);
  });
});
