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
import { taskRoutes } from '../control/routes-tasks.js';
import type { TaskManager } from '../copy/tasks/index.js';
import type { Pool } from '../store/pool.js';
import { hostRoutes, type HostsAccess } from '../control/routes-hosts.js';
import { multipathRoutes } from '../control/routes-multipath.js';
import { MaskedExports } from '../hosts/masked-exports.js';
import type { PortManager } from '../multipath/port-manager.js';
import type { PprcServiceHooks } from '../copy/pprc/remote/serving.js';

export interface ServiceOptions {
  control: { host: string; port: number };
  /** NBD listeners: TCP unless `tcp` is absent (`--nbd none`), plus a unix socket when `socket` is given. */
  nbd: NbdEndpoints;
  /** The array's FlashCopy manager, whose endpoints the control API serves. */
  flashcopy: FlashCopyManager;
  /** Copy Services tasks and task groups, served under /v1/tasks when given. */
  tasks?: TaskManager;
  /** NBD TLS; off when absent. */
  nbdTls?: NbdServerTlsOptions | undefined;
  /** Where the NBD server actually listens (port 0 resolved); empty until it does. Read lazily by the control API. */
  nbdEndpoints(): NbdEndpoints;
  /** PPRC's control routes, hidden link exports and link heartbeat; absent without PPRC. */
  pprc?: PprcServiceHooks | undefined;
  /** Hosts, LUN masking and reservations (src/hosts); absent: every client sees every LUN. */
  access?: HostsAccess | undefined;
  /** Extra target ports with faults (src/multipath/port-manager.ts), served under /v1/ports. */
  ports?: PortManager | undefined;
}

export interface RunningService {
  name: string;
  /** Where clients reach it, e.g. http://127.0.0.1:10810 or nbd://127.0.0.1:10809; none when it listens nowhere. */
  urls: readonly string[];
  /** Set by the NBD service: its bound listeners. */
  nbd?: NbdEndpoints;
  /** Set by the NBD service: open sessions on an export (F-P5 "online"). */
  sessionsOn?(exportName: string): number;
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
    const server = await createControlServer(pool, { ...options.control, nbd: options.nbdEndpoints, routes: [flashcopyRoutes(() => options.flashcopy), ...(options.tasks ? [taskRoutes(() => options.tasks!)] : []), ...(options.pprc ? [options.pprc.routes] : []), ...(options.access ? [hostRoutes(() => options.access!)] : []), ...(options.ports ? [multipathRoutes(() => options.ports!)] : [])], logger: { level: 'error', stream: process.stderr } });
    return { name: 'control', urls: [server.url], stop: () => server.close() };
  },
};

/** Every LUN of the pool as an NBD export of the same name (src/nbd/pool-exports.ts). */
export const nbdService: Service = {
  name: 'nbd',
  async start(pool, options) {
    const { tcp, socket } = options.nbd;
    if (!tcp && socket === undefined) return { name: 'nbd', urls: [], nbd: {}, stop: async () => undefined };
    // With hosts: LUN masking and reservations, this listener being target port 'default' (PPRC's link exports stay outside).
    const luns = options.access ? new MaskedExports(new PoolExports(pool), { ...options.access, port: 'default' }) : new PoolExports(pool);
    const exports = options.pprc ? options.pprc.exports(luns) : luns;
    const server = new NbdServer({ exports, ...(options.nbdTls && { tls: options.nbdTls }) });
    try {
      const bound = await server.listen({ ...tcp, ...(socket !== undefined && { path: socket }) });
      options.pprc?.attachNbd(server);
      const nbd: NbdEndpoints = {
        ...(bound.tcp && { tcp: { host: bound.tcp.address, port: bound.tcp.port } }),
        ...(bound.path !== undefined && { socket: bound.path }),
      };
      // The service's own URLs name the empty (default) export; each LUN's URIs name the LUN.
      return { name: 'nbd', urls: exportUris(nbd, ''), nbd, sessionsOn: (name) => server.sessionsOn(name), stop: () => server.close() };
    } catch (err) {
      await server.close();
      throw err;
    }
  },
};

export const SERVICES: readonly Service[] = [controlApiService, nbdService];
