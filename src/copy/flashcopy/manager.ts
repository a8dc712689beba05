/**
 * FlashCopyManager: the FlashCopy function of one pool (spec §2). It checks
 * establishes against F-P1..F-P10, takes T0 by stacking a source layer and a
 * target layer on the LUNs' host-facing VolumeStacks (so NBD exports and
 * library callers see FlashCopy at once), runs background copy, ends
 * relationships (auto-end of COPY, withdraw from either side), refreshes
 * incremental ones, and persists all of it so a restart resumes where it was.
 *
 * Control operations run one at a time. Crash safety of establish and
 * withdraw: both happen with the volumes held (no I/O moving); the
 * relationship list is written while they are held, so a crash leaves either
 * the old or the new arrangement, each with its layers.
 */
import { EventEmitter } from 'node:events';
import { promises as fsp } from 'node:fs';
import { LunrigError, fromSystemError, isLunrigError } from '../../errors.js';
import { BulkJobs } from '../../io/bulk/bulk-jobs.js';
import { BitmapJournal, type BitmapStore } from '../../store/bitmap-journal.js';
import type { LunChange, LunInfo, Pool } from '../../store/pool.js';
import { systemClock, type Clock } from '../../util/clock.js';
import { SerialQueue } from '../../util/serial-queue.js';
import { parseSize } from '../../util/size.js';
import type { VolumeStack } from '../../volume/volume-stack.js';
import { BackgroundCopier, type CopierOutcome } from './background-copier.js';
import { BulkGrainCopier } from './bulk-grain-copier.js';
import { groupsOf, validateGroupName, type GroupInfo } from './consistency-group.js';
import { rsQueryLines, summaryLine, type FlashCopyRole, type PprcView } from './ess-query.js';
import { bitmapSizes } from './grain-bitmaps.js';
import { VolumeGrainCopier, type GrainCopier } from './grain-copier.js';
import { parseGrainSize } from './grain-geometry.js';
import type { CowDurability } from './grain-committer.js';
import { refreshedBitmaps } from './incremental.js';
import { holdStacks, withoutLayer, type Tops } from './layer-stack.js';
import { checkEstablish, checkGroup, type EstablishRules, type VolumeFacts } from './preconditions.js';
import { parseRelaxations, resolveProfile, type FlashCopyProfile, type Relaxation } from './profile.js';
import { RateLimiter } from './rate-limiter.js';
import { Registry, type CopyMode, type RelationshipRecord } from './registry.js';
import { Relationship, type RelationshipInfo } from './relationship.js';
import { transition, type FlashCopyState } from './state-machine.js';
import { SourceLayer } from './source-layer.js';
import { TargetLayer } from './target-layer.js';
import { workerGrainMover } from './worker-grain-mover.js';
import type { Volume } from '../../volume/volume.js';

/** The part of a Pool FlashCopy uses. */
export type FlashCopyPool = Pick<Pool, 'dir' | 'serial' | 'lunInfo' | 'volume' | 'lunBackendSpec' | 'addVeto'>;

