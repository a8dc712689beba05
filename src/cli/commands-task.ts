/**
 * `lunrig task ...`: Copy Services tasks and task groups on a running server
 * through the control API (src/control/routes-tasks.ts):
 *   list | show NAME | log NAME | progress NAME
 *   flashcopy NAME SRC:TGT... [--nocopy ...]   a FlashCopy establish task (all pairs one T0)
 *   withdraw NAME VOL...                        a FlashCopy withdraw task
 *   create NAME KIND [--params JSON]            any registered operation kind (PPRC, paths, ...)
 *   group NAME [TASK...] | add GROUP TASK | ungroup GROUP TASK
 *   update NAME [--params JSON] [--description TEXT] | delete NAME
 *   run NAME...                                 run and wait; exit 1 when one failed
 */
import { Option, type Command } from 'commander';
import type { ExecutionRecord, TaskInfo, TaskProgress } from '../copy/tasks/index.js';
import { ControlClient, DEFAULT_SERVER_URL } from '../control/client.js';
import { LunrigError } from '../errors.js';
import { keyValues, printJson, printLines, table } from './output.js';

type Request = <T>(method: string, path: string, body?: unknown) => Promise<T>;

/** The control API's task endpoints, over ControlClient.request. */
export class TaskClient {
  private readonly request: Request;

  constructor(client: ControlClient) {
    this.request = client.request.bind(client);
  }

  list(): Promise<{ tasks: TaskInfo[]; kinds: string[] }> {
    return this.request('GET', '/v1/tasks');
  }

  show(name: string): Promise<TaskInfo> {
    return this.request('GET', `/v1/tasks/${encodeURIComponent(name)}`);
  }

  create(body: { name: string; kind: string; params?: unknown; members?: string[]; description?: string }): Promise<TaskInfo> {
    return this.request('POST', '/v1/tasks', body);
  }

  update(name: string, body: { params?: unknown; description?: string }): Promise<TaskInfo> {
    return this.request('PATCH', `/v1/tasks/${encodeURIComponent(name)}`, body);
  }

  async delete(name: string): Promise<void> {
    await this.request('DELETE', `/v1/tasks/${encodeURIComponent(name)}`);
  }

  group(group: string, task: string): Promise<TaskInfo> {
    return this.request('POST', `/v1/tasks/${encodeURIComponent(group)}/members`, { task });
  }

  ungroup(group: string, task: string): Promise<TaskInfo> {
    return this.request('DELETE', `/v1/tasks/${encodeURIComponent(group)}/members/${encodeURIComponent(task)}`);
  }

  execute(name: string): Promise<ExecutionRecord> {
    return this.request('POST', `/v1/tasks/${encodeURIComponent(name)}/execute`);
  }

  progress(name: string): Promise<TaskProgress> {
    return this.request('GET', `/v1/tasks/${encodeURIComponent(name)}/progress`);
  }

  async executions(name: string): Promise<ExecutionRecord[]> {
    return (await this.request<{ executions: ExecutionRecord[] }>('GET', `/v1/tasks/${encodeURIComponent(name)}/executions`)).executions;
  }
}

interface Globals {
  server: string;
  json?: boolean;
}

interface FlashCopyFlags {
  nocopy?: boolean;
  incremental?: boolean;
  grain?: string;
  rate?: string;
  permitIfTargetOnline?: boolean;
  relax?: string[];
  description?: string;
}

