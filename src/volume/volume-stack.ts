/**
 * The host-facing Volume of one LUN: a stable object (exports and callers keep
 * it) that forwards to the top of a stack of layers over the LUN. Copy
 * services insert and remove layers (FlashCopy, PPRC, access gates) with
 * `restack`, which holds new requests, lets in-flight ones finish, and swaps
 * the top: so a layer applies exactly to the requests issued after the swap.
 */
import type { Extent, Volume, VolumeIdentity, WriteOptions, WriteZeroesOptions } from './volume.js';

export class VolumeStack implements Volume {
  private top: Volume;
  private inFlight = 0;
  private drained: (() => void) | undefined;
  private gate: Promise<void> | undefined;

  constructor(readonly base: Volume) {
    this.top = base;
  }

  get size(): number {
    return this.top.size;
  }

  get readOnly(): boolean {
    return this.top.readOnly;
  }

  /** The volume requests currently go to. */
  get current(): Volume {
    return this.top;
  }

  identity(): VolumeIdentity {
    return this.top.identity();
  }

  read(offset: number, length: number, into?: Uint8Array): Promise<Uint8Array> {
    return this.forward((v) => v.read(offset, length, into));
  }

  write(offset: number, data: Uint8Array, options?: WriteOptions): Promise<void> {
    return this.forward((v) => v.write(offset, data, options));
  }

  writeZeroes(offset: number, length: number, options?: WriteZeroesOptions): Promise<void> {
    return this.forward((v) => v.writeZeroes(offset, length, options));
  }

  trim(offset: number, length: number, options?: WriteOptions): Promise<void> {
    return this.forward((v) => v.trim(offset, length, options));
  }

  flush(): Promise<void> {
    return this.forward((v) => v.flush());
  }

  blockStatus(offset: number, length: number): Promise<Extent[]> {
    return this.forward((v) => v.blockStatus(offset, length));
  }

  /**
   * Replace the top of the stack. `change` runs while no request is in flight
   * and none can start; it gets the current top and returns the new one
   * (wrapping it to add a layer, or returning what a layer wrapped to remove it).
   * Restacks run one at a time.
   */
  async restack(change: (top: Volume) => Volume | Promise<Volume>): Promise<void> {
    while (this.gate) await this.gate;
    let open!: () => void;
    this.gate = new Promise<void>((resolve) => (open = resolve));
    try {
      if (this.inFlight > 0) await new Promise<void>((resolve) => (this.drained = resolve));
      this.top = await change(this.top);
    } finally {
      this.gate = undefined;
      open();
    }
  }

  /**
   * Count a request that reaches the volumes below by another route (PPRC's
   * fused local mirror write) as in flight, so a restack waits for it like
   * any other. Undefined while a restack is pending (the caller takes the
   * ordinary route, which waits); else call the returned function once done.
   */
  tryEnter(): (() => void) | undefined {
    if (this.gate) return undefined;
    this.inFlight++;
    let left = false;
    return () => {
      if (left) return;
      left = true;
      this.leave();
    };
  }

  private leave(): void {
    if (--this.inFlight === 0 && this.drained) {
      const drained = this.drained;
      this.drained = undefined;
      drained();
    }
  }

  private async forward<T>(op: (v: Volume) => Promise<T>): Promise<T> {
    while (this.gate) await this.gate;
    this.inFlight++;
    try {
      return await op(this.top);
    } finally {
      this.leave();
    }
  }
}
