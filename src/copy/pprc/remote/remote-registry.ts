/**
 * The remote ESSs a primary knows (other `lunrig serve` processes holding its
 * secondaries): where their control API and NBD listener are, and how to
 * secure the link connections. Persisted as `<pool>/pprc/remotes.json`
 * through store/persist.ts so a restarted primary reconnects to the same
 * secondaries; TLS is stored as paths to credential files, never as key
 * material. Each entry is handed to the PPRC manager as a RemoteSecondaryEss.
 */
import path from 'node:path';
import { mkdir } from 'node:fs/promises';
import { LunrigError } from '../../../errors.js';
import type { NbdTarget } from '../../../nbd/client.js';
import type { NbdClientTlsOptions } from '../../../nbd/tls-client.js';
import { loadPskFile, loadX509Directory } from '../../../nbd/tls-files.js';
import { readJsonFile, writeJsonAtomic } from '../../../store/persist.js';
import { RemoteSecondaryEss, describeTarget } from './remote-secondary.js';

export const REMOTES_FILE = path.join('pprc', 'remotes.json');

/** How the link connections to a remote ESS are secured (credential files, read at connect time). */
export interface RemoteTlsConfig {
  mode?: 'require' | 'optional';
  /** X.509 directory in the qemu/libnbd client layout: ca-cert.pem [client-cert.pem client-key.pem]. */
  certificates?: string;
  /** Name the server certificate must carry. */
  servername?: string;
  /** PSK file (identity:hexkey lines) and the identity to use (default: the first in the file). */
  psk?: string;
  pskIdentity?: string;
}

export interface RemoteEssRecord {
  serial: string;
  controlUrl: string;
  nbd: NbdTarget;
  tls?: RemoteTlsConfig;
  addedAt: string;
}

export interface AddRemoteRequest {
  controlUrl: string;
  /** 'HOST:PORT', a unix socket path (starting with /), or an object. */
  nbd: string | NbdTarget;
  tls?: RemoteTlsConfig;
  /** Expected serial; refused when the server has another. */
  serial?: string;
}

export interface RemoteEssInfo extends RemoteEssRecord {
  nbdEndpoint: string;
  openLinks: number;
}

interface Sink {
  addEss(ess: RemoteSecondaryEss): unknown;
}

export class RemoteEssRegistry {
  private readonly remotes = new Map<string, { record: RemoteEssRecord; ess: RemoteSecondaryEss }>();

  private constructor(
    private readonly file: string,
    private readonly sink: () => Sink,
  ) {}

  /** Load `<poolDir>/pprc/remotes.json` and hand every remote to the manager (no network: the secondaries may be down). */
  static async open(poolDir: string, sink: () => Sink): Promise<RemoteEssRegistry> {
    const registry = new RemoteEssRegistry(path.join(poolDir, REMOTES_FILE), sink);
    const stored = (await readJsonFile(registry.file)) as { remotes?: RemoteEssRecord[] } | undefined;
    for (const record of stored?.remotes ?? []) {
      const ess = new RemoteSecondaryEss({ serial: record.serial, controlUrl: record.controlUrl, nbd: record.nbd, ...(record.tls && { tls: await loadTls(record.tls) }) });
      registry.remotes.set(record.serial, { record, ess });
      sink().addEss(ess);
    }
    return registry;
  }

  /** Register (or update) a remote ESS: asks it for its serial, hands it to the manager, persists. */
  async add(request: AddRemoteRequest): Promise<RemoteEssInfo> {
    const nbd = typeof request.nbd === 'string' ? parseNbdEndpoint(request.nbd) : request.nbd;
    const tls = request.tls ? await loadTls(request.tls) : undefined;
    const ess = await RemoteSecondaryEss.connect({ controlUrl: request.controlUrl, nbd, ...(tls && { tls }), ...(request.serial !== undefined && { serial: request.serial }) });
    const previous = this.remotes.get(ess.serial);
    const record: RemoteEssRecord = { serial: ess.serial, controlUrl: ess.controlUrl, nbd, ...(request.tls && { tls: request.tls }), addedAt: previous?.record.addedAt ?? new Date().toISOString() };
    // Known already: re-point it, so the pairs' links reconnect to the new endpoints.
    if (previous) previous.ess.retarget({ controlUrl: ess.controlUrl, nbd, ...(tls && { tls }) });
    else this.sink().addEss(ess);
    const kept = previous?.ess ?? ess;
    this.remotes.set(ess.serial, { record, ess: kept });
    await this.persist();
    return info(record, kept);
  }

  list(): RemoteEssInfo[] {
    return [...this.remotes.values()].map(({ record, ess }) => info(record, ess));
  }

  get(serial: string): RemoteSecondaryEss | undefined {
    return this.remotes.get(serial)?.ess;
  }

  async close(): Promise<void> {
    await Promise.all([...this.remotes.values()].map(({ ess }) => ess.close().catch(() => undefined)));
  }

  private async persist(): Promise<void> {
    await mkdir(path.dirname(this.file), { recursive: true });
    await writeJsonAtomic(this.file, { remotes: [...this.remotes.values()].map((r) => r.record) });
  }
}

function info(record: RemoteEssRecord, ess: RemoteSecondaryEss): RemoteEssInfo {
  return { ...record, nbdEndpoint: describeTarget(record.nbd), openLinks: ess.openChannels };
}

/** 'HOST:PORT', '[v6]:PORT', or a unix socket path. */
export function parseNbdEndpoint(text: string): NbdTarget {
  if (text.startsWith('/') || text.startsWith('unix:')) return { path: text.replace(/^unix:/, '') };
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d+)$/.exec(text);
  if (!m) throw new LunrigError('INVALID_ARGUMENT', `an NBD endpoint is HOST:PORT or a unix socket path, got '${text}'`);
  const port = Number(m[3]);
  if (port < 1 || port > 65535) throw new LunrigError('INVALID_ARGUMENT', `port out of range in '${text}'`);
  return { host: (m[1] ?? m[2])!, port };
}

export async function loadTls(config: RemoteTlsConfig): Promise<NbdClientTlsOptions> {
  const mode = config.mode ?? 'require';
  if ((config.certificates === undefined) === (config.psk === undefined)) throw new LunrigError('INVALID_CONFIG', 'remote ESS TLS needs exactly one of certificates (a directory) or psk (a file)');
  if (config.certificates !== undefined) {
    const files = await loadX509Directory(config.certificates, 'client');
    return { mode, x509: { ca: files.ca, ...(files.cert && files.key && { cert: files.cert, key: files.key }), ...(config.servername !== undefined && { servername: config.servername }) } };
  }
  const keys = await loadPskFile(config.psk!);
  const identity = config.pskIdentity ?? [...keys.keys()][0]!;
  const key = keys.get(identity);
  if (!key) throw new LunrigError('INVALID_CONFIG', `${config.psk}: no key for identity '${identity}'`);
  return { mode, psk: { identity, key } };
}
