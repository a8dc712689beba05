/**
 * PprcManager: the PPRC function of one pool (= one ESS, spec §3), both roles:
 *  - primary side: links and logical paths to secondary ESSs, the pairs this
 *    pool is the primary of (mirror layer on the primary's VolumeStack, track
 *    bitmaps, copier, CRIT / consistency-group policy in failure-policy.ts);
 *  - secondary side (SecondarySide): volumes bound as secondaries (gate
 *    layer), reachable through `asSecondary()` by this pool and by others.
 *
 * Control operations run one at a time (SerialQueue). Failures detected on
 * the write path suspend pairs outside that queue, synchronously first (state,
 * write-inhibit, holds), then persist. Everything lives under <pool>/pprc/.
 *
 * Restart rule (README "Recovery", recovery.ts): a pair that was DUPLEX or DUPLEX_PENDING
 * comes back SUSPENDED (reason 'restart'), never duplex, with OOS = recorded
 * OOS + HOT tracks (mirror writes possibly in flight at the crash). An
 * explicit out-of-sync resync then makes the secondary identical.
 */
import { EventEmitter } from 'node:events';
import { LunrigError } from '../../errors.js';
import { native } from '../../native/index.js';
import { BitmapJournal } from '../../store/bitmap-journal.js';
import { formatLss, parseLss } from '../../store/identity.js';
import type { LunChange, Pool } from '../../store/pool.js';
import { systemClock, type Clock, type ClockTimer } from '../../util/clock.js';
import { SerialQueue } from '../../util/serial-queue.js';
import { parseSize } from '../../util/size.js';
import { rsQueryLines, type PprcView } from '../flashcopy/ess-query.js';
import type { FlashCopyManager } from '../flashcopy/manager.js';
import { Copier } from './copier.js';
import { FailurePolicy } from './failure-policy.js';
import { Link, newLinkRecord, type AddLinkRequest, type LinkFault, type LinkInfo } from './links.js';
import { MirrorLayer } from './mirror-layer.js';
import { Pair, makeHold, type PairContext, type RunState } from './pair.js';
import { establishPath, samePath, type EstablishPathRequest, type PathRecord } from './paths.js';
import { recoverPairs, type RecoveryReport } from './recovery.js';
import { PprcRegistry, type CopyMode, type LssSettings, type PairRecord, type PprcState } from './registry.js';
import type { SecondaryEss, SecondaryVolumeFacts } from './secondary-ess.js';
import { InProcessSecondaryEss, SecondarySide, type BoundSecondary } from './secondary-side.js';
import { TrackBitmaps, type TrackBitmapsOptions } from './track-bitmaps.js';

export type PprcPool = Pick<Pool, 'dir' | 'serial' | 'lunInfo' | 'volume' | 'addVeto'>;

export interface PprcManagerOptions {
  /** Time for ack timeouts, link latency, consistency timeouts (default: real time). */
  clock?: Clock;
  /** This pool's FlashCopy (CB-01..07): roles, 'establishing', regating a FlashCopied secondary. */
  flashcopy?: FlashCopyManager;
  /** W2: how long a mirrored write waits for the secondary's ack (default 30 000 ms). */
  remoteAckTimeoutMs?: number;
  /** Track size for OOS bitmaps and copying: bytes or '64K' (power of two, 4 KiB..1 MiB; default 64 KiB). */
  trackSize?: number | string;
  /** PP-40 / W5: the secondary's write (and the primary's) is durable before the host's ack. */
  fsyncOnAck?: boolean;
  /**
   * When the HOT / OOS track marks are fdatasynced (README "Durability of the
   * marks"). 'process' (default): written to the journal before the write they
   * cover (the page cache survives a crash of lunrig), fdatasynced before any
   * FUA / fsyncOnAck write and any host flush; HOT bits are cleared without
   * flushing the volumes. 'power': each mark fdatasynced before its write, both
   * sides flushed before HOT / OOS bits are cleared (survives power loss).
   */
  durability?: 'process' | 'power';
  /** §7 item 3: the write whose ack failed gets an error ('error', default) or is recorded and completes. */
  failedWritePolicy?: 'error' | 'suspend-and-complete';
  /** 'ess' (default): 8 links per ESS, 64 paths per link, 4 secondary ESSs, 103 km. 'relaxed': none. */
  profile?: 'ess' | 'relaxed';
  /** §3.3 "permit if target is online": whether a host holds the LUN online (default never). */
  isOnline?(lun: string): boolean;
  /**
   * HOT marks (mirror writes possibly in flight, copied after a crash) cover
   * regions of this many tracks (default 16: 1 MiB with 64 KiB tracks, like
   * dm-mirror's regions). Larger: fewer journal records under random writes,
   * more to copy after a crash.
   */
  hotRegionTracks?: number;
  /** A HOT region is cleared once no mirror write touched it for this long (default 1000 ms; 0: as soon as it is quiet). */
  hotQuietMs?: number;
  /** Tracks per copier batch (default 16). */
  copyBatchTracks?: number;
  /**
   * X6 on the clock: the primary side pings each DUPLEX / DUPLEX_PENDING pair's
   * secondary every `intervalMs` (default timeoutMs / 3; a failed ping is a
   * failure to reach it: the pair suspends per CRIT), and the secondary side
   * suspends ('primary-lost') a pair whose primary stayed silent over
   * `timeoutMs`. Both ESSs need it; off by default.
   */
  heartbeat?: { intervalMs?: number; timeoutMs: number };
}

export interface EstablishRequest {
  primary: string;
  /** The secondary: on ESS `ess` (a serial given to addEss; default this pool). */
  secondary: { ess?: string; volume: string };
  mode: CopyMode;
  criticalVolume?: boolean;
  permitIfTargetOnline?: boolean;
  /** NO_COPY on a suspended pair drops its change recording: only with force (§3.11). */
  force?: boolean;
}