export interface FlashCopyManagerOptions {
  /** Time for copy rates, ETAs, progress events and the establish delay (default: real time). */
  clock?: Clock;
  /** ESS rules (default 'strict'); 'relaxed' or a profile relaxes some, and queries say so. */
  profile?: 'strict' | 'relaxed' | Partial<FlashCopyProfile>;
  /** Bytes per second shared by every background copy (spec §2.10, FC-24); default unlimited. */
  bandwidth?: number;
  /** Background copy on piscina workers over the LUN files (default), or through the Volumes on this thread. */
  copyEngine?: 'bulk' | 'volume';
  /** Bulk jobs to share (default: the manager makes its own and closes it). */
  bulk?: BulkJobs;
  /** Largest background-copy batch in bytes (default 4 MiB). */
  maxBatchBytes?: number;
  /** F-P5: whether a host has the LUN online (open and in use, or reserved). Default: never. */
  isOnline?(lun: string): boolean;
  /** F-P10 / CB-04 / CB-07: the LUN's PPRC role, when PPRC has one for it. */
  pprcRole?(lun: string): 'primary' | 'secondary' | undefined;
  /** PPRC's view of a LUN for the ESS query strings (default simplex, not suspended). */
  pprcView?(lun: string): PprcView;
  /** An artificial establish time on the clock ("a few seconds", spec §2.1); default 0. */
  establishDelayMs?: number;
  /** At most one progress event per relationship per this many clock ms (default 1000). */
  progressIntervalMs?: number;
  /**
   * When a copy-on-write's grain copy and bit are made durable (README "Durability of copy-on-write"):
   * 'process' (default) writes them in order before the source write and fdatasyncs at host FLUSH/FUA
   * (T0 survives any crash of lunrig); 'power' fdatasyncs both before every source write it protects
   * (T0 survives power loss at any instant, at about a tenth of the write rate).
   */
  cowDurability?: CowDurability;
  /**
   * Copy-on-write grain copies inside the I/O workers (one OP_COPY per grain, copy_file_range)
   * when source and target are plain LUNs of one worker engine; otherwise, or with false, through
   * the Volumes. Default true (LUNRIG_FC_WORKER_COPY=0 turns it off, for comparisons).
   */
  workerCopy?: boolean;
}

export interface EstablishOptions {
  /** 'copy' (default): background copy, ends by itself when done. 'nocopy': copy-on-write only, ends on withdraw. */
  mode?: CopyMode;
  /** Keep the relationship after background copy and record changes for `refresh` (COPY only). */
  incremental?: boolean;
  /** Bytes or '64K': a power of two from 4 KiB to 1 MiB (default 64 KiB). */
  grainSize?: number | string;
  /** Background copy rate in bytes per second ('64M' = 64 MiB/s); 0 pauses; default unlimited. */
  rate?: number | string | null;
  /** F-P5: establish even if the target is online. */
  permitIfTargetOnline?: boolean;
  /** ESS rules to relax for this establish, on top of the profile's. */
  relax?: readonly Relaxation[];
}

export interface PairRequest {
  source: string;
  target: string;
}

export interface GroupRequest extends EstablishOptions {
  /** Unique among active groups; default 'fcg' + the first relationship's id. */
  name?: string;
  pairs: readonly PairRequest[];
}

export interface VolumeQuery {
  volume: string;
  /** FlashCopy_state: the volume's role. */
  role: FlashCopyRole;
  relationships: RelationshipInfo[];
  /** Over the relationships this volume is the source of: what its Information panel shows (spec §2.6). */
  remainingGrains: number;
  /** The two rsQuery lines (plus a note when rules were relaxed). */
  ess: string[];
  /** The configuration summary line. */
  summary: string;
}

export interface FlashCopyEvents {
  established: [RelationshipInfo];
  progress: [RelationshipInfo];
  /** Background copy finished: the relationship ended (COPY) or stays recording changes (incremental). */
  completed: [RelationshipInfo];
  withdrawn: [RelationshipInfo];
  refreshed: [RelationshipInfo];
  /** Background copy stopped on an error; the relationship stays (copy-on-write still protects T0). setRate restarts it. */
  'copy-failed': [RelationshipInfo, LunrigError];
}

/** What open found on disk. */
export interface RecoveryReport {
  resumed: string[];
  /** COPY relationships that had copied everything before the restart: ended on open, as they would have. */
  completed: string[];
  /** Relationships whose LUNs were gone (deleted while no manager watched): forgotten. */
  dropped: Array<{ id: string; reason: string }>;
}

export class FlashCopyManager extends EventEmitter<FlashCopyEvents> {
  readonly profile: FlashCopyProfile;
  readonly recovery: RecoveryReport = { resumed: [], completed: [], dropped: [] };
  private readonly clock: Clock;
  private readonly queue = new SerialQueue();
  private readonly rels = new Map<string, Relationship>();
  private readonly bandwidth: RateLimiter;
  private bulkJobs: BulkJobs | undefined;
  private readonly ownsBulk: boolean;
  private unveto: (() => void) | undefined;
  private closing: Promise<void> | undefined;

