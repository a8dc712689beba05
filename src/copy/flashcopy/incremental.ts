/**
 * Incremental FlashCopy (beyond the 2001 document, so [E]; modelled on later
 * ESS/DS8000 and SVC `-incremental`): the relationship does not end when
 * background copy is done; it stays (state `copied`) and keeps recording, in
 * the `changed` bitmap, every grain written on either side since T0. A refresh
 * takes a new T0 and makes only those grains uncopied again, so background
 * copy moves just what changed.
 */
import { native } from '../../native/index.js';
import type { BitmapStore } from '../../store/bitmap-journal.js';
import { CHANGED, COPIED } from './grain-bitmaps.js';

/** The bitmaps a refresh starts from: copied and unchanged stays copied; nothing is recorded as changed yet. */
export function refreshedBitmaps(store: BitmapStore): Uint8Array[] {
  const copied = store.bitmaps[COPIED]!.slice();
  native.andNot(copied, store.bitmaps[CHANGED]!);
  return [copied, new Uint8Array(copied.byteLength)];
}
