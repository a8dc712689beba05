import { LunrigError } from '../errors.js';
import type { Volume } from '../volume/volume.js';
import type { TlsPeerIdentity } from './tls-peer.js';

/**
 * One NBD export: a name and the Volume behind it.
 *
 * CAN_MULTI_CONN is advertised unless `multiConn` is false. That is honest
 * when every connection to this export reaches the same Volume object and that
 * Volume's flush makes every write completed before it durable, whichever
 * connection issued it: a flush on one connection then covers writes completed
 * on all of them (spec/nbd.md §2.3, §9.5). Set `multiConn: false` for a Volume
 * that keeps per-caller caches.
 */
export interface ExportEntry {
  name: string;
  /** Sent as NBD_INFO_DESCRIPTION and in NBD_OPT_LIST; defaults to the volume's identity (see identity-description.ts). */
  description?: string;
  volume: Volume;
  /** Export read-only even when the volume is writable. */
  readOnly?: boolean;
  /** Advertise NBD_FLAG_CAN_MULTI_CONN (default true). */
  multiConn?: boolean;
  /**
   * Asked before every transmission request (fast path included): an error
   * refuses it (e.g. RESERVATION_CONFLICT for the session's host, see
   * src/hosts/masked-exports.ts); its code becomes the errno.
   */
  access?: (kind: 'read' | 'write') => Error | undefined;
}

/** Who is asking for an export: what the connection knows of its client (LUN masking keys on it). */
export interface ExportRequester {
  /** The verified TLS peer once STARTTLS succeeded. */
  peer?: TlsPeerIdentity | undefined;
}

/**
 * Where the server looks exports up. Consulted on every option and every
 * request, so exports can appear and disappear while the server runs: a
 * removed (or replaced) export fails later requests of its open connections
 * with NBD_ESHUTDOWN.
 */
export interface ExportProvider {
  get(name: string, requester?: ExportRequester): ExportEntry | undefined;
  list(requester?: ExportRequester): ExportEntry[];
}

/** A mutable ExportProvider backed by a Map: add and remove exports at runtime. */
export class ExportRegistry implements ExportProvider {
  private readonly entries = new Map<string, ExportEntry>();

  constructor(initial: Iterable<ExportEntry> = []) {
    for (const e of initial) this.add(e);
  }

  add(entry: ExportEntry): this {
    if (this.entries.has(entry.name)) throw new LunrigError('LUN_EXISTS', `export '${entry.name}' already exists`);
    this.entries.set(entry.name, entry);
    return this;
  }

  /** Remove an export; returns whether it existed. Open connections to it get NBD_ESHUTDOWN from then on. */
  remove(name: string): boolean {
    return this.entries.delete(name);
  }

  get(name: string): ExportEntry | undefined {
    return this.entries.get(name);
  }

  list(): ExportEntry[] {
    return [...this.entries.values()];
  }
}
