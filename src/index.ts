/**
 * lunrig's library API: what a simulator imports to open a pool, create LUNs
 * and do I/O in-process, and the building blocks the server is made of.
 */
export { ERROR_CODES, LunrigError, isLunrigError, type ErrorCode } from './errors.js';
export { VERSION } from './version.js';

export type { Extent, ExtentKind, Volume, VolumeIdentity, WriteOptions, WriteZeroesOptions } from './volume/volume.js';

export { Pool, type CreateLunRequest, type LssInfo, type LunInfo, type PoolInfo, type PoolOptions } from './store/pool.js';
export { Lun } from './store/lun.js';
export type { EngineKind } from './store/open-engine.js';
export { DEFAULT_LSS, FIRST_LSS, LAST_LSS, VOLUMES_PER_LSS, lssAddress, parseLss } from './store/identity.js';

export type { IoEngine, LunBackend, LunBackendSpec, QueueStats } from './io/backend.js';

export { GiB, KiB, MiB, TiB, MAX_LUN_SIZE, formatSize, parseLunSize, parseSize } from './util/size.js';

export { ControlClient, DEFAULT_SERVER_URL, type ControlClientOptions, type LunDetail, type SystemInfo } from './control/client.js';
export { HTTP_STATUS } from './control/http-status.js';
export { DEFAULT_DATA_DIR, DEFAULT_LUNS } from './cli/defaults.js';

export * from './nbd/index.js';
export { MemoryVolume } from './volume/memory-volume.js';

export * from './copy/flashcopy/index.js';
export * from './copy/tasks/index.js';
export * from './copy/pprc/index.js';
export { systemClock, VirtualClock, type Clock, type ClockTimer } from './util/clock.js';
export * from './multipath/index.js';
export * from './hosts/index.js';
