/**
 * A target port: one NBD listener (unix socket or TCP) serving one or more
 * LUNs, each through the port's FaultSwitch (faulty-volume.ts). Every port
 * of a LUN reports the same identity, so a host groups them into one
 * multipath device. When the switch's link goes down the listener closes and
 * its connections drop (connection refused / reset); when it comes back the
 * port listens again at the same address. Hang, latency, errors and standby
 * act per request inside the FaultyVolume.
 */
import { LunrigError } from '../errors.js';
import type { ExportProvider } from '../nbd/export-provider.js';
import { MaskedExports } from '../hosts/masked-exports.js';
import type { HostRegistry } from '../hosts/host-registry.js';
import type { ReservationTable } from '../hosts/reservation-table.js';
import { FaultyExports } from './faulty-exports.js';
import type { NbdTarget } from '../nbd/client.js';
import { NbdServer, type NbdListenOptions } from '../nbd/server.js';
import type { NbdServerOptions } from '../nbd/server-options.js';
import type { Clock } from '../util/clock.js';
import { SerialQueue } from '../util/serial-queue.js';
import type { Volume } from '../volume/volume.js';
import { FaultSwitch, type LinkState } from './fault-switch.js';
import { FaultyVolume } from './faulty-volume.js';

export interface TargetPortLun {
  /** The export name (the LUN's name). */
  name: string;
  /** The LUN's host-facing Volume, shared by every port that exports it. */
  volume: Volume;
  readOnly?: boolean;
}

export interface TargetPortOptions {
  name: string;
  luns?: Iterable<TargetPortLun>;
  /** A unix socket path, or TCP host/port (port 0 picks one, kept across down/up). Without it the port is in-process only (volume()). */
  listen?: NbdListenOptions;
  /** Share a switch (default: a new one on `clock` / `random`). */
  faults?: FaultSwitch;
  clock?: Clock;
  random?: () => number;
  /** Serve every export of this provider too (e.g. the pool's LUNs: a port for all LUNs). */
  source?: ExportProvider;
  /** LUN masking and reservations on this port (the port's name is the T of each I_T nexus). */
  access?: { hosts: HostRegistry; reservations: ReservationTable };
  /** NBD server settings other than the exports. closeGraceMs defaults to 20: a port going down resets, it does not drain. */
  server?: Omit<NbdServerOptions, 'exports'>;
}

export class TargetPort {
  readonly name: string;
  readonly faults: FaultSwitch;
  private readonly exports: FaultyExports;
  private readonly provider: ExportProvider;
  private readonly serverOptions: Omit<NbdServerOptions, 'exports'>;
  private listenAt: NbdListenOptions | undefined;
  private server: NbdServer | undefined;
  private started = false;
  private readonly queue = new SerialQueue();
  private readonly onChange = (state: LinkState): void => {
    if (!this.started) return;
    if (state === 'down') void this.queue.run(() => this.closeListener());
    else void this.queue.run(() => this.openListener());
  };

  constructor(options: TargetPortOptions) {
    this.name = options.name;
    this.faults = options.faults ?? new FaultSwitch({ name: options.name, clock: options.clock, random: options.random });
    this.exports = new FaultyExports(this.faults, options.source);
    this.provider = options.access ? new MaskedExports(this.exports, { ...options.access, port: this.name }) : this.exports;
    this.listenAt = options.listen && { ...options.listen };
    this.serverOptions = { ...options.server, limits: { closeGraceMs: 20, ...options.server?.limits } };
    for (const lun of options.luns ?? []) this.addLun(lun);
  }

  /** Serve `lun` on this port through the fault switch. */
  addLun(lun: TargetPortLun): void {
    this.exports.own.add({ name: lun.name, volume: new FaultyVolume(lun.volume, this.faults), readOnly: lun.readOnly });
  }

  removeLun(name: string): boolean {
    return this.exports.own.remove(name);
  }

  /** Names this port exports now. */
  lunNames(): string[] {
    return this.exports.list().map((e) => e.name);
  }

  /** Where the listener is, once started (TCP port resolved). */
  get address(): NbdListenOptions | undefined {
    return this.listenAt && { ...this.listenAt };
  }

  /** The fault-injecting Volume this port serves for `name` (for in-process paths). */
  volume(name: string): FaultyVolume {
    const e = this.exports.get(name);
    if (!e) throw new LunrigError('LUN_NOT_FOUND', `port ${this.name} does not export '${name}'`, { port: this.name, lun: name });
    return e.volume as FaultyVolume;
  }

  /** Where an NbdClient connects. */
  get target(): NbdTarget {
    if (!this.listenAt) throw new LunrigError('INVALID_CONFIG', `port ${this.name} has no listen address`);
    if (this.listenAt.path !== undefined) return { path: this.listenAt.path };
    return { host: this.listenAt.host ?? '127.0.0.1', port: this.listenAt.port ?? 10809 };
  }

  /** True while the NBD listener accepts connections. */
  get listening(): boolean {
    return this.server !== undefined;
  }

  /** Start listening (unless the link is down now) and follow the switch from then on. */
  async start(): Promise<void> {
    if (!this.listenAt) throw new LunrigError('INVALID_CONFIG', `port ${this.name} has no listen address`);
    if (this.started) return;
    this.started = true;
    this.faults.on('change', this.onChange);
    if (this.faults.state !== 'down') await this.queue.run(() => this.openListener());
  }

  /** Stop for good: close the listener and drop connections. */
  async stop(): Promise<void> {
    this.started = false;
    this.faults.off('change', this.onChange);
    await this.queue.run(() => this.closeListener());
  }

  /** Resolves when the listener has caught up with the switch's last change. */
  settled(): Promise<void> {
    return this.queue.run(() => Promise.resolve());
  }

  private async openListener(): Promise<void> {
    if (this.server || !this.started || !this.listenAt || this.faults.state === 'down') return;
    const server = new NbdServer({ ...this.serverOptions, exports: this.provider });
    const result = await server.listen(this.listenAt);
    // Come back at the same TCP port after a down.
    if (result.tcp) this.listenAt = { ...this.listenAt, host: result.tcp.address, port: result.tcp.port };
    this.server = server;
  }

  private async closeListener(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    await server?.close();
  }
}
