/**
 * One logical unit's reservation state (spec/multipath.md §1.7): a SCSI-2
 * RESERVE held by one I_T nexus, and SPC-3 persistent reservations
 * (registrations, one reservation of a type, PRgeneration). Pure state, no
 * I/O: the table (reservation-table.ts) persists it, the gates ask
 * `check()` before each request.
 *
 * Rules (SPC-3 §5.6, and where the spec fixes them):
 * - RESERVE(6) conflicts while a persistent reservation or any registration
 *   exists (mixing, MP-36), or while another nexus holds it. RELEASE from a
 *   nexus that holds nothing is GOOD and does nothing.
 * - A SCSI-2 reserve stops every request from other nexuses, reads included
 *   (so TEST UNIT READY conflicts, MP-25); it is not persistent and a LUN
 *   reset clears it.
 * - PRgeneration goes up by one on REGISTER, REGISTER AND IGNORE EXISTING
 *   KEY, CLEAR, PREEMPT and PREEMPT AND ABORT; never on RESERVE or RELEASE
 *   (MP-37). A REGISTER that changes nothing (unregistered nexus, key 0)
 *   does not count.
 * - Access under a persistent reservation (SPC-3 table 31, for the commands
 *   NBD has): WE / EA: only the holder; *_REGISTRANTS_ONLY and
 *   *_ALL_REGISTRANTS: every registrant. Non-registrants may read under the
 *   write-exclusive types and may not under the exclusive-access types.
 * - PREEMPT AND ABORT is PREEMPT here: the emulator has no task set to abort
 *   (requests already issued complete).
 */
import { LunrigError } from '../errors.js';
import {
  NO_KEY,
  allRegistrants,
  exclusiveAccess,
  nexusKey,
  parseKey,
  parsePrType,
  registrantsAccess,
  type AccessKind,
  type Nexus,
  type PrOutRequest,
  type PrType,
  type Registration,
  type ReservationKey,
  type ReservationStatus,
} from './reservation-types.js';

/** What survives a restart when APTPL is set. */
export interface PersistedLuReservations {
  generation: number;
  registrations: Registration[];
  reservation: { type: PrType; key: ReservationKey; holder?: Nexus } | undefined;
}

export class LuReservations {
  private gen = 0;
  /** By nexusKey; a registration with port '*' (ALL_TG_PT) covers every port of its host. */
  private readonly regs = new Map<string, Registration>();
  private pr: { type: PrType; key: ReservationKey; holder?: Nexus } | undefined;
  private scsi2: Nexus | undefined;
  private aptplBit = false;

  constructor(readonly lu: string) {}

  get generation(): number {
    return this.gen;
  }

  get aptpl(): boolean {
    return this.aptplBit;
  }

  /** Nothing held or registered: every request passes without looking further. */
  get idle(): boolean {
    return this.scsi2 === undefined && this.pr === undefined && this.regs.size === 0;
  }

  // --- Access.

  /** RESERVATION_CONFLICT when `nexus` may not do `kind` now; undefined when it may. */
  check(nexus: Nexus, kind: AccessKind): LunrigError | undefined {
    if (this.scsi2 && !sameNexus(this.scsi2, nexus)) {
      return this.conflict(`reserved (SCSI-2) by ${nexusKey(this.scsi2)}`, nexus);
    }
    const pr = this.pr;
    if (!pr) return undefined;
    const reg = this.registration(nexus);
    const isHolder = allRegistrants(pr.type) ? reg !== undefined : pr.holder !== undefined && reg !== undefined && sameNexus(pr.holder, reg);
    if (isHolder) return undefined;
    if (reg && registrantsAccess(pr.type)) return undefined;
    if (kind === 'read' && !exclusiveAccess(pr.type)) return undefined;
    return this.conflict(`persistent reservation ${pr.type} held${pr.holder ? ` by ${nexusKey(pr.holder)}` : ' by all registrants'}`, nexus);
  }

  // --- SCSI-2.

  reserve(nexus: Nexus): void {
    if (this.pr || this.regs.size > 0) throw this.conflict('RESERVE refused: persistent reservations are in use on this LU', nexus);
    if (this.scsi2 && !sameNexus(this.scsi2, nexus)) throw this.conflict(`RESERVE refused: reserved by ${nexusKey(this.scsi2)}`, nexus);
    this.scsi2 = { ...nexus };
  }

