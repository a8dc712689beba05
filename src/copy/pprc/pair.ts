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
 *
 * "Durably" above is the pair's durability (README "Durability of the
 * marks"): with 'power' each mark is fdatasynced before the write it covers
 * goes ahead; with 'process' it is written to the journal (page cache) before
 * it, and fdatasynced before a FUA / fsyncOnAck write goes ahead and before a
 * host flush reaches the volumes (`syncMarks`).
 *
 * A request whose link goes down before its ack fails at once (LinkDownError)
 * and is sent again over another up link of the path (PP-20), once the
 * secondary is done with the lost copy if it had reached it; with no link
 * left it fails as W2 says: when its ack timeout expires, paths lost.
 */
import { LunrigError, isLunrigError } from '../../errors.js';
import type { MirrorWriteOutcome } from '../../io/worker-backend.js';
import { systemClock, type Clock } from '../../util/clock.js';
import { native } from '../../native/index.js';
import { checkRange } from '../../volume/range-check.js';
import type { Volume } from '../../volume/volume.js';
import { GrainLocks } from '../flashcopy/grain-locks.js';
import { LinkDownError, type Link } from './links.js';
import { MirrorLayer, type Update, type WritePath } from './mirror-layer.js';
import type { PairRecord, PairState } from './registry.js';
import type { SecondaryEss } from './secondary-ess.js';
import { SecondaryChannel } from './secondary-side.js';
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
  /** When marks are fdatasynced: each before its write ('power') or at FUA / flush ('process'). */
  durability: 'process' | 'power';
  failedWritePolicy: 'error' | 'suspend-and-complete';
  /** The up links of the pair's path, in path order (empty: all paths lost). */
  upLinks(pair: Pair): Link[];
  ess(serial: string): SecondaryEss;
  /** The pair could not update its secondary: suspend per CRIT / consistency group. */
  fail(pair: Pair, failure: Failure): Promise<void>;
  /** HOT bits worth clearing: flush both sides, then clear (lazily, off the write path). */
  hotIdle(pair: Pair): void;
}

/** A volume that can write a local pair's secondary and itself in one request (store/lun.ts). */
interface FusedMirrorVolume {
  mirrorWrite(secondary: Volume, offset: number, data: Uint8Array, fua: boolean, deadline: number): Promise<MirrorWriteOutcome> | undefined;
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
  /** The channels that are open, by link index (the fused local write needs one at hand). */
  private readonly resolved = new Map<number, Volume>();
  private rr = 0;
  private rrTurning = false;

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

