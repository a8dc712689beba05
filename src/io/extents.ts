/** Building blockStatus answers: contiguous extents, adjacent runs of the same kind merged. */
import type { Extent, ExtentKind } from '../volume/volume.js';
import { KIND_DATA, KIND_HOLE, KIND_ZERO } from './protocol.js';

export function kindName(kind: number): ExtentKind {
  switch (kind) {
    case KIND_HOLE:
      return 'hole';
    case KIND_ZERO:
      return 'zero';
    case KIND_DATA:
    default:
      return 'data';
  }
}

/** Appends [offset, offset + length) of `kind` to `out`, merging with the last extent when it continues it. */
export function appendExtent(out: Extent[], offset: number, length: number, kind: ExtentKind): void {
  if (length <= 0) return;
  const last = out[out.length - 1];
  if (last && last.kind === kind && last.offset + last.length === offset) {
    last.length += length;
    return;
  }
  out.push({ offset, length, kind });
}
