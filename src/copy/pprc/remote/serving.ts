/**
 * PPRC as `lunrig serve` offers it, around one pool's PPRC manager: the
 * remote ESSs it mirrors to (persisted, handed to the manager), the hidden
 * link exports and heartbeat for the secondaries it holds, and what the
 * control API and the NBD server need from both. Open it after the manager;
 * close it before the manager.
 */
import type { ExportEntry, ExportProvider, ExportRequester } from '../../../nbd/export-provider.js';
import type { NbdServer } from '../../../nbd/server.js';
import type { Clock } from '../../../util/clock.js';
import { pprcRoutes, type PprcServing } from '../../../control/routes-pprc.js';
import type { RouteModule } from '../../../control/routes.js';
import type { PprcCoreApi } from './core-api.js';
import { PprcLinkExports, type LinkExportsOptions } from './link-exports.js';
import { RemoteEssRegistry } from './remote-registry.js';

export interface PprcServiceOptions {
  /** How long a bound secondary may go without a link connection before it is marked suspended (default 5 s). */
  heartbeatTimeoutMs?: number;
  clock?: Clock;
  /** Bound secondaries at start (so a restarted secondary server watches them). */
  bound?: LinkExportsOptions['bound'];
}

/** What the control API and NBD services take from PPRC (src/cli/services.ts). */
export interface PprcServiceHooks {
  routes: RouteModule;
  /** The pool's exports plus the hidden link exports. */
  exports(base: ExportProvider): ExportProvider;
  /** The NBD server is listening: watch its link connections. */
  attachNbd(server: NbdServer): void;
}

export class PprcService {
  private constructor(
    readonly manager: PprcCoreApi,
    readonly remotes: RemoteEssRegistry,
    readonly linkExports: PprcLinkExports,
    private readonly serial: string,
  ) {}

  static async open(pool: { dir: string; serial: string }, manager: PprcCoreApi, options: PprcServiceOptions = {}): Promise<PprcService> {
    const remotes = await RemoteEssRegistry.open(pool.dir, () => manager);
    const linkExports = new PprcLinkExports({
      secondary: () => manager.asSecondary(),
      ...(options.heartbeatTimeoutMs !== undefined && { heartbeatTimeoutMs: options.heartbeatTimeoutMs }),
      ...(options.clock && { clock: options.clock }),
      ...(options.bound && { bound: options.bound }),
    });
    return new PprcService(manager, remotes, linkExports, pool.serial);
  }

  serving(): PprcServing {
    return { manager: () => this.manager, remotes: () => this.remotes, links: () => this.linkExports, serial: () => this.serial };
  }

  hooks(): PprcServiceHooks {
    return {
      routes: pprcRoutes(this.serving()),
      exports: (base) => new WithLinkExports(base, this.linkExports),
      attachNbd: (server) => this.linkExports.start(() => server.stats()),
    };
  }

  /** Link exports first (their connections end), then the remote ESS connections. */
  async close(): Promise<void> {
    await this.linkExports.close();
    await this.remotes.close();
  }
}

/** The pool's exports, plus `.pprc/...` link exports that are served but never listed. */
class WithLinkExports implements ExportProvider {
  constructor(
    private readonly base: ExportProvider,
    private readonly links: PprcLinkExports,
  ) {}

  get(name: string, requester?: ExportRequester): ExportEntry | undefined {
    return this.links.get(name) ?? this.base.get(name, requester);
  }

  list(requester?: ExportRequester): ExportEntry[] {
    return this.base.list(requester);
  }
}
