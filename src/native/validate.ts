/**
 * Argument checks for the TypeScript fallback, mirroring native/args.h so both
 * implementations throw the same error class for the same call: TypeError for
 * a wrong type, RangeError for a value out of range.
 */

export function checkBytes(value: unknown, name: string): asserts value is Uint8Array {
  if (!(value instanceof Uint8Array)) throw new TypeError(`"${name}" must be a Uint8Array`);
}

/** A safe integer in [0, max]. */
export function checkInteger(value: unknown, name: string, max = Number.MAX_SAFE_INTEGER): asserts value is number {
  if (typeof value !== 'number') throw new TypeError(`"${name}" must be a number`);
  if (!(value >= 0 && value <= max) || !Number.isInteger(value)) {
    throw new RangeError(`"${name}" must be an integer in [0, ${max}], got ${value}`);
  }
}

/** (bitmap, start, count) with start + count inside the bitmap. */
export function checkBitRange(bitmap: unknown, start: number, count: number): asserts bitmap is Uint8Array {
  checkBytes(bitmap, 'bitmap');
  checkInteger(start, 'start');
  checkInteger(count, 'count');
  const bits = bitmap.length * 8;
  if (start + count > bits) {
    throw new RangeError(`range [${start}, ${start + count}) exceeds the bitmap's ${bits} bits`);
  }
}
