/**
 * Physical links from this (primary) ESS to secondary ESSs (spec §3.2, §3.10).
 * Each link has its own fault state, applied on the injectable clock before a
 * request reaches the secondary's channel and before its ack comes back:
 * `down` (a path error: requests in transit on the link fail at once with
 * LinkDownError, and so does a request sent while it is down; the pair retries
 * them on another up link of its path, PP-20), one-way `latencyMs`,
 * `bandwidth` (bytes/s, one transfer at a time per link), propagation 5 us/km
 * over `distanceKm`, and an optional handshake count (§3.10: the ESCON
 * protocol needs 3 exchanges). A request that already reached the secondary
 * may have been applied there when its link goes down; resending it is
 * harmless (the same data to the same place, the pair's track lock held).
 */
import { LunrigError } from '../../errors.js';
import type { Clock } from '../../util/clock.js';

/** 5 microseconds per km one way in fibre (spec §3.10, general physics). */
export const PROPAGATION_MS_PER_KM = 0.005;
export const MAX_DISTANCE_KM = 103;
export const MAX_LINKS_PER_ESS = 8;
export const MAX_SECONDARY_ESS = 4;

export interface LinkFault {
  down?: boolean;
  /** Added one-way latency in ms. */
  latencyMs?: number;
  /** Bytes per second; null or 0 = unlimited. */
  bandwidth?: number | null;
}

export interface LinkRecord {
  id: string;
  /** Serial of the secondary ESS. */
  to: string;
  /** 0-based among this ESS's links to `to`: the channel's linkIndex. */
  index: number;
  distanceKm: number;
  /** Round trips per write: 1 (default) or 3 (the ESCON 3-handshake model). */
  handshakes: number;
  down: boolean;
  latencyMs: number;
  bandwidth: number | null;
}

export interface LinkInfo extends LinkRecord {
  /** Requests delivered over it and their bytes (PP-18 counts copied tracks at the link). */
  requests: number;
  bytes: number;
  /** Of those, local mirror writes done with the primary write in one I/O-worker request. */
  fused: number;
}

export interface AddLinkRequest {
  id?: string;
  to: string;
  distanceKm?: number;
  handshakes?: number;
}

/** The link went down under a request, or was down when it was sent: a path error, not a device error. */
export class LinkDownError extends LunrigError {
  constructor(
    readonly link: string,
    /**
     * The request's delivery at the secondary, when it had started (settles
     * when the secondary is done with it, never rejects): a resend waits for
     * it, so no copy of the request can land after the write completed.
     */
    readonly inDelivery?: Promise<void>,
  ) {
    super('IO_ERROR', `PPRC link '${link}' is down`, { link });
  }
}

export class Link {
  requests = 0;
  bytes = 0;
  fused = 0;
  /** Bumped when the link goes down: a request that saw another epoch was lost. */
  private epoch = 0;
  private busyUntil = 0;
  /** Cut-off functions of the requests awaiting their ack: going down fails them at once. */
  private readonly inTransit = new Set<() => void>();

  constructor(
    public record: LinkRecord,
    private readonly clock: Clock,
  ) {}

  get id(): string {
    return this.record.id;
  }

  get up(): boolean {
    return !this.record.down;
  }

  setFault(fault: LinkFault): void {
    if (fault.latencyMs !== undefined && (!Number.isFinite(fault.latencyMs) || fault.latencyMs < 0)) {
      throw new LunrigError('INVALID_ARGUMENT', `latencyMs must be >= 0, got ${fault.latencyMs}`);
    }
    if (fault.bandwidth !== undefined && fault.bandwidth !== null && (!Number.isFinite(fault.bandwidth) || fault.bandwidth < 0)) {
      throw new LunrigError('INVALID_ARGUMENT', `bandwidth must be >= 0, got ${fault.bandwidth}`);
    }
    const goingDown = fault.down === true && !this.record.down;
    if (goingDown) this.epoch++;
    this.record = {
      ...this.record,
      ...(fault.down !== undefined && { down: fault.down }),
      ...(fault.latencyMs !== undefined && { latencyMs: fault.latencyMs }),
      ...(fault.bandwidth !== undefined && { bandwidth: fault.bandwidth || null }),
    };
    if (goingDown) for (const cut of [...this.inTransit]) cut();
  }

  /** One-way delay in ms: injected latency plus propagation. */
  oneWayMs(): number {
    return this.record.latencyMs + this.record.distanceKm * PROPAGATION_MS_PER_KM;
  }

