import { describe, expect, it } from 'vitest';
import { MemoryVolume } from '../../src/volume/memory-volume.js';
import { VolumeStack } from '../../src/volume/volume-stack.js';
import type { Volume } from '../../src/volume/volume.js';

/** A layer that records writes and otherwise delegates. */
function recording(below: Volume, log: string[]): Volume {
  return Object.assign(Object.create(below) as Volume, {
    write: async (offset: number, data: Uint8Array) => {
      log.push(`write ${offset}`);
      return below.write(offset, data);
    },
  });
}

describe('VolumeStack', () => {
  it('forwards to the base until a layer is stacked, then to the layer; removing it restores the base', async () => {
    const base = new MemoryVolume({ size: 1 << 20 });
    const stack = new VolumeStack(base);
    const log: string[] = [];
    await stack.write(0, Buffer.from('a'));
    await stack.restack((top) => recording(top, log));
    await stack.write(512, Buffer.from('b'));
    await stack.restack(() => base);
    await stack.write(1024, Buffer.from('c'));
    expect(log).toEqual(['write 512']);
    expect(Buffer.from(await stack.read(512, 1)).toString()).toBe('b');
    expect(stack.size).toBe(1 << 20);
  });

  it('restack waits for in-flight requests and holds new ones until the swap is done', async () => {
    const base = new MemoryVolume({ size: 1 << 20 });
    let release!: () => void;
    const slow: Volume = Object.assign(Object.create(base) as Volume, {
      write: async (offset: number, data: Uint8Array) => {
        await new Promise<void>((r) => (release = r));
        await base.write(offset, data);
        events.push(`slow write ${offset} done`);
      },
    });
    const events: string[] = [];
    const stack = new VolumeStack(slow);
    const inflight = stack.write(0, Buffer.from('x'));
    const restacked = stack
      .restack((top) => {
        events.push('swap');
        return recording(base, events);
      });
    const later = stack.write(4096, Buffer.from('y'));
    await Promise.resolve();
    expect(events).toEqual([]);
    release();
    await Promise.all([inflight, restacked, later]);
    // The swap waited for the in-flight write; the write issued during the restack went to the new layer.
    expect(events).toEqual(['slow write 0 done', 'swap', 'write 4096']);
  });
});
