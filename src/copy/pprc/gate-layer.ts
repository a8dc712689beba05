/**
 * The access gate on a paired secondary's VolumeStack (spec §3.4, PP-07):
 * host reads, writes, trims, write-zeroes and block status fail with
 * PPRC_SECONDARY_NOT_ACCESSIBLE; identification still works. The pair's own
 * channel passes: its requests carry a mark the gate recognises, so channel
 * writes go through the whole stack (FlashCopy source layers see them: CB-05)
 * and are drained by restacks like any request:
 *  - writes, write-zeroes and trims: a symbol-keyed option (`channelOptions`),
 *    which layers pass down with the options;
 *  - reads: the `into` buffer, registered for the volume (`channelBuffer`);
 *  - block status: `channelBlockStatus`, straight below the gate.
 * (No AsyncLocalStorage: on Node 20 it turns on promise hooks for the whole
 * process, a measurable cost on every I/O.) A request whose mark a layer
 * above did not pass on is refused: the safe side. Detached, the gate is a
 * pass-through (it may sit buried under layers stacked later; see
 * SecondarySide.regate).
 */
import { LunrigError } from '../../errors.js';
import { PassThroughLayer } from '../../volume/pass-through-layer.js';
import type { Extent, Volume, WriteOptions, WriteZeroesOptions } from '../../volume/volume.js';

const CHANNEL = Symbol('lunrig.pprc.channel');
/** Read buffers of channel requests, and the volume each is for. */
const channelReads = new WeakMap<Uint8Array, string>();

type Marked = { [CHANNEL]?: string };

/** The options of a channel request to `volume` (its gate lets them through). */
export function channelOptions<T extends WriteOptions | WriteZeroesOptions>(volume: string, options: T | undefined): T & Marked {
  return { ...(options as T), [CHANNEL]: volume };
}

/** A read buffer for a channel read of `volume` (the one given, or a new one of `length` bytes). */
export function channelBuffer(volume: string, length: number, into?: Uint8Array): Uint8Array {
  const buf = into ?? Buffer.allocUnsafe(length);
  channelReads.set(buf, volume);
  return buf;
}

/** The read is done: a buffer that outlives it (an arena slot, reused by host reads) must not pass the gate later. */
export function releaseChannelBuffer(buf: Uint8Array): void {
  channelReads.delete(buf);
}

export class GateLayer extends PassThroughLayer {
  private active = true;

  constructor(
    below: Volume,
    private readonly volume: string,
  ) {
    super(below);
  }

  override read(offset: number, length: number, into?: Uint8Array): Promise<Uint8Array> {
    return this.pass('read', into !== undefined && channelReads.get(into) === this.volume, () => this.below.read(offset, length, into));
  }

  override write(offset: number, data: Uint8Array, options?: WriteOptions): Promise<void> {
    return this.pass('write', this.marked(options), () => this.below.write(offset, data, options));
  }

  override writeZeroes(offset: number, length: number, options?: WriteZeroesOptions): Promise<void> {
    return this.pass('write-zeroes', this.marked(options), () => this.below.writeZeroes(offset, length, options));
  }

  override trim(offset: number, length: number, options?: WriteOptions): Promise<void> {
    return this.pass('trim', this.marked(options), () => this.below.trim(offset, length, options));
  }

  override flush(): Promise<void> {
    return this.below.flush();
  }

  override blockStatus(offset: number, length: number): Promise<Extent[]> {
    return this.pass('block-status', false, () => this.below.blockStatus(offset, length));
  }

  /** Block status for the pair's channel (no request mark fits it): straight below the gate. */
  channelBlockStatus(offset: number, length: number): Promise<Extent[]> {
    return this.below.blockStatus(offset, length);
  }

  detach(): void {
    this.active = false;
  }

  get attached(): boolean {
    return this.active;
  }

  private marked(options: WriteOptions | WriteZeroesOptions | undefined): boolean {
    return (options as Marked | undefined)?.[CHANNEL] === this.volume;
  }

  private pass<T>(what: string, channel: boolean, op: () => Promise<T>): Promise<T> {
    if (this.active && !channel) {
      return Promise.reject(
        new LunrigError('PPRC_SECONDARY_NOT_ACCESSIBLE', `${what}: volume '${this.volume}' is a PPRC secondary; terminate the pair to use it`, { volume: this.volume }),
      );
    }
    return op();
  }
}
