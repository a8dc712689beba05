/**
 * The FlashCopy layer of a source volume: writes, trims and write-zeroes to a
 * grain not yet copied wait until its T0 image is safely on the target
 * (CowEngine.beforeSourceWrite); everything else passes through. Detached
 * (relationship ended while other layers sat above it) it is a pass-through.
 */
import { LunrigError } from '../../errors.js';
import { checkRange } from '../../volume/range-check.js';
import { PassThroughLayer } from '../../volume/pass-through-layer.js';
import type { Extent, Volume, WriteOptions, WriteZeroesOptions } from '../../volume/volume.js';
import type { CowEngine } from './cow-engine.js';

export class SourceLayer extends PassThroughLayer {
  constructor(
    below: Volume,
    private engine: CowEngine | undefined,
  ) {
    super(below);
  }

  override async write(offset: number, data: Uint8Array, options?: WriteOptions): Promise<void> {
    await this.copyFirst(offset, data.byteLength, 'write', options);
    return this.below.write(offset, data, options);
  }

  override async writeZeroes(offset: number, length: number, options?: WriteZeroesOptions): Promise<void> {
    await this.copyFirst(offset, length, 'write-zeroes', options);
    return this.below.writeZeroes(offset, length, options);
  }

  override async trim(offset: number, length: number, options?: WriteOptions): Promise<void> {
    await this.copyFirst(offset, length, 'trim', options);
    return this.below.trim(offset, length, options);
  }

  // What the host makes durable has its grain copies and bits durable first.
  override async flush(): Promise<void> {
    await this.engine?.sync();
    return this.below.flush();
  }

  /** The relationship ended: pass everything through from now on. */
  detach(): void {
    this.engine = undefined;
  }

  get attached(): boolean {
    return this.engine !== undefined;
  }

  /** Refuse what the volume below would refuse anyway before copying anything for it. */
  private async copyFirst(offset: number, length: number, what: string, options: WriteOptions | undefined): Promise<void> {
    const engine = this.engine;
    if (!engine) return;
    checkRange(offset, length, this.below.size, `${what} of FlashCopy source`);
    if (this.below.readOnly) throw new LunrigError('READ_ONLY', `${what}: volume ${this.below.identity().name} is read-only`);
    await engine.beforeSourceWrite(offset, length);
    // FUA: the write is durable when it lands, so the copies it relies on must be first.
    if (options?.fua) await engine.sync();
  }
}
