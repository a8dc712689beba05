/**
 * Copy Services tasks and task groups (spec §4.2, FC-22, FC-23, FC-25, CP-03).
 *
 * A task is a named, saved operation of one registered kind (operation-kinds.ts):
 * a FlashCopy establish of one or many pairs, a withdraw, and later PPRC and
 * path operations. A task group names tasks and runs them in parallel. Names
 * are unique across tasks and groups, at most 16 characters, no blanks
 * ("these could not be executed through the command line").
 *
 *  - a group cannot hold a group (TASK_GROUP_NESTED);
 *  - a grouped task cannot be changed or deleted until it is ungrouped
 *    (TASK_IN_GROUP); a task belongs to at most one group;
 *  - every execution is logged in `<pool>/tasks/executions.json` as `running`
 *    before it starts and `succeeded` / `failed` when it has reported; a Copy
 *    Services reset (closing and reopening the managers on the same pool)
 *    finds the runs that never reported and marks them `lost` (FC-25).
 * Definitions live in `<pool>/tasks/tasks.json`. Both files are written
 * through store/persist.ts (atomic replace + fsync).
 */
import { EventEmitter } from 'node:events';
import path from 'node:path';
import { LunrigError, isLunrigError, type ErrorCode } from '../../errors.js';
import { readJsonFile, removeStaleTempFiles, writeJsonAtomic } from '../../store/persist.js';
import { systemClock, type Clock } from '../../util/clock.js';
import { SerialQueue } from '../../util/serial-queue.js';
import { flashcopyEstablish, flashcopyWithdraw } from './flashcopy-operations.js';
import { OperationKinds, type TaskContext, type TaskProgress } from './operation-kinds.js';
import { promises as fsp } from 'node:fs';

export const TASKS_DIR = 'tasks';
const TASKS_FILE = 'tasks.json';
const LOG_FILE = 'executions.json';
const FORMAT = 'lunrig-tasks';
const LOG_FORMAT = 'lunrig-task-log';
export const MAX_TASK_NAME = 16;
export const GROUP_KIND = 'group';

/** The kinds lunrig ships with; PPRC and path kinds are registered on top (`defaultOperationKinds().register(...)`). */
export function defaultOperationKinds(): OperationKinds {
  return new OperationKinds().register(flashcopyEstablish).register(flashcopyWithdraw);
}

export interface TaskRecord {
  name: string;
  /** An operation kind, or 'group'. */
  kind: string;
  /** The operation's parameters (operations only). */
  params?: Record<string, unknown>;
  /** The group's tasks, in order (groups only). */
  members?: string[];
  description: string;
  /** Creation order: with duplicate names impossible, "the task first found" is simply this one. */
  seq: number;
  createdAt: string;
  updatedAt: string;
}

export type ExecutionStatus = 'running' | 'succeeded' | 'failed' | 'lost';

export interface ExecutionRecord {
  id: string;
  task: string;
  kind: string;
  /** The group execution this run belongs to, when the task ran as part of a group. */
  parent: string | null;
  status: ExecutionStatus;
  startedAt: string;
  endedAt: string | null;
  error: { code: string; message: string } | null;
  result: unknown;
}

export interface TaskInfo extends TaskRecord {
  /** The group holding this task, or null. */
  group: string | null;
  /** A one-line description of what the task does. */
  summary: string;
  /** The task's last execution (the Tasks panel's status), or null. */
  lastExecution: ExecutionRecord | null;
}

export interface CreateTaskRequest {
  name: string;
  kind: string;
  params?: unknown;
  members?: string[];
  description?: string;
}

export interface TaskManagerOptions {
  /** The services tasks run against (FlashCopy now; PPRC later). */
  context: TaskContext;
  /** Operation kinds (default: defaultOperationKinds()). */
  kinds?: OperationKinds;
  clock?: Clock;
  /** Executions kept in the log (default 500; running ones are always kept). */
  maxLog?: number;
}

export interface TaskEvents {
  started: [ExecutionRecord];
  finished: [ExecutionRecord];
}

const NAME_RE = /^[\x21-\x7e]+$/;

export function validateTaskName(name: unknown): string {
  if (typeof name !== 'string' || name.length === 0) throw new LunrigError('INVALID_ARGUMENT', 'a task name is required');
  if (name.length > MAX_TASK_NAME) throw new LunrigError('INVALID_ARGUMENT', `task name '${name}' is longer than ${MAX_TASK_NAME} characters`, { name });
  if (!NAME_RE.test(name)) throw new LunrigError('INVALID_ARGUMENT', `task name ${JSON.stringify(name)} must be printable ASCII without blanks`, { name });
  return name;
}

