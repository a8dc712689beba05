/**
 * The FlashCopy layer of a target volume: reads and block status of grains
 * not yet copied come from the source's T0 data, writes to them first
 * materialise the grain (CowEngine); copied grains and anything past the
 * covered size pass through. Detached, it is a pass-through.
 */
import { checkRange } from '../../volume/range-check.js';
import { PassThroughLayer } from '../../volume/pass-through-layer.js';
import type { Extent, Volume, WriteOptions, WriteZeroesOptions } from '../../volume/volume.js';
import type { CowEngine } from './cow-engine.js';

export class TargetLayer extends PassThroughLayer {
  constructor(
    below: Volume,
    private engine: CowEngine | undefined,
  ) {
    super(below);
  }

  override async read(offset: number, length: number, into?: Uint8Array): Promise<Uint8Array> {
    const engine = this.engine;
    if (!engine) return this.below.read(offset, length, into);
    checkRange(offset, length, this.below.size, 'read of FlashCopy target');
    return engine.readTarget(offset, length, into);
  }

  override async write(offset: number, data: Uint8Array, options?: WriteOptions): Promise<void> {
    const engine = this.engine;
    if (!engine) return this.below.write(offset, data, options);
    checkRange(offset, data.byteLength, this.below.size, 'write to FlashCopy target');
    await engine.mutateTarget(offset, data.byteLength, () => this.below.write(offset, data, options));
    if (options?.fua) await engine.sync();
  }

  override async writeZeroes(offset: number, length: number, options?: WriteZeroesOptions): Promise<void> {
    const engine = this.engine;
    if (!engine) return this.below.writeZeroes(offset, length, options);
    checkRange(offset, length, this.below.size, 'write-zeroes to FlashCopy target');
    await engine.mutateTarget(offset, length, () => this.below.writeZeroes(offset, length, options));
    if (options?.fua) await engine.sync();
  }

  override async trim(offset: number, length: number, options?: WriteOptions): Promise<void> {
    const engine = this.engine;
    if (!engine) return this.below.trim(offset, length, options);
    checkRange(offset, length, this.below.size, 'trim of FlashCopy target');
    await engine.mutateTarget(offset, length, () => this.below.trim(offset, length, options));
    if (options?.fua) await engine.sync();
  }

  // A flushed target write must keep its bit: bits (and copies) durable, then the target's own flush.
  override async flush(): Promise<void> {
    await this.engine?.sync();
    return this.below.flush();
  }

  override async blockStatus(offset: number, length: number): Promise<Extent[]> {
    const engine = this.engine;
    if (!engine) return this.below.blockStatus(offset, length);
    checkRange(offset, length, this.below.size, 'block status of FlashCopy target');
    return engine.blockStatusTarget(offset, length);
  }

  /** The relationship ended: pass everything through from now on. */
  detach(): void {
    this.engine = undefined;
  }

  get attached(): boolean {
    return this.engine !== undefined;
  }
}
