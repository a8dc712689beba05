import { LunrigError } from '../errors.js';

/** Validate a byte range against a volume size; throws OUT_OF_RANGE / INVALID_ARGUMENT and never clamps. */
export function checkRange(offset: number, length: number, size: number, what = 'request'): void {
  if (!Number.isSafeInteger(offset) || offset < 0) {
    throw new LunrigError('INVALID_ARGUMENT', `${what}: offset must be a non-negative integer, got ${offset}`, { offset });
  }
  if (!Number.isSafeInteger(length) || length < 0) {
    throw new LunrigError('INVALID_ARGUMENT', `${what}: length must be a non-negative integer, got ${length}`, { length });
  }
  if (offset + length > size) {
    throw new LunrigError('OUT_OF_RANGE', `${what}: [${offset}, ${offset + length}) reaches past the end of the volume (${size} bytes)`, {
      offset,
      length,
      size,
    });
  }
}