export class TaskManager extends EventEmitter<TaskEvents> {
  /** Executions found `running` on open: they never reported success, so they are lost (FC-25). */
  readonly lost: ExecutionRecord[] = [];
  readonly kinds: OperationKinds;
  private readonly clock: Clock;
  private readonly writes = new SerialQueue();
  private readonly control = new SerialQueue();
  private tasks: TaskRecord[] = [];
  private log: ExecutionRecord[] = [];
  private nextSeq = 1;
  private nextExecution = 1;
  private closed = false;
  private readonly inFlight = new Set<Promise<unknown>>();

  private constructor(
    readonly dir: string,
    private readonly options: TaskManagerOptions,
  ) {
    super();
    this.kinds = options.kinds ?? defaultOperationKinds();
    this.clock = options.clock ?? systemClock;
  }

  /** Open the task store of the pool in `poolDir`; runs left `running` by the last instance become `lost`. */
  static async open(poolDir: string, options: TaskManagerOptions): Promise<TaskManager> {
    const dir = path.join(poolDir, TASKS_DIR);
    await fsp.mkdir(dir, { recursive: true });
    await removeStaleTempFiles(dir);
    const manager = new TaskManager(dir, options);
    await manager.load();
    return manager;
  }

  // --- definitions -------------------------------------------------------------

  list(): TaskInfo[] {
    return [...this.tasks].sort((a, b) => a.seq - b.seq).map((t) => this.info(t));
  }

  show(name: string): TaskInfo {
    return this.info(this.find(name));
  }

  create(request: CreateTaskRequest): Promise<TaskInfo> {
    return this.control.run(async () => {
      this.checkOpen();
      const name = validateTaskName(request.name);
      if (this.tasks.some((t) => t.name === name)) throw new LunrigError('TASK_EXISTS', `a task named '${name}' exists`, { name });
      const now = this.now();
      let record: TaskRecord;
      if (request.kind === GROUP_KIND) {
        if (request.params !== undefined) throw new LunrigError('INVALID_ARGUMENT', 'a task group has members, not parameters');
        const members = this.checkMembers(name, request.members ?? []);
        record = { name, kind: GROUP_KIND, members, description: request.description ?? '', seq: this.nextSeq++, createdAt: now, updatedAt: now };
      } else {
        if (request.members !== undefined) throw new LunrigError('INVALID_ARGUMENT', `a '${request.kind}' task has parameters, not members`);
        const params = this.kinds.get(request.kind).validate(request.params ?? {});
        record = { name, kind: request.kind, params, description: request.description ?? '', seq: this.nextSeq++, createdAt: now, updatedAt: now };
      }
      this.tasks.push(record);
      await this.saveTasks();
      return this.info(record);
    });
  }

  /** Change a task's parameters or description (FC-23: refused while the task is grouped). */
  update(name: string, change: { params?: unknown; description?: string }): Promise<TaskInfo> {
    return this.control.run(async () => {
      this.checkOpen();
      const task = this.find(name);
      this.checkUngrouped(task, 'change the properties of');
      if (task.kind === GROUP_KIND && change.params !== undefined) throw new LunrigError('INVALID_ARGUMENT', 'a task group has members, not parameters: use group/ungroup');
      const params = change.params === undefined ? task.params : this.kinds.get(task.kind).validate(change.params);
      const next: TaskRecord = { ...task, ...(params !== undefined && { params }), description: change.description ?? task.description, updatedAt: this.now() };
      this.tasks = this.tasks.map((t) => (t === task ? next : t));
      await this.saveTasks();
      return this.info(next);
    });
  }

  /** Delete a task (refused while grouped) or a group (its tasks become ungrouped). */
  delete(name: string): Promise<void> {
    return this.control.run(async () => {
      this.checkOpen();
      const task = this.find(name);
      this.checkUngrouped(task, 'delete');
      this.tasks = this.tasks.filter((t) => t !== task);
      await this.saveTasks();
    });
  }

  /** Put a task into a group (FC-23: never a group into a group; a task is in at most one group). */
  group(groupName: string, taskName: string): Promise<TaskInfo> {
    return this.control.run(async () => {
      this.checkOpen();
      const group = this.find(groupName);
      if (group.kind !== GROUP_KIND) throw new LunrigError('INVALID_ARGUMENT', `'${groupName}' is a task, not a task group`, { name: groupName });
      const members = this.checkMembers(groupName, [...(group.members ?? []), taskName]);
      const next = { ...group, members, updatedAt: this.now() };
      this.tasks = this.tasks.map((t) => (t === group ? next : t));
      await this.saveTasks();
      return this.info(next);
    });
  }

