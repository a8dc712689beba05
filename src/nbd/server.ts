/**
 * The NBD server: listeners (TCP and/or unix sockets), the set of
 * connections, and a clean close. Protocol work lives in ServerConnection and
 * ServerNegotiation; exports come from an ExportProvider consulted live.
 */
import { EventEmitter } from 'node:events';
import { lstat, rm } from 'node:fs/promises';
import net, { type AddressInfo } from 'node:net';
import { LunrigError } from '../errors.js';
import * as C from './constants.js';
import { ServerConnection, type ConnectionStats } from './server-connection.js';
import { resolveServerOptions, type NbdServerOptions, type ResolvedServerOptions } from './server-options.js';
import type { TlsSessionInfo } from './tls-peer.js';

export interface NbdListenOptions {
  /** TCP host (default 127.0.0.1 when a port is given). */
  host?: string;
  /** TCP port (0: any free port; default 10809 when a host is given). */
  port?: number;
  /** Unix socket path. Give it together with host/port to listen on both. */
  path?: string;
}

export interface NbdListenResult {
  tcp?: AddressInfo;
  path?: string;
}

export interface NbdServerEvents {
  connection: [info: { id: number; remote: string }];
  /** STARTTLS succeeded on connection `id`; `session.peer` is the verified client identity. */
  tls: [info: { id: number; session: TlsSessionInfo }];
  disconnect: [info: { id: number; reason: string }];
}

export class NbdServer extends EventEmitter<NbdServerEvents> {
  readonly options: ResolvedServerOptions;
  private readonly netServers: net.Server[] = [];
  private readonly paths: string[] = [];
  private readonly connections = new Set<ServerConnection>();
  private nextId = 1;
  private shuttingDown = false;
  private closing: Promise<void> | undefined;
  private readonly idle: (() => void)[] = [];
  private peakBuffered = 0;

  constructor(options: NbdServerOptions) {
    super();
    this.options = resolveServerOptions(options);
  }

  /** Start listening; may be called again to add listeners (e.g. a TCP port and a unix socket). */
  async listen(opts: NbdListenOptions): Promise<NbdListenResult> {
    if (this.shuttingDown) throw new LunrigError('CLOSED', 'NBD server is closed');
    const result: NbdListenResult = {};
    const wantTcp = opts.port !== undefined || opts.host !== undefined;
    if (!wantTcp && opts.path === undefined) throw new LunrigError('INVALID_ARGUMENT', 'listen needs a port, a host or a unix socket path');
    if (opts.path !== undefined) {
      await removeStaleSocket(opts.path);
      await this.startListener({ path: opts.path });
      this.paths.push(opts.path);
      result.path = opts.path;
    }
    if (wantTcp) {
      const l = await this.startListener({ host: opts.host ?? '127.0.0.1', port: opts.port ?? C.NBD_DEFAULT_PORT });
      result.tcp = l.address() as AddressInfo;
    }
    return result;
  }

  /** Where the server listens. */
  addresses(): { tcp: AddressInfo[]; paths: string[] } {
    const tcp = this.netServers.map((l) => l.address()).filter((a): a is AddressInfo => typeof a === 'object' && a !== null);
    return { tcp, paths: [...this.paths] };
  }

  get connectionCount(): number {
    return this.connections.size;
  }

  stats(): ConnectionStats[] {
    return [...this.connections].map((c) => c.stats());
  }

  /** Open sessions (in transmission) on export `name`: a host has it open (FlashCopy F-P5's "online"). */
  sessionsOn(name: string): number {
    let n = 0;
    for (const c of this.connections) {
      const s = c.stats();
      if ((s.exportName === name || hostPrefixed(s.exportName, name)) && s.phase === 'transmission') n++;
    }
    return n;
  }

  /** Most bytes any one connection (open or closed) held at once: a check on the buffering limits. */
  get peakBufferedBytes(): number {
    return Math.max(this.peakBuffered, ...[...this.connections].map((c) => c.stats().peakBufferedBytes));
  }

