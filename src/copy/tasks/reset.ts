/**
 * A simulated Copy Services server reset (spec §4.1, §5.4, FC-25): the
 * control plane goes down and comes back on the same pool.
 *  - Established FlashCopy relationships are maintained: the FlashCopy
 *    manager closes (bitmaps checkpointed, background copy stopped) and
 *    reopens from what it persisted, layers back on, copies resumed;
 *  - tasks for which no "successful" completion was reported are lost: the
 *    task manager closes without logging in-flight outcomes, and on reopen
 *    every run still logged `running` is marked `lost`.
 * No task is accepted between the two (both managers refuse with CLOSED).
 */
import { FlashCopyManager, type FlashCopyManagerOptions, type FlashCopyPool } from '../flashcopy/index.js';
import type { TaskContext } from './operation-kinds.js';
import { TaskManager, type ExecutionRecord, type TaskManagerOptions } from './task-manager.js';

export interface CopyServices {
  flashcopy: FlashCopyManager;
  tasks: TaskManager;
}

export interface ResetOptions {
  flashcopy?: FlashCopyManagerOptions;
  tasks?: Omit<TaskManagerOptions, 'context'>;
  /** Further services for the tasks' context (PPRC, ...), given the reopened FlashCopy manager. */
  context?(flashcopy: FlashCopyManager): TaskContext;
}

/** Close both managers (tasks first, so nothing new starts) and reopen them on the same pool. */
export async function resetCopyServices(pool: FlashCopyPool, current: CopyServices, options: ResetOptions = {}): Promise<CopyServices & { lost: ExecutionRecord[] }> {
  await current.tasks.close();
  await current.flashcopy.close();
  const flashcopy = await FlashCopyManager.open(pool, options.flashcopy);
  const tasks = await TaskManager.open(pool.dir, { ...options.tasks, context: options.context?.(flashcopy) ?? { flashcopy } });
  return { flashcopy, tasks, lost: [...tasks.lost] };
}
