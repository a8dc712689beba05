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
export { resetCopyServices, type CopyServices } from './reset.js';