  release(nexus: Nexus): void {
    if (this.scsi2 && sameNexus(this.scsi2, nexus)) this.scsi2 = undefined;
  }

  /** LUN reset / BDR from any nexus: the SCSI-2 reserve is gone; persistent reservations stay. */
  reset(): void {
    this.scsi2 = undefined;
  }

  /** Power on without APTPL: everything goes. */
  powerOn(): void {
    this.scsi2 = undefined;
    if (!this.aptplBit) {
      this.regs.clear();
      this.pr = undefined;
    }
  }

  // --- SPC-3 PERSISTENT RESERVE OUT.

  persistentReserveOut(nexus: Nexus, req: PrOutRequest): void {
    if (this.scsi2 && !sameNexus(this.scsi2, nexus)) throw this.conflict(`reserved (SCSI-2) by ${nexusKey(this.scsi2)}`, nexus);
    switch (req.action) {
      case 'register':
        return this.register(nexus, req.key === undefined ? NO_KEY : parseKey(req.key), parseKey(req.serviceKey), false, req.aptpl, req.allTargetPorts);
      case 'register_and_ignore':
        return this.register(nexus, NO_KEY, parseKey(req.serviceKey), true, req.aptpl, req.allTargetPorts);
      case 'reserve':
        return this.prReserve(nexus, parseKey(req.key), parsePrType(req.type));
      case 'release':
        return this.prRelease(nexus, parseKey(req.key), parsePrType(req.type));
      case 'clear':
        return this.clear(nexus, parseKey(req.key));
      case 'preempt':
      case 'preempt_and_abort':
        return this.preempt(nexus, parseKey(req.key), parseKey(req.serviceKey), parsePrType(req.type));
      default:
        throw new LunrigError('INVALID_ARGUMENT', `unknown PERSISTENT RESERVE OUT action ${JSON.stringify((req as { action: unknown }).action)}`);
    }
  }

  status(): ReservationStatus {
    return {
      generation: this.gen,
      registrations: [...this.regs.values()].map((r) => ({ ...r })),
      reservation: this.pr && { ...this.pr, ...(this.pr.holder && { holder: { ...this.pr.holder } }) },
      scsi2: this.scsi2 && { ...this.scsi2 },
      aptpl: this.aptplBit,
    };
  }

  /** The part that persists (only meaningful while `aptpl`). */
  snapshot(): PersistedLuReservations {
    const s = this.status();
    return { generation: s.generation, registrations: s.registrations, reservation: s.reservation };
  }

  /** Restore after a restart (APTPL). */
  restore(p: PersistedLuReservations): void {
    this.gen = p.generation;
    this.regs.clear();
    for (const r of p.registrations) this.regs.set(nexusKey(r), { host: r.host, port: r.port, key: parseKey(r.key) });
    this.pr = p.reservation && { ...p.reservation, key: parseKey(p.reservation.key) };
    this.aptplBit = true;
  }

  private register(nexus: Nexus, key: ReservationKey, serviceKey: ReservationKey, ignore: boolean, aptpl: boolean | undefined, allTargetPorts: boolean | undefined): void {
    const at: Nexus = { host: nexus.host, port: allTargetPorts ? '*' : nexus.port };
    const existing = this.regs.get(nexusKey(at)) ?? (allTargetPorts ? undefined : this.registration(nexus));
    if (!existing) {
      if (!ignore && key !== NO_KEY) throw this.conflict(`REGISTER with key ${key} from an unregistered nexus`, nexus);
      if (serviceKey === NO_KEY) return; // nothing to do; GOOD
      this.regs.set(nexusKey(at), { ...at, key: serviceKey });
    } else {
      if (!ignore && key !== existing.key) throw this.conflict(`REGISTER: key ${key} does not match the registered key`, nexus);
      if (serviceKey === NO_KEY) this.unregister(existing);
      else existing.key = serviceKey;
    }
    if (aptpl !== undefined) this.aptplBit = aptpl;
    this.gen++;
  }

  private unregister(reg: Registration): void {
    this.regs.delete(nexusKey(reg));
    const pr = this.pr;
    if (!pr) return;
    if (allRegistrants(pr.type)) {
      if (this.regs.size === 0) this.pr = undefined;
    } else if (pr.holder && sameNexus(pr.holder, reg)) {
      this.pr = undefined;
    }
  }