  /** Take a task out of its group. */
  ungroup(groupName: string, taskName: string): Promise<TaskInfo> {
    return this.control.run(async () => {
      this.checkOpen();
      const group = this.find(groupName);
      if (group.kind !== GROUP_KIND) throw new LunrigError('INVALID_ARGUMENT', `'${groupName}' is a task, not a task group`, { name: groupName });
      this.find(taskName);
      if (!(group.members ?? []).includes(taskName)) throw new LunrigError('INVALID_ARGUMENT', `task '${taskName}' is not in group '${groupName}'`, { group: groupName, task: taskName });
      const next = { ...group, members: group.members!.filter((m) => m !== taskName), updatedAt: this.now() };
      this.tasks = this.tasks.map((t) => (t === group ? next : t));
      await this.saveTasks();
      return this.info(next);
    });
  }

  // --- execution ---------------------------------------------------------------

  /**
   * Run a task (or a group: its tasks in parallel) and wait for it to
   * complete. Resolves with the execution record, `succeeded` or `failed`
   * (a failed operation is a result, not an exception); unknown names throw.
   */
  execute(name: string): Promise<ExecutionRecord> {
    let task: TaskRecord;
    try {
      this.checkOpen();
      task = this.find(name);
    } catch (err) {
      return Promise.reject(err);
    }
    const run = this.run(task, null);
    this.inFlight.add(run);
    void run.finally(() => this.inFlight.delete(run));
    return run;
  }

  /** Where the copy work of a task (or of a group's tasks) stands: for rsQueryComplete. */
  progress(name: string): TaskProgress {
    const task = this.find(name);
    const parts = task.kind === GROUP_KIND ? (task.members ?? []).map((m) => this.find(m)) : [task];
    const progress = parts.flatMap((t) => {
      const kind = this.kinds.get(t.kind);
      return kind.progress ? [kind.progress(t.params ?? {}, this.options.context)] : [];
    });
    if (progress.length === 0) return { running: false, percent: 100, items: [] };
    return {
      running: progress.some((p) => p.running),
      percent: Math.min(...progress.map((p) => p.percent)),
      items: progress.flatMap((p) => p.items),
    };
  }

  /** The execution log, oldest first (optionally one task's). */
  executions(task?: string): ExecutionRecord[] {
    return this.log.filter((e) => task === undefined || e.task === task).map((e) => ({ ...e }));
  }

  /**
   * Stop accepting work. Runs still in flight are not waited for and their
   * outcome is not logged: after a reset they show as `lost`, exactly the
   * tasks that had not reported success (§5.4).
   */
  async close(): Promise<void> {
    this.closed = true;
    await this.control.run(async () => undefined);
    await this.writes.run(async () => undefined);
  }

  // --- internals -----------------------------------------------------------------

  private async run(task: TaskRecord, parent: string | null): Promise<ExecutionRecord> {
    const record: ExecutionRecord = {
      id: `x${this.nextExecution++}`,
      task: task.name,
      kind: task.kind,
      parent,
      status: 'running',
      startedAt: this.now(),
      endedAt: null,
      error: null,
      result: null,
    };
    this.log.push(record);
    // Durable before anything happens: a reset from here on reports the run lost.
    await this.saveLog();
    this.emit('started', { ...record });
    try {
      if (task.kind === GROUP_KIND) {
        // "All tasks within a task group will be processed in parallel."
        const members = (task.members ?? []).map((m) => this.find(m));
        const runs = await Promise.all(members.map((m) => this.run(m, record.id)));
        const failed = runs.filter((r) => r.status !== 'succeeded');
        record.result = { executions: runs.map((r) => r.id) };
        if (failed.length > 0) {
          // The group's error carries the first failed task's code.
          const code = (failed[0]!.error?.code ?? 'INTERNAL') as ErrorCode;
          throw new LunrigError(code, `${failed.length} of ${runs.length} tasks of group '${task.name}' failed: ${failed.map((f) => `${f.task} (${f.error?.code ?? f.status})`).join(', ')}`);
        }
      } else {
        record.result = (await this.kinds.get(task.kind).execute(task.params ?? {}, this.options.context)) ?? null;
      }
      record.status = 'succeeded';
    } catch (err) {
      record.status = 'failed';
      record.error = isLunrigError(err) ? { code: err.code, message: err.message } : { code: 'INTERNAL', message: err instanceof Error ? err.message : String(err) };
    }
    record.endedAt = this.now();
    if (!this.closed) {
      await this.saveLog();
      this.emit('finished', { ...record });
    }
    return { ...record };
  }

