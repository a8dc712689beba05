/**
 * The secondary side of a remote PPRC link, on the `lunrig serve` that holds
 * the secondaries (spec/copy-services.md §3.4 PP-07, X6, PP-30):
 *
 *  - hidden NBD exports `.pprc/<pairId>/<volume>`: the channel the local
 *    manager's asSecondary() gives for that pair (below the host gate, so the
 *    mirror can write what hosts may not). One is offered only after a
 *    primary asked for it over the control API (POST
 *    /v1/pprc/secondary/channels, which checks the binding), only while the
 *    volume stays bound to that pair, and never in NBD_OPT_LIST. Host exports
 *    (the LUN names) keep the gate: READ/WRITE fail with EPERM, INFO works.
 *  - a heartbeat: a pair whose link connections have all been gone longer
 *    than `heartbeatTimeoutMs` while it is not suspended here is marked
 *    suspended through the local SecondaryEss (the primary ESS failed or
 *    every link to it broke: X6). A primary that resumes the pair (status
 *    not suspended, or a new channel) restarts the count.
 *
 * Time comes from the injectable clock; the NBD server's connection list is
 * read through `connections` (NbdServer.stats()).
 */
import { LunrigError } from '../../../errors.js';
import type { ExportEntry, ExportProvider } from '../../../nbd/export-provider.js';
import type { ConnectionStats } from '../../../nbd/server-connection.js';
import { systemClock, type Clock, type ClockTimer } from '../../../util/clock.js';
import type { Volume } from '../../../volume/volume.js';
import type { SecondaryBinding, SecondaryEss, SecondaryStatus } from '../secondary-ess.js';
import { LINK_EXPORT_PREFIX, linkExportName } from './remote-secondary.js';

export const DEFAULT_HEARTBEAT_TIMEOUT_MS = 5_000;

export interface LinkExportsOptions {
  /** The local manager's secondary side (asSecondary()); read lazily. */
  secondary: () => SecondaryEss;
  /** Bound secondaries known at start (from the persisted roles), so a restarted server watches them too. */
  bound?: () => Array<{ volume: string; pairId: string; criticalHeavy?: boolean; suspended?: boolean }>;
  heartbeatTimeoutMs?: number;
  clock?: Clock;
}

interface Watched {
  volume: string;
  pairId: string;
  criticalHeavy: boolean;
  /** Suspended as far as this side knows (by the primary, or by the heartbeat). */
  suspended: boolean;
  /** Last time a link connection was seen, or the pair was resumed. */
  lastSeen: number;
  /**
   * A link connection has been seen since the binding or the last resume:
   * links open lazily (on the first mirrored write), so an idle pair that
   * never connected is not a lost primary.
   */
  armed: boolean;
  /** The heartbeat (not the primary) suspended it: links that come back restore it. */
  byHeartbeat: boolean;
}

export class PprcLinkExports implements ExportProvider {
  readonly heartbeatTimeoutMs: number;
  private readonly clock: Clock;
  /** exportName -> entry, while the channel is valid. */
  private readonly entries = new Map<string, ExportEntry & { pairId: string; channel: Volume }>();
  /** pairId -> what the heartbeat watches. */
  private readonly watched = new Map<string, Watched>();
  private connections: () => readonly ConnectionStats[] = () => [];
  private timer: ClockTimer | undefined;
  private checking: Promise<void> | undefined;
  private closed = false;
  private readonly events: Array<{ at: number; pairId: string; volume: string; what: string }> = [];

  constructor(private readonly options: LinkExportsOptions) {
    this.heartbeatTimeoutMs = options.heartbeatTimeoutMs ?? DEFAULT_HEARTBEAT_TIMEOUT_MS;
    this.clock = options.clock ?? systemClock;
  }

  // --- ExportProvider ------------------------------------------------------