export interface PairInfo {
  id: string;
  primary: { serial: string; volume: string; lss: number };
  secondary: { serial: string; volume: string; lss: number; volumeId: string };
  state: RunState;
  suspended: boolean;
  suspendReason?: string;
  writeInhibited: boolean;
  criticalVolume: boolean;
  oosTracks: number;
  totalTracks: number;
  trackSize: number;
  /** Tracks the copier sent since this process opened the pair. */
  copiedTracks: number;
  percentCopied: number;
}

export type PprcRole = 'source' | 'target' | 'simplex';

/** A type alias (not an interface) so it fits the control views' `{ [key: string]: unknown }` shapes. */
export type PprcVolumeQuery = {
  volume: string;
  role: PprcRole;
  /** SIMPLEX, DUPLEX_PENDING, DUPLEX, SUSPENDED (or ESTABLISHING / TERMINATING while they run). */
  state: RunState | 'SIMPLEX';
  suspended: boolean;
  oosTracks: number;
  totalTracks: number;
  suspendReason?: string;
  writeInhibited: boolean;
  pair?: PairInfo;
  /** The two rsQuery lines (`State=source, status=suspended, ...`). */
  ess: string[];
};

export interface StateChange {
  from: RunState | 'SIMPLEX';
  to: RunState | 'SIMPLEX';
  reason?: string;
}

export interface PprcEvents {
  state: [PairInfo, StateChange];
  progress: [PairInfo];
  /** A secondary of this pool changed status (bound, suspended, unbound). */
  secondary: [{ volume: string; bound: boolean; suspended: boolean; writeInhibited: boolean; reason?: string }];
}

export type { RecoveryReport } from './recovery.js';

export interface AuditReport {
  volume: string;
  tracks: number;
  trackSize: number;
  differing: number[];
}

const DEFAULT_TRACK = 64 * 1024;
const PROCESS_CHECKPOINT_BYTES = 8 * 1024 * 1024;

export class PprcManager extends EventEmitter<PprcEvents> {
  readonly recovery: RecoveryReport = { suspended: [], dropped: [] };
  private readonly clock: Clock;
  private readonly queue = new SerialQueue();
  private readonly linkTable = new Map<string, Link>();
  private pathList: PathRecord[] = [];
  private readonly lss = new Map<number, LssSettings>();
  private readonly pairs = new Map<string, Pair>();
  private readonly essMap = new Map<string, SecondaryEss>();
  private readonly policy: FailurePolicy;
  private nextPair = 1;
  private secondary!: SecondarySide;
  private readonly ctx: PairContext;
  private readonly trackSize: number;
  private unveto: (() => void) | undefined;
  private closing: Promise<void> | undefined;
  /** Each pair's HOT sweep in progress (close waits for it). */
  private readonly hotClearing = new Map<string, Promise<void>>();
  /** When each pair's HOT regions were last swept (clock ms). */
  private readonly hotSweptAt = new Map<string, number>();
  private selfEss: InProcessSecondaryEss | undefined;
  private readonly heartbeatTimers = new Set<ClockTimer>();
  private readonly pinging = new Set<string>();

  private constructor(
    private readonly pool: PprcPool,
    private readonly registry: PprcRegistry,
    private readonly options: PprcManagerOptions,
  ) {
    super();
    this.clock = options.clock ?? systemClock;
    this.trackSize = parseTrackSize(options.trackSize);
    const { hotRegionTracks, hotQuietMs } = options;
    if (hotRegionTracks !== undefined && (!Number.isSafeInteger(hotRegionTracks) || hotRegionTracks < 1)) {
      throw new LunrigError('INVALID_ARGUMENT', `hotRegionTracks must be a whole number >= 1, got ${String(hotRegionTracks)}`);
    }
    if (hotQuietMs !== undefined && (!Number.isFinite(hotQuietMs) || hotQuietMs < 0)) throw new LunrigError('INVALID_ARGUMENT', `hotQuietMs must be >= 0, got ${String(hotQuietMs)}`);
    this.policy = new FailurePolicy({
      clock: this.clock,
      pairs: () => this.pairs.values(),
      lssSettings: (lss) => this.lssSettings(lss),
      upLinks: (pair) => this.upLinks(pair),
      setState: (pair, to, from, reason) => this.setState(pair, to, from, reason),
      save: () => this.save(),
      ess: (serial) => this.ess(serial),
    });
    this.ctx = {
      clock: this.clock,
      remoteAckTimeoutMs: options.remoteAckTimeoutMs ?? 30_000,
      fsyncOnAck: options.fsyncOnAck ?? false,
      durability: options.durability ?? 'process',
      failedWritePolicy: options.failedWritePolicy ?? 'error',
      upLinks: (pair) => this.upLinks(pair),
      ess: (serial) => this.ess(serial),
      fail: (pair, failure) => this.policy.fail(pair, failure),
      hotIdle: (pair) => this.hotIdle(pair),
    };
  }

  static async open(pool: PprcPool, options: PprcManagerOptions = {}): Promise<PprcManager> {
    const manager = new PprcManager(pool, await PprcRegistry.open(pool.dir), options);
    await manager.restore();
    manager.unveto = pool.addVeto((change) => manager.veto(change));
    if (options.heartbeat) manager.startHeartbeat(options.heartbeat);
    options.flashcopy?.on('established', (info) => {
      // CB-04: FlashCopy stacked its source layer over a secondary's gate: put the gate back on top.
      for (const v of [info.source, info.target]) if (manager.secondary.bound.has(v)) void manager.secondary.regate(v).catch(() => undefined);
    });
    return manager;
  }

  get serial(): string {
    return this.pool.serial;
  }

  // --- ESSs, links, paths -------------------------------------------------------

  /** This pool's secondary side as a SecondaryEss (for itself, other pools of the process, the remote server side). */
  asSecondary(): InProcessSecondaryEss {
    return this.secondary.asEss({
      suspendFromTarget: async (pairId) => {
        const pair = [...this.pairs.values()].find((p) => p.id === pairId);
        if (!pair) return false;
        await this.suspend(pair.primary, { from: 'target' });
        return true;
      },
      pairState: (pairId) => [...this.pairs.values()].find((p) => p.id === pairId)?.state,
    });
  }

