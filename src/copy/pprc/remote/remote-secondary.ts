/**
 * A SecondaryEss on another `lunrig serve` (spec/copy-services.md §3.2, §3.4):
 * the control calls go to that server's HTTP control API
 * (/v1/pprc/secondary/..., served by routes-pprc.ts over its manager's
 * asSecondary()), and every channel is its own NBD client connection to that
 * server's NBD listener, one per physical link, on the hidden export
 * `.pprc/<pairId>/<volume>` that only writes while the volume is bound to the
 * pair (link-exports.ts). Host exports of the bound volume refuse I/O there.
 *
 * Nothing is cached: the remote ESS is the source of truth for its secondary
 * roles. An unreachable ESS surfaces as UNREACHABLE from the control calls and
 * from the channels, which the primary treats as "cannot update the secondary".
 */
import { ControlClient } from '../../../control/client.js';
import { LunrigError } from '../../../errors.js';
import { NbdClient, type NbdTarget } from '../../../nbd/client.js';
import type { NbdClientTlsOptions } from '../../../nbd/tls-client.js';
import type { Extent, Volume, VolumeIdentity, WriteOptions, WriteZeroesOptions } from '../../../volume/volume.js';
import type { SecondaryBinding, SecondaryEss, SecondaryStatus, SecondaryVolumeFacts } from '../secondary-ess.js';

/** The hidden NBD export a link connection of `pairId` writes `volume` through. Never listed by NBD_OPT_LIST. */
export function linkExportName(pairId: string, volume: string): string {
  return `${LINK_EXPORT_PREFIX}${encodeURIComponent(pairId)}/${volume}`;
}

export const LINK_EXPORT_PREFIX = '.pprc/';

export interface RemoteSecondaryOptions {
  /** 5-character serial of the remote ESS (its pool serial). */
  serial: string;
  /** Its control API, http://HOST:PORT. */
  controlUrl: string;
  /** Its NBD listener. */
  nbd: NbdTarget;
  /** NBD TLS for the link connections. */
  tls?: NbdClientTlsOptions;
  /** Control request time limit (default 10 s). */
  controlTimeoutMs?: number;
  /** NBD connect + handshake time limit per link (default 5 s). */
  connectTimeoutMs?: number;
  /** Requests on the wire per link connection (default 64). */
  maxInFlight?: number;
}

export class RemoteSecondaryEss implements SecondaryEss {
  readonly serial: string;
  private control: ControlClient;
  private options: RemoteSecondaryOptions;
  private readonly links = new Set<RemoteLink>();
  private closed = false;

  constructor(options: RemoteSecondaryOptions) {
    this.serial = options.serial;
    this.options = options;
    this.control = new ControlClient(options.controlUrl, { timeoutMs: options.controlTimeoutMs ?? 10_000 });
  }

  get controlUrl(): string {
    return this.control.baseUrl;
  }

  get nbd(): NbdTarget {
    return this.options.nbd;
  }

  /**
   * The ESS moved (restarted elsewhere, new ports): later control calls and
   * link connections go to the new endpoints; open links reconnect there
   * once their connection drops.
   */
  retarget(endpoints: Pick<RemoteSecondaryOptions, 'controlUrl' | 'nbd' | 'tls'>): void {
    const { tls: _old, ...rest } = this.options;
    this.options = { ...rest, controlUrl: endpoints.controlUrl, nbd: endpoints.nbd, ...(endpoints.tls && { tls: endpoints.tls }) };
    this.control = new ControlClient(endpoints.controlUrl, { timeoutMs: this.options.controlTimeoutMs ?? 10_000 });
  }

  /** Ask the server at `controlUrl` for its serial, then build the ESS. */
  static async connect(options: Omit<RemoteSecondaryOptions, 'serial'> & { serial?: string }): Promise<RemoteSecondaryEss> {
    const system = await new ControlClient(options.controlUrl, { timeoutMs: options.controlTimeoutMs ?? 10_000 }).system();
    const serial = system.pool.serial;
    if (options.serial !== undefined && options.serial !== serial) {
      throw new LunrigError('INVALID_ARGUMENT', `the server at ${options.controlUrl} is ESS ${serial}, not ${options.serial}`, { expected: options.serial, actual: serial });
    }
    return new RemoteSecondaryEss({ ...options, serial });
  }

  /** How many link connections are open. */
  get openChannels(): number {
    return [...this.links].filter((l) => l.connected).length;
  }

  describe(volume: string): Promise<SecondaryVolumeFacts> {
    return this.call('GET', `/volumes/${encodeURIComponent(volume)}`);
  }

  async bind(volume: string, binding: SecondaryBinding): Promise<void> {
    await this.call('PUT', `/volumes/${encodeURIComponent(volume)}/binding`, binding);
  }

  async setStatus(volume: string, pairId: string, status: SecondaryStatus): Promise<void> {
    await this.call('PUT', `/volumes/${encodeURIComponent(volume)}/status`, { pairId, ...status });
  }

