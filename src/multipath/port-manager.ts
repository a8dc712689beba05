/**
 * The target ports of a running array (`lunrig serve`): extra NBD listeners
 * for one LUN, some, or all of the pool's, each with its own fault switch;
 * fate groups over ports; fault timelines. The control API
 * (routes-multipath.ts) and the CLI (`lunrig port ...`) are views on it.
 * Every port serves through LUN masking and the shared reservation table,
 * with its own name as the target port of each I_T nexus.
 */
import { LunrigError } from '../errors.js';
import type { HostRegistry } from '../hosts/host-registry.js';
import type { ReservationTable } from '../hosts/reservation-table.js';
import type { ExportEntry, ExportProvider, ExportRequester } from '../nbd/export-provider.js';
import type { NbdListenOptions } from '../nbd/server.js';
import { systemClock, type Clock } from '../util/clock.js';
import { FateGroup } from './fate-group.js';
import type { Fault, FaultSwitchStats, FaultTarget, LinkState } from './fault-switch.js';
import { FaultTimeline } from './fault-timeline.js';
import { TargetPort } from './target-port.js';

export interface AddPortRequest {
  name: string;
  /** LUN names; absent: every LUN of the pool, now and later. */
  luns?: string[];
  /** TCP host (default 127.0.0.1 when a port is given). */
  host?: string;
  /** TCP port (0: any free one). */
  port?: number;
  /** Unix socket path. */
  socket?: string;
}

export interface PortInfo {
  name: string;
  luns: string[] | 'all';
  /** Where the port listens: nbd:// or nbd+unix:// base URI. */
  address: string;
  listening: boolean;
  state: LinkState;
  faults: Fault[];
  fateGroups: string[];
  stats: FaultSwitchStats;
}

export interface TimelineStepRequest {
  atMs: number;
  /** A port name or a fate group name (one of the two). */
  port?: string;
  group?: string;
  /** Faults to set; empty or absent clears. */
  faults?: Fault[];
  note?: string;
}

export interface TimelineInfo {
  id: string;
  steps: number;
  fired: { atMs: number; at: number; note: string | undefined }[];
  done: boolean;
}

export interface PortManagerOptions {
  /** The pool's exports (every LUN). */
  source: ExportProvider;
  access: { hosts: HostRegistry; reservations: ReservationTable };
  clock?: Clock;
  random?: () => number;
}

const PORT_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$/;

export class PortManager {
  private readonly ports = new Map<string, { port: TargetPort; luns: string[] | 'all' }>();
  private readonly groups = new Map<string, FateGroup>();
  private readonly timelines = new Map<string, { timeline: FaultTimeline; done: boolean }>();
  private nextTimeline = 1;
  private readonly clock: Clock;

  constructor(private readonly o: PortManagerOptions) {
    this.clock = o.clock ?? systemClock;
  }

  async add(req: AddPortRequest): Promise<PortInfo> {
    if (typeof req.name !== 'string' || !PORT_NAME_RE.test(req.name)) throw new LunrigError('INVALID_ARGUMENT', `invalid port name ${JSON.stringify(req.name)}`);
    if (req.name === 'default') throw new LunrigError('INVALID_ARGUMENT', "'default' names the main NBD listener");
    if (this.ports.has(req.name)) throw new LunrigError('INVALID_ARGUMENT', `port '${req.name}' exists`, { port: req.name });
    const listen: NbdListenOptions = {
      ...(req.socket !== undefined && { path: req.socket }),
      ...((req.port !== undefined || req.host !== undefined) && { host: req.host ?? '127.0.0.1', port: req.port ?? 0 }),
    };
    if (listen.path === undefined && listen.port === undefined) throw new LunrigError('INVALID_ARGUMENT', 'a port needs a TCP port (0: any) or a unix socket path');
    if (listen.path !== undefined && listen.port !== undefined) throw new LunrigError('INVALID_ARGUMENT', 'a port listens on TCP or on a unix socket, not both');
    const luns = req.luns === undefined ? 'all' : [...new Set(req.luns)];
    const source = luns === 'all' ? this.o.source : new OnlyExports(this.o.source, luns);
    const port = new TargetPort({ name: req.name, listen, source, access: this.o.access, clock: this.clock, random: this.o.random });
    await port.start();
    this.ports.set(req.name, { port, luns });
    return this.info(req.name);
  }

  async remove(name: string): Promise<void> {
    const p = this.get(name);
    this.ports.delete(name);
    for (const [gname, g] of this.groups) {
      if (g.switches.includes(p.port.faults)) this.groups.set(gname, new FateGroup(gname, g.switches.filter((s) => s !== p.port.faults)));
    }
    await p.port.stop();
  }

  list(): PortInfo[] {
    return [...this.ports.keys()].map((n) => this.info(n));
  }