  private checkMembers(groupName: string, members: string[]): string[] {
    if (new Set(members).size !== members.length) throw new LunrigError('INVALID_ARGUMENT', `a task appears twice in group '${groupName}'`);
    for (const m of members) {
      const task = this.find(m);
      if (task.kind === GROUP_KIND) throw new LunrigError('TASK_GROUP_NESTED', `'${m}' is a task group: a group cannot be included in another task group`, { group: groupName, task: m });
      const holder = this.groupOf(m);
      if (holder && holder.name !== groupName) throw new LunrigError('TASK_IN_GROUP', `task '${m}' is already in group '${holder.name}'`, { task: m, group: holder.name });
    }
    return members;
  }

  private checkUngrouped(task: TaskRecord, action: string): void {
    const holder = this.groupOf(task.name);
    if (holder) throw new LunrigError('TASK_IN_GROUP', `cannot ${action} task '${task.name}': it is in group '${holder.name}'; ungroup it first`, { task: task.name, group: holder.name });
  }

  private groupOf(name: string): TaskRecord | undefined {
    return this.tasks.find((t) => t.kind === GROUP_KIND && (t.members ?? []).includes(name));
  }

  private find(name: string): TaskRecord {
    // Names are unique; sorting by creation keeps "the task first found" deterministic even for a hand-edited file.
    const task = this.tasks.filter((t) => t.name === name).sort((a, b) => a.seq - b.seq)[0];
    if (!task) throw new LunrigError('TASK_NOT_FOUND', `no task named '${name}'`, { name });
    return task;
  }

  private info(task: TaskRecord): TaskInfo {
    const last = [...this.log].reverse().find((e) => e.task === task.name);
    const summary =
      task.kind === GROUP_KIND
        ? `group of ${(task.members ?? []).length} task(s): ${(task.members ?? []).join(' ')}`
        : this.kinds.has(task.kind)
          ? this.kinds.get(task.kind).describe(task.params ?? {})
          : `${task.kind} (no such operation kind on this server)`;
    return { ...task, group: this.groupOf(task.name)?.name ?? null, summary, lastExecution: last ? { ...last } : null };
  }

  private async load(): Promise<void> {
    const tasks = (await readJsonFile(path.join(this.dir, TASKS_FILE))) as { format?: string; tasks?: TaskRecord[]; nextSeq?: number } | undefined;
    if (tasks !== undefined) {
      if (tasks.format !== FORMAT || !Array.isArray(tasks.tasks)) throw new LunrigError('POOL_CORRUPT', `${path.join(this.dir, TASKS_FILE)} is not a lunrig task list`);
      this.tasks = tasks.tasks;
      this.nextSeq = Math.max(tasks.nextSeq ?? 1, ...this.tasks.map((t) => t.seq + 1));
    }
    const log = (await readJsonFile(path.join(this.dir, LOG_FILE))) as { format?: string; executions?: ExecutionRecord[]; nextExecution?: number } | undefined;
    if (log !== undefined) {
      if (log.format !== LOG_FORMAT || !Array.isArray(log.executions)) throw new LunrigError('POOL_CORRUPT', `${path.join(this.dir, LOG_FILE)} is not a lunrig task log`);
      this.log = log.executions;
      this.nextExecution = log.nextExecution ?? this.log.length + 1;
      for (const e of this.log) {
        if (e.status !== 'running') continue;
        e.status = 'lost';
        e.error = { code: 'TASK_LOST', message: 'the Copy Services server was reset before the task reported completion' };
        this.lost.push({ ...e });
      }
      if (this.lost.length > 0) await this.saveLog();
    }
  }

  private saveTasks(): Promise<void> {
    const snapshot = { format: FORMAT, version: 1, nextSeq: this.nextSeq, tasks: this.tasks };
    return this.writes.run(() => writeJsonAtomic(path.join(this.dir, TASKS_FILE), snapshot));
  }

  private saveLog(): Promise<void> {
    const max = this.options.maxLog ?? 500;
    const excess = this.log.length - max;
    if (excess > 0) {
      let drop = excess;
      this.log = this.log.filter((e) => e.status === 'running' || drop-- <= 0);
    }
    return this.writes.run(() => writeJsonAtomic(path.join(this.dir, LOG_FILE), { format: LOG_FORMAT, version: 1, nextExecution: this.nextExecution, executions: this.log }));
  }

  private checkOpen(): void {
    if (this.closed) throw new LunrigError('CLOSED', 'the task manager is closed (Copy Services is reinitialising)');
  }

  private now(): string {
    return new Date(this.clock.now()).toISOString();
  }
}