export function registerTaskCommands(program: Command): void {
  const task = program
    .command('task')
    .description('Copy Services tasks and task groups: saved FlashCopy (and later PPRC) operations, run by name')
    .addOption(new Option('--server <url>', 'control API of the running server').env('LUNRIG_SERVER').default(DEFAULT_SERVER_URL));

  const context = (cmd: Command) => {
    const opts = cmd.optsWithGlobals<Globals>();
    return { client: new TaskClient(new ControlClient(opts.server, { timeoutMs: 24 * 3600_000 })), json: opts.json === true };
  };
  const show = (info: TaskInfo, json: boolean, verb: string): void => {
    if (json) printJson(info);
    else printLines([`${verb} task ${info.name}: ${info.summary}`]);
  };

  task
    .command('list')
    .alias('ls')
    .description('list tasks and groups with their last execution status')
    .action(async (_opts: unknown, cmd: Command) => {
      const { client, json } = context(cmd);
      const listing = await client.list();
      if (json) printJson(listing);
      else printLines(taskTable(listing.tasks));
    });

  task
    .command('show <name>')
    .description('one task: kind, parameters, group, last execution')
    .action(async (name: string, _opts: unknown, cmd: Command) => {
      const { client, json } = context(cmd);
      const info = await client.show(name);
      if (json) printJson(info);
      else printLines(taskDetail(info));
    });

  task
    .command('flashcopy <name> <pairs...>')
    .alias('fc')
    .description('save a FlashCopy establish task of SOURCE:TARGET pairs (run: all pairs take one T0)')
    .option('--nocopy', 'no background copy')
    .option('--incremental', 'keep the relationship after the copy, recording changes')
    .option('--grain <size>', 'copy grain (track) size, 4K..1M (default 64K)')
    .option('--rate <n>', 'background copy rate per second (0 pauses)')
    .option('--permit-if-target-online', 'establish even when a host has the target online')
    .option('--relax <rule...>', 'relax ESS rules: cross-lss, smaller-target, multiple-targets')
    .option('--description <text>', 'free text')
    .action(async (name: string, pairs: string[], opts: FlashCopyFlags, cmd: Command) => {
      const { client, json } = context(cmd);
      const params = {
        pairs: pairs.map(parsePair),
        ...(opts.nocopy && { mode: 'nocopy' }),
        ...(opts.incremental && { incremental: true }),
        ...(opts.grain !== undefined && { grainSize: opts.grain }),
        ...(opts.rate !== undefined && { rate: opts.rate }),
        ...(opts.permitIfTargetOnline && { permitIfTargetOnline: true }),
        ...(opts.relax !== undefined && { relax: opts.relax }),
      };
      show(await client.create({ name, kind: 'flashcopy.establish', params, ...(opts.description !== undefined && { description: opts.description }) }), json, 'saved');
    });

  task
    .command('withdraw <name> <volumes...>')
    .description('save a FlashCopy withdraw task (each volume may be a source or a target)')
    .action(async (name: string, volumes: string[], _opts: unknown, cmd: Command) => {
      const { client, json } = context(cmd);
      show(await client.create({ name, kind: 'flashcopy.withdraw', params: { volumes } }), json, 'saved');
    });

  task
    .command('create <name> <kind>')
    .description('save a task of any operation kind the server knows (see `task list --json` kinds)')
    .option('--params <json>', 'the operation parameters as JSON', '{}')
    .option('--description <text>', 'free text')
    .action(async (name: string, kind: string, opts: { params: string; description?: string }, cmd: Command) => {
      const { client, json } = context(cmd);
      show(await client.create({ name, kind, params: parseJson(opts.params), ...(opts.description !== undefined && { description: opts.description }) }), json, 'saved');
    });

  task
    .command('group <name> [tasks...]')
    .description('create a task group: its tasks run in parallel')
    .action(async (name: string, members: string[], _opts: unknown, cmd: Command) => {
      const { client, json } = context(cmd);
      show(await client.create({ name, kind: 'group', members }), json, 'saved');
    });

  task
    .command('add <group> <task>')
    .description('put a task into a group (a group cannot hold a group)')
    .action(async (group: string, name: string, _opts: unknown, cmd: Command) => {
      const { client, json } = context(cmd);
      show(await client.group(group, name), json, 'updated');
    });

  task
    .command('ungroup <group> <task>')
    .description('take a task out of its group')
    .action(async (group: string, name: string, _opts: unknown, cmd: Command) => {
      const { client, json } = context(cmd);
      show(await client.ungroup(group, name), json, 'updated');
    });

  task
    .command('update <name>')
    .description("change a task's parameters or description (refused while it is grouped)")
    .option('--params <json>', 'new operation parameters as JSON')
    .option('--description <text>', 'free text')
    .action(async (name: string, opts: { params?: string; description?: string }, cmd: Command) => {
      const { client, json } = context(cmd);
      show(await client.update(name, { ...(opts.params !== undefined && { params: parseJson(opts.params) }), ...(opts.description !== undefined && { description: opts.description }) }), json, 'updated');
    });

  task
    .command('delete <name>')
    .alias('rm')
    .description('delete a task (refused while grouped) or a group')
    .action(async (name: string, _opts: unknown, cmd: Command) => {
      const { client, json } = context(cmd);
      await client.delete(name);
      if (json) printJson({ deleted: name });
      else printLines([`deleted task ${name}`]);
    });

  task
    .command('run <names...>')
    .alias('execute')
    .description('run tasks one after another, each to completion (a group runs its tasks in parallel)')
    .action(async (names: string[], _opts: unknown, cmd: Command) => {
      const { client, json } = context(cmd);
      const runs: ExecutionRecord[] = [];
      for (const name of names) runs.push(await client.execute(name));
      if (json) printJson({ executions: runs });
      else printLines(runs.map(executionLine));
      const failed = runs.find((r) => r.status !== 'succeeded');
      if (failed) throw new LunrigError((failed.error?.code ?? 'INTERNAL') as never, `task ${failed.task} ${failed.status}: ${failed.error?.message ?? ''}`);
    });

  task
    .command('progress <name>')
    .description("how far a task's copies are (what rsQueryComplete waits on)")
    .action(async (name: string, _opts: unknown, cmd: Command) => {
      const { client, json } = context(cmd);
      const p = await client.progress(name);
      if (json) printJson(p);
      else printLines([`${name}: ${p.running ? 'copying' : 'not copying'}, ${p.percent}%`, ...p.items.map((i) => `  ${i.name}  ${i.state}  ${i.percent}%`)]);
    });

  task
    .command('log <name>')
    .description("a task's execution log")
    .action(async (name: string, _opts: unknown, cmd: Command) => {
      const { client, json } = context(cmd);
      const runs = await client.executions(name);
      if (json) printJson({ executions: runs });
      else printLines(runs.length === 0 ? [`task ${name} has not run`] : runs.map(executionLine));
    });
}

