import * as C from './constants.js';
import type { ExportEntry } from './export-provider.js';

/** True when the export refuses writes, trims and write-zeroes. */
export function exportIsReadOnly(entry: ExportEntry): boolean {
  return entry.readOnly === true || entry.volume.readOnly;
}

/**
 * The transmission flags lunrig advertises for an export, honestly (spec/nbd.md §2.3):
 * every Volume implements flush, FUA, trim, write-zeroes (with NO_HOLE and
 * FAST_ZERO, failing NOT_SUPPORTED when not fast), so writable exports advertise
 * them all; read-only ones advertise READ_ONLY and only what reading needs, as
 * nbdkit does. CACHE is a no-op hint we always accept. DF is set only with
 * structured replies (the spec requires it clear otherwise); a read is never
 * fragmented when DF is asked. CAN_MULTI_CONN: see ExportEntry.
 */
export function transmissionFlags(entry: ExportEntry, structuredReplies: boolean): number {
  let flags = C.NBD_FLAG_HAS_FLAGS | C.NBD_FLAG_SEND_FLUSH | C.NBD_FLAG_SEND_CACHE;
  if (exportIsReadOnly(entry)) flags |= C.NBD_FLAG_READ_ONLY;
  else flags |= C.NBD_FLAG_SEND_FUA | C.NBD_FLAG_SEND_TRIM | C.NBD_FLAG_SEND_WRITE_ZEROES | C.NBD_FLAG_SEND_FAST_ZERO;
  if (structuredReplies) flags |= C.NBD_FLAG_SEND_DF;
  if (entry.multiConn !== false) flags |= C.NBD_FLAG_CAN_MULTI_CONN;
  return flags;
}
