/**
 * The vocabulary of SCSI reservations (spec/multipath.md §1.7): the I_T
 * nexus a command arrives on, SPC-3 persistent-reservation types with their
 * wire codes, and 8-byte reservation keys. Shared by the per-LU engine
 * (lu-reservations.ts), the table of all LUs, and the paths that send
 * reservation commands out of band (NBD carries none).
 */
import { LunrigError } from '../errors.js';

/** One I_T nexus: the initiator (a host) and the target port the command came through. */
export interface Nexus {
  /** The host name (hosts are the array's initiators; '' for an unidentified client). */
  host: string;
  /** The target port name ('*' in a registration made with ALL_TG_PT). */
  port: string;
}

export const nexusKey = (n: Nexus): string => `${n.host}@${n.port}`;

/**
 * SPC-3 PR types by their wire code (PERSISTENT RESERVE OUT TYPE field).
 * Linux `enum pr_type` numbers these differently (1..6); these are SPC's.
 */
export const PR_TYPES = {
  write_exclusive: 0x1,
  exclusive_access: 0x3,
  write_exclusive_registrants_only: 0x5,
  exclusive_access_registrants_only: 0x6,
  write_exclusive_all_registrants: 0x7,
  exclusive_access_all_registrants: 0x8,
} as const;

export type PrType = keyof typeof PR_TYPES;
export const PR_TYPE_NAMES = Object.keys(PR_TYPES) as PrType[];

/** Registrants (not only the holder) may write / read. */
export function registrantsAccess(type: PrType): boolean {
  return type !== 'write_exclusive' && type !== 'exclusive_access';
}

/** Every registrant holds the reservation (all-registrants types). */
export function allRegistrants(type: PrType): boolean {
  return type === 'write_exclusive_all_registrants' || type === 'exclusive_access_all_registrants';
}

/** Non-registrants may not even read (exclusive access types). */
export function exclusiveAccess(type: PrType): boolean {
  return type === 'exclusive_access' || type === 'exclusive_access_registrants_only' || type === 'exclusive_access_all_registrants';
}

export function parsePrType(value: unknown): PrType {
  if (typeof value === 'string' && (PR_TYPE_NAMES as string[]).includes(value)) return value as PrType;
  const code = typeof value === 'number' ? value : typeof value === 'string' && /^(0x)?[0-9a-f]+h?$/i.test(value) ? Number.parseInt(value.replace(/h$/i, ''), 16) : NaN;
  const byCode = PR_TYPE_NAMES.find((t) => PR_TYPES[t] === code);
  if (byCode) return byCode;
  throw new LunrigError('INVALID_ARGUMENT', `unknown persistent reservation type ${JSON.stringify(value)}: use one of ${PR_TYPE_NAMES.join(', ')} or an SPC code 1h/3h/5h/6h/7h/8h`);
}

/** A reservation key: 8 bytes, kept as 16 lowercase hex digits. 0 means "none". */
export type ReservationKey = string;
export const NO_KEY: ReservationKey = '0000000000000000';

/** Accepts a number, a bigint, or a hex string with or without 0x. */
export function parseKey(value: unknown): ReservationKey {
  let n: bigint | undefined;
  if (typeof value === 'bigint') n = value;
  else if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0) n = BigInt(value);
  else if (typeof value === 'string' && /^(0x)?[0-9a-f]{1,16}$/i.test(value)) n = BigInt(value.startsWith('0x') || value.startsWith('0X') ? value : `0x${value}`);
  if (n === undefined || n < 0n || n > 0xffffffffffffffffn) {
    throw new LunrigError('INVALID_ARGUMENT', `invalid reservation key ${JSON.stringify(typeof value === 'bigint' ? value.toString() : value)}: 8 bytes, as a number or up to 16 hex digits`);
  }
  return n.toString(16).padStart(16, '0');
}

/** Which way a request uses the medium: reads (READ, BLOCK STATUS, TEST UNIT READY) or writes (WRITE, WRITE ZEROES, TRIM, SYNCHRONIZE CACHE). */
export type AccessKind = 'read' | 'write';

/** PERSISTENT RESERVE OUT, one service action per variant. */
export type PrOutRequest =
  | { action: 'register'; key?: unknown; serviceKey: unknown; aptpl?: boolean; allTargetPorts?: boolean }
  | { action: 'register_and_ignore'; serviceKey: unknown; aptpl?: boolean; allTargetPorts?: boolean }
  | { action: 'reserve'; key: unknown; type: PrType | number | string }
  | { action: 'release'; key: unknown; type: PrType | number | string }
  | { action: 'clear'; key: unknown }
  | { action: 'preempt'; key: unknown; serviceKey: unknown; type: PrType | number | string }
  | { action: 'preempt_and_abort'; key: unknown; serviceKey: unknown; type: PrType | number | string };

export const PR_OUT_ACTIONS = ['register', 'register_and_ignore', 'reserve', 'release', 'clear', 'preempt', 'preempt_and_abort'] as const;

export interface Registration {
  host: string;
  port: string;
  key: ReservationKey;
}

/** PERSISTENT RESERVE IN (READ FULL STATUS, roughly) plus the SCSI-2 reserve. */
export interface ReservationStatus {
  generation: number;
  registrations: Registration[];
  /** The persistent reservation, if any; `holder` is absent for all-registrants types. */
  reservation: { type: PrType; key: ReservationKey; holder?: Nexus } | undefined;
  /** SCSI-2 RESERVE holder, if any. */
  scsi2: Nexus | undefined;
  /** Activate persist through power loss (SPC-3 APTPL), from the last REGISTER. */
  aptpl: boolean;
}

/**
 * The reservation commands one nexus can send to its LU: what a path needs
 * to implement reserve_policy. In-process it is a table handle; over NBD it
 * goes out of band (the control API), as sg_persist would go over SCSI.
 */
export interface NexusCommands {
  readonly nexus: Nexus;
  /** SCSI-2 RESERVE(6). */
  reserve(): Promise<void>;
  /** SCSI-2 RELEASE(6). */
  release(): Promise<void>;
  /** LOGICAL UNIT RESET / bus device reset: clears the SCSI-2 reserve (not persistent reservations). */
  lunReset(): Promise<void>;
  persistentReserveOut(request: PrOutRequest): Promise<void>;
  persistentReserveIn(): Promise<ReservationStatus>;
}