  /**
   * Carry one request of `bytes` over the link: the outbound leg (handshakes
   * and transfer time), `deliver` at the secondary, the ack leg. Rejects with
   * LinkDownError at once when the link is down or goes down before the ack is
   * back (whatever `deliver` still does then is not waited for).
   */
  send<T>(bytes: number, deliver: () => Promise<T>): Promise<T> {
    if (this.record.down) return Promise.reject(new LinkDownError(this.id));
    return new Promise<T>((resolve, reject) => {
      let delivering: Promise<void> | undefined;
      const cut = (): void => {
        this.inTransit.delete(cut);
        reject(new LinkDownError(this.id, delivering));
      };
      this.inTransit.add(cut);
      const tracked = (): Promise<T> => {
        const p = deliver();
        delivering = p.then(
          () => undefined,
          () => undefined,
        );
        return p;
      };
      this.carry(bytes, tracked).then(
        (value) => {
          this.inTransit.delete(cut);
          resolve(value);
        },
        (err: unknown) => {
          this.inTransit.delete(cut);
          reject(err);
        },
      );
    });
  }

  /** A request delivered without `send` (a fused local mirror write): counted like one. */
  countFused(bytes: number): void {
    this.requests++;
    this.bytes += bytes;
    this.fused++;
  }

  /** Requests on the link that have not had their ack yet. */
  get inTransitCount(): number {
    return this.inTransit.size;
  }

  private async carry<T>(bytes: number, deliver: () => Promise<T>): Promise<T> {
    const epoch = this.epoch;
    const oneWay = this.oneWayMs();
    let out = oneWay * (2 * this.record.handshakes - 1);
    if (this.record.bandwidth) {
      const start = Math.max(this.clock.now(), this.busyUntil);
      this.busyUntil = start + (bytes / this.record.bandwidth) * 1000;
      out += this.busyUntil - this.clock.now();
    }
    if (out > 0) await this.clock.sleep(out);
    if (this.record.down || this.epoch !== epoch) throw new LinkDownError(this.id);
    this.requests++;
    this.bytes += bytes;
    const result = await deliver();
    if (oneWay > 0) await this.clock.sleep(oneWay);
    if (this.record.down || this.epoch !== epoch) throw new LinkDownError(this.id);
    return result;
  }

  info(): LinkInfo {
    return { ...this.record, requests: this.requests, bytes: this.bytes, fused: this.fused };
  }
}

/** Check and build a new link record; `existing` are this ESS's links. */
export function newLinkRecord(request: AddLinkRequest, existing: readonly LinkRecord[], limits: boolean): LinkRecord {
  const to = String(request.to ?? '');
  if (!/^[0-9A-Z]{5}$/.test(to)) throw new LunrigError('INVALID_ARGUMENT', `an ESS serial is 5 characters 0-9/A-Z, got '${to}'`);
  const distanceKm = request.distanceKm ?? 0;
  if (!Number.isFinite(distanceKm) || distanceKm < 0) throw new LunrigError('INVALID_ARGUMENT', `distanceKm must be >= 0, got ${distanceKm}`);
  if (limits && distanceKm > MAX_DISTANCE_KM) {
    throw new LunrigError('PPRC_DISTANCE_TOO_LONG', `${distanceKm} km is beyond the ${MAX_DISTANCE_KM} km ESCON maximum between two ESSs`, { distanceKm });
  }
  const handshakes = request.handshakes ?? 1;
  if (!Number.isInteger(handshakes) || handshakes < 1) throw new LunrigError('INVALID_ARGUMENT', `handshakes must be a positive integer, got ${handshakes}`);
  const id = request.id ?? nextId(existing);
  if (!/^[A-Za-z0-9_.-]{1,64}$/.test(id)) throw new LunrigError('INVALID_ARGUMENT', `invalid link id '${id}'`);
  if (existing.some((l) => l.id === id)) throw new LunrigError('INVALID_ARGUMENT', `link '${id}' exists`, { link: id });
  const sameEss = existing.filter((l) => l.to === to);
  if (limits && sameEss.length >= MAX_LINKS_PER_ESS) {
    throw new LunrigError('PPRC_TOO_MANY_LINKS', `ESS ${to} already has ${MAX_LINKS_PER_ESS} links from this ESS (PP-15)`, { to });
  }
  const essCount = new Set(existing.map((l) => l.to));
  if (limits && !essCount.has(to) && essCount.size >= MAX_SECONDARY_ESS) {
    throw new LunrigError('PPRC_TOO_MANY_SECONDARIES', `this ESS already has links to ${MAX_SECONDARY_ESS} secondary ESSs (PP-14)`, { to });
  }
  const used = new Set(sameEss.map((l) => l.index));
  let index = 0;
  while (used.has(index)) index++;
  return { id, to, index, distanceKm, handshakes, down: false, latencyMs: 0, bandwidth: null };
}

function nextId(existing: readonly LinkRecord[]): string {
  let n = existing.length + 1;
  while (existing.some((l) => l.id === `l${n}`)) n++;
  return `l${n}`;
}