  /**
   * Stop accepting, end handshakes, let transmissions finish their in-flight
   * requests (later requests get NBD_ESHUTDOWN), then close every connection;
   * stragglers are dropped after limits.closeGraceMs. Idempotent.
   */
  close(): Promise<void> {
    this.closing ??= this.doClose();
    return this.closing;
  }

  private async doClose(): Promise<void> {
    this.shuttingDown = true;
    const stopped = this.netServers.map((l) => new Promise<void>((resolve) => l.close(() => resolve())));
    for (const c of this.connections) c.shutdown();
    if (this.connections.size > 0) {
      const grace = this.options.limits.closeGraceMs;
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        new Promise<void>((resolve) => this.idle.push(resolve)),
        new Promise<void>((resolve) => {
          timer = setTimeout(resolve, grace);
        }),
      ]);
      clearTimeout(timer);
      for (const c of this.connections) c.destroy('server closed');
      while (this.connections.size > 0) await new Promise<void>((resolve) => this.idle.push(resolve));
    }
    await Promise.all(stopped);
    await Promise.all(this.paths.map((p) => rm(p, { force: true }).catch(() => undefined)));
  }

  private startListener(addr: { path: string } | { host: string; port: number }): Promise<net.Server> {
    const server = net.createServer({ allowHalfOpen: true }, (socket) => this.accept(socket));
    return new Promise((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException): void => {
        const where = 'path' in addr ? addr.path : `${addr.host}:${addr.port}`;
        reject(new LunrigError(err.code === 'EADDRINUSE' ? 'BUSY' : 'IO_ERROR', `cannot listen on ${where}: ${err.message}`, { code: err.code }, { cause: err }));
      };
      server.once('error', onError);
      server.listen(addr, () => {
        server.off('error', onError);
        // Accept errors (EMFILE and the like) must not crash the process.
        server.on('error', () => undefined);
        this.netServers.push(server);
        resolve(server);
      });
    });
  }

  private accept(socket: net.Socket): void {
    if (this.shuttingDown || this.connections.size >= this.options.limits.maxConnections) {
      socket.on('error', () => undefined);
      socket.destroy();
      return;
    }
    const id = this.nextId++;
    const conn = new ServerConnection(id, socket, this.options, {
      isShuttingDown: () => this.shuttingDown,
      onTls: (c, session) => this.emit('tls', { id: c.id, session }),
      onClose: (c, reason) => {
        this.peakBuffered = Math.max(this.peakBuffered, c.stats().peakBufferedBytes);
        this.connections.delete(c);
        this.emit('disconnect', { id: c.id, reason });
        if (this.connections.size === 0) for (const f of this.idle.splice(0)) f();
      },
    });
    this.connections.add(conn);
    this.emit('connection', { id, remote: socket.remoteAddress ? `${socket.remoteAddress}:${socket.remotePort}` : 'unix' });
    conn.start();
  }
}

/** `host1/lun0` names `lun0` as opened by host1 (LUN masking, src/hosts/masked-exports.ts): host names start with a letter or digit, never '.'. */
function hostPrefixed(exportName: string | undefined, name: string): boolean {
  if (exportName === undefined) return false;
  const i = exportName.indexOf('/');
  return i > 0 && /^[A-Za-z0-9]/.test(exportName) && exportName.slice(i + 1) === name;
}

/** Remove a unix socket nobody listens on any more; refuse to touch anything else. */
async function removeStaleSocket(path: string): Promise<void> {
  let st;
  try {
    st = await lstat(path);
  } catch {
    return;
  }
  if (!st.isSocket()) throw new LunrigError('INVALID_ARGUMENT', `${path} exists and is not a socket`);
  const live = await new Promise<boolean>((resolve) => {
    const probe = net.connect({ path });
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
  if (live) throw new LunrigError('BUSY', `another server listens on ${path}`);
  await rm(path, { force: true });
}