function parsePair(pair: string): { source: string; target: string } {
  const m = /^([^:]+):([^:]+)$/.exec(pair);
  if (!m) throw new LunrigError('INVALID_ARGUMENT', `a pair is SOURCE:TARGET, got '${pair}'`);
  return { source: m[1]!, target: m[2]! };
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new LunrigError('INVALID_ARGUMENT', `--params is not JSON: ${(err as Error).message}`);
  }
}

function executionLine(e: ExecutionRecord): string {
  const took = e.endedAt ? ` in ${Date.parse(e.endedAt) - Date.parse(e.startedAt)} ms` : '';
  return `${e.id} ${e.task}: ${e.status}${took}${e.error ? ` (${e.error.code}: ${e.error.message})` : ''}`;
}

function taskTable(tasks: readonly TaskInfo[]): string[] {
  if (tasks.length === 0) return ['no tasks'];
  return table(
    ['NAME', 'KIND', 'GROUP', 'LAST RUN', 'WHAT'],
    tasks.map((t) => [t.name, t.kind, t.group ?? '-', t.lastExecution ? `${t.lastExecution.status} ${t.lastExecution.startedAt}` : 'never', t.summary]),
  );
}

function taskDetail(t: TaskInfo): string[] {
  return keyValues([
    ['task', t.name],
    ['kind', t.kind],
    ['what', t.summary],
    ...(t.params !== undefined ? [['params', JSON.stringify(t.params)] as const] : []),
    ...(t.members !== undefined ? [['members', t.members.join(' ') || '-'] as const] : []),
    ['group', t.group ?? '-'],
    ['description', t.description || '-'],
    ['last run', t.lastExecution ? executionLine(t.lastExecution) : 'never'],
  ]);
}