  private constructor(
    private readonly pool: FlashCopyPool,
    private readonly registry: Registry,
    private readonly options: FlashCopyManagerOptions,
  ) {
    super();
    this.clock = options.clock ?? systemClock;
    this.profile = resolveProfile(options.profile);
    this.bandwidth = new RateLimiter(this.clock, options.bandwidth);
    this.bulkJobs = options.bulk;
    this.ownsBulk = options.bulk === undefined;
  }

  /** Restore the pool's persisted relationships (layers on, background copies resumed) and watch its LUNs. */
  static async open(pool: FlashCopyPool, options: FlashCopyManagerOptions = {}): Promise<FlashCopyManager> {
    const manager = new FlashCopyManager(pool, await Registry.open(pool.dir), options);
    await manager.restore();
    manager.unveto = pool.addVeto((change) => manager.veto(change));
    return manager;
  }

  // --- establish -----------------------------------------------------------

  /** Establish source -> target; resolves at T0 (no data is copied before it). */
  async establish(source: string, target: string, options: EstablishOptions = {}): Promise<RelationshipInfo> {
    const [info] = await this.establishPairs([{ source, target }], options, null);
    return info!;
  }

  /** Establish every pair with one T0 for all, or none of them. */
  async establishGroup(request: GroupRequest): Promise<GroupInfo> {
    const infos = await this.establishPairs(request.pairs, request, request.name === undefined ? undefined : validateGroupName(request.name));
    return groupsOf(infos)[0]!;
  }

  private establishPairs(pairs: readonly PairRequest[], options: EstablishOptions, group: string | null | undefined): Promise<RelationshipInfo[]> {
    return this.queue.run(async () => {
      this.checkOpen();
      const settings = this.settings(options);
      const facts = pairs.map((p) => ({ source: this.facts(p.source), target: this.facts(p.target) }));
      const rules: EstablishRules = {
        profile: this.profile,
        relax: settings.relax,
        permitIfTargetOnline: settings.permitIfTargetOnline,
        ...(this.profile.checkTargetSpace && { freeBytes: await this.freeBytes() }),
      };
      const existing = [...this.rels.values()].map((r) => ({ source: r.source, target: r.target }));
      if (group === null) checkEstablish(facts[0]!.source, facts[0]!.target, existing, rules);
      else checkGroup(facts, existing, rules);
      if (group !== null && group !== undefined && [...this.rels.values()].some((r) => r.record.group === group)) {
        throw new LunrigError('FC_GROUP_EXISTS', `a FlashCopy consistency group named '${group}' exists`, { group });
      }

      const now = new Date(this.clock.now()).toISOString();
      const crossLssGroup = facts.some((f) => f.source.lss !== facts[0]!.source.lss || f.target.lss !== facts[0]!.target.lss);
      const created = facts.map(({ source, target }, i) => {
        const sourceBusy = [...existing, ...facts.slice(0, i).map((f) => ({ source: f.source.name, target: f.target.name }))].some((p) => p.source === source.name);
        const id = this.registry.allocateId();
        const record: RelationshipRecord = {
          id,
          source: { name: source.name, uniqueId: this.pool.lunInfo(source.name).uniqueId },
          target: { name: target.name, uniqueId: this.pool.lunInfo(target.name).uniqueId },
          mode: settings.mode,
          incremental: settings.incremental,
          grainSize: settings.grainSize,
          size: Math.min(source.size, target.size),
          rate: settings.rate,
          permitIfTargetOnline: settings.permitIfTargetOnline,
          relax: relaxationsUsed(source, target, sourceBusy, crossLssGroup),
          group: null,
          t0: now,
          establishedAt: now,
        };
        return new Relationship(record, this.clock);
      });
      const groupName = group === undefined ? `fcg${created[0]!.id.slice(2)}` : group;
      for (const rel of created) {
        rel.record.group = groupName;
        this.rels.set(rel.id, rel);
      }
      const stores: BitmapStore[] = [];
      let listed = false;
      try {
        if (this.options.establishDelayMs) await this.clock.sleep(this.options.establishDelayMs);
        for (const rel of created) stores.push(await this.openStore(rel.record));
        await holdStacks(this.stacksOf(created), async (tops) => {
          // The T0 image must survive a crash even where the host has not flushed it yet.
          await Promise.all(unique(created.map((r) => r.source)).map((s) => tops.get(this.pool.volume(s))!.flush()));
          const t0 = new Date(this.clock.now()).toISOString();
          for (const rel of created) rel.record = { ...rel.record, t0, establishedAt: t0 };
          await this.registry.save([...this.records(), ...created.map((r) => r.record)]);
          listed = true;
          created.forEach((rel, i) => this.install(rel, stores[i]!, tops));
          return tops;
        });
      } catch (err) {
        for (const rel of created) this.rels.delete(rel.id);
        if (listed) await this.registry.save(this.records()).catch(() => undefined);
        await Promise.all(stores.map((s) => s.destroy().catch(() => undefined)));
        throw err;
      }
      for (const rel of created) {
        rel.state = transition(rel.state, rel.record.mode === 'copy' ? 'established-copy' : 'established-nocopy');
        this.startCopier(rel);
      }
      const infos = created.map((r) => r.info());
      for (const info of infos) this.emit('established', info);
      return infos;
    });
  }

