/** Copy Services tasks and task groups (spec §4.2): saved operations of registered kinds, run by name. */
export {
  GROUP_KIND,
  MAX_TASK_NAME,
  TaskManager,
  defaultOperationKinds,
  validateTaskName,
  type CreateTaskRequest,
  type ExecutionRecord,
  type ExecutionStatus,
  type TaskEvents,
  type TaskInfo,
  type TaskManagerOptions,
  type TaskRecord,
} from './task-manager.js';
export { OperationKinds, type OperationKind, type TaskContext, type TaskProgress } from './operation-kinds.js';
export { flashcopyEstablish, flashcopyWithdraw, type FlashCopyEstablishParams, type FlashCopyWithdrawParams } from './flashcopy-operations.js';
export {
  parseCopyMode,
  pprcEstablish,
  pprcFreeze,
  pprcPath,
  pprcRelease,
  pprcSuspend,
  pprcTerminate,
  withPprcKinds,
  type PprcEstablishParams,
  type PprcLssParams,
  type PprcPairSpec,
  type PprcPairsParams,
  type PprcPathParams,
  type PprcPathSpec,
} from './pprc-kinds.js';
export { resetCopyServices, type CopyServices } from './reset.js';