  /** Register another ESS (its serial must differ from this pool's, which is always known). */
  addEss(ess: SecondaryEss): void {
    if (ess.serial === this.serial) throw new LunrigError('INVALID_ARGUMENT', `ESS ${ess.serial} is this pool; it is always known`);
    this.essMap.set(ess.serial, ess);
  }

  essList(): string[] {
    return [this.serial, ...this.essMap.keys()];
  }

  addLink(request: AddLinkRequest): Promise<LinkInfo> {
    return this.control(async () => {
      const record = newLinkRecord(request, this.linkRecords(), this.limits);
      const link = new Link(record, this.clock);
      this.linkTable.set(record.id, link);
      await this.save();
      return link.info();
    });
  }

  /** Remove a link; paths keep the other links (a path left with none behaves as all paths lost). */
  removeLink(id: string): Promise<void> {
    return this.control(async () => {
      this.link(id);
      this.linkTable.delete(id);
      this.pathList = this.pathList.map((p) => ({ ...p, links: p.links.filter((l) => l !== id) }));
      await this.save();
    });
  }

  /** Fault injection on one link: down, one-way latency, bandwidth. Takes effect at once. */
  async setLinkFault(id: string, fault: LinkFault): Promise<LinkInfo> {
    this.checkOpen();
    const link = this.link(id);
    link.setFault(fault);
    await this.save();
    return link.info();
  }

  links(): LinkInfo[] {
    return [...this.linkTable.values()].map((l) => l.info());
  }

  establishPath(request: EstablishPathRequest): Promise<{ path: PathRecord; notExecuted: boolean }> {
    return this.control(async () => {
      const result = establishPath(this.pathList, this.linkRecords(), request, this.limits);
      if (!result.notExecuted) {
        this.pathList = result.paths;
        await this.save();
      }
      return { path: result.path, notExecuted: result.notExecuted };
    });
  }

  /** Removing the last path of active pairs is allowed: they see all paths lost on their next write (§3.11). */
  removePath(request: { lss: number | string; to: string; targetLss: number | string }): Promise<void> {
    return this.control(async () => {
      const key = { lss: parseLss(request.lss), to: request.to, targetLss: parseLss(request.targetLss) };
      if (!this.pathList.some((p) => samePath(p, key))) {
        throw new LunrigError('PPRC_PATH_NOT_FOUND', `no path ${formatLss(key.lss)} -> ${key.to}:${formatLss(key.targetLss)}`, key);
      }
      this.pathList = this.pathList.filter((p) => !samePath(p, key));
      await this.save();
    });
  }

  paths(): PathRecord[] {
    return this.pathList.map((p) => ({ ...p, links: [...p.links] }));
  }

  // --- LSS settings -------------------------------------------------------------

  /** Critical Heavy takes effect at the next powerCycle() (PP-28); consistency-group settings at once. */
  setLss(lss: number | string, settings: { criticalHeavy?: boolean; consistencyGroup?: boolean; consistencyTimeoutSec?: number }): Promise<LssSettings> {
    return this.control(async () => {
      const n = parseLss(lss);
      const cur = this.lssSettings(n);
      if (settings.consistencyTimeoutSec !== undefined && !(settings.consistencyTimeoutSec >= 0)) {
        throw new LunrigError('INVALID_ARGUMENT', `consistencyTimeoutSec must be >= 0, got ${settings.consistencyTimeoutSec}`);
      }
      const next: LssSettings = {
        ...cur,
        ...(settings.criticalHeavy !== undefined && { criticalHeavy: settings.criticalHeavy }),
        ...(settings.consistencyGroup !== undefined && { consistencyGroup: settings.consistencyGroup }),
        ...(settings.consistencyTimeoutSec !== undefined && { consistencyTimeoutSec: settings.consistencyTimeoutSec }),
      };
      this.lss.set(n, next);
      await this.save();
      return { ...next };
    });
  }

  lssSettings(lss: number | string): LssSettings {
    const n = parseLss(lss);
    return { ...(this.lss.get(n) ?? { criticalHeavy: false, criticalHeavyActive: false, consistencyGroup: false, consistencyTimeoutSec: 120 }) };
  }

  /** A simulated ESS power cycle: configured CRIT settings take effect (PP-28). Pairs keep their state. */
  powerCycle(): Promise<void> {
    return this.control(async () => {
      for (const [n, s] of this.lss) this.lss.set(n, { ...s, criticalHeavyActive: s.criticalHeavy });
      await this.save();
    });
  }

  // --- pairs --------------------------------------------------------------------