  // --- end -----------------------------------------------------------------

  /** Withdraw every relationship `volume` is in (as source or target): FX4. */
  withdraw(volume: string): Promise<RelationshipInfo[]> {
    return this.queue.run(async () => {
      this.checkOpen();
      this.pool.lunInfo(volume);
      const rels = this.relationshipsOf(volume);
      if (rels.length === 0) throw new LunrigError('FC_NO_RELATIONSHIP', `volume '${volume}' is in no FlashCopy relationship`, { volume });
      return this.withdrawn(await this.end(rels, 'withdraw'));
    });
  }

  /** Withdraw every relationship of a consistency group at one instant. */
  withdrawGroup(name: string): Promise<RelationshipInfo[]> {
    return this.queue.run(async () => {
      this.checkOpen();
      const rels = [...this.rels.values()].filter((r) => r.record.group === name && r.state !== 'establishing');
      if (rels.length === 0) throw new LunrigError('FC_GROUP_NOT_FOUND', `no FlashCopy consistency group named '${name}'`, { group: name });
      return this.withdrawn(await this.end(rels, 'withdraw'));
    });
  }

  private withdrawn(infos: RelationshipInfo[]): RelationshipInfo[] {
    for (const info of infos) this.emit('withdrawn', info);
    return infos;
  }

  /** Take the relationships' layers off and forget them (withdraw, or COPY done). Runs on the queue. */
  private async end(rels: Relationship[], event: 'withdraw' | 'copy-complete'): Promise<RelationshipInfo[]> {
    const before = rels.map((r) => r.state);
    for (const rel of rels) rel.state = transition(rel.state, event);
    await Promise.all(rels.map((r) => r.copier?.stop()));
    for (const rel of rels) rel.copier = undefined;
    try {
      await holdStacks(this.stacksOf(rels), async (tops) => {
        await this.registry.save(this.records().filter((r) => !rels.some((x) => x.id === r.id)));
        for (const rel of rels) {
          const a = rel.attached!;
          const s = this.pool.volume(rel.source);
          const t = this.pool.volume(rel.target);
          tops.set(s, withoutLayer(tops.get(s)!, a.source));
          tops.set(t, withoutLayer(tops.get(t)!, a.target));
        }
        return tops;
      });
    } catch (err) {
      // Nothing changed (the list was not written, or the layers stayed): carry on as before.
      rels.forEach((rel, i) => {
        rel.state = before[i]!;
        this.startCopier(rel);
      });
      throw err;
    }
    const infos: RelationshipInfo[] = [];
    for (const rel of rels) {
      infos.push({ ...rel.info(), state: 'none' });
      rel.state = transition(rel.state, 'ended');
      this.rels.delete(rel.id);
      await rel.attached!.store.destroy().catch(() => undefined);
    }
    return infos;
  }

