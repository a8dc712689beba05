/**
 * Volume extents to base:allocation block descriptors (spec/nbd.md §2.4
 * BLOCK_STATUS, §2.7): hole = HOLE|ZERO, zero = ZERO, data = 0; at least one
 * descriptor; none reaching past the request; exactly one with REQ_ONE;
 * at most `maxDescriptors` (the client asks again for the rest).
 */
import * as C from './constants.js';
import type { BlockDescriptor } from './reply-codec.js';
import type { Extent, ExtentKind } from '../volume/volume.js';

export function allocationFlags(kind: ExtentKind): number {
  if (kind === 'hole') return C.NBD_STATE_HOLE | C.NBD_STATE_ZERO;
  if (kind === 'zero') return C.NBD_STATE_ZERO;
  return 0;
}

export function extentsToDescriptors(
  extents: readonly Extent[],
  offset: number,
  length: number,
  options: { reqOne?: boolean; maxDescriptors?: number } = {},
): BlockDescriptor[] {
  const max = options.reqOne ? 1 : Math.max(1, options.maxDescriptors ?? C.NBD_MAX_EXTENTS - 1);
  const end = offset + length;
  const out: BlockDescriptor[] = [];
  let cursor = offset;
  for (const e of extents) {
    // The Volume promises contiguous extents from `offset`; a gap would make the answer wrong, so stop there.
    if (e.offset > cursor || e.offset + e.length <= cursor) break;
    const stop = Math.min(e.offset + e.length, end);
    const flags = allocationFlags(e.kind);
    const prev = out[out.length - 1];
    if (prev && prev.flags === flags) prev.length += stop - cursor;
    else if (out.length < max) out.push({ length: stop - cursor, flags });
    else break;
    cursor = stop;
    if (cursor >= end) break;
  }
  // Status 0 (allocated, not known zero) is always a safe answer.
  if (out.length === 0) out.push({ length, flags: 0 });
  return out;
}