  establish(request: EstablishRequest): Promise<PairInfo> {
    return this.control(async () => {
      const mode = request.mode;
      if (mode !== 'copy-entire' && mode !== 'no-copy' && mode !== 'out-of-sync-only') {
        throw new LunrigError('PPRC_INVALID_COPY_MODE', `copy mode must be copy-entire, no-copy or out-of-sync-only, got '${String(mode)}'`);
      }
      const primaryLun = this.pool.lunInfo(request.primary);
      const essSerial = request.secondary.ess ?? this.serial;
      const ess = this.ess(essSerial);
      const facts = await ess.describe(request.secondary.volume);
      const existing = this.pairOf(request.primary);
      const names = { primary: request.primary, secondary: `${essSerial}:${request.secondary.volume}` };
      if (essSerial === this.serial && facts.identity.lss === primaryLun.lss) {
        throw new LunrigError('PPRC_SAME_LSS', `primary and secondary are both in LSS ${formatLss(primaryLun.lss)} of ${this.serial} (PP-04)`, names);
      }
      if (this.secondary.bound.has(request.primary)) {
        throw new LunrigError('PPRC_VOLUME_IN_PAIR', `'${request.primary}' is a PPRC secondary: no cascading (PP-13)`, names);
      }
      const fc = this.options.flashcopy;
      if (fc?.stateOf(request.primary) === 'establishing' || facts.fcEstablishing) {
        throw new LunrigError('RELATIONSHIP_NOT_ESTABLISHED', `a FlashCopy of ${fc?.stateOf(request.primary) === 'establishing' ? request.primary : request.secondary.volume} is still establishing (CB-06)`, names);
      }
      if (facts.fcRole === 'target') {
        throw new LunrigError('FC_UNSUPPORTED_COMBINATION', `secondary '${request.secondary.volume}' is a FlashCopy target: mirroring onto it would break its T0`, names);
      }
      if (existing) return this.reestablish(existing, request, facts);
      if (mode === 'out-of-sync-only') {
        throw new LunrigError('PPRC_INVALID_COPY_MODE', `'${request.primary}' is simplex: out-of-sync-only needs a suspended pair (X13, PP-12)`, names);
      }
      if (facts.role !== 'simplex') throw new LunrigError('PPRC_VOLUME_IN_PAIR', `secondary '${request.secondary.volume}' is already a PPRC ${facts.role} (PP-13)`, names);
      this.checkPath(primaryLun.lss, essSerial, facts.identity.lss, names);
      this.checkSecondary(primaryLun.size, facts, request, names);

      const id = `pp${this.nextPair++}`;
      const record: PairRecord = {
        id,
        primary: { name: request.primary, uniqueId: primaryLun.uniqueId, lss: primaryLun.lss },
        secondary: { ess: essSerial, volume: request.secondary.volume, lss: facts.identity.lss, volumeId: facts.identity.volumeId },
        criticalVolume: request.criticalVolume ?? false,
        state: mode === 'no-copy' ? 'DUPLEX' : 'DUPLEX_PENDING',
        writeInhibited: false,
        size: primaryLun.size,
        trackSize: this.trackSize,
        establishedAt: new Date(this.clock.now()).toISOString(),
      };
      const tracks = Math.ceil(record.size / record.trackSize);
      const store = await BitmapJournal.open(this.registry.bitmapBase(id), [tracks, tracks], this.journalOptions);
      const pair = new Pair(record, new TrackBitmaps(store, tracks, this.bitmapOptions()), this.ctx);
      pair.state = 'ESTABLISHING';
      let bound = false;
      try {
        if (mode === 'copy-entire') await pair.bitmaps.setAllOos();
        await ess.bind(request.secondary.volume, {
          pairId: id,
          primary: { serial: this.serial, lss: primaryLun.lss, volume: request.primary, volumeId: primaryLun.volumeId },
          criticalHeavy: this.lssSettings(primaryLun.lss).criticalHeavyActive,
        });
        bound = true;
        this.pairs.set(id, pair);
        await this.save();
        await this.pool.volume(request.primary).restack((top) => {
          pair.layer = new MirrorLayer(top, pair);
          return pair.layer;
        });
      } catch (err) {
        this.pairs.delete(id);
        this.hotSweptAt.delete(id);
        if (bound) await ess.unbind(request.secondary.volume, id).catch(() => undefined);
        await this.save().catch(() => undefined);
        await store.destroy().catch(() => undefined);
        throw err;
      }
      this.setState(pair, record.state, 'SIMPLEX', `establish ${mode}`);
      this.startCopier(pair);
      return this.info(pair);
    });
  }

  /** Establish on a volume that is already a primary: resync (X7), full copy, or NO_COPY with force. */
  private async reestablish(pair: Pair, request: EstablishRequest, facts: SecondaryVolumeFacts): Promise<PairInfo> {
    const names = { primary: request.primary, secondary: `${request.secondary.ess ?? this.serial}:${request.secondary.volume}` };
    const same = pair.record.secondary.volume === request.secondary.volume && pair.record.secondary.ess === (request.secondary.ess ?? this.serial);
    if (!same) throw new LunrigError('PPRC_VOLUME_IN_PAIR', `'${request.primary}' is already the primary of pair ${pair.id} (PP-13)`, names);
    if (pair.state !== 'SUSPENDED') {
      throw new LunrigError('PPRC_VOLUME_IN_PAIR', `pair ${pair.id} is ${pair.state}; only a suspended pair can be re-established`, names);
    }
    if (request.mode === 'no-copy' && !request.force) {
      throw new LunrigError('PPRC_INVALID_COPY_MODE', `no-copy on suspended pair ${pair.id} would drop its change recording; use force (§3.11)`, names);
    }
    if (facts.role === 'source' || (facts.role === 'target' && facts.pairId !== pair.id)) {
      throw new LunrigError('PPRC_VOLUME_IN_PAIR', `secondary '${request.secondary.volume}' is in another pair`, names);
    }
    this.checkPath(pair.record.primary.lss, pair.record.secondary.ess, pair.record.secondary.lss, names);
    if (facts.role === 'simplex') this.checkSecondary(pair.record.size, facts, request, names);
    const ess = this.ess(pair.record.secondary.ess);
    const from = pair.state;
    pair.state = 'ESTABLISHING';
    // Fresh channels: a cached one may be what failed (a dropped remote connection).
    await pair.closeChannels();
    try {
      if (request.mode === 'copy-entire') await pair.bitmaps.setAllOos();
      if (request.mode === 'no-copy') await pair.bitmaps.clearAllOos();
      await ess.bind(pair.record.secondary.volume, {
        pairId: pair.id,
        primary: { serial: this.serial, lss: pair.record.primary.lss, volume: pair.primary, volumeId: this.pool.lunInfo(pair.primary).volumeId },
        criticalHeavy: this.lssSettings(pair.record.primary.lss).criticalHeavyActive,
      });
      await ess.setStatus(pair.record.secondary.volume, pair.id, { suspended: false, writeInhibited: false });
    } catch (err) {
      pair.state = from;
      throw err;
    }
    pair.hold?.release();
    pair.hold = undefined;
    const { suspendReason: _r, ...rest } = pair.record;
    pair.record = { ...rest, writeInhibited: false, criticalVolume: request.criticalVolume ?? pair.record.criticalVolume };
    const to = pair.bitmaps.oosCount() === 0 ? 'DUPLEX' : 'DUPLEX_PENDING';
    this.setState(pair, to, from, `establish ${request.mode}`);
    await this.save();
    this.startCopier(pair);
    return this.info(pair);
  }