  // --- refresh, rate, queries ------------------------------------------------

  /** Incremental FlashCopy: take a new T0, copying again only what either side changed. */
  refresh(volume: string): Promise<RelationshipInfo> {
    return this.queue.run(async () => {
      this.checkOpen();
      const rel = this.only(volume);
      if (!rel.record.incremental) throw new LunrigError('FC_NOT_INCREMENTAL', `FlashCopy ${rel.source} -> ${rel.target} is not incremental`, { id: rel.id });
      await rel.copier?.stop();
      rel.copier = undefined;
      const { store, engine } = rel.attached!;
      await holdStacks([this.pool.volume(rel.source), this.pool.volume(rel.target)], async (tops) => {
        await tops.get(this.pool.volume(rel.source))!.flush();
        await engine.idle();
        await store.replace(refreshedBitmaps(store));
        rel.record = { ...rel.record, t0: new Date(this.clock.now()).toISOString() };
        await this.registry.save(this.records());
        return tops;
      });
      rel.state = transition(rel.state, 'refresh');
      rel.pace.restart();
      this.startCopier(rel);
      const info = rel.info();
      this.emit('refreshed', info);
      return info;
    });
  }

  /** Change the background copy rate (bytes per second; 0 pauses, null is unlimited) of the volume's relationship. */
  setRate(volume: string, rate: number | string | null): Promise<RelationshipInfo> {
    return this.queue.run(async () => {
      this.checkOpen();
      const rel = this.only(volume);
      const bytes = parseRate(rate);
      rel.record = { ...rel.record, rate: bytes };
      await this.registry.save(this.records());
      rel.limiter.rate = bytes ?? undefined;
      rel.pace.restart();
      this.startCopier(rel);
      return rel.info();
    });
  }

  /** The volume's FlashCopy role, its relationships and the ESS query strings. */
  query(volume: string): VolumeQuery {
    const lun = { ...this.pool.lunInfo(volume), serial: this.pool.serial };
    const rels = this.relationshipsOf(volume);
    const role: FlashCopyRole = rels.some((r) => r.source === volume) ? 'source' : rels.length > 0 ? 'target' : 'none';
    const relationships = rels.map((r) => r.info());
    const pprc = this.options.pprcView?.(volume);
    const relaxed = relationships.filter((r) => r.profile === 'relaxed');
    return {
      volume,
      role,
      relationships,
      remainingGrains: relationships.filter((r) => r.source === volume).reduce((n, r) => n + r.progress.remainingGrains, 0),
      ess: [
        ...rsQueryLines(lun, role, pprc),
        ...relaxed.map((r) => `lunrig: FlashCopy ${r.id} ${r.source} -> ${r.target} was established with relaxed rules: ${r.relaxed.join(', ')}`),
      ],
      summary: summaryLine(lun, role, pprc),
    };
  }

  /**
   * The state of the volume's relationship as other copy services see it,
   * `establishing` included (CB-06: PPRC refuses a volume whose FlashCopy is
   * still establishing); 'none' when it has none.
   */
  stateOf(volume: string): FlashCopyState {
    return [...this.rels.values()].find((r) => r.involves(volume))?.state ?? 'none';
  }

  list(): RelationshipInfo[] {
    return [...this.rels.values()].sort((a, b) => idNumber(a.id) - idNumber(b.id)).map((r) => r.info());
  }

  groups(): GroupInfo[] {
    return groupsOf(this.list());
  }

