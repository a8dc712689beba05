/**
 * A path to a target port over NBD: an NbdClient that reconnects. NbdClient
 * is one connection for life; a path outlives connections (a port goes down
 * and comes back, a hung request is reset), so this Volume opens a new client
 * whenever the last one is gone. A reconnect that reaches a different LU is
 * refused: the path must keep leading to the identity it was grouped by.
 */
import { LunrigError } from '../errors.js';
import { NbdClient, type NbdClientOptions, type NbdTarget } from '../nbd/client.js';
import type { Extent, Volume, VolumeIdentity, WriteOptions, WriteZeroesOptions } from '../volume/volume.js';
import type { NexusCommands } from '../hosts/reservation-types.js';
import type { PathTransport } from './transport.js';

export interface NbdPathOptions {
  /** This path's I_T nexus commands, out of band (NBD carries no reservations): a ReservationTable handle or the control API. */
  reservations?: NexusCommands;
}

export class NbdPathVolume implements Volume, PathTransport {
  private client: NbdClient | undefined;
  private connecting: Promise<NbdClient> | undefined;
  private readonly ident: VolumeIdentity;
  private readonly _size: number;
  private readonly _readOnly: boolean;
  private closed = false;
  readonly reservations: NexusCommands | undefined;

  private constructor(
    readonly target: NbdTarget,
    private readonly options: NbdClientOptions,
    first: NbdClient,
    path: NbdPathOptions,
  ) {
    this.reservations = path.reservations;
    this.client = first;
    this.ident = first.identity();
    this._size = first.size;
    this._readOnly = first.readOnly;
  }

  /** Connect once (it must succeed: the path's identity comes from it). */
  static async open(target: NbdTarget, options: NbdClientOptions, path: NbdPathOptions = {}): Promise<NbdPathVolume> {
    return new NbdPathVolume(target, options, await NbdClient.connect(target, options), path);
  }

  get size(): number {
    return this._size;
  }

  get readOnly(): boolean {
    return this._readOnly;
  }

  identity(): VolumeIdentity {
    return { ...this.ident };
  }

  /** True while a connection is open. */
  get connected(): boolean {
    return this.client !== undefined && !this.client.closed;
  }

  async read(offset: number, length: number, into?: Uint8Array): Promise<Uint8Array> {
    return (await this.connection()).read(offset, length, into);
  }

  async write(offset: number, data: Uint8Array, options?: WriteOptions): Promise<void> {
    return (await this.connection()).write(offset, data, options);
  }

  async writeZeroes(offset: number, length: number, options?: WriteZeroesOptions): Promise<void> {
    return (await this.connection()).writeZeroes(offset, length, options);
  }

  async trim(offset: number, length: number, options?: WriteOptions): Promise<void> {
    return (await this.connection()).trim(offset, length, options);
  }

  async flush(): Promise<void> {
    return (await this.connection()).flush();
  }

  async blockStatus(offset: number, length: number): Promise<Extent[]> {
    return (await this.connection()).blockStatus(offset, length);
  }

  /** Identification: a working handshake to the same LU. */
  async inquiry(): Promise<VolumeIdentity> {
    return (await this.connection()).identity();
  }

  /** Drop the connection now (after a timeout): requests on it fail, the next one reconnects. */
  reset(): void {
    this.client?.destroy();
    this.client = undefined;
  }

  async close(): Promise<void> {
    this.closed = true;
    const c = this.client;
    this.client = undefined;
    await c?.close().catch(() => undefined);
  }

  private connection(): Promise<NbdClient> {
    if (this.closed) return Promise.reject(new LunrigError('CLOSED', 'NBD path is closed'));
    if (this.client && !this.client.closed) return Promise.resolve(this.client);
    this.connecting ??= this.reconnect().finally(() => (this.connecting = undefined));
    return this.connecting;
  }

  private async reconnect(): Promise<NbdClient> {
    this.client = undefined;
    let c: NbdClient;
    try {
      c = await NbdClient.connect(this.target, this.options);
    } catch (err) {
      // Whatever the handshake said (refused, reset, no such export), the path cannot reach the LU.
      throw new LunrigError('UNREACHABLE', `NBD path to ${describe(this.target)}: ${(err as Error).message}`, { target: describe(this.target) }, { cause: err });
    }
    if (c.identity().uniqueId !== this.ident.uniqueId) {
      c.destroy();
      const where = describe(this.target);
      throw new LunrigError('UNREACHABLE', `NBD path to ${where} now leads to a different LU (${c.identity().uniqueId})`, { target: where });
    }
    if (this.closed) {
      c.destroy();
      throw new LunrigError('CLOSED', 'NBD path is closed');
    }
    this.client = c;
    return c;
  }
}

function describe(t: NbdTarget): string {
  return 'path' in t ? `unix:${t.path}` : `${t.host}:${t.port ?? 10809}`;
}