  /**
   * Manual suspend (X4): of a pair whose primary is here, or of a secondary
   * here (scheduled on the target ESS, PP-17: the primary is told when it is
   * in this process; otherwise only the secondary's status changes).
   */
  suspend(volume: string, options: { from?: 'source' | 'target' } = {}): Promise<PairInfo | PprcVolumeQuery> {
    const pair = this.pairOf(volume);
    if (!pair) {
      const entry = this.secondary.bound.get(volume);
      if (!entry) return Promise.reject(notInPair(volume));
      return this.suspendSecondary(entry);
    }
    return this.control(async () => {
      if (pair.state !== 'DUPLEX' && pair.state !== 'DUPLEX_PENDING') {
        if (pair.state === 'SUSPENDED') return this.info(pair);
        throw new LunrigError('PPRC_NOT_IN_PAIR', `pair ${pair.id} is ${pair.state}`, { volume });
      }
      this.policy.suspendNow(pair, options.from === 'target' ? 'manual-target' : 'manual-source', false, false);
      await pair.copier?.stop();
      pair.copier = undefined;
      await this.policy.afterSuspend(pair);
      return this.info(pair);
    });
  }

  private async suspendSecondary(entry: BoundSecondary): Promise<PprcVolumeQuery> {
    const peer = this.peerOf(entry.binding.primary.serial);
    if (!(peer && (await peer.suspendFromTarget(entry.binding.pairId)))) {
      await this.secondary.setStatus(entry.volume, entry.binding.pairId, { ...entry.status, suspended: true, reason: 'manual-target' });
    }
    return this.query(entry.volume);
  }

  /**
   * Terminate (X8 / X9). Of a primary here: both volumes simplex, change
   * recording and write-inhibit gone (the secondary is told; if it cannot be
   * reached only this side ends). Of a secondary here: only it becomes simplex
   * and accessible (split mirror, failover); the primary keeps its pair.
   */
  terminate(volume: string, _options: { from?: 'source' | 'target' } = {}): Promise<PprcVolumeQuery> {
    return this.control(async () => {
      const pair = this.pairOf(volume);
      if (!pair) {
        if (!this.secondary.bound.has(volume)) throw notInPair(volume);
        await this.secondary.unbind(volume);
        return this.query(volume);
      }
      const from = pair.state;
      pair.state = 'TERMINATING';
      await pair.copier?.stop();
      pair.copier = undefined;
      pair.hold?.release();
      pair.hold = undefined;
      await this.pool.volume(pair.primary).restack((top) => {
        const layer = pair.layer!;
        layer.detach();
        return top === layer ? layer.below : top;
      });
      this.pairs.delete(pair.id);
      this.hotSweptAt.delete(pair.id);
      await this.save();
      await pair.closeChannels();
      try {
        await this.ess(pair.record.secondary.ess).unbind(pair.record.secondary.volume, pair.id);
      } catch {
        // X9 seen from the other side: the secondary ESS is unreachable; it stays bound there until terminated there.
      }
      await pair.bitmaps.store.destroy().catch(() => undefined);
      pair.state = from;
      this.emit('state', { ...this.info(pair), state: 'TERMINATING' }, { from, to: 'SIMPLEX', reason: 'terminate' });
      return this.query(volume);
    });
  }

  /**
   * PP-38 / §3.9: suspend every pair whose primary is in these LSSs at one
   * instant, holding their writes (not failing them) until release() or the
   * LSS's consistency timeout.
   */
  freeze(lssList: ReadonlyArray<number | string>): Promise<PairInfo[]> {
    return this.control(async () => {
      const set = new Set(lssList.map((l) => parseLss(l)));
      const hit = [...this.pairs.values()].filter((p) => set.has(p.record.primary.lss) && p.state !== 'ESTABLISHING' && p.state !== 'TERMINATING');
      // Synchronously for all of them first: no held write can slip through between two pairs.
      for (const pair of hit) {
        pair.hold ??= makeHold();
        if (pair.state === 'DUPLEX' || pair.state === 'DUPLEX_PENDING') this.policy.suspendNow(pair, 'freeze', false, false);
      }
      for (const n of set) this.policy.armTimeout(n);
      for (const pair of hit) {
        void pair.copier?.stop();
        pair.copier = undefined;
      }
      await Promise.all(hit.map((p) => this.policy.afterSuspend(p)));
      return hit.map((p) => this.info(p));
    });
  }

  /** Release writes held by a freeze or a consistency-group failure in these LSSs. */
  release(lssList: ReadonlyArray<number | string>): Promise<PairInfo[]> {
    return this.control(async () => this.policy.releaseNow(new Set(lssList.map((l) => parseLss(l)))).map((p) => this.info(p)));
  }

  // --- queries ------------------------------------------------------------------

  query(volume: string): PprcVolumeQuery {
    const lun = this.pool.lunInfo(volume);
    const ess = (view: PprcView) => rsQueryLines({ ...lun, serial: this.serial }, this.options.flashcopy?.query(volume).role ?? 'none', view);
    const pair = this.pairOf(volume);
    if (pair) {
      const info = this.info(pair);
      return {
        volume,
        role: 'source',
        state: pair.state,
        suspended: info.suspended,
        oosTracks: info.oosTracks,
        totalTracks: info.totalTracks,
        ...(info.suspendReason !== undefined && { suspendReason: info.suspendReason }),
        writeInhibited: info.writeInhibited,
        pair: info,
        ess: ess({ state: 'source', suspended: info.suspended }),
      };
    }
    const entry = this.secondary.bound.get(volume);
    if (entry) {
      const seen = this.peerOf(entry.binding.primary.serial)?.pairState(entry.binding.pairId);
      const state = entry.status.suspended ? 'SUSPENDED' : ((seen as RunState | undefined) ?? 'DUPLEX');
      return {
        volume,
        role: 'target',
        state,
        suspended: entry.status.suspended,
        oosTracks: 0,
        totalTracks: 0,
        ...(entry.status.reason !== undefined && { suspendReason: entry.status.reason }),
        writeInhibited: entry.status.writeInhibited,
        ess: ess({ state: 'target', suspended: entry.status.suspended }),
      };
    }
    return { volume, role: 'simplex', state: 'SIMPLEX', suspended: false, oosTracks: 0, totalTracks: 0, writeInhibited: false, ess: ess({ state: 'simplex', suspended: false }) };
  }

