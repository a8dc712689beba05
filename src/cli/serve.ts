/**
 * `lunrig serve` as a function: open (or create) the pool, provision the
 * default LUNs if it is empty, start the services, and stop it all cleanly.
 * Exported for the library and tests; the CLI command only adds printing and
 * signal handling.
 */
import { DEFAULT_CONTROL_HOST, DEFAULT_CONTROL_PORT } from '../control/defaults.js';
import type { NbdServerTlsOptions } from '../nbd/tls-options.js';
import { DEFAULT_NBD_ENDPOINTS, PoolExports, describeExports, type NbdEndpoints, type PoolExportInfo } from '../nbd/pool-exports.js';
import { FlashCopyManager, type CowDurability } from '../copy/flashcopy/index.js';
import { TaskManager, defaultOperationKinds, withPprcKinds } from '../copy/tasks/index.js';
import { PprcManager, flashCopyHooks, type PprcManagerOptions } from '../copy/pprc/manager.js';
import { PprcService } from '../copy/pprc/remote/serving.js';
import { DEFAULT_HEARTBEAT_TIMEOUT_MS } from '../copy/pprc/remote/link-exports.js';
import { Pool, type CreateLunRequest, type LunInfo, type PoolInfo } from '../store/pool.js';
import type { EngineKind } from '../store/open-engine.js';
import { VERSION } from '../version.js';
import { HostRegistry } from '../hosts/host-registry.js';
import { forgetDeletedLuns } from '../hosts/forget-deleted-luns.js';
import { ReservationTable } from '../hosts/reservation-table.js';
import { PortManager } from '../multipath/port-manager.js';
import { DEFAULT_DATA_DIR, DEFAULT_LUNS } from './defaults.js';
import { SERVICES, type RunningService, type Service } from './services.js';

export { DEFAULT_DATA_DIR } from './defaults.js';

export interface ServeOptions {
  /** Pool directory, created if missing (default ./lunrig-data). */
  dataDir?: string;
  /** Where the control API listens (default 127.0.0.1:10810; port 0 picks a free one). */
  control?: { host?: string; port?: number };
  /**
   * Where the NBD server listens (default TCP 127.0.0.1:10809 only). Given,
   * it is taken as is: no `tcp` means no TCP listener, no `socket` no unix
   * socket, neither no NBD server.
   */
  nbd?: NbdEndpoints;
  /** NBD TLS (STARTTLS with X.509 and/or PSK); off when absent. */
  nbdTls?: NbdServerTlsOptions;
  /** Serial for a new pool; checked against an existing one. */
  serial?: string;
  io?: EngineKind;
  /** LUNs to create when the pool is empty (default DEFAULT_LUNS; [] for none). */
  defaultLuns?: readonly CreateLunRequest[];
  /** FlashCopy copy-on-write durability (src/copy/flashcopy/README.md); default 'process'. */
  cowDurability?: CowDurability;
  /** Services to run (default SERVICES). */
  services?: readonly Service[];
  /** PPRC: the manager's options (ack timeout, track size, fsync on ack, profile) and the secondary's link heartbeat. */
  pprc?: Pick<PprcManagerOptions, 'remoteAckTimeoutMs' | 'trackSize' | 'fsyncOnAck' | 'failedWritePolicy' | 'profile' | 'durability'> & { heartbeatTimeoutMs?: number };
}

export interface RunningServer {
  pool: Pool;
  /** The array's FlashCopy relationships. */
  flashcopy: FlashCopyManager;
  /** The array's PPRC: links, paths, pairs (both roles). */
  pprc: PprcManager;
  /** PPRC's remote ESSs and the link exports / heartbeat of the secondaries this array holds. */
  pprcService: PprcService;
  /** Copy Services tasks and task groups. */
  tasks: TaskManager;
  /** Hosts and LUN masking (hosts.json in the pool directory). */
  hosts: HostRegistry;
  /** SCSI-2 and persistent reservations of every LUN (APTPL ones in reservations.json). */
  reservations: ReservationTable;
  /** Extra target ports, their faults, fate groups and fault timelines. */
  ports: PortManager;
  /** The control API's URL. */
  url: string;
  /** One entry per URL: the NBD server may listen on TCP and a unix socket. */
  services: ReadonlyArray<{ name: string; url: string }>;
  /** Where the NBD server listens (empty when it is off). */
  nbd: NbdEndpoints;
  /** The LUNs this start created because the pool was empty. */
  created: LunInfo[];
  /** Stop the services in reverse order, then close the pool (which flushes). Idempotent. */
  stop(): Promise<void>;
}

