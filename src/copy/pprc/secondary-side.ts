/**
 * The secondary role of one pool's volumes (spec §3.4, §3.8), and the
 * in-process SecondaryEss a primary (this pool's or another pool's PPRC)
 * reaches it through. A bound volume carries a GateLayer on top of its
 * VolumeStack; the pair's channel writes through the whole stack below the
 * gate's check (FlashCopy copy-on-write fires: CB-05). Bindings and their
 * status persist in <pool>/pprc/secondaries.json and come back on open.
 */
import path from 'node:path';
import { LunrigError } from '../../errors.js';
import { readJsonFile, writeJsonAtomic } from '../../store/persist.js';
import type { Pool } from '../../store/pool.js';
import type { SlotArena } from '../../io/slot-arena.js';
import { VolumeStack } from '../../volume/volume-stack.js';
import type { Extent, Volume, VolumeIdentity, WriteOptions, WriteZeroesOptions } from '../../volume/volume.js';
import type { FlashCopyManager } from '../flashcopy/manager.js';
import { GateLayer, channelBuffer, channelOptions, releaseChannelBuffer } from './gate-layer.js';
import type { SecondaryBinding, SecondaryEss, SecondaryStatus, SecondaryVolumeFacts } from './secondary-ess.js';

export type SecondaryPool = Pick<Pool, 'dir' | 'serial' | 'lunInfo' | 'volume'>;

export interface BoundSecondary {
  volume: string;
  uniqueId: string;
  binding: SecondaryBinding;
  status: SecondaryStatus;
}

/** One bound secondary as `secondaries()` lists it (a copy: changing it changes nothing). */
export interface SecondaryListing {
  volume: string;
  pairId: string;
  primary: SecondaryBinding['primary'];
  criticalHeavy: boolean;
  suspended: boolean;
  writeInhibited: boolean;
  reason?: string;
}

export interface SecondaryHooks {
  /** This pool's PPRC role of the volume as a primary ('source'), for describe/bind. */
  isPrimary(volume: string): boolean;
  isOnline?(volume: string): boolean;
  flashcopy?: FlashCopyManager | undefined;
  /** A bound secondary's status changed here (events). */
  changed(volume: string, entry: BoundSecondary | undefined): void;
  /** The clock's now, for heartbeat bookkeeping (default Date.now). */
  now?(): number;
}

export class SecondarySide {
  readonly bound = new Map<string, BoundSecondary>();
  private readonly gates = new Map<string, GateLayer>();
  /** Volumes whose device "fails" for channel writes (PP-22 "secondary device failure"). */
  private readonly deviceFaults = new Set<string>();
  /** When each bound volume last heard from its primary (any channel request: mirror, copy, heartbeat). */
  private readonly lastSeen = new Map<string, number>();

  private constructor(
    private readonly pool: SecondaryPool,
    private readonly hooks: SecondaryHooks,
  ) {}

  static file(dir: string): string {
    return path.join(dir, 'pprc', 'secondaries.json');
  }

  static async open(pool: SecondaryPool, hooks: SecondaryHooks): Promise<SecondarySide> {
    const side = new SecondarySide(pool, hooks);
    const raw = (await readJsonFile(SecondarySide.file(pool.dir))) as BoundSecondary[] | undefined;
    for (const entry of raw ?? []) {
      let lun;
      try {
        lun = pool.lunInfo(entry.volume);
      } catch {
        continue;
      }
      if (lun.uniqueId !== entry.uniqueId) continue;
      side.bound.set(entry.volume, entry);
      side.lastSeen.set(entry.volume, side.now());
      await side.installGate(entry.volume);
    }
    return side;
  }

  get serial(): string {
    return this.pool.serial;
  }

  /** The volumes bound as secondaries here, with their pair and status (the supported view of `bound`). */
  secondaries(): SecondaryListing[] {
    return [...this.bound.values()].map((b) => ({
      volume: b.volume,
      pairId: b.binding.pairId,
      primary: { ...b.binding.primary },
      criticalHeavy: b.binding.criticalHeavy === true,
      suspended: b.status.suspended,
      writeInhibited: b.status.writeInhibited,
      ...(b.status.reason !== undefined && { reason: b.status.reason }),
    }));
  }