  /** Resolves when the volume's relationship has no background copy left to do (ended, or copied if incremental). */
  waitForCopy(volume: string, signal?: AbortSignal): Promise<RelationshipInfo> {
    const rel = this.only(volume);
    if (rel.record.mode === 'nocopy') return Promise.reject(new LunrigError('NOT_SUPPORTED', `FlashCopy ${rel.source} -> ${rel.target} is NOCOPY: it never finishes copying`, { id: rel.id }));
    if (rel.state === 'copied') return Promise.resolve(rel.info());
    return new Promise<RelationshipInfo>((resolve, reject) => {
      const done = (info: RelationshipInfo): void => {
        if (info.id !== rel.id) return;
        cleanup();
        resolve(info);
      };
      const abort = (): void => {
        cleanup();
        reject(signal!.reason);
      };
      const cleanup = (): void => {
        this.off('completed', done);
        this.off('withdrawn', done);
        signal?.removeEventListener('abort', abort);
      };
      this.on('completed', done);
      this.on('withdrawn', done);
      signal?.addEventListener('abort', abort, { once: true });
    });
  }

  /**
   * Stop background copies and close the bitmaps (kept for the next open).
   * Close it before the pool; afterwards writes that would need copy-on-write
   * fail with CLOSED rather than break a T0.
   */
  close(): Promise<void> {
    this.closing ??= this.queue.run(async () => {
      this.unveto?.();
      await Promise.all([...this.rels.values()].map((r) => r.copier?.stop()));
      for (const rel of this.rels.values()) {
        await rel.attached?.engine.idle();
        // Copies durable before the checkpoint that closing writes says they are there.
        await rel.attached?.engine.sync().catch(() => undefined);
        await rel.attached?.store.close();
      }
      if (this.ownsBulk) await this.bulkJobs?.close();
    });
    return this.closing;
  }

  // --- internals -------------------------------------------------------------

  private async restore(): Promise<void> {
    const keep: Relationship[] = [];
    for (const record of this.registry.records) {
      const lost = [record.source, record.target].find((v) => !this.sameLun(v.name, v.uniqueId));
      if (lost) this.recovery.dropped.push({ id: record.id, reason: `LUN '${lost.name}' (${lost.uniqueId}) no longer exists` });
      else keep.push(new Relationship(record, this.clock));
    }
    if (this.recovery.dropped.length > 0) await this.registry.save(keep.map((r) => r.record));
    for (const { id } of this.recovery.dropped) await BitmapJournal.remove(this.registry.bitmapBase(id));
    const stores = await Promise.all(keep.map((rel) => this.openStore(rel.record)));
    await holdStacks(this.stacksOf(keep), async (tops) => {
      // A manager closed on this pool before (a Copy Services reset, FC-25) left its layers on
      // the stacks, refusing copy-on-write; they come off before the reopened ones go on.
      for (const [stack, top] of tops) tops.set(stack, withoutStaleLayers(top));
      keep.forEach((rel, i) => this.install(rel, stores[i]!, tops));
      return tops;
    });
    for (const rel of keep) {
      this.rels.set(rel.id, rel);
      const remaining = rel.attached!.bitmaps.remaining();
      rel.state = rel.record.mode === 'nocopy' ? 'copy-on-write' : remaining > 0 ? 'copying' : rel.record.incremental ? 'copied' : 'copying';
      this.recovery.resumed.push(rel.id);
    }
    // A COPY relationship that had copied everything before the crash ends now, as it would have.
    const done = keep.filter((r) => r.state === 'copying' && !r.record.incremental && r.attached!.bitmaps.remaining() === 0);
    if (done.length > 0) this.recovery.completed.push(...(await this.end(done, 'copy-complete')).map((i) => i.id));
    for (const rel of keep) if (this.rels.has(rel.id)) this.startCopier(rel);
  }

