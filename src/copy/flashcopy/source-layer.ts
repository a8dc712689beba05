/**
 * The FlashCopy layer of a source volume: writes, trims and write-zeroes to a
 * grain not yet copied wait until its T0 image is safely on the target
 * (CowEngine.beforeSourceWrite); everything else passes through. Detached
 * (relationship ended while other layers sat above it) it is a pass-through.
 */
import { LunrigError } from '../../errors.js';
import { checkRange } from '../../volume/range-check.js';
import type { Extent, Volume, VolumeIdentity, WriteOptions, WriteZeroesOptions } from '../../volume/volume.js';
import type { CowEngine } from './cow-engine.js';

export class SourceLayer implements Volume {
  constructor(
    readonly below: Volume,
    private engine: CowEngine | undefined,
  ) {}

  get size(): number {
    return this.below.size;
  }

  get readOnly(): boolean {
    return this.below.readOnly;
  }

  identity(): VolumeIdentity {
    return this.below.identity();
  }

  read(offset: number, length: number, into?: Uint8Array): Promise<Uint8Array> {
    return this.below.read(offset, length, into);
  }

  async write(offset: number, data: Uint8Array, options?: WriteOptions): Promise<void> {
    await this.copyFirst(offset, data.byteLength, 'write', options);
    return this.below.write(offset, data, options);
  }

  async writeZeroes(offset: number, length: number, options?: WriteZeroesOptions): Promise<void> {
    await this.copyFirst(offset, length, 'write-zeroes', options);
    return this.below.writeZeroes(offset, length, options);
  }

  async trim(offset: number, length: number, options?: WriteOptions): Promise<void> {
    await this.copyFirst(offset, length, 'trim', options);
    return this.below.trim(offset, length, options);
  }

  // What the host makes durable has its grain copies and bits durable first.
  async flush(): Promise<void> {
    await this.engine?.sync();
    return this.below.flush();
  }

  blockStatus(offset: number, length: number): Promise<Extent[]> {
    return this.below.blockStatus(offset, length);
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