  get holding(): boolean {
    return this.hold !== undefined;
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
    const release = this.locks.tryAcquireRange(first, last) ?? (await this.locks.acquire(range(first, last), true));
    // A FUA (or fsyncOnAck) write is durable when acknowledged: so are the marks covering it, first.
    const durable = fua || this.ctx.fsyncOnAck;
    try {
      for (;;) {
        this.checkInhibit(update.kind);
        const pending = this.state === 'DUPLEX_PENDING';
        if (this.state === 'DUPLEX' || (pending && !this.allOos(first, last))) {
          const outcome = await this.mirror(update, first, last, below, durable);
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
        // DUPLEX_PENDING on tracks still out of sync: their OOS bits cover it (the copier carries it, W4).
        // SUSPENDED (or a transient state): change recording, the mark ahead of the write it marks.
        if (!pending) await this.bitmaps.markOos(first, last);
        if (durable) await this.bitmaps.sync();
        return await update.apply(below, durable);
      }
    } finally {
      release();
    }
  }

  /** Host flush: the marks first, so what the flush makes durable has its marks durable too ('process'). */
  syncMarks(): Promise<void> {
    return this.bitmaps.sync();
  }

  /** Send the update to the secondary and, once acknowledged, apply it here. A failure suspends the pair. */
  private async mirror(update: Update, first: number, last: number, below: Volume, durable: boolean): Promise<{ failure: Failure; hold: Hold | undefined } | undefined> {
    try {
      const marking = this.bitmaps.beginHot(first, last);
      if (marking) await marking;
      if (durable) await this.bitmaps.sync();
      let failure: Failure | undefined;
      const fused = this.fusedWrite(update, below, durable);
      if (fused) {
        const outcome = await fused.outcome;
        if (outcome.written === 'both') return undefined;
        if (outcome.written === 'secondary' && outcome.error) {
          // The secondary has it, this side not: the track is out of sync until copied again.
          await this.bitmaps.markOos(first, last);
          throw outcome.error;
        }
        failure = outcome.written === 'secondary' ? this.ackTimeout(fused.link) : this.deviceFailure(outcome.error);
      } else {
        failure = await this.remote(update.length, (ch) => update.apply(ch, durable));
        if (!failure) {
          try {
            await update.apply(below, durable);
          } catch (err) {
            await this.bitmaps.markOos(first, last);
            throw err;
          }
          return undefined;
        }
      }
      await this.bitmaps.markOos(first, last);
      // fail() puts a consistency-group hold in place before its first await; take it now,
      // as the hold may already be released (timeout) by the time fail() resolves.
      const failing = this.ctx.fail(this, failure);
      const hold = this.hold;
      await failing;
      return { failure, hold };
    } finally {
      this.bitmaps.endHot(first, last);
      this.ctx.hotIdle(this);
    }
  }

  /**
   * A local pair's write as one I/O-worker request (Lun.mirrorWrite): the
   * secondary LUN first, then the primary, and the primary not at all once
   * the ack timeout passed: W2's order and outcomes, with one hand-off to a
   * worker instead of two in a row. Only where nothing between would act on
   * the request: the primary layer directly on its LUN, the link up with no
   * injected latency, distance or bandwidth, the secondary's channel open and
   * only its gate on the LUN (SecondaryChannel.enterDirect), and real time
   * (the worker checks the deadline against Date.now()). Otherwise undefined:
   * the two-request route.
   */
  private fusedWrite(update: Update, below: Volume, durable: boolean): { link: Link; outcome: Promise<MirrorWriteOutcome> } | undefined {
    if (update.kind !== 'write' || update.data === undefined || this.ctx.clock !== systemClock) return undefined;
    const mirrorWrite = (below as Partial<FusedMirrorVolume>).mirrorWrite;
    if (typeof mirrorWrite !== 'function') return undefined;
    const links = this.ctx.upLinks(this);
    if (links.length === 0) return undefined;
    const link = links[this.nextLink() % links.length]!;
    if (link.oneWayMs() > 0 || link.record.bandwidth) return undefined;
    const channel = this.resolved.get(link.record.index);
    if (!(channel instanceof SecondaryChannel)) return undefined;
    const direct = channel.enterDirect();
    if (!direct) return undefined;
    const outcome = mirrorWrite.call(below, direct.lun, update.offset, update.data, durable, Date.now() + this.ctx.remoteAckTimeoutMs);
    if (!outcome) {
      direct.leave();
      return undefined;
    }
    link.countFused(update.length);
    return {
      link,
      outcome: outcome.then((o) => {
        direct.leave();
        return o;
      }),
    };
  }

  /**
   * One request to the secondary over an up link of the path (links take turns per tick),
   * raced against remoteAckTimeout on the clock. Undefined when acknowledged.
   * A link going down under it fails it at once; it is sent again over another
   * up link (PP-20). With no up link left it waits out its ack timeout (the
   * host learns of a lost request only then, W2 / PP-26) and fails.
   */
  async remote(bytes: number, op: (channel: Volume) => Promise<unknown>): Promise<Failure | undefined> {
    if (this.ctx.upLinks(this).length === 0) return this.pathsLost();
    let timer: ReturnType<Clock['setTimeout']> | undefined;
    const timeout = new Promise<typeof TIMEOUT>((resolve) => (timer = this.ctx.clock.setTimeout(() => resolve(TIMEOUT), this.ctx.remoteAckTimeoutMs)));
    let link: Link | undefined;
    // Once the ack timed out the write has failed (and its tracks are out of sync): a copy still on a
    // slow link must not start writing the secondary any more (its data may be reused by then).
    let abandoned = false;
    try {
      for (;;) {
        const links = this.ctx.upLinks(this);
        if (links.length === 0) {
          // Every link of the path went down under this request: W2, it fails when its ack is overdue.
          await timeout;
          return this.ackTimeout(link);
        }
        link = links[this.nextLink() % links.length]!;
        const carrier = link;
        try {
          const deliver = async (): Promise<unknown> => {
            if (abandoned) throw new LunrigError('IO_ERROR', `PPRC pair ${this.id}: request abandoned after its ack timeout`, { pair: this.id });
            return op(await this.channel(carrier));
          };
          const result = await Promise.race([carrier.send(bytes, deliver), timeout]);
          if (result !== TIMEOUT) return undefined;
          abandoned = true;
          return this.ackTimeout(carrier);
        } catch (err) {
          if (!(err instanceof LinkDownError)) throw err;
          // Resend only once the secondary is done with the lost copy: it must not land after this write
          // completed (over a later write of the track). The secondary's device, not the link, bounds the wait.
          if (err.inDelivery && (await Promise.race([err.inDelivery, timeout])) === TIMEOUT) {
            abandoned = true;
            return this.ackTimeout(carrier);
          }
        }
      }
    } catch (err) {
      return this.deviceFailure(err);
    } finally {
      if (timer) this.ctx.clock.clearTimeout(timer);
    }
  }

  /**
   * Links take turns per tick, not per request: the requests of one tick go
   * out over one link, in one writev (the NBD client corks a tick), and the
   * next tick's over the next. Round robin per request split every batch over
   * all links: a syscall, and on the secondary a read and a reply, per link.
   */
  private nextLink(): number {
    if (!this.rrTurning) {
      this.rrTurning = true;
      process.nextTick(() => {
        this.rrTurning = false;
        this.rr++;
      });
    }
    return this.rr;
  }

  private deviceFailure(err: unknown): Failure {
    const cause = isLunrigError(err) ? err : new LunrigError('IO_ERROR', String(err));
    return { kind: 'device', error: new LunrigError('IO_ERROR', `PPRC pair ${this.id}: the secondary could not be updated: ${cause.message}`, { pair: this.id, cause: cause.code }, { cause }) };
  }

  private pathsLost(): Failure {
    return { kind: 'paths-lost', error: new LunrigError('IO_ERROR', `PPRC pair ${this.id}: no path to the secondary is up`, { pair: this.id }) };
  }

  private ackTimeout(link: Link | undefined): Failure {
    return {
      kind: 'ack-timeout',
      error: new LunrigError('PPRC_ACK_TIMEOUT', `PPRC pair ${this.id}: the secondary did not acknowledge within ${this.ctx.remoteAckTimeoutMs} ms`, {
        pair: this.id,
        ...(link && { link: link.id }),
      }),
    };
  }

  async flushSecondary(): Promise<void> {
    if (this.state !== 'DUPLEX' && this.state !== 'DUPLEX_PENDING') return;
    // Best effort: a secondary that cannot flush fails the next write instead.
    await this.remote(0, (ch) => ch.flush());
  }

  allOos(first: number, last: number): boolean {
    return native.allSet(this.bitmaps.oos, first, last - first + 1);
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
      const index = link.record.index;
      const opening = this.ctx.ess(this.record.secondary.ess).channel(this.record.secondary.volume, this.id, index);
      ch = opening;
      this.channels.set(index, opening);
      opening.then(
        (v) => {
          if (this.channels.get(index) === opening) this.resolved.set(index, v);
        },
        () => this.channels.delete(index),
      );
    }
    return ch;
  }

  async closeChannels(): Promise<void> {
    const chans = [...this.channels.values()];
    this.channels.clear();
    this.resolved.clear();
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