  async unbind(volume: string, pairId: string): Promise<void> {
    await this.call('DELETE', `/volumes/${encodeURIComponent(volume)}/binding/${encodeURIComponent(pairId)}`);
  }

  async channel(volume: string, pairId: string, linkIndex: number): Promise<Volume> {
    const link = new RemoteLink(this, volume, pairId, linkIndex, await this.connect(volume, pairId, linkIndex));
    this.links.add(link);
    return link;
  }

  async closeChannel(channel: Volume): Promise<void> {
    if (!(channel instanceof RemoteLink) || !this.links.delete(channel)) return;
    await channel.close();
  }

  async close(): Promise<void> {
    this.closed = true;
    const all = [...this.links];
    this.links.clear();
    await Promise.all(all.map((l) => l.close()));
  }

  /** One NBD connection for a link: the remote opens its side (checking the binding), then we attach to the hidden export. */
  async connect(volume: string, pairId: string, linkIndex: number): Promise<NbdClient> {
    if (this.closed) throw new LunrigError('CLOSED', `remote ESS ${this.serial} is closed`);
    const { exportName } = await this.call<{ exportName: string }>('POST', '/channels', { volume, pairId, linkIndex });
    return NbdClient.connect(this.nbd, {
      exportName,
      connectTimeoutMs: this.options.connectTimeoutMs ?? 5_000,
      ...(this.options.maxInFlight !== undefined && { maxInFlight: this.options.maxInFlight }),
      ...(this.options.tls && { tls: this.options.tls }),
    }).catch((err: unknown) => {
      throw asUnreachable(err, `link ${linkIndex} to ESS ${this.serial} (${describeTarget(this.nbd)}) for pair ${pairId}`);
    });
  }

  private call<T>(method: string, path: string, body?: unknown): Promise<T> {
    return this.control.request<T>(method, `/v1/pprc/secondary${path}`, body);
  }
}

function asUnreachable(err: unknown, what: string): LunrigError {
  if (err instanceof LunrigError && err.code !== 'UNREACHABLE') return err;
  const message = err instanceof Error ? err.message : String(err);
  return new LunrigError('UNREACHABLE', `${what}: ${message}`, undefined, { cause: err });
}

export function describeTarget(target: NbdTarget): string {
  return 'path' in target ? `unix:${target.path}` : `${target.host}:${target.port ?? 10809}`;
}

/**
 * One physical link's data channel: an NBD connection to the hidden export.
 * A request that was on the wire when the connection broke fails (the primary
 * suspends the pair, W2); the next request after that connects again (links
 * come back, X11: the pair's state is the primary's business), so a resync
 * after a secondary restart does not need new channels.
 */
class RemoteLink implements Volume {
  private connecting: Promise<NbdClient> | undefined;
  private ended = false;

  constructor(
    private readonly ess: RemoteSecondaryEss,
    private readonly volume: string,
    private readonly pairId: string,
    private readonly linkIndex: number,
    private client: NbdClient,
  ) {}

  get connected(): boolean {
    return !this.client.closed;
  }

  get size(): number {
    return this.client.size;
  }

  get readOnly(): boolean {
    return false;
  }

  identity(): VolumeIdentity {
    return this.client.identity();
  }

  async read(offset: number, length: number, into?: Uint8Array): Promise<Uint8Array> {
    return (await this.live()).read(offset, length, into);
  }

  write(offset: number, data: Uint8Array, options?: WriteOptions): Promise<void> {
    // Connected (every mirrored write but the first after a break): straight to the client.
    if (!this.ended && !this.client.closed) return this.client.write(offset, data, options);
    return this.live().then((c) => c.write(offset, data, options));
  }

  async writeZeroes(offset: number, length: number, options?: WriteZeroesOptions): Promise<void> {
    return (await this.live()).writeZeroes(offset, length, options);
  }

  async trim(offset: number, length: number, options?: WriteOptions): Promise<void> {
    return (await this.live()).trim(offset, length, options);
  }

  async flush(): Promise<void> {
    return (await this.live()).flush();
  }

  async blockStatus(offset: number, length: number): Promise<Extent[]> {
    return (await this.live()).blockStatus(offset, length);
  }

  async close(): Promise<void> {
    this.ended = true;
    const pending = this.connecting;
    await this.client.close().catch(() => this.client.destroy());
    const late = await pending?.catch(() => undefined);
    if (late && late !== this.client) late.destroy();
  }

  private async live(): Promise<NbdClient> {
    if (this.ended) throw new LunrigError('CLOSED', `PPRC link ${this.linkIndex} of pair ${this.pairId} is closed`);
    if (!this.client.closed) return this.client;
    this.connecting ??= this.ess.connect(this.volume, this.pairId, this.linkIndex).finally(() => (this.connecting = undefined));
    const client = await this.connecting;
    if (this.ended) {
      client.destroy();
      throw new LunrigError('CLOSED', `PPRC link ${this.linkIndex} of pair ${this.pairId} is closed`);
    }
    this.client = client;
    return client;
  }
}
