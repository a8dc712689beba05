import { LunrigError } from '../errors.js';

export const SECTOR = 512;
export const KiB = 1024;
export const MiB = 1024 * KiB;
export const GiB = 1024 * MiB;
export const TiB = 1024 * GiB;
/** Largest LUN lunrig provisions: 256 TiB, well inside 2^53 and beyond the 16 TiB the ESS profile needs. */
export const MAX_LUN_SIZE = 256 * TiB;

const UNITS: Record<string, number> = { '': 1, B: 1, K: KiB, M: MiB, G: GiB, T: TiB, P: 1024 * TiB };

/**
 * Parse a size such as `4096`, `512B`, `10G`, `1.5T`, `64KiB` (powers of 1024).
 * Returns bytes. Throws INVALID_SIZE for anything unparsable or not a whole byte count.
 */
export function parseSize(input: string | number): number {
  if (typeof input === 'number') {
    if (!Number.isSafeInteger(input) || input < 0) throw new LunrigError('INVALID_SIZE', `size must be a non-negative integer number of bytes, got ${input}`);
    return input;
  }
  const m = /^\s*(\d+(?:\.\d+)?)\s*([KMGTP]?)(?:i?B)?\s*$/i.exec(input);
  if (!m) throw new LunrigError('INVALID_SIZE', `cannot parse size '${input}' (expected e.g. 4096, 512K, 10G, 1T)`);
  const unit = UNITS[m[2]!.toUpperCase()]!;
  const bytes = Number(m[1]) * unit;
  if (!Number.isSafeInteger(bytes)) throw new LunrigError('INVALID_SIZE', `size '${input}' is not a whole number of bytes`);
  return bytes;
}

/** Parse and validate a LUN capacity: > 0, a multiple of 512, at most MAX_LUN_SIZE. */
export function parseLunSize(input: string | number): number {
  const bytes = parseSize(input);
  if (bytes === 0) throw new LunrigError('INVALID_SIZE', 'LUN size must be greater than 0');
  if (bytes % SECTOR !== 0) throw new LunrigError('INVALID_SIZE', `LUN size ${bytes} is not a multiple of ${SECTOR} bytes`, { size: bytes });
  if (bytes > MAX_LUN_SIZE) throw new LunrigError('INVALID_SIZE', `LUN size ${formatSize(bytes)} exceeds the maximum of ${formatSize(MAX_LUN_SIZE)}`, { size: bytes });
  return bytes;
}

/** Render bytes with the largest unit that divides exactly (e.g. 1073741824 -> "1G"), else with one decimal. */
export function formatSize(bytes: number): string {
  const units: Array<[string, number]> = [['P', 1024 * TiB], ['T', TiB], ['G', GiB], ['M', MiB], ['K', KiB]];
  for (const [name, value] of units) if (bytes >= value && bytes % value === 0) return `${bytes / value}${name}`;
  for (const [name, value] of units) if (bytes >= value) return `${(bytes / value).toFixed(1)}${name}`;
  return `${bytes}B`;
}
