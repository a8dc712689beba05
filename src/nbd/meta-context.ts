/**
 * Metadata contexts the server knows (spec/nbd.md §2.7). Only base:allocation
 * for now; qemu:dirty-bitmap-style contexts for FlashCopy/PPRC bitmaps would
 * join this table.
 */
import * as C from './constants.js';

export interface MetaContext {
  id: number;
  name: string;
}

/** Ids are stable per server: a context keeps its id across SET_META_CONTEXT calls. */
export const BASE_ALLOCATION: MetaContext = { id: 1, name: C.NBD_META_CONTEXT_BASE_ALLOCATION };
export const KNOWN_CONTEXTS: readonly MetaContext[] = [BASE_ALLOCATION];

/**
 * The known contexts a query list selects. For LIST, no query means every
 * context and `namespace:` is a wildcard over the namespace; SET selects only
 * exact names. Unknown namespaces and leaves select nothing (they are ignored,
 * not errors).
 */
export function selectContexts(queries: readonly string[], mode: 'list' | 'set'): MetaContext[] {
  if (queries.length === 0) return mode === 'list' ? [...KNOWN_CONTEXTS] : [];
  const out: MetaContext[] = [];
  for (const ctx of KNOWN_CONTEXTS) {
    const ns = ctx.name.slice(0, ctx.name.indexOf(':') + 1);
    const hit = queries.some((q) => q === ctx.name || (mode === 'list' && q === ns));
    if (hit) out.push(ctx);
  }
  return out;
}
