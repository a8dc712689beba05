/**
 * LUN masking and reservations on an NBD listener: an ExportProvider over
 * another (the pool's LUNs, a target port's) that knows who asks.
 *
 * The requesting host is the owner of the session's verified TLS identity,
 * or the host named by an export-name prefix `HOST/LUN` (an `nbd-name`
 * initiator). Both given and different: refused. With masking on, a client
 * opens (GO / INFO / EXPORT_NAME) and LISTs only the LUNs mapped to its
 * host; LIST has no name to carry a prefix, so it shows a TLS-identified
 * host's LUNs only. Unmapping a LUN ends its open sessions' access at the
 * next request (NBD_ESHUTDOWN), as a removed export does.
 *
 * Every entry carries an access check: the LU's reservations for the nexus
 * (host, this port), so RESERVATION_CONFLICT (EPERM) reaches every port of
 * the LU alike while the data path (fast path included) stays as it was.
 */
import type { ExportEntry, ExportProvider, ExportRequester } from '../nbd/export-provider.js';
import type { Volume } from '../volume/volume.js';
import type { HostRegistry } from './host-registry.js';
import type { ReservationTable } from './reservation-table.js';

export interface MaskedExportsOptions {
  hosts: HostRegistry;
  reservations: ReservationTable;
  /** This listener's target-port name (the T of the I_T nexus). */
  port: string;
}

/** `host1/lun0` -> { host: 'host1', lun: 'lun0' }; a name without '/' has no host part. */
export function splitExportName(name: string): { host: string | undefined; lun: string } {
  const i = name.indexOf('/');
  return i < 0 ? { host: undefined, lun: name } : { host: name.slice(0, i), lun: name.slice(i + 1) };
}

export class MaskedExports implements ExportProvider {
  private readonly cache = new WeakMap<Volume, Map<string, ExportEntry>>();
  /** The LU unique id behind each entry, read once (identity() is not for every request). */
  private readonly lus = new WeakMap<ExportEntry, string>();

  constructor(
    private readonly inner: ExportProvider,
    private readonly o: MaskedExportsOptions,
  ) {}

  get(name: string, requester?: ExportRequester): ExportEntry | undefined {
    const { host: claim, lun } = splitExportName(name);
    const tlsHost = this.o.hosts.byPeer(requester?.peer);
    let host = tlsHost;
    if (claim !== undefined) {
      const claimed = this.o.hosts.byClaim(claim);
      if (claimed === undefined || (tlsHost !== undefined && tlsHost !== claimed)) return undefined;
      host = claimed;
    }
    if (!this.o.hosts.canSee(host, lun)) return undefined;
    const inner = this.inner.get(lun, requester);
    if (!inner) return undefined;
    const entry = this.wrap(inner, name, host);
    // Only the LU that was mapped, not a later LUN of the same name.
    return this.o.hosts.canSee(host, lun, this.lus.get(entry)) ? entry : undefined;
  }

  list(requester?: ExportRequester): ExportEntry[] {
    const host = this.o.hosts.byPeer(requester?.peer);
    return this.inner
      .list(requester)
      .map((e) => this.wrap(e, e.name, host))
      .filter((e) => this.o.hosts.canSee(host, e.name, this.lus.get(e)));
  }

  /** One entry per (volume, name, host), so a session's entry stays the same object while nothing changes. */
  private wrap(inner: ExportEntry, name: string, host: string | undefined): ExportEntry {
    let byKey = this.cache.get(inner.volume);
    if (!byKey) {
      byKey = new Map();
      this.cache.set(inner.volume, byKey);
    }
    const key = `${name}\n${host ?? ''}`;
    let entry = byKey.get(key);
    if (!entry) {
      const lu = inner.volume.identity().uniqueId;
      const nexus = { host: host ?? '', port: this.o.port };
      const table = this.o.reservations;
      const below = inner.access;
      entry = {
        ...inner,
        name,
        access: (kind) => below?.(kind) ?? table.check(lu, nexus, kind),
      };
      byKey.set(key, entry);
      this.lus.set(entry, lu);
    }
    return entry;
  }
}