  private prReserve(nexus: Nexus, key: ReservationKey, type: PrType): void {
    const reg = this.requireRegistered(nexus, key, 'RESERVE');
    const pr = this.pr;
    if (pr) {
      const holds = allRegistrants(pr.type) || (pr.holder !== undefined && sameNexus(pr.holder, reg));
      if (!holds) throw this.conflict(`RESERVE: ${pr.type} is held by ${pr.holder ? nexusKey(pr.holder) : 'all registrants'}`, nexus);
      if (pr.type !== type) throw this.conflict(`RESERVE: already reserved as ${pr.type}, not ${type}`, nexus);
      return;
    }
    this.pr = { type, key: reg.key, ...(!allRegistrants(type) && { holder: { host: reg.host, port: reg.port } }) };
  }

  private prRelease(nexus: Nexus, key: ReservationKey, type: PrType): void {
    const reg = this.requireRegistered(nexus, key, 'RELEASE');
    const pr = this.pr;
    if (!pr) return;
    const holds = allRegistrants(pr.type) || (pr.holder !== undefined && sameNexus(pr.holder, reg));
    if (!holds) return; // GOOD, nothing released
    if (pr.type !== type) throw new LunrigError('INVALID_ARGUMENT', `RELEASE: the reservation is ${pr.type}, not ${type} (invalid release of persistent reservation)`, { lu: this.lu });
    this.pr = undefined;
  }

  private clear(nexus: Nexus, key: ReservationKey): void {
    this.requireRegistered(nexus, key, 'CLEAR');
    this.regs.clear();
    this.pr = undefined;
    this.gen++;
  }

  private preempt(nexus: Nexus, key: ReservationKey, serviceKey: ReservationKey, type: PrType): void {
    const reg = this.requireRegistered(nexus, key, 'PREEMPT');
    const pr = this.pr;
    const victims = (k: ReservationKey) => [...this.regs.values()].filter((r) => r.key === k && !sameNexus(r, reg));
    if (pr && allRegistrants(pr.type)) {
      if (serviceKey === NO_KEY) {
        for (const r of [...this.regs.values()]) if (!sameNexus(r, reg)) this.regs.delete(nexusKey(r));
        this.pr = { type, key: reg.key, ...(!allRegistrants(type) && { holder: { host: reg.host, port: reg.port } }) };
      } else {
        for (const r of victims(serviceKey)) this.regs.delete(nexusKey(r));
      }
    } else if (pr && pr.key === serviceKey) {
      for (const r of victims(serviceKey)) this.regs.delete(nexusKey(r));
      this.pr = { type, key: reg.key, ...(!allRegistrants(type) && { holder: { host: reg.host, port: reg.port } }) };
    } else {
      if (serviceKey === NO_KEY) throw new LunrigError('INVALID_ARGUMENT', 'PREEMPT with service action key 0 needs an all-registrants reservation', { lu: this.lu });
      const gone = victims(serviceKey);
      if (gone.length === 0) throw this.conflict(`PREEMPT: no registration with key ${serviceKey}`, nexus);
      for (const r of gone) this.regs.delete(nexusKey(r));
    }
    this.gen++;
  }

  private requireRegistered(nexus: Nexus, key: ReservationKey, what: string): Registration {
    const reg = this.registration(nexus);
    if (!reg || reg.key !== key) throw this.conflict(`${what}: nexus ${nexusKey(nexus)} is not registered with key ${key}`, nexus);
    return reg;
  }

  /** The registration covering `nexus`: its own, or its host's ALL_TG_PT one. */
  private registration(nexus: Nexus): Registration | undefined {
    return this.regs.get(nexusKey(nexus)) ?? this.regs.get(nexusKey({ host: nexus.host, port: '*' }));
  }

  private conflict(why: string, nexus: Nexus): LunrigError {
    return new LunrigError('RESERVATION_CONFLICT', `${this.lu}: reservation conflict for ${nexusKey(nexus)}: ${why}`, { lu: this.lu, host: nexus.host, port: nexus.port });
  }
}

function sameNexus(a: Nexus, b: Nexus): boolean {
  return a.host === b.host && a.port === b.port;
}
