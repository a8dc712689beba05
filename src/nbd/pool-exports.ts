/**
 * The pool's LUNs as NBD exports: export name = LUN name, every LUN is an
 * export. Nothing is copied out of the pool; each lookup asks it, so
 *
 * - a created LUN is offered at once, a deleted one is gone at once (its open
 *   connections get NBD_ESHUTDOWN: the server checks on every request that the
 *   name still resolves to the same Volume object, and a re-created LUN of the
 *   same name is a new object);
 * - a grown LUN shows its new size to new connections (a connection keeps the
 *   size it negotiated, as the protocol requires);
 * - a read-only LUN exports READ_ONLY; a connection opened before the switch
 *   gets EPERM from the LUN itself.
 *
 * The description is left to the server's default, the LUN's identity token
 * (formatIdentityDescription), so NbdClient.identity() sees the real volume
 * id, unique id and serial.
 */
import type { LunInfo, Pool } from '../store/pool.js';
import type { Volume } from '../volume/volume.js';
import { NBD_DEFAULT_PORT } from './constants.js';
import type { ExportEntry, ExportProvider } from './export-provider.js';

export class PoolExports implements ExportProvider {
  // get() runs on every request: keep one entry per LUN's volume object instead of allocating.
  private readonly entries = new WeakMap<Volume, ExportEntry>();

  constructor(private readonly pool: Pick<Pool, 'volume' | 'listLuns'>) {}

  get(name: string): ExportEntry | undefined {
    let volume: Volume;
    try {
      // The host-facing stack, so copy-service layers (FlashCopy, PPRC) apply to NBD I/O.
      volume = this.pool.volume(name);
    } catch {
      return undefined; // no such LUN, or the pool is closing
    }
    let entry = this.entries.get(volume);
    if (!entry) {
      entry = { name, volume };
      this.entries.set(volume, entry);
    }
    return entry;
  }

  list(): ExportEntry[] {
    return this.pool.listLuns().flatMap((lun) => this.get(lun.name) ?? []);
  }
}

/** Where the NBD server listens; either may be absent (`--nbd none`, no `--nbd-socket`). */
export interface NbdEndpoints {
  tcp?: { host: string; port: number };
  socket?: string;
}

/** Where `lunrig serve` offers the exports unless told: TCP on loopback only (DESIGN.md: safe defaults). */
export const DEFAULT_NBD_ENDPOINTS = Object.freeze({ tcp: Object.freeze({ host: '127.0.0.1', port: NBD_DEFAULT_PORT }) });

/** The URIs (libnbd/qemu syntax) that reach `exportName`: TCP first, then the unix socket. */
export function exportUris(endpoints: NbdEndpoints, exportName: string): string[] {
  const name = encodeURIComponent(exportName);
  const uris: string[] = [];
  if (endpoints.tcp) {
    const { host, port } = endpoints.tcp;
    uris.push(`nbd://${host.includes(':') ? `[${host}]` : host}:${port}/${name}`);
  }
  if (endpoints.socket !== undefined) uris.push(`nbd+unix:///${name}?socket=${encodeURIComponent(endpoints.socket).replace(/%2F/g, '/')}`);
  return uris;
}

/** An export as `lunrig export list` and GET /v1/exports show it. */
export interface PoolExportInfo {
  name: string;
  size: number;
  readOnly: boolean;
  /** Empty when the NBD server is off. */
  uris: string[];
}

export function describeExports(luns: readonly LunInfo[], endpoints: NbdEndpoints): PoolExportInfo[] {
  return luns.map(({ name, size, readOnly }) => ({ name, size, readOnly, uris: exportUris(endpoints, name) }));
}
