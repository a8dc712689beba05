/**
 * One PPRC pair at run time on the primary side: its record, track bitmaps,
 * per-track locks, mirror layer, channels, and the synchronous write path
 * (spec §3.5 W1-W6):
 *  - DUPLEX, and DUPLEX_PENDING for a write touching a track already copied:
 *    mark the tracks HOT (durable), send the update to the secondary over an
 *    up link of the path, wait for its ack within remoteAckTimeout, and only
 *    then apply it locally (stage, mirror, apply: on a failed ack the primary
 *    keeps the old data, W2). The tracks are marked OOS before the host hears
 *    of the failure: the secondary's copy is indeterminate.
 *  - DUPLEX_PENDING, every track still out of sync: apply locally only; the
 *    copier carries the track later (W4).
 *  - SUSPENDED: mark OOS durably, then apply locally (change recording).
 * Host writes hold their tracks exclusively (ascending order), so two writes
 * to one track, or a write and the copier, never interleave; reads take no
 * lock and never wait (W3).
 */
import { LunrigError, isLunrigError } from '../../errors.js';
import type { Clock } from '../../util/clock.js';
import { checkRange } from '../../volume/range-check.js';
import type { Volume } from '../../volume/volume.js';
import { GrainLocks } from '../flashcopy/grain-locks.js';
import type { Link } from './links.js';
import { MirrorLayer, type Update, type WritePath } from './mirror-layer.js';
import type { PairRecord, PairState } from './registry.js';
import type { SecondaryEss } from './secondary-ess.js';
import type { TrackBitmaps } from './track-bitmaps.js';

export type Transient = 'ESTABLISHING' | 'TERMINATING';
export type RunState = PairState | Transient;

export type FailureKind = 'paths-lost' | 'ack-timeout' | 'device';

export interface Failure {
  kind: FailureKind;
  error: LunrigError;
}

/** What a pair needs from its manager. */
export interface PairContext {
  clock: Clock;
  remoteAckTimeoutMs: number;
  fsyncOnAck: boolean;
  failedWritePolicy: 'error' | 'suspend-and-complete';
  /** The up links of the pair's path, in path order (empty: all paths lost). */
  upLinks(pair: Pair): Link[];
  ess(serial: string): SecondaryEss;
  /** The pair could not update its secondary: suspend per CRIT / consistency group. */
  fail(pair: Pair, failure: Failure): Promise<void>;
  /** HOT bits worth clearing: flush both sides, then clear (lazily, off the write path). */
  hotIdle(pair: Pair): void;
}

export interface Hold {
  promise: Promise<void>;
  release(): void;
}

export function makeHold(): Hold {
  let release!: () => void;
  const promise = new Promise<void>((resolve) => (release = resolve));
  return { promise, release };
}

const TIMEOUT = Symbol('timeout');

export class Pair implements WritePath {
  state: RunState;
  readonly locks = new GrainLocks();
  layer: MirrorLayer | undefined;
  hold: Hold | undefined;
  /** Tracks the copier sent (PP-18 counts copied tracks). */
  copiedTracks = 0;
  copier: { stop(): Promise<void> } | undefined;
  /** The registry write of the last suspension (fail() callers wait for it). */
  suspensionSaved: Promise<void> | undefined;
  /** CRIT said the secondary is write-inhibited too (Critical Heavy). */
  secondaryInhibited: boolean | undefined;
  private readonly channels = new Map<number, Promise<Volume>>();
  private rr = 0;

  constructor(
    public record: PairRecord,
    readonly bitmaps: TrackBitmaps,
    private readonly ctx: PairContext,
  ) {
    this.state = record.state;
  }

  get id(): string {
    return this.record.id;
  }

  get primary(): string {
    return this.record.primary.name;
  }

  get tracks(): number {
    return this.bitmaps.tracks;
  }

  tracksOf(offset: number, length: number): [number, number] {
    const t = this.record.trackSize;
    return [Math.floor(offset / t), Math.floor((offset + Math.max(length, 1) - 1) / t)];
  }

  // --- host writes ------------------------------------------------------------

  async hostWrite(update: Update, below: Volume, fua: boolean): Promise<void> {
    checkRange(update.offset, update.length, below.size, `${update.kind} of PPRC primary`);
    if (below.readOnly) throw new LunrigError('READ_ONLY', `${update.kind}: volume ${this.primary} is read-only`);
    if (this.hold) await this.hold.promise;
    this.checkInhibit(update.kind);
    if (update.length === 0 || update.offset >= this.record.size) return update.apply(below, fua);
    const [first, last] = this.tracksOf(update.offset, Math.min(update.length, this.record.size - update.offset));
    const release = await this.locks.acquire(range(first, last), true);
    try {
      for (;;) {
        this.checkInhibit(update.kind);
        const pending = this.state === 'DUPLEX_PENDING';
        if (this.state === 'DUPLEX' || (pending && !this.allOos(first, last))) {
          const outcome = await this.mirror(update, first, last, below, fua);
          if (!outcome) return;
          const { failure, hold } = outcome;
          if (hold) {
            // Consistency group: held, not failed; afterwards the CRIT table decides (§3.9).
            await hold.promise;
            continue;
          }
          if (failure.kind !== 'paths-lost' && this.ctx.failedWritePolicy === 'error') throw failure.error;
          continue;
        }
        if (pending) return await update.apply(below, fua || this.ctx.fsyncOnAck);
        // SUSPENDED (or a transient state): change recording, durable before the write it marks.
        await this.bitmaps.markOos(first, last);
        return await update.apply(below, fua || this.ctx.fsyncOnAck);
      }
    } finally {
      release();
    }
  }