  describe(volume: string): SecondaryVolumeFacts {
    const lun = this.pool.lunInfo(volume);
    const entry = this.bound.get(volume);
    const fc = this.hooks.flashcopy;
    const fcRole = fc ? fc.query(volume).role : 'none';
    return {
      name: volume,
      identity: this.pool.volume(volume).identity(),
      size: lun.size,
      online: this.hooks.isOnline?.(volume) ?? false,
      role: entry ? 'target' : this.hooks.isPrimary(volume) ? 'source' : 'simplex',
      ...(entry && { pairId: entry.binding.pairId }),
      fcRole,
      fcEstablishing: fc?.stateOf(volume) === 'establishing',
    };
  }

  async bind(volume: string, binding: SecondaryBinding): Promise<void> {
    const lun = this.pool.lunInfo(volume);
    const entry = this.bound.get(volume);
    if (entry && entry.binding.pairId !== binding.pairId) {
      throw new LunrigError('PPRC_VOLUME_IN_PAIR', `volume '${volume}' is the secondary of another pair (${entry.binding.pairId})`, { volume });
    }
    if (!entry && this.hooks.isPrimary(volume)) {
      throw new LunrigError('PPRC_VOLUME_IN_PAIR', `volume '${volume}' is a PPRC primary: no cascading (PP-13)`, { volume });
    }
    const next: BoundSecondary = { volume, uniqueId: lun.uniqueId, binding, status: { suspended: false, writeInhibited: false } };
    this.bound.set(volume, next);
    this.seen(volume);
    try {
      await this.save();
    } catch (err) {
      if (entry) this.bound.set(volume, entry);
      else this.bound.delete(volume);
      throw err;
    }
    if (!this.gates.has(volume)) await this.installGate(volume);
    this.hooks.changed(volume, next);
  }

  async setStatus(volume: string, pairId: string, status: SecondaryStatus): Promise<void> {
    const entry = this.bound.get(volume);
    if (!entry || entry.binding.pairId !== pairId) throw new LunrigError('PPRC_NOT_IN_PAIR', `volume '${volume}' is not the secondary of pair ${pairId}`, { volume });
    // A secondary that noticed the loss of its primary keeps saying so until resynced (X6).
    const lost = entry.status.reason === 'primary-lost' && status.suspended;
    entry.status = lost ? { ...status, reason: 'primary-lost' } : { ...status };
    await this.save();
    this.hooks.changed(volume, entry);
  }

  /** Back to simplex; a no-op when not bound to pairId (or pairId omitted: whatever binding, X9). */
  async unbind(volume: string, pairId?: string): Promise<boolean> {
    const entry = this.bound.get(volume);
    if (!entry || (pairId !== undefined && entry.binding.pairId !== pairId)) return false;
    this.bound.delete(volume);
    await this.save();
    const gate = this.gates.get(volume);
    this.gates.delete(volume);
    if (gate) {
      await this.pool.volume(volume).restack((top) => {
        gate.detach();
        return top === gate ? gate.below : top;
      });
    }
    this.hooks.changed(volume, undefined);
    return true;
  }

  /** X6: the primary ESS `serial` failed; its secondaries here notice and suspend. */
  async primaryLost(serial: string): Promise<string[]> {
    const hit = [...this.bound.values()].filter((e) => e.binding.primary.serial === serial && !e.status.suspended);
    for (const e of hit) e.status = { ...e.status, suspended: true, reason: 'primary-lost' };
    if (hit.length > 0) await this.save();
    for (const e of hit) this.hooks.changed(e.volume, e);
    return hit.map((e) => e.volume);
  }

  /**
   * X6 by heartbeat: bound secondaries not suspended whose primary has been
   * silent for more than `timeoutMs` suspend ('primary-lost').
   */
  async expireSilent(timeoutMs: number): Promise<string[]> {
    const now = this.now();
    const hit = [...this.bound.values()].filter((e) => !e.status.suspended && now - (this.lastSeen.get(e.volume) ?? now) > timeoutMs);
    for (const e of hit) e.status = { ...e.status, suspended: true, reason: 'primary-lost' };
    if (hit.length > 0) await this.save();
    for (const e of hit) this.hooks.changed(e.volume, e);
    return hit.map((e) => e.volume);
  }

  seen(volume: string): void {
    this.lastSeen.set(volume, this.now());
  }

  private now(): number {
    return this.hooks.now?.() ?? Date.now();
  }