  /** The tracks of the volume's pair still out of sync (diagnostics, tests). */
  outOfSyncTracks(volume: string): number[] {
    const pair = this.pairOf(volume);
    if (!pair) throw notInPair(volume);
    const out: number[] = [];
    for (let t = native.findNextSet(pair.bitmaps.oos, 0, pair.tracks); t >= 0 && t < pair.tracks; t = native.findNextSet(pair.bitmaps.oos, t + 1, pair.tracks)) out.push(t);
    return out;
  }

  list(): PairInfo[] {
    return [...this.pairs.values()].map((p) => this.info(p));
  }

  /** For FlashCopyManager's `pprcRole` option (F-P10, CB-04, CB-07). */
  pprcRole(lun: string): 'primary' | 'secondary' | undefined {
    if (this.pairOf(lun)) return 'primary';
    if (this.secondary.bound.has(lun)) return 'secondary';
    return undefined;
  }

  /** For FlashCopyManager's `pprcView` option (the rsQuery State= / status= strings). */
  pprcView(lun: string): PprcView {
    const pair = this.pairOf(lun);
    if (pair) return { state: 'source', suspended: pair.state === 'SUSPENDED' };
    const entry = this.secondary.bound.get(lun);
    if (entry) return { state: 'target', suspended: entry.status.suspended };
    return { state: 'simplex', suspended: false };
  }

  /**
   * Resolves once the pair of `volume` has copied `thresholdPercent` (default
   * 100: DUPLEX) of its tracks (rsQueryComplete -t, PP-36); rejects with
   * PPRC_NOT_IN_PAIR when the volume has no pair or the pair suspends first.
   */
  waitForCopy(volume: string, options: { thresholdPercent?: number; signal?: AbortSignal } = {}): Promise<PairInfo> {
    const threshold = options.thresholdPercent ?? 100;
    const pair = this.pairOf(volume);
    if (!pair) return Promise.reject(notInPair(volume));
    const reached = (): boolean => pair.state === 'DUPLEX' || (pair.state === 'DUPLEX_PENDING' && threshold < 100 && this.info(pair).percentCopied >= threshold);
    if (reached()) return Promise.resolve(this.info(pair));
    if (pair.state === 'SUSPENDED') return Promise.reject(new LunrigError('PPRC_NOT_IN_PAIR', `pair ${pair.id} is suspended: no copy is running`, { volume }));
    return new Promise<PairInfo>((resolve, reject) => {
      const check = (info: PairInfo): void => {
        if (info.id !== pair.id) return;
        if (reached()) {
          cleanup();
          resolve(this.info(pair));
        } else if (pair.state === 'SUSPENDED' || !this.pairs.has(pair.id)) {
          cleanup();
          reject(new LunrigError('PPRC_NOT_IN_PAIR', `pair ${pair.id} is ${this.pairs.has(pair.id) ? 'suspended' : 'terminated'}: the copy stopped`, { volume }));
        }
      };
      const abort = (): void => {
        cleanup();
        reject(options.signal!.reason);
      };
      const cleanup = (): void => {
        this.off('state', check);
        this.off('progress', check);
        options.signal?.removeEventListener('abort', abort);
      };
      this.on('state', check);
      this.on('progress', check);
      options.signal?.addEventListener('abort', abort, { once: true });
    });
  }

  /**
   * Compare primary and secondary track by track with CRC32C (the primary's
   * logical content, the secondary's through its channel). Catches the
   * split-mirror hazard (PP-33): tracks changed on a simplex secondary.
   */
  async audit(volume: string): Promise<AuditReport> {
    const pair = this.pairOf(volume);
    if (!pair) throw notInPair(volume);
    const ess = this.ess(pair.record.secondary.ess);
    const channel = await ess.channel(pair.record.secondary.volume, pair.id, 0);
    const local = pair.layer!.below;
    const { trackSize, size } = pair.record;
    const differing: number[] = [];
    try {
      for (let t = 0; t < pair.tracks; t++) {
        const offset = t * trackSize;
        const length = Math.min(trackSize, size - offset);
        const [a, b] = await Promise.all([local.read(offset, length), channel.read(offset, length)]);
        if (native.crc32c(a) !== native.crc32c(b) || Buffer.compare(a, b) !== 0) differing.push(t);
      }
    } finally {
      await ess.closeChannel(channel).catch(() => undefined);
    }
    return { volume, tracks: pair.tracks, trackSize, differing };
  }

  // --- secondary side -------------------------------------------------------------

  /** PP-22: make a secondary volume of this pool fail (or recover) for the pair's channel writes. */
  setSecondaryDeviceFault(volume: string, failed: boolean): void {
    this.secondary.setDeviceFault(volume, failed);
  }

  /** X6 / PP-30: this pool's secondaries of primary ESS `serial` notice its failure and suspend. */
  primaryLost(serial: string): Promise<string[]> {
    return this.secondary.primaryLost(serial);
  }

  /** Stop copiers, release holds, close bitmaps (kept for the next open). Close it before the pool. */
  close(): Promise<void> {
    this.closing ??= this.queue.run(async () => {
      this.unveto?.();
      this.policy.close();
      for (const t of this.heartbeatTimers) this.clock.clearTimeout(t);
      for (const pair of this.pairs.values()) {
        pair.hold?.release();
        pair.hold = undefined;
      }
      await Promise.all([...this.pairs.values()].map((p) => p.copier?.stop()));
      await Promise.all(this.hotClearing.values());
      for (const pair of this.pairs.values()) {
        await pair.closeChannels();
        await pair.bitmaps.store.close();
      }
    });
    return this.closing;
  }

