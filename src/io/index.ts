/** The I/O layer: engines that open LUN backends, the slot-level API, and bulk grain jobs. */
export type { IoEngine, LunBackend, LunBackendSpec, QueueStats } from './backend.js';
export { emptyStats } from './backend.js';
export { WorkerIoEngine, type WorkerDiagnostics, type WorkerIoEngineOptions } from './worker-engine.js';
export { WorkerLunBackend } from './worker-backend.js';
export { FsIoEngine, FsLunBackend } from './fs-engine.js';
export { DEFAULT_SLOT_CLASSES, IoSlot, SLOT_HEADER_ROOM, SlotArena, type SlotClass } from './slot-arena.js';
export { BulkJobs, type BulkJobsOptions, type CopyResult, type GrainRange, type GrainSelection } from './bulk/bulk-jobs.js';