  setDeviceFault(volume: string, failed: boolean): void {
    this.pool.lunInfo(volume);
    if (failed) this.deviceFaults.add(volume);
    else this.deviceFaults.delete(volume);
  }

  /**
   * Put the gate back on top after another layer was stacked over it (a
   * FlashCopy of the secondary, CB-04): the buried gate becomes a pass-through.
   */
  regate(volume: string): Promise<void> {
    const gate = this.gates.get(volume);
    if (!gate) return Promise.resolve();
    const stack = this.pool.volume(volume);
    if (stack.current === gate) return Promise.resolve();
    const done = stack.restack((top) => {
      const fresh = new GateLayer(top, volume);
      this.gates.set(volume, fresh);
      return fresh;
    });
    // The restack holds new host requests from here on (FlashCopy's own hold just ended), so the
    // buried gate can pass at once: FlashCopy reads the secondary through it (target reads, CB-05).
    gate.detach();
    return done;
  }

  channel(volume: string, pairId: string): Volume {
    return new SecondaryChannel(this, volume, pairId);
  }

  /** For the channel: the stack to write through, once the binding and the device check pass. */
  checkChannel(volume: string, pairId: string): Volume {
    const entry = this.bound.get(volume);
    if (!entry || entry.binding.pairId !== pairId) throw new LunrigError('PPRC_NOT_IN_PAIR', `volume '${volume}' is no longer the secondary of pair ${pairId}`, { volume, pairId });
    if (entry.status.reason === 'primary-lost') {
      throw new LunrigError('PPRC_NOT_IN_PAIR', `volume '${volume}' lost its primary ESS ${entry.binding.primary.serial} (suspended); resync or terminate`, { volume, pairId });
    }
    if (this.deviceFaults.has(volume)) throw new LunrigError('IO_ERROR', `secondary device '${volume}' failed (injected)`, { volume });
    return this.pool.volume(volume);
  }

  /**
   * The NBD fast path of a channel (remote link exports): the LUN's slot arena
   * while the volume's stack is its gate directly on the LUN (or nothing),
   * so a channel request reaches the LUN with the caller's slot. A FlashCopy
   * layer stacked under the gate (CB-05) turns it off until it goes.
   */
  channelFastPath(volume: string): { arena: SlotArena } | undefined {
    const stack = this.pool.volume(volume);
    if (!this.channelOnLun(stack, volume)) return undefined;
    return (stack.base as Partial<{ fastPath(): { arena: SlotArena } | undefined }>).fastPath?.();
  }

  /** `stack` is the volume's VolumeStack with only its gate (or nothing) on the LUN. */
  channelOnLun(stack: Volume, volume: string): stack is VolumeStack {
    if (!(stack instanceof VolumeStack)) return false;
    const top = stack.current;
    if (top === stack.base) return true;
    const gate = this.gates.get(volume);
    return top === gate && gate.below === stack.base;
  }

  /** Block status for a channel: below the volume's gate (no request mark fits block status). */
  channelBlockStatus(volume: string, stack: Volume, offset: number, length: number): Promise<Extent[]> {
    const gate = this.gates.get(volume);
    return gate ? gate.channelBlockStatus(offset, length) : stack.blockStatus(offset, length);
  }

  /** An in-process SecondaryEss over this side. */
  asEss(peer?: PrimaryPeer): InProcessSecondaryEss {
    return new InProcessSecondaryEss(this, peer);
  }

  private async installGate(volume: string): Promise<void> {
    await this.pool.volume(volume).restack((top) => {
      const gate = new GateLayer(top, volume);
      this.gates.set(volume, gate);
      return gate;
    });
  }

  private save(): Promise<void> {
    return writeJsonAtomic(SecondarySide.file(this.pool.dir), [...this.bound.values()]);
  }
}

/** The secondary volume as a pair's channel writes it (bypassing the gate, not FlashCopy). */
export class SecondaryChannel implements Volume {
  constructor(
    private readonly side: SecondarySide,
    private readonly volume: string,
    private readonly pairId: string,
  ) {}

  get size(): number {
    return this.side.checkChannel(this.volume, this.pairId).size;
  }

  get readOnly(): boolean {
    return false;
  }

  identity(): VolumeIdentity {
    return this.side.checkChannel(this.volume, this.pairId).identity();
  }