  get(name: string): ExportEntry | undefined {
    if (!name.startsWith(LINK_EXPORT_PREFIX)) return undefined;
    const entry = this.entries.get(name);
    if (!entry) return undefined;
    try {
      // The channel checks its binding: once the pair ended here (by whatever route), the export is gone.
      void entry.channel.size;
    } catch {
      void this.drop(name);
      return undefined;
    }
    return entry;
  }

  /** Link exports are never listed. */
  list(): ExportEntry[] {
    return [];
  }

  // --- what the control routes call ----------------------------------------

  /** A primary recorded a binding: watch the pair from now on. */
  bound(volume: string, binding: SecondaryBinding): void {
    this.watch(volume, binding.pairId, binding.criticalHeavy === true, false);
  }

  /** A primary set the pair's status here. */
  statusSet(volume: string, pairId: string, status: SecondaryStatus): void {
    this.watch(volume, pairId, this.watched.get(pairId)?.criticalHeavy ?? false, status.suspended);
  }

  /** The pair ended (unbind): its link export goes, open link connections get ESHUTDOWN. */
  async unbound(volume: string, pairId: string): Promise<void> {
    this.watched.delete(pairId);
    await this.drop(linkExportName(pairId, volume));
  }

  /**
   * Open the hidden export for a link of `pairId` (checks the binding through
   * the local SecondaryEss, which refuses with PPRC_NOT_IN_PAIR otherwise).
   * Returns the export name the primary connects to.
   */
  async open(volume: string, pairId: string, linkIndex: number): Promise<string> {
    if (this.closed) throw new LunrigError('CLOSED', 'the PPRC link exports are closed');
    const facts = await this.options.secondary().describe(volume);
    if (facts.role !== 'target' || facts.pairId !== pairId) {
      throw new LunrigError('PPRC_NOT_IN_PAIR', `volume '${volume}' is not the secondary of pair ${pairId}`, { volume, pairId, role: facts.role, ...(facts.pairId !== undefined && { boundTo: facts.pairId }) });
    }
    const name = linkExportName(pairId, volume);
    if (!this.entries.has(name)) {
      const channel = await this.options.secondary().channel(volume, pairId, linkIndex);
      // Another request may have opened it meanwhile: keep the first, close ours.
      if (this.entries.has(name)) await this.options.secondary().closeChannel(channel);
      // One Volume for all link connections of the pair: a flush on one covers the others (multi-conn is honest).
      // The description stays the volume's identity token, so the primary's NbdClient.identity() is the secondary's.
      else this.entries.set(name, { name, volume: channel, channel, pairId });
    }
    const w = this.watched.get(pairId);
    this.watch(volume, pairId, w?.criticalHeavy ?? false, w?.suspended ?? false, true);
    return name;
  }

  /** What the heartbeat saw, newest last (for GET /v1/pprc/secondary). */
  status(): { heartbeatTimeoutMs: number; pairs: Array<Watched & { links: number }>; events: Array<{ at: string; pairId: string; volume: string; what: string }> } {
    const counts = this.linkCounts();
    return {
      heartbeatTimeoutMs: this.heartbeatTimeoutMs,
      pairs: [...this.watched.values()].map((w) => ({ ...w, links: counts.get(linkExportName(w.pairId, w.volume)) ?? 0 })),
      events: this.events.map((e) => ({ ...e, at: new Date(e.at).toISOString() })),
    };
  }

  // --- heartbeat -----------------------------------------------------------

  /** Start watching link connections of this NBD server (its stats()). */
  start(connections: () => readonly ConnectionStats[]): void {
    this.connections = connections;
    // A restarted secondary cannot know what its primary did meanwhile: the primary must connect within the timeout.
    for (const b of this.options.bound?.() ?? []) {
      this.watch(b.volume, b.pairId, b.criticalHeavy === true, b.suspended === true);
      this.watched.get(b.pairId)!.armed = true;
    }
    this.schedule();
  }

