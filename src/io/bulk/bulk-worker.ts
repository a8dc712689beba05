/** piscina worker entry for bulk jobs: one task = one chunk of grains (megabytes of work, never one grain). */
import { fromSystemError } from '../../errors.js';
import { checksumTask, compareTask, copyTask, type CopyTaskResult, type GrainTask } from './grain-tasks.js';

/** Results are small (a few KiB per task), so they are cloned, not moved. Errors cross the thread boundary as data: structured clone drops a LunrigError's code. */
export type TaskOutcome<T> = { ok: T } | { error: { code: string; message: string; errno?: string } };

export default function runGrainTask(task: GrainTask): TaskOutcome<Uint32Array | Float64Array | CopyTaskResult> {
  try {
    switch (task.kind) {
      case 'checksum':
        return { ok: checksumTask(task.spec, task.grainSize, task.grains) };
      case 'copy':
        return { ok: copyTask(task.src, task.dst, task.grainSize, task.grains, task.sync) };
      case 'compare':
        return { ok: compareTask(task.a, task.b, task.grainSize, task.grains) };
    }
  } catch (err) {
    const e = fromSystemError(err, `bulk ${task.kind}`);
    const errno = e.details?.errno;
    return { error: { code: e.code, message: e.message, ...(typeof errno === 'string' ? { errno } : {}) } };
  }
}
