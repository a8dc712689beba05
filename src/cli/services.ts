/**
 * What `lunrig serve` runs on top of the pool. Each service is started in
 * list order and stopped in reverse: the NBD server stops first, so its
 * in-flight requests finish before the control API goes and the pool closes
 * (which flushes every LUN).
 */
import { createControlServer } from '../control/server.js';
import { NbdServer } from '../nbd/server.js';
import { PoolExports, exportUris, type NbdEndpoints } from '../nbd/pool-exports.js';
import type { NbdServerTlsOptions } from '../nbd/tls-options.js';
import type { FlashCopyManager } from '../copy/flashcopy/index.js';
import { flashcopyRoutes } from '../control/routes-flashcopy.js';
import type { Pool } from '../store/pool.js';

export interface ServiceOptions {
  control: { host: string; port: number };
  /** NBD listeners: TCP unless `tcp` is absent (`--nbd none`), plus a unix socket when `socket` is given. */
  nbd: NbdEndpoints;
  /** The array's FlashCopy manager, whose endpoints the control API serves. */
  flashcopy: FlashCopyManager;
  /** NBD TLS; off when absent. */
  nbdTls?: NbdServerTlsOptions | undefined;
  /** Where the NBD server actually listens (port 0 resolved); empty until it does. Read lazily by the control API. */
  nbdEndpoints(): NbdEndpoints;
}

export interface RunningService {
  name: string;
  /** Where clients reach it, e.g. http://127.0.0.1:10810 or nbd://127.0.0.1:10809; none when it listens nowhere. */
  urls: readonly string[];
  /** Set by the NBD service: its bound listeners. */
  nbd?: NbdEndpoints;
  stop(): Promise<void>;
}

export interface Service {
  name: string;
  start(pool: Pool, options: ServiceOptions): Promise<RunningService>;
}

export const controlApiService: Service = {
  name: 'control',
  async start(pool, options) {
    // Errors leave as JSON bodies; fastify logs only what the client was not told (5xx).
    const server = await createControlServer(pool, { ...options.control, nbd: options.nbdEndpoints, routes: [flashcopyRoutes(() => options.flashcopy)], logger: { level: 'error', stream: process.stderr } });
    return { name: 'control', urls: [server.url], stop: () => server.close() };
  },
};

/** Every LUN of the pool as an NBD export of the same name (src/nbd/pool-exports.ts). */
export const nbdService: Service = {
  name: 'nbd',
  async start(pool, options) {
    const { tcp, socket } = options.nbd;
    if (!tcp && socket === undefined) return { name: 'nbd', urls: [], nbd: {}, stop: async () => undefined };
    const server = new NbdServer({ exports: new PoolExports(pool), ...(options.nbdTls && { tls: options.nbdTls }) });
    try {
      const bound = await server.listen({ ...tcp, ...(socket !== undefined && { path: socket }) });
      const nbd: NbdEndpoints = {
        ...(bound.tcp && { tcp: { host: bound.tcp.address, port: bound.tcp.port } }),
        ...(bound.path !== undefined && { socket: bound.path }),
      };
      // The service's own URLs name the empty (default) export; each LUN's URIs name the LUN.
      return { name: 'nbd', urls: exportUris(nbd, ''), nbd, stop: () => server.close() };
    } catch (err) {
      await server.close();
      throw err;
    }
  },
};

export const SERVICES: readonly Service[] = [controlApiService, nbdService];