  private install(rel: Relationship, store: BitmapStore, tops: Tops): void {
    const s = this.pool.volume(rel.source);
    const t = this.pool.volume(rel.target);
    const sourceBelow = tops.get(s)!;
    const targetBelow = tops.get(t)!;
    const workerCopy = this.options.workerCopy ?? process.env['LUNRIG_FC_WORKER_COPY'] !== '0';
    const mover = workerCopy
      ? workerGrainMover(sourceBelow, targetBelow, () => ({ source: this.pool.lunBackendSpec(rel.source), target: this.pool.lunBackendSpec(rel.target) }))
      : undefined;
    const attached = rel.attach(store, sourceBelow, targetBelow, this.options.cowDurability ?? 'process', mover);
    tops.set(s, attached.source);
    tops.set(t, attached.target);
  }

  private startCopier(rel: Relationship): void {
    if (rel.state !== 'copying' || rel.copier || !rel.attached) return;
    const { engine } = rel.attached;
    const copier: GrainCopier =
      this.options.copyEngine === 'volume'
        ? new VolumeGrainCopier((g) => engine.copyGrain(g))
        : new BulkGrainCopier(this.bulk(), { source: () => this.pool.lunBackendSpec(rel.source), target: () => this.pool.lunBackendSpec(rel.target) }, rel.geometry.grainSize, rel.geometry.size);
    const background = new BackgroundCopier(engine, copier, {
      limiters: [rel.limiter, this.bandwidth],
      ...(this.options.maxBatchBytes !== undefined && { maxBatchBytes: this.options.maxBatchBytes }),
      onBatch: (_grains, bytes) => {
        rel.pace.record(bytes);
        const now = this.clock.now();
        if (now - rel.lastProgressAt >= (this.options.progressIntervalMs ?? 1000)) {
          rel.lastProgressAt = now;
          this.emit('progress', rel.info());
        }
      },
    });
    rel.copier = background;
    rel.pace.record(0);
    void background.start().then((outcome) => this.copierDone(rel, background, outcome));
  }

  private copierDone(rel: Relationship, copier: BackgroundCopier, outcome: CopierOutcome): void {
    if (outcome.kind === 'stopped') return;
    if (outcome.kind === 'failed') {
      if (rel.copier === copier) rel.copier = undefined;
      const err = isLunrigError(outcome.error) ? outcome.error : fromSystemError(outcome.error, `background copy of ${rel.id}`);
      this.emit('copy-failed', rel.info(), err);
      return;
    }
    void this.queue
      .run(async () => {
        if (this.closing || this.rels.get(rel.id) !== rel || rel.copier !== copier || rel.state !== 'copying') return;
        rel.copier = undefined;
        if (rel.record.incremental) {
          rel.state = transition(rel.state, 'copy-complete-persistent');
          this.emit('completed', rel.info());
          return;
        }
        const [info] = await this.end([rel], 'copy-complete');
        this.emit('completed', info!);
      })
      .catch((err: unknown) => this.emit('copy-failed', rel.info(), isLunrigError(err) ? err : fromSystemError(err, `ending ${rel.id}`)));
  }

  private openStore(record: RelationshipRecord): Promise<BitmapStore> {
    return BitmapJournal.open(this.registry.bitmapBase(record.id), bitmapSizes(Math.ceil(record.size / record.grainSize), record.incremental));
  }

  private bulk(): BulkJobs {
    this.bulkJobs ??= new BulkJobs();
    return this.bulkJobs;
  }

  private settings(options: EstablishOptions) {
    const mode = options.mode ?? 'copy';
    if (mode !== 'copy' && mode !== 'nocopy') throw new LunrigError('INVALID_ARGUMENT', `FlashCopy mode must be 'copy' or 'nocopy', got '${String(mode)}'`);
    const incremental = options.incremental ?? false;
    if (incremental && mode === 'nocopy') throw new LunrigError('INVALID_ARGUMENT', 'an incremental FlashCopy copies in the background: it cannot be NOCOPY');
    return {
      mode,
      incremental,
      grainSize: parseGrainSize(options.grainSize),
      rate: parseRate(options.rate),
      permitIfTargetOnline: options.permitIfTargetOnline ?? false,
      relax: parseRelaxations([...this.profile.relax, ...(options.relax ?? [])]),
    };
  }

