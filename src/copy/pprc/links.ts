/**
 * Physical links from this (primary) ESS to secondary ESSs (spec §3.2, §3.10).
 * Each link has its own fault state, applied on the injectable clock before a
 * request reaches the secondary's channel and before its ack comes back:
 * `down` (requests in transit are lost: their ack never arrives, the mirror's
 * remoteAckTimeout decides), one-way `latencyMs`, `bandwidth` (bytes/s, one
 * transfer at a time per link), propagation 5 us/km over `distanceKm`, and an
 * optional handshake count (§3.10: the ESCON protocol needs 3 exchanges).
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
}

export interface AddLinkRequest {
  id?: string;
  to: string;
  distanceKm?: number;
  handshakes?: number;
}

const never = <T>(): Promise<T> => new Promise<T>(() => undefined);

export class Link {
  requests = 0;
  bytes = 0;
  /** Bumped when the link goes down: a request that saw another epoch was lost. */
  private epoch = 0;
  private busyUntil = 0;

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
    if (fault.down === true && !this.record.down) this.epoch++;
    this.record = {
      ...this.record,
      ...(fault.down !== undefined && { down: fault.down }),
      ...(fault.latencyMs !== undefined && { latencyMs: fault.latencyMs }),
      ...(fault.bandwidth !== undefined && { bandwidth: fault.bandwidth || null }),
    };
  }

  /** One-way delay in ms: injected latency plus propagation. */
  oneWayMs(): number {
    return this.record.latencyMs + this.record.distanceKm * PROPAGATION_MS_PER_KM;
  }

  /**
   * Carry one request of `bytes` over the link: the outbound leg (handshakes
   * and transfer time), `deliver` at the secondary, the ack leg. A link that is
   * down, or goes down while the request is in transit, loses it: the promise
   * never settles (the caller's ack timeout decides), as on ESCON.
   */
  async send<T>(bytes: number, deliver: () => Promise<T>): Promise<T> {
    const epoch = this.epoch;
    if (this.record.down) return never();
    const oneWay = this.oneWayMs();
    let out = oneWay * (2 * this.record.handshakes - 1);
    if (this.record.bandwidth) {
      const start = Math.max(this.clock.now(), this.busyUntil);
      this.busyUntil = start + (bytes / this.record.bandwidth) * 1000;
      out += this.busyUntil - this.clock.now();
    }
    if (out > 0) await this.clock.sleep(out);
    if (this.record.down || this.epoch !== epoch) return never();
    this.requests++;
    this.bytes += bytes;
    const result = await deliver();
    if (oneWay > 0) await this.clock.sleep(oneWay);
    if (this.record.down || this.epoch !== epoch) return never();
    return result;
  }

  info(): LinkInfo {
    return { ...this.record, requests: this.requests, bytes: this.bytes };
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
