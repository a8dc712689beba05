/**
 * Every LU's reservations, shared by all initiators and all ports (spec
 * §5.1 item 7: "a reservation engine shared by all initiators"). LUs are
 * keyed by their unique id, so every port and path of one LU meets the same
 * state. `nexus()` hands out the commands one I_T nexus may send; `check()`
 * is what the gates (NBD sessions, ReservationGate) ask per request.
 *
 * Persistence (SPC-3 APTPL): registrations and the persistent reservation of
 * an LU whose last REGISTER set APTPL are written to `reservations.json` in
 * the pool directory (store/persist.ts: atomic) before the command
 * completes, and come back on open. Without APTPL a restart is a power-on:
 * they are gone. SCSI-2 reserves never persist.
 */
import path from 'node:path';
import { LunrigError } from '../errors.js';
import { readJsonFile, writeJsonAtomic } from '../store/persist.js';
import { SerialQueue } from '../util/serial-queue.js';
import { LuReservations, type PersistedLuReservations } from './lu-reservations.js';
import type { AccessKind, Nexus, NexusCommands, PrOutRequest, ReservationStatus } from './reservation-types.js';

export const RESERVATIONS_FILE = 'reservations.json';

interface ReservationsFile {
  version: 1;
  lus: Record<string, PersistedLuReservations>;
}

export class ReservationTable {
  private readonly lus = new Map<string, LuReservations>();
  private readonly writes = new SerialQueue();

  /** `file` undefined: in memory only (APTPL is then accepted but cannot outlive the process). */
  constructor(private readonly file?: string) {}

  /** Open the table of a pool directory, restoring APTPL state. */
  static async open(dir: string): Promise<ReservationTable> {
    const table = new ReservationTable(path.join(dir, RESERVATIONS_FILE));
    const data = (await readJsonFile(table.file!)) as ReservationsFile | undefined;
    if (data !== undefined) {
      if (typeof data !== 'object' || data === null || data.version !== 1 || typeof data.lus !== 'object') {
        throw new LunrigError('POOL_CORRUPT', `${table.file} is not a reservations file`, { file: table.file });
      }
      for (const [lu, p] of Object.entries(data.lus)) table.lu(lu).restore(p);
    }
    return table;
  }

  /** The state of one LU (created empty on first use). */
  lu(id: string): LuReservations {
    let r = this.lus.get(id);
    if (!r) {
      r = new LuReservations(id);
      this.lus.set(id, r);
    }
    return r;
  }

  /** Fast per-request check: undefined when `nexus` may do `kind` on `lu`. */
  check(lu: string, nexus: Nexus, kind: AccessKind): LunrigError | undefined {
    const r = this.lus.get(lu);
    return r === undefined || r.idle ? undefined : r.check(nexus, kind);
  }

  status(lu: string): ReservationStatus {
    return this.lu(lu).status();
  }

  reserve(lu: string, nexus: Nexus): void {
    this.lu(lu).reserve(checkNexus(nexus));
  }

  release(lu: string, nexus: Nexus): void {
    this.lu(lu).release(checkNexus(nexus));
  }

  reset(lu: string): void {
    this.lu(lu).reset();
  }

  /** PERSISTENT RESERVE OUT; resolves once an APTPL change is durable. */
  async persistentReserveOut(lu: string, nexus: Nexus, request: PrOutRequest): Promise<void> {
    const r = this.lu(lu);
    const wasPersistent = r.aptpl;
    r.persistentReserveOut(checkNexus(nexus), request);
    if (r.aptpl || wasPersistent) await this.save();
  }

  /** Forget an LU (deleted). */
  async drop(lu: string): Promise<void> {
    const r = this.lus.get(lu);
    this.lus.delete(lu);
    if (r?.aptpl) await this.save();
  }

  /** The commands of one nexus, bound: what a path's transport offers the multipath layer. */
  nexus(lu: string, nexus: Nexus): NexusCommands {
    const n = { ...nexus };
    return {
      nexus: n,
      reserve: async () => this.reserve(lu, n),
      release: async () => this.release(lu, n),
      lunReset: async () => this.reset(lu),
      persistentReserveOut: (req) => this.persistentReserveOut(lu, n, req),
      persistentReserveIn: async () => this.status(lu),
    };
  }

  private save(): Promise<void> {
    const file = this.file;
    if (!file) return Promise.resolve();
    return this.writes.run(async () => {
      const lus: Record<string, PersistedLuReservations> = {};
      for (const [id, r] of this.lus) if (r.aptpl) lus[id] = r.snapshot();
      const doc: ReservationsFile = { version: 1, lus };
      await writeJsonAtomic(file, doc);
    });
  }
}

function checkNexus(n: Nexus): Nexus {
  if (typeof n.host !== 'string' || n.host === '') throw new LunrigError('INVALID_ARGUMENT', 'reservation commands need an identified host (initiator)');
  if (typeof n.port !== 'string' || n.port === '') throw new LunrigError('INVALID_ARGUMENT', 'reservation commands need a target port');
  return n;
}