  /** One heartbeat pass (the timer calls it; tests may too). */
  check(): Promise<void> {
    // One pass at a time: a caller arriving during a pass waits for it.
    this.checking ??= this.pass().finally(() => (this.checking = undefined));
    return this.checking;
  }

  private async pass(): Promise<void> {
    const now = this.clock.now();
    const counts = this.linkCounts();
    for (const w of [...this.watched.values()]) {
      if ((counts.get(linkExportName(w.pairId, w.volume)) ?? 0) > 0) {
        w.lastSeen = now;
        w.armed = true;
        // The primary writes through its links again: only an active pair does, so the heartbeat's suspension was a gap, not a failure.
        if (w.suspended && w.byHeartbeat) await this.restore(w, now);
        continue;
      }
      if (!w.armed || w.suspended || now - w.lastSeen < this.heartbeatTimeoutMs) continue;
      w.suspended = true;
      w.byHeartbeat = true;
      try {
        const secondary = this.options.secondary();
        const facts = await secondary.describe(w.volume);
        if (facts.role !== 'target' || facts.pairId !== w.pairId) {
          this.watched.delete(w.pairId);
          continue;
        }
        const reason = `no link connection from the primary for ${Math.round((now - w.lastSeen) / 1000)} s (primary ESS or all links lost)`;
        // X6 never write-inhibits (the core's decision): the secondary is unreadable anyway until terminated or resynced.
        await secondary.setStatus(w.volume, w.pairId, { suspended: true, writeInhibited: false, reason });
        this.note(now, w, `suspended: ${reason}`);
      } catch {
        // Try again next pass.
        w.suspended = false;
        w.byHeartbeat = false;
      }
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    for (const name of [...this.entries.keys()]) await this.drop(name);
  }

  private schedule(): void {
    if (this.closed) return;
    this.timer = this.clock.setTimeout(
      () => {
        void this.check().finally(() => this.schedule());
      },
      Math.max(50, Math.floor(this.heartbeatTimeoutMs / 4)),
    );
  }

  private async restore(w: Watched, now: number): Promise<void> {
    try {
      await this.options.secondary().setStatus(w.volume, w.pairId, { suspended: false, writeInhibited: false });
      w.suspended = false;
      w.byHeartbeat = false;
      this.note(now, w, 'resumed: link connections from the primary are back');
    } catch {
      // Next pass.
    }
  }

  private note(at: number, w: Watched, what: string): void {
    this.events.push({ at, pairId: w.pairId, volume: w.volume, what });
    if (this.events.length > 100) this.events.shift();
  }

  private watch(volume: string, pairId: string, criticalHeavy: boolean, suspended: boolean, touched = false): void {
    const previous = this.watched.get(pairId);
    // Newly bound, resumed or just (re)connected: the count starts now; a new binding or a resume waits for a link connection.
    const fresh = !previous || previous.volume !== volume || (previous.suspended && !suspended);
    const restart = touched || fresh;
    this.watched.set(pairId, {
      volume,
      pairId,
      criticalHeavy,
      suspended,
      lastSeen: restart ? this.clock.now() : previous!.lastSeen,
      armed: fresh ? false : previous!.armed,
      // A link opening keeps it; a status the primary set (statusSet, bound) makes it the primary's.
      byHeartbeat: touched && !fresh ? previous!.byHeartbeat : false,
    });
  }

  private linkCounts(): Map<string, number> {
    const counts = new Map<string, number>();
    for (const c of this.connections()) {
      if (c.exportName === undefined || !c.exportName.startsWith(LINK_EXPORT_PREFIX) || c.phase === 'closing') continue;
      counts.set(c.exportName, (counts.get(c.exportName) ?? 0) + 1);
    }
    return counts;
  }

  private async drop(name: string): Promise<void> {
    const entry = this.entries.get(name);
    if (!entry) return;
    this.entries.delete(name);
    await this.options.secondary().closeChannel(entry.channel).catch(() => undefined);
  }
}
