/**
 * The base of every layer on a VolumeStack: it holds the Volume below and
 * passes everything to it. A layer overrides only what it changes (a copy
 * service's writes, a gate's admission); size, read-only and identity are
 * always the volume below's (a FlashCopy target keeps its own identity: same
 * bytes, different device).
 */
import type { Extent, Volume, VolumeIdentity, WriteOptions, WriteZeroesOptions } from './volume.js';

export abstract class PassThroughLayer implements Volume {
  constructor(readonly below: Volume) {}

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

  write(offset: number, data: Uint8Array, options?: WriteOptions): Promise<void> {
    return this.below.write(offset, data, options);
  }

  writeZeroes(offset: number, length: number, options?: WriteZeroesOptions): Promise<void> {
    return this.below.writeZeroes(offset, length, options);
  }

  trim(offset: number, length: number, options?: WriteOptions): Promise<void> {
    return this.below.trim(offset, length, options);
  }

  flush(): Promise<void> {
    return this.below.flush();
  }

  blockStatus(offset: number, length: number): Promise<Extent[]> {
    return this.below.blockStatus(offset, length);
  }
}
