/**
 * ESS-style identities (spec/copy-services.md §1, CP-01, ambiguity 12):
 *  - a storage server has a 5-character serial, e.g. FCA24;
 *  - open-systems LSSs are 0x10..0x1f, addressed `2105:<serial>:<LL>`;
 *  - a volume id is 8 characters: LSS index digit (LSS - 0x10), the two-digit
 *    hex volume number within the LSS, then the serial: `108FCA31`;
 *  - a 16-byte NAA type 6 unique id that is never reused (WWN-like).
 */
import { randomBytes, randomInt } from 'node:crypto';
import { LunrigError } from '../errors.js';

export const DEVICE_TYPE = '2105';
export const FIRST_LSS = 0x10;
export const LAST_LSS = 0x1f;
export const DEFAULT_LSS = FIRST_LSS;
export const VOLUMES_PER_LSS = 256;
/** IEEE OUI in the NAA id: IBM's, as the ESS/DS8000 LUN WWIDs carry (6005076...). */
const NAA_OUI = '005076';

const SERIAL_RE = /^[0-9A-Z]{5}$/;
const SERIAL_ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ';

export function validateSerial(serial: string): string {
  const s = serial.toUpperCase();
  if (!SERIAL_RE.test(s)) throw new LunrigError('INVALID_ARGUMENT', `storage server serial must be 5 characters 0-9/A-Z, got '${serial}'`);
  return s;
}

export function generateSerial(): string {
  let s = '';
  for (let i = 0; i < 5; i++) s += SERIAL_ALPHABET[randomInt(SERIAL_ALPHABET.length)];
  return s;
}

/** 48 random bits naming a pool inside every unique id it issues. */
export function generatePoolId(): string {
  return randomBytes(6).toString('hex');
}

/** Accept 16, '10', '0x10', 'x10' (hex, as the ESS writes LSS numbers). */
export function parseLss(input: number | string): number {
  let lss: number;
  if (typeof input === 'number') lss = input;
  else {
    const m = /^\s*(?:0?x)?([0-9a-f]{1,2})\s*$/i.exec(input);
    if (!m) throw new LunrigError('INVALID_ARGUMENT', `cannot parse LSS '${input}' (expected a hex number 10..1f)`);
    lss = Number.parseInt(m[1]!, 16);
  }
  if (!Number.isInteger(lss) || lss < FIRST_LSS || lss > LAST_LSS) {
    throw new LunrigError('LSS_NOT_FOUND', `LSS ${formatLss(lss)} is not an open-systems LSS of this server (10..1f)`, { lss });
  }
  return lss;
}

export function formatLss(lss: number): string {
  return Number.isInteger(lss) && lss >= 0 ? lss.toString(16).padStart(2, '0') : String(lss);
}

export function lssAddress(serial: string, lss: number): string {
  return `${DEVICE_TYPE}:${serial}:${formatLss(lss)}`;
}

export function volumeId(serial: string, lss: number, volumeNumber: number): string {
  return `${(lss - FIRST_LSS).toString(16)}${volumeNumber.toString(16).padStart(2, '0')}${serial}`.toUpperCase();
}

/** NAA 6 id: '6' + OUI + 48-bit pool id + 52-bit sequence number (32 hex digits). */
export function uniqueId(poolId: string, sequence: number): string {
  return `6${NAA_OUI}${poolId}${sequence.toString(16).padStart(13, '0')}`;
}

const LUN_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** LUN names become NBD export names and URL path segments: keep them plain. */
export function validateLunName(name: unknown): string {
  if (typeof name !== 'string' || !LUN_NAME_RE.test(name)) {
    throw new LunrigError('INVALID_ARGUMENT', `invalid LUN name ${JSON.stringify(name)}: use 1-64 characters A-Z a-z 0-9 . _ - starting with a letter or digit`);
  }
  return name;
}
