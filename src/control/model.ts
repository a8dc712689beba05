import type { Pool } from '../store/pool.js';

/**
 * The part of the array model the control API uses. Route modules take this
 * rather than the whole Pool so their needs stay visible; a Pool is one.
 */
export type ControlModel = Pick<Pool, 'info' | 'listLuns' | 'lunInfo' | 'lunUsage' | 'createLun' | 'growLun' | 'setReadOnly' | 'deleteLun'>;