  private facts(name: string): VolumeFacts {
    const lun: LunInfo = this.pool.lunInfo(name);
    const pprcRole = this.options.pprcRole?.(name);
    return { name, lss: lun.lss, size: lun.size, readOnly: lun.readOnly, online: this.options.isOnline?.(name) ?? false, ...(pprcRole && { pprcRole }) };
  }

  private async freeBytes(): Promise<number> {
    const st = await fsp.statfs(this.pool.dir).catch((err: unknown) => {
      throw fromSystemError(err, `statfs ${this.pool.dir}`);
    });
    return st.bavail * st.bsize;
  }

  private relationshipsOf(volume: string): Relationship[] {
    return [...this.rels.values()].filter((r) => r.involves(volume) && r.state !== 'establishing' && r.state !== 'terminating');
  }

  /** The one relationship of `volume` (as target, or as the source of exactly one). */
  private only(volume: string): Relationship {
    this.pool.lunInfo(volume);
    const rels = this.relationshipsOf(volume);
    if (rels.length === 0) throw new LunrigError('FC_NO_RELATIONSHIP', `volume '${volume}' is in no FlashCopy relationship`, { volume });
    if (rels.length > 1) throw new LunrigError('INVALID_ARGUMENT', `volume '${volume}' is the source of ${rels.length} relationships: name a target instead`, { volume });
    return rels[0]!;
  }

  private stacksOf(rels: readonly Relationship[]): VolumeStack[] {
    return rels.flatMap((r) => [this.pool.volume(r.source), this.pool.volume(r.target)]);
  }

  private records(): RelationshipRecord[] {
    return [...this.rels.values()].filter((r) => r.attached).map((r) => r.record);
  }

  private sameLun(name: string, uniqueId: string): boolean {
    try {
      return this.pool.lunInfo(name).uniqueId === uniqueId;
    } catch {
      return false;
    }
  }

  /** A LUN in a relationship is not deleted, and a target not made read-only, under it. */
  private veto(change: LunChange): void {
    const rel = [...this.rels.values()].find((r) => r.involves(change.lun));
    if (!rel) return;
    if (change.kind === 'delete' || (change.kind === 'read-only' && rel.target === change.lun)) {
      throw new LunrigError('FC_VOLUME_IN_RELATIONSHIP', `LUN '${change.lun}' is in FlashCopy ${rel.source} -> ${rel.target}; withdraw it first`, {
        lun: change.lun,
        id: rel.id,
      });
    }
  }

  private checkOpen(): void {
    if (this.closing) throw new LunrigError('CLOSED', 'the FlashCopy manager is closed');
  }
}

/** `top` without the FlashCopy layers of a closed manager (top ones come off, buried ones turn pass-through). */
function withoutStaleLayers(top: Volume): Volume {
  let result = top;
  for (let v: Volume | undefined = top; v !== undefined; v = (v as { below?: Volume }).below) {
    if ((v instanceof SourceLayer || v instanceof TargetLayer) && v.attached) result = withoutLayer(result, v);
  }
  return result;
}

/** The relaxations this pair actually needed (the checks passed, so each was allowed); queries list them. */
function relaxationsUsed(source: VolumeFacts, target: VolumeFacts, sourceBusy: boolean, crossLssGroup: boolean): Relaxation[] {
  const used: Relaxation[] = [];
  if (source.lss !== target.lss || crossLssGroup) used.push('cross-lss');
  if (target.size < source.size) used.push('smaller-target');
  if (sourceBusy) used.push('multiple-targets');
  return used;
}

function parseRate(rate: number | string | null | undefined): number | null {
  if (rate === undefined || rate === null) return null;
  return parseSize(rate);
}

function unique<T>(values: readonly T[]): T[] {
  return [...new Set(values)];
}

function idNumber(id: string): number {
  return Number(id.replace(/^\D+/, '')) || 0;
}
