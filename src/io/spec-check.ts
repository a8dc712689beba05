/** Sanity checks on a LunBackendSpec before files are opened (both engines). */
import { LunrigError } from '../errors.js';
import type { LunBackendSpec } from './backend.js';

export function checkSpec(spec: LunBackendSpec): void {
  if (!Number.isSafeInteger(spec.segmentSize) || spec.segmentSize <= 0) {
    throw new LunrigError('INVALID_ARGUMENT', `segmentSize must be a positive integer, got ${spec.segmentSize}`);
  }
  if (!Number.isSafeInteger(spec.size) || spec.size < 0) {
    throw new LunrigError('INVALID_SIZE', `LUN size must be a non-negative integer, got ${spec.size}`);
  }
  const needed = Math.max(1, Math.ceil(spec.size / spec.segmentSize));
  if (spec.segments.length < needed) {
    throw new LunrigError('INVALID_ARGUMENT', `a ${spec.size}-byte LUN with ${spec.segmentSize}-byte segments needs ${needed} segment files, got ${spec.segments.length}`);
  }
}

/** A resize keeps the segment size and the existing files, and never shrinks. */
export function checkGrownSpec(current: LunBackendSpec, next: LunBackendSpec): void {
  checkSpec(next);
  if (next.segmentSize !== current.segmentSize) {
    throw new LunrigError('INVALID_ARGUMENT', `resize cannot change segmentSize (${current.segmentSize} -> ${next.segmentSize})`);
  }
  if (next.size < current.size) {
    throw new LunrigError('SHRINK_NOT_SUPPORTED', `LUN cannot shrink from ${current.size} to ${next.size} bytes`);
  }
  current.segments.forEach((path, i) => {
    if (next.segments[i] !== path) {
      throw new LunrigError('INVALID_ARGUMENT', `resize must keep existing segment ${i} (${path})`);
    }
  });
}
