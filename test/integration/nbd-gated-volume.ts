import type { Extent, Volume, VolumeIdentity, WriteOptions, WriteZeroesOptions } from '../../src/volume/volume.js';

/**
 * A Volume wrapper for interop tests: delay reads at chosen offsets (out-of-order
 * replies) or hold every write until released (a request in flight when its
 * client dies), like nbdkit's delay and pause filters.
 */
export class GatedVolumeForInterop implements Volume {
  private readonly readDelays = new Map<number, number>();
  private held = false;
  private waiters: (() => void)[] = [];

  constructor(private readonly inner: Volume) {}

  delayReadsAt(offset: number, ms: number): void {
    this.readDelays.set(offset, ms);
  }

  holdWrites(): void {
    this.held = true;
  }

  releaseAll(): void {
    this.held = false;
    this.readDelays.clear();
    for (const w of this.waiters.splice(0)) w();
  }

  get size(): number {
    return this.inner.size;
  }
  get readOnly(): boolean {
    return this.inner.readOnly;
  }
  identity(): VolumeIdentity {
    return this.inner.identity();
  }
  async read(offset: number, length: number, into?: Uint8Array): Promise<Uint8Array> {
    const ms = this.readDelays.get(offset);
    if (ms) await new Promise((r) => setTimeout(r, ms));
    return this.inner.read(offset, length, into);
  }
  async write(offset: number, data: Uint8Array, o?: WriteOptions): Promise<void> {
    if (this.held) await new Promise<void>((r) => this.waiters.push(r));
    return this.inner.write(offset, data, o);
  }
  writeZeroes(offset: number, length: number, o?: WriteZeroesOptions): Promise<void> {
    return this.inner.writeZeroes(offset, length, o);
  }
  trim(offset: number, length: number, o?: WriteOptions): Promise<void> {
    return this.inner.trim(offset, length, o);
  }
  flush(): Promise<void> {
    return this.inner.flush();
  }
  blockStatus(offset: number, length: number): Promise<Extent[]> {
    return this.inner.blockStatus(offset, length);
  }
}