  info(name: string): PortInfo {
    const { port, luns } = this.get(name);
    const a = port.address;
    const address = a?.path !== undefined ? `nbd+unix:///?socket=${a.path}` : `nbd://${a?.host ?? '127.0.0.1'}:${a?.port ?? 0}`;
    return {
      name,
      luns,
      address,
      listening: port.listening,
      state: port.faults.state,
      faults: [...port.faults.faults],
      fateGroups: [...this.groups].filter(([, g]) => g.switches.includes(port.faults)).map(([n]) => n),
      stats: port.faults.stats,
    };
  }

  port(name: string): TargetPort {
    return this.get(name).port;
  }

  /** Set faults on a port (empty: clear); resolves once the listener follows (down closes it). */
  async setFaults(name: string, faults: Fault[]): Promise<PortInfo> {
    const { port } = this.get(name);
    port.faults.set(...faults);
    await port.settled();
    return this.info(name);
  }

  createGroup(name: string, ports: string[]): { name: string; ports: string[] } {
    if (typeof name !== 'string' || !PORT_NAME_RE.test(name)) throw new LunrigError('INVALID_ARGUMENT', `invalid fate group name ${JSON.stringify(name)}`);
    if (this.groups.has(name)) throw new LunrigError('INVALID_ARGUMENT', `fate group '${name}' exists`);
    this.groups.set(name, new FateGroup(name, ports.map((p) => this.get(p).port)));
    return this.groupInfo(name);
  }

  deleteGroup(name: string): void {
    this.group(name);
    this.groups.delete(name);
  }

  listGroups(): { name: string; ports: string[] }[] {
    return [...this.groups.keys()].map((n) => this.groupInfo(n));
  }

  /** One fault on every member in the same instant (MP-20). */
  async setGroupFaults(name: string, faults: Fault[]): Promise<{ name: string; ports: string[] }> {
    const g = this.group(name);
    g.set(...faults);
    await Promise.all(this.membersOf(g).map((p) => p.settled()));
    return this.groupInfo(name);
  }

  /** Script faults on the clock: steps relative to now. */
  schedule(steps: TimelineStepRequest[]): TimelineInfo {
    if (!Array.isArray(steps) || steps.length === 0) throw new LunrigError('INVALID_ARGUMENT', 'a timeline needs at least one step');
    const resolved = steps.map((s) => {
      if ((s.port === undefined) === (s.group === undefined)) throw new LunrigError('INVALID_ARGUMENT', 'each timeline step names a port or a group');
      const target: FaultTarget = s.port !== undefined ? this.get(s.port).port.faults : this.group(s.group!);
      return { atMs: s.atMs, target, set: s.faults ?? [], note: s.note ?? `${s.port ?? s.group}: ${(s.faults ?? []).map((f) => f.kind).join('+') || 'clear'}` };
    });
    const id = `tl${this.nextTimeline++}`;
    const timeline = new FaultTimeline(this.clock, resolved);
    const rec = { timeline, done: false };
    this.timelines.set(id, rec);
    void timeline.start().then(() => (rec.done = true));
    return this.timelineInfo(id);
  }

  listTimelines(): TimelineInfo[] {
    return [...this.timelines.keys()].map((id) => this.timelineInfo(id));
  }

  cancelTimeline(id: string): void {
    const rec = this.timelines.get(id);
    if (!rec) throw new LunrigError('INVALID_ARGUMENT', `no fault timeline '${id}'`);
    rec.timeline.cancel();
    this.timelines.delete(id);
  }

  async close(): Promise<void> {
    for (const rec of this.timelines.values()) rec.timeline.cancel();
    this.timelines.clear();
    const all = [...this.ports.values()];
    this.ports.clear();
    await Promise.all(all.map((p) => p.port.stop()));
  }

  private timelineInfo(id: string): TimelineInfo {
    const rec = this.timelines.get(id)!;
    return { id, steps: rec.timeline.steps.length, fired: [...rec.timeline.fired], done: rec.done };
  }

  private groupInfo(name: string): { name: string; ports: string[] } {
    return { name, ports: this.membersOf(this.group(name)).map((p) => p.name) };
  }

  private membersOf(g: FateGroup): TargetPort[] {
    return [...this.ports.values()].map((p) => p.port).filter((p) => g.switches.includes(p.faults));
  }

  private group(name: string): FateGroup {
    const g = this.groups.get(name);
    if (!g) throw new LunrigError('INVALID_ARGUMENT', `no fate group '${name}'`, { group: name });
    return g;
  }

  private get(name: string): { port: TargetPort; luns: string[] | 'all' } {
    const p = this.ports.get(name);
    if (!p) throw new LunrigError('MP_PATH_NOT_FOUND', `no target port '${name}'`, { port: name });
    return p;
  }
}

/** The exports of `inner` whose names are in `names`. */
class OnlyExports implements ExportProvider {
  private readonly names: Set<string>;

  constructor(
    private readonly inner: ExportProvider,
    names: readonly string[],
  ) {
    this.names = new Set(names);
  }

  get(name: string, requester?: ExportRequester): ExportEntry | undefined {
    return this.names.has(name) ? this.inner.get(name, requester) : undefined;
  }

  list(requester?: ExportRequester): ExportEntry[] {
    return this.inner.list(requester).filter((e) => this.names.has(e.name));
  }
}