  // --- internals --------------------------------------------------------------------

  private startHeartbeat({ intervalMs, timeoutMs }: { intervalMs?: number; timeoutMs: number }): void {
    if (!(timeoutMs > 0)) throw new LunrigError('INVALID_ARGUMENT', `heartbeat.timeoutMs must be > 0, got ${timeoutMs}`);
    const every = (ms: number, fn: () => void): void => {
      const arm = (): void => {
        const t = this.clock.setTimeout(() => {
          this.heartbeatTimers.delete(t);
          if (this.closing) return;
          fn();
          arm();
        }, ms);
        this.heartbeatTimers.add(t);
      };
      arm();
    };
    every(intervalMs ?? timeoutMs / 3, () => {
      for (const pair of this.pairs.values()) {
        if ((pair.state !== 'DUPLEX' && pair.state !== 'DUPLEX_PENDING') || this.pinging.has(pair.id)) continue;
        this.pinging.add(pair.id);
        void pair
          .remote(0, (ch) => ch.read(0, 0))
          .then((failure) => (failure ? this.policy.fail(pair, failure) : undefined))
          .catch(() => undefined)
          .finally(() => this.pinging.delete(pair.id));
      }
    });
    every(timeoutMs / 2, () => void this.secondary.expireSilent(timeoutMs).catch(() => undefined));
  }

  private async restore(): Promise<void> {
    const state = this.registry.initial;
    this.nextPair = state.nextPair;
    for (const record of state.links) this.linkTable.set(record.id, new Link(record, this.clock));
    this.pathList = state.paths;
    // A restart is a power cycle: configured CRIT settings are the ones in effect.
    for (const [k, s] of Object.entries(state.lss)) this.lss.set(Number(k), { ...s, criticalHeavyActive: s.criticalHeavy });
    this.secondary = await SecondarySide.open(this.pool, {
      isPrimary: (v) => this.pairOf(v) !== undefined,
      ...(this.options.isOnline && { isOnline: this.options.isOnline }),
      flashcopy: this.options.flashcopy,
      changed: (volume, entry) =>
        this.emit('secondary', {
          volume,
          bound: entry !== undefined,
          suspended: entry?.status.suspended ?? false,
          writeInhibited: entry?.status.writeInhibited ?? false,
          ...(entry?.status.reason !== undefined && { reason: entry.status.reason }),
        }),
      now: () => this.clock.now(),
    });
    await recoverPairs(
      state.pairs,
      {
        pool: this.pool,
        registry: this.registry,
        ctx: this.ctx,
        journalOptions: this.journalOptions,
        bitmapOptions: this.bitmapOptions(),
        adopt: (pair) => this.pairs.set(pair.id, pair),
      },
      this.recovery,
    );
    await this.save();
  }

  private startCopier(pair: Pair): void {
    if (pair.state !== 'DUPLEX_PENDING' || pair.copier) return;
    pair.copier = new Copier(pair, this.ctx, {
      primary: () => pair.layer!.below,
      ...(this.options.copyBatchTracks !== undefined && { batchTracks: this.options.copyBatchTracks }),
      onBatch: () => this.emit('progress', this.info(pair)),
      done: async () => {
        if (pair.state !== 'DUPLEX_PENDING') return;
        pair.copier = undefined;
        this.setState(pair, 'DUPLEX', 'DUPLEX_PENDING', 'copy complete');
        await this.save();
      },
    });
  }

  private setState(pair: Pair, to: RunState, from: RunState | 'SIMPLEX', reason?: string): void {
    pair.state = to;
    if (to === 'DUPLEX' || to === 'DUPLEX_PENDING' || to === 'SUSPENDED') pair.record = { ...pair.record, state: to };
    this.emit('state', this.info(pair), { from, to, ...(reason !== undefined && { reason }) });
  }

  /**
   * After a mirror write: at most every half quiet period, clear the HOT
   * regions that have been quiet for `hotQuietMs`. 'power': flush both sides
   * first, so a cleared region is durable on both. 'process': a completed
   * mirror write is in both sides' page cache, which is what that rule
   * promises between host flushes: no flush. A region written again after the
   * cut-off keeps its bit (clearHot checks).
   */
  private hotIdle(pair: Pair): void {
    if (pair.bitmaps.quietHotRegions === 0 || this.hotClearing.has(pair.id)) return;
    const quietMs = this.options.hotQuietMs ?? 1000;
    const now = this.clock.now();
    if (now - (this.hotSweptAt.get(pair.id) ?? -Infinity) < quietMs / 2) return;
    this.hotSweptAt.set(pair.id, now);
    const cutoff = now - quietMs;
    const quiet = pair.bitmaps.quietHotRegionsSince(cutoff);
    if (quiet.length === 0) return;
    const sweep = (async () => {
      try {
        if (this.ctx.durability === 'power') {
          await pair.layer?.below.flush();
          if (pair.state !== 'DUPLEX' && pair.state !== 'DUPLEX_PENDING') return;
          if (await pair.remote(0, (ch) => ch.flush())) return;
        }
        await pair.bitmaps.clearHot(quiet, cutoff);
      } catch {
        // Leave the bits: recovery only copies a few tracks more.
      } finally {
        this.hotClearing.delete(pair.id);
      }
    })();
    this.hotClearing.set(pair.id, sweep);
  }

  private upLinks(pair: Pair): Link[] {
    const path = this.pathList.find((p) => p.lss === pair.record.primary.lss && p.to === pair.record.secondary.ess && p.targetLss === pair.record.secondary.lss);
    if (!path) return [];
    return path.links.map((id) => this.linkTable.get(id)).filter((l): l is Link => l !== undefined && l.up);
  }

