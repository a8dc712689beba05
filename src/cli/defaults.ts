import type { CreateLunRequest } from '../store/pool.js';
import { GiB } from '../util/size.js';

/** Where `lunrig serve` keeps its pool unless told (--data, $LUNRIG_DATA). */
export const DEFAULT_DATA_DIR = './lunrig-data';

/**
 * What `lunrig serve` provisions in an empty pool: two LUNs in each of two
 * LSSs, so FlashCopy (same LSS: lun0 -> lun1) and PPRC (across LSSs:
 * lun0 -> lun2) have ready pairs. Sparse, so they cost no disk until written.
 */
export const DEFAULT_LUNS: readonly CreateLunRequest[] = Object.freeze([
  { name: 'lun0', size: GiB, lss: 0x10 },
  { name: 'lun1', size: GiB, lss: 0x10 },
  { name: 'lun2', size: GiB, lss: 0x11 },
  { name: 'lun3', size: GiB, lss: 0x11 },
]);
