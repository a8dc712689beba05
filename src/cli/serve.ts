/**
 * `lunrig serve` as a function: open (or create) the pool, provision the
 * default LUNs if it is empty, start the services, and stop it all cleanly.
 * Exported for the library and tests; the CLI command only adds printing and
 * signal handling.
 */
import { DEFAULT_CONTROL_HOST, DEFAULT_CONTROL_PORT } from '../control/defaults.js';
import type { NbdServerTlsOptions } from '../nbd/tls-options.js';
import { DEFAULT_NBD_ENDPOINTS, describeExports, type NbdEndpoints, type PoolExportInfo } from '../nbd/pool-exports.js';
import { FlashCopyManager } from '../copy/flashcopy/index.js';
import { Pool, type CreateLunRequest, type LunInfo, type PoolInfo } from '../store/pool.js';
import type { EngineKind } from '../store/open-engine.js';
import { VERSION } from '../version.js';
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
  /** Services to run (default SERVICES). */
  services?: readonly Service[];
}

export interface RunningServer {
  pool: Pool;
  /** The array's FlashCopy relationships. */
  flashcopy: FlashCopyManager;
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
  const stopAll = async (): Promise<void> => {
    const errors: unknown[] = [];
    for (const service of running.splice(0).reverse()) await service.stop().catch((err: unknown) => errors.push(err));
    // Copy services first: background copies stop and bitmaps are checkpointed before the LUNs close.
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
    flashcopy = await FlashCopyManager.open(pool);
    const control = { host: options.control?.host ?? DEFAULT_CONTROL_HOST, port: options.control?.port ?? DEFAULT_CONTROL_PORT };
    const nbd = options.nbd ?? DEFAULT_NBD_ENDPOINTS;
    const nbdEndpoints = (): NbdEndpoints => running.find((s) => s.nbd)?.nbd ?? {};
    for (const service of options.services ?? SERVICES) running.push(await service.start(pool, { control, nbd, nbdTls: options.nbdTls, nbdEndpoints, flashcopy }));
    const url = running.find((s) => s.name === 'control')?.urls[0] ?? '';
    let stopping: Promise<void> | undefined;
    return {
      pool,
      flashcopy,
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