  private checkPath(lss: number, ess: string, targetLss: number, names: Record<string, string>): void {
    const path = this.pathList.find((p) => p.lss === lss && p.to === ess && p.targetLss === targetLss);
    if (!path || path.links.length === 0) {
      throw new LunrigError('PPRC_NO_PATH', `no path from ${this.serial}:${formatLss(lss)} to ${ess}:${formatLss(targetLss)} (PP-01)`, names);
    }
  }

  private checkSecondary(primarySize: number, facts: SecondaryVolumeFacts, request: EstablishRequest, names: Record<string, string>): void {
    if (facts.size < primarySize) {
      throw new LunrigError('PPRC_TARGET_TOO_SMALL', `secondary '${facts.name}' (${facts.size} bytes) is smaller than the primary (${primarySize} bytes) (PP-05)`, names);
    }
    if (facts.online && !request.permitIfTargetOnline) {
      throw new LunrigError('PPRC_TARGET_ONLINE', `secondary '${facts.name}' is online; permit it with permitIfTargetOnline (PP-05)`, names);
    }
  }

  private info(pair: Pair): PairInfo {
    const oos = pair.bitmaps.oosCount();
    return {
      id: pair.id,
      primary: { serial: this.serial, volume: pair.primary, lss: pair.record.primary.lss },
      secondary: { serial: pair.record.secondary.ess, volume: pair.record.secondary.volume, lss: pair.record.secondary.lss, volumeId: pair.record.secondary.volumeId },
      state: pair.state,
      suspended: pair.state === 'SUSPENDED',
      ...(pair.state === 'SUSPENDED' && pair.record.suspendReason !== undefined && { suspendReason: pair.record.suspendReason }),
      writeInhibited: pair.record.writeInhibited,
      criticalVolume: pair.record.criticalVolume,
      oosTracks: oos,
      totalTracks: pair.tracks,
      trackSize: pair.record.trackSize,
      copiedTracks: pair.copiedTracks,
      percentCopied: pair.tracks === 0 ? 100 : Math.floor(((pair.tracks - oos) / pair.tracks) * 10000) / 100,
    };
  }

  private pairOf(volume: string): Pair | undefined {
    for (const p of this.pairs.values()) if (p.primary === volume) return p;
    return undefined;
  }

  private ess(serial: string): SecondaryEss {
    if (serial === this.serial) return (this.selfEss ??= this.asSecondary());
    const ess = this.essMap.get(serial);
    if (!ess) throw new LunrigError('PPRC_ESS_NOT_FOUND', `no ESS ${serial} is known; addEss it first`, { serial });
    return ess;
  }

  private peerOf(serial: string) {
    if (serial === this.serial) return (this.selfEss ??= this.asSecondary()).peer;
    const ess = this.essMap.get(serial);
    return ess instanceof InProcessSecondaryEss ? ess.peer : undefined;
  }

  private link(id: string): Link {
    const link = this.linkTable.get(id);
    if (!link) throw new LunrigError('PPRC_LINK_NOT_FOUND', `no link '${id}'`, { link: id });
    return link;
  }

  private linkRecords() {
    return [...this.linkTable.values()].map((l) => l.record);
  }

  /**
   * 'process' logs a set and a clear record per first touch of a track: a
   * longer journal between checkpoints (each one a durable rewrite that holds
   * the marks queued behind it).
   */
  private get journalOptions(): { checkpointBytes?: number } {
    return this.ctx.durability === 'process' ? { checkpointBytes: PROCESS_CHECKPOINT_BYTES } : {};
  }

  private get limits(): boolean {
    return (this.options.profile ?? 'ess') === 'ess';
  }

  private bitmapOptions(): TrackBitmapsOptions {
    return { syncMarks: this.ctx.durability === 'power', regionTracks: this.options.hotRegionTracks ?? 16, now: () => this.clock.now() };
  }

  private save(): Promise<void> {
    return this.registry.save(
      (): PprcState => ({
        nextPair: this.nextPair,
        links: this.linkRecords(),
        paths: this.pathList,
        lss: Object.fromEntries([...this.lss].map(([k, v]) => [String(k), v])),
        pairs: [...this.pairs.values()].map((p) => p.record),
      }),
    );
  }

  private control<T>(task: () => Promise<T>): Promise<T> {
    return this.queue.run(async () => {
      this.checkOpen();
      return task();
    });
  }

  /** A paired LUN is not deleted, grown (primary) or made read-only under PPRC. */
  private veto(change: LunChange): void {
    const pair = this.pairOf(change.lun);
    const bound = this.secondary.bound.has(change.lun);
    if (!pair && !bound) return;
    if (change.kind === 'grow' && !pair) return;
    throw new LunrigError('PPRC_VOLUME_IN_PAIR', `LUN '${change.lun}' is a PPRC ${pair ? 'primary' : 'secondary'}; terminate the pair first`, { lun: change.lun });
  }

  private checkOpen(): void {
    if (this.closing) throw new LunrigError('CLOSED', 'the PPRC manager is closed');
  }
}

function notInPair(volume: string): LunrigError {
  return new LunrigError('PPRC_NOT_IN_PAIR', `volume '${volume}' is in no PPRC pair`, { volume });
}

function parseTrackSize(input: number | string | undefined): number {
  if (input === undefined) return DEFAULT_TRACK;
  const n = parseSize(input);
  if (!Number.isInteger(n) || n < 4096 || n > 1024 * 1024 || (n & (n - 1)) !== 0) {
    throw new LunrigError('INVALID_ARGUMENT', `trackSize must be a power of two from 4 KiB to 1 MiB, got ${String(input)}`);
  }
  return n;
}

/** FlashCopyManager options wired to a PprcManager made after it (the two refer to each other). */
export function flashCopyHooks(pprc: () => PprcManager | undefined): { pprcRole(lun: string): 'primary' | 'secondary' | undefined; pprcView(lun: string): PprcView } {
  return {
    pprcRole: (lun) => pprc()?.pprcRole(lun),
    pprcView: (lun) => pprc()?.pprcView(lun) ?? { state: 'simplex', suspended: false },
  };
}