export async function startServer(options: ServeOptions = {}): Promise<RunningServer> {
  const pool = await Pool.open({ dir: options.dataDir ?? DEFAULT_DATA_DIR, serial: options.serial, engine: options.io });
  const running: RunningService[] = [];
  let flashcopy: FlashCopyManager | undefined;
  let tasks: TaskManager | undefined;
  let pprc: PprcManager | undefined;
  let pprcService: PprcService | undefined;
  let ports: PortManager | undefined;
  const stopAll = async (): Promise<void> => {
    const errors: unknown[] = [];
    for (const service of running.splice(0).reverse()) await service.stop().catch((err: unknown) => errors.push(err));
    await ports?.close().catch((err: unknown) => errors.push(err));
    // Copy services first: background copies stop and bitmaps are checkpointed before the LUNs close.
    await tasks?.close().catch((err: unknown) => errors.push(err));
    // PPRC over FlashCopy (it opened after it): link exports and remote links first, then mirrors and bitmaps.
    await pprcService?.close().catch((err: unknown) => errors.push(err));
    await pprc?.close().catch((err: unknown) => errors.push(err));
    await flashcopy?.close().catch((err: unknown) => errors.push(err));
    await pool.close().catch((err: unknown) => errors.push(err));
    if (errors.length > 0) throw errors[0];
  };
  try {
    const created: LunInfo[] = [];
    if (pool.listLuns().length === 0) {
      for (const lun of options.defaultLuns ?? DEFAULT_LUNS) created.push(await pool.createLun(lun));
    }
    // Restores persisted relationships (their layers go back on the LUNs) and resumes background copies.
    // F-P5: a LUN is online while a host has its export open (NBD sessions on it) or holds a reservation on it.
    let reservationsOf: ((lun: string) => boolean) | undefined;
    const isOnline = (lun: string): boolean => running.some((s) => (s.sessionsOn?.(lun) ?? 0) > 0) || (reservationsOf?.(lun) ?? false);
    flashcopy = await FlashCopyManager.open(pool, { isOnline, ...flashCopyHooks(() => pprc), ...(options.cowDurability && { cowDurability: options.cowDurability }) });
    // PPRC after FlashCopy: pairs come back (suspended after a restart), secondaries keep their gates.
    const { heartbeatTimeoutMs, ...pprcOptions } = options.pprc ?? {};
    // Heartbeat on both roles: the primary pings its mirroring pairs over their links; a secondary whose primary stays silent suspends (X6).
    pprc = await PprcManager.open(pool, { ...pprcOptions, flashcopy, isOnline, heartbeat: { timeoutMs: heartbeatTimeoutMs ?? DEFAULT_HEARTBEAT_TIMEOUT_MS } });
    // Tasks run against the copy services (FlashCopy, PPRC and path kinds); runs a previous instance left unreported are marked lost (FC-25).
    tasks = await TaskManager.open(pool.dir, { context: { flashcopy, pprc }, kinds: withPprcKinds(defaultOperationKinds()) });
    const secondarySide = pprc.asSecondary();
    pprcService = await PprcService.open(pool, pprc, {
      ...(heartbeatTimeoutMs !== undefined && { heartbeatTimeoutMs }),
      bound: () => secondarySide.secondaries(),
    });
    const control = { host: options.control?.host ?? DEFAULT_CONTROL_HOST, port: options.control?.port ?? DEFAULT_CONTROL_PORT };
    const nbd = options.nbd ?? DEFAULT_NBD_ENDPOINTS;
    const nbdEndpoints = (): NbdEndpoints => running.find((s) => s.nbd)?.nbd ?? {};
    // Hosts, masking and reservations are the array's; extra target ports serve through them too.
    const access = { hosts: await HostRegistry.open(pool.info().dir), reservations: await ReservationTable.open(pool.info().dir) };
    forgetDeletedLuns(pool, access);
    reservationsOf = (lun) => {
      const status = access.reservations.status(pool.lunInfo(lun).uniqueId);
      return status.reservation !== undefined || status.scsi2 !== undefined;
    };
    ports = new PortManager({ source: new PoolExports(pool), access });
    for (const service of options.services ?? SERVICES) running.push(await service.start(pool, { control, nbd, nbdTls: options.nbdTls, nbdEndpoints, flashcopy, tasks, pprc: pprcService.hooks(), access, ports }));
    const url = running.find((s) => s.name === 'control')?.urls[0] ?? '';
    let stopping: Promise<void> | undefined;
    return {
      pool,
      flashcopy,
      pprc,
      pprcService,
      tasks,
      hosts: access.hosts,
      reservations: access.reservations,
      ports,
      url,
      services: running.flatMap(({ name, urls }) => urls.map((u) => ({ name, url: u }))),
      nbd: nbdEndpoints(),
      created,
      stop: () => (stopping ??= stopAll()),
    };
  } catch (err) {
    await stopAll().catch(() => undefined);
    throw err;
  }
}

/** What `serve` prints, human or JSON. */
export interface ServeSummary {
  version: string;
  pool: Pick<PoolInfo, 'dir' | 'serial' | 'poolId'>;
  control: string;
  services: Array<{ name: string; url: string }>;
  luns: LunInfo[];
  /** Every LUN as an NBD export, with the URIs that reach it. */
  exports: PoolExportInfo[];
}

/** What `serve` prints (human or --json) once everything listens. */
export function summarize(server: RunningServer): ServeSummary {
  const { dir, serial, poolId } = server.pool.info();
  const luns = server.pool.listLuns();
  return { version: VERSION, pool: { dir, serial, poolId }, control: server.url, services: [...server.services], luns, exports: describeExports(luns, server.nbd) };
}