  /** Send the update to the secondary and, once acknowledged, apply it here. A failure suspends the pair. */
  private async mirror(update: Update, first: number, last: number, below: Volume, fua: boolean): Promise<{ failure: Failure; hold: Hold | undefined } | undefined> {
    await this.bitmaps.beginHot(first, last);
    try {
      const failure = await this.remote(update.length, (ch) => update.apply(ch, fua || this.ctx.fsyncOnAck));
      if (failure) {
        await this.bitmaps.markOos(first, last);
        // fail() puts a consistency-group hold in place before its first await; take it now,
        // as the hold may already be released (timeout) by the time fail() resolves.
        const failing = this.ctx.fail(this, failure);
        const hold = this.hold;
        await failing;
        return { failure, hold };
      }
      try {
        await update.apply(below, fua || this.ctx.fsyncOnAck);
      } catch (err) {
        // The secondary has it, this side not: the track is out of sync until copied again.
        await this.bitmaps.markOos(first, last);
        throw err;
      }
      return undefined;
    } finally {
      this.bitmaps.endHot(first, last);
      this.ctx.hotIdle(this);
    }
  }

  /**
   * One request to the secondary over an up link of the path (round robin),
   * raced against remoteAckTimeout on the clock. Undefined when acknowledged.
   */
  async remote(bytes: number, op: (channel: Volume) => Promise<unknown>): Promise<Failure | undefined> {
    const links = this.ctx.upLinks(this);
    if (links.length === 0) {
      return { kind: 'paths-lost', error: new LunrigError('IO_ERROR', `PPRC pair ${this.id}: no path to the secondary is up`, { pair: this.id }) };
    }
    const link = links[this.rr++ % links.length]!;
    let timer: ReturnType<Clock['setTimeout']> | undefined;
    try {
      const timeout = new Promise<typeof TIMEOUT>((resolve) => (timer = this.ctx.clock.setTimeout(() => resolve(TIMEOUT), this.ctx.remoteAckTimeoutMs)));
      const sent = link.send(bytes, async () => op(await this.channel(link)));
      const result = await Promise.race([sent, timeout]);
      if (result === TIMEOUT) {
        return {
          kind: 'ack-timeout',
          error: new LunrigError('PPRC_ACK_TIMEOUT', `PPRC pair ${this.id}: the secondary did not acknowledge within ${this.ctx.remoteAckTimeoutMs} ms`, {
            pair: this.id,
            link: link.id,
          }),
        };
      }
      return undefined;
    } catch (err) {
      const cause = isLunrigError(err) ? err : new LunrigError('IO_ERROR', String(err));
      return { kind: 'device', error: new LunrigError('IO_ERROR', `PPRC pair ${this.id}: the secondary could not be updated: ${cause.message}`, { pair: this.id, cause: cause.code }, { cause }) };
    } finally {
      if (timer) this.ctx.clock.clearTimeout(timer);
    }
  }

  async flushSecondary(): Promise<void> {
    if (this.state !== 'DUPLEX' && this.state !== 'DUPLEX_PENDING') return;
    // Best effort: a secondary that cannot flush fails the next write instead.
    await this.remote(0, (ch) => ch.flush());
  }

  allOos(first: number, last: number): boolean {
    for (let t = first; t <= last; t++) if (!this.bitmaps.isOos(t)) return false;
    return true;
  }

  private checkInhibit(what: string): void {
    if (this.record.writeInhibited) {
      throw new LunrigError('PPRC_WRITE_INHIBITED', `${what}: PPRC primary '${this.primary}' is write-inhibited (${this.record.suspendReason ?? 'suspended'}); resync or terminate the pair`, {
        volume: this.primary,
        pair: this.id,
      });
    }
  }

  // --- channels ---------------------------------------------------------------

  channel(link: Link): Promise<Volume> {
    let ch = this.channels.get(link.record.index);
    if (!ch) {
      ch = this.ctx.ess(this.record.secondary.ess).channel(this.record.secondary.volume, this.id, link.record.index);
      this.channels.set(link.record.index, ch);
      ch.catch(() => this.channels.delete(link.record.index));
    }
    return ch;
  }

  async closeChannels(): Promise<void> {
    const chans = [...this.channels.values()];
    this.channels.clear();
    const ess = (() => {
      try {
        return this.ctx.ess(this.record.secondary.ess);
      } catch {
        return undefined;
      }
    })();
    for (const ch of chans) {
      const v = await ch.catch(() => undefined);
      if (v && ess) await ess.closeChannel(v).catch(() => undefined);
    }
  }
}

export function range(first: number, last: number): number[] {
  const out: number[] = [];
  for (let t = first; t <= last; t++) out.push(t);
  return out;
}
