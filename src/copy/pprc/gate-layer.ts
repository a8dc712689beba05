/**
 * The access gate on a paired secondary's VolumeStack (spec §3.4, PP-07):
 * host reads, writes, trims, write-zeroes and block status fail with
 * PPRC_SECONDARY_NOT_ACCESSIBLE; identification still works. The pair's own
 * channel passes: it runs its requests inside `asChannel(volume, ...)`, which
 * the gate recognises through AsyncLocalStorage, so channel writes go through
 * the whole stack (FlashCopy source layers see them: CB-05) and are drained
 * by restacks like any request. Detached, the gate is a pass-through (it may
 * sit buried under layers stacked later; see SecondarySide.regate).
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { LunrigError } from '../../errors.js';
import type { Extent, Volume, VolumeIdentity, WriteOptions, WriteZeroesOptions } from '../../volume/volume.js';

const channelContext = new AsyncLocalStorage<string>();

/** Run `op` as the PPRC channel of `volume` (the gate of that volume lets it through). */
export function asChannel<T>(volume: string, op: () => Promise<T>): Promise<T> {
  return channelContext.run(volume, op);
}

export class GateLayer implements Volume {
  private active = true;

  constructor(
    readonly below: Volume,
    private readonly volume: string,
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
    return this.pass('read', () => this.below.read(offset, length, into));
  }

  write(offset: number, data: Uint8Array, options?: WriteOptions): Promise<void> {
    return this.pass('write', () => this.below.write(offset, data, options));
  }

  writeZeroes(offset: number, length: number, options?: WriteZeroesOptions): Promise<void> {
    return this.pass('write-zeroes', () => this.below.writeZeroes(offset, length, options));
  }

  trim(offset: number, length: number, options?: WriteOptions): Promise<void> {
    return this.pass('trim', () => this.below.trim(offset, length, options));
  }

  flush(): Promise<void> {
    return this.below.flush();
  }

  blockStatus(offset: number, length: number): Promise<Extent[]> {
    return this.pass('block-status', () => this.below.blockStatus(offset, length));
  }

  detach(): void {
    this.active = false;
  }

  get attached(): boolean {
    return this.active;
  }

  private pass<T>(what: string, op: () => Promise<T>): Promise<T> {
    if (this.active && channelContext.getStore() !== this.volume) {
      return Promise.reject(
        new LunrigError('PPRC_SECONDARY_NOT_ACCESSIBLE', `${what}: volume '${this.volume}' is a PPRC secondary; terminate the pair to use it`, { volume: this.volume }),
      );
    }
    return op();
  }
}