  async read(offset: number, length: number, into?: Uint8Array): Promise<Uint8Array> {
    const buf = channelBuffer(this.volume, length, into);
    try {
      return await this.run((v) => v.read(offset, length, buf));
    } finally {
      releaseChannelBuffer(buf);
    }
  }

  write(offset: number, data: Uint8Array, options?: WriteOptions): Promise<void> {
    return this.run((v) => v.write(offset, data, channelOptions(this.volume, options)));
  }

  writeZeroes(offset: number, length: number, options?: WriteZeroesOptions): Promise<void> {
    return this.run((v) => v.writeZeroes(offset, length, channelOptions(this.volume, options)));
  }

  trim(offset: number, length: number, options?: WriteOptions): Promise<void> {
    return this.run((v) => v.trim(offset, length, channelOptions(this.volume, options)));
  }

  flush(): Promise<void> {
    return this.run((v) => v.flush());
  }

  blockStatus(offset: number, length: number): Promise<Extent[]> {
    return this.run((v) => this.side.channelBlockStatus(this.volume, v, offset, length));
  }

  /** For the NBD server of a remote link export (nbd/fast-path.ts): the LUN's arena, while only the gate sits on it. */
  fastPath(): { arena: SlotArena } | undefined {
    try {
      return this.side.channelFastPath(this.volume);
    } catch {
      return undefined;
    }
  }

  /**
   * For a local pair's fused mirror write (Pair): the secondary LUN itself,
   * while the binding holds and only the gate sits on it, counted in flight
   * on its stack (call `leave` when done) so a restack (FlashCopy, CB-05)
   * waits for it. Undefined: take the ordinary channel route.
   */
  enterDirect(): { lun: Volume; leave: () => void } | undefined {
    const stack = this.onLun();
    const leave = stack?.tryEnter();
    if (!stack || !leave) return undefined;
    this.side.seen(this.volume);
    return { lun: stack.base, leave };
  }

  fastPathActive(): boolean {
    // Otherwise the request takes the generic path (and fails there with the channel's own error, if any).
    return this.onLun() !== undefined;
  }

  /** The secondary's stack while the binding holds and only the gate sits on the LUN. */
  private onLun(): VolumeStack | undefined {
    let stack: Volume;
    try {
      stack = this.side.checkChannel(this.volume, this.pairId);
    } catch {
      return undefined;
    }
    return this.side.channelOnLun(stack, this.volume) ? stack : undefined;
  }

  private async run<T>(op: (v: Volume) => Promise<T>): Promise<T> {
    const v = this.side.checkChannel(this.volume, this.pairId);
    this.side.seen(this.volume);
    return op(v);
  }
}

/** What a secondary ESS in this process may ask of the primary side of the same PprcManager. */
export interface PrimaryPeer {
  /** PP-17: a suspend scheduled on the target ESS; false when the pair is unknown there. */
  suspendFromTarget(pairId: string): Promise<boolean>;
  /** The pair's state as the primary sees it, for queries on the secondary. */
  pairState(pairId: string): string | undefined;
}

/** SecondaryEss for a pool of this process (the same pool included). */
export class InProcessSecondaryEss implements SecondaryEss {
  constructor(
    readonly side: SecondarySide,
    readonly peer?: PrimaryPeer,
  ) {}

  get serial(): string {
    return this.side.serial;
  }

  /** The volumes bound as secondaries on this ESS (SecondarySide.secondaries). */
  secondaries(): SecondaryListing[] {
    return this.side.secondaries();
  }

  async describe(volume: string): Promise<SecondaryVolumeFacts> {
    return this.side.describe(volume);
  }

  bind(volume: string, binding: SecondaryBinding): Promise<void> {
    return this.side.bind(volume, binding);
  }

  setStatus(volume: string, pairId: string, status: SecondaryStatus): Promise<void> {
    return this.side.setStatus(volume, pairId, status);
  }

  async unbind(volume: string, pairId: string): Promise<void> {
    await this.side.unbind(volume, pairId);
  }

  async channel(volume: string, pairId: string, _linkIndex: number): Promise<Volume> {
    this.side.checkChannel(volume, pairId);
    return this.side.channel(volume, pairId);
  }

  async closeChannel(_channel: Volume): Promise<void> {}

  async close(): Promise<void> {}
}
