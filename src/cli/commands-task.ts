/**
 * `lunrig task ...`: Copy Services tasks and task groups on a running server
 * through the control API (src/control/routes-tasks.ts):
 *   list | show NAME | log NAME | progress NAME
 *   flashcopy NAME SRC:TGT... [--nocopy ...]   a FlashCopy establish task (all pairs one T0)
 *   withdraw NAME VOL...                        a FlashCopy withdraw task
 *   pprc-path NAME LSS SERIAL TARGET_LSS... --links ID... [--skip|--replace] | --remove
 *   pprc-establish NAME --pair P:S... [--ess SERIAL] [--mode COPY_ENTIRE|NO_COPY|OUT_OF_SYNC_ONLY] [--critical] [--permit-online] [--force]
 *   pprc-suspend NAME --pair P:S... [--from source|target] | pprc-terminate NAME --pair P:S... [--from source|target]
 *   pprc-freeze NAME LSS... | pprc-release NAME LSS...
 *   create NAME KIND [--params JSON]            any registered operation kind
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
    .description('Copy Services tasks and task groups: saved FlashCopy, PPRC and path operations, run by name')
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

  // --- PPRC and path tasks (src/copy/tasks/pprc-kinds.ts) ---------------------------
  const save = async (cmd: Command, name: string, kind: string, params: unknown, description: string | undefined): Promise<void> => {
    const { client, json } = context(cmd);
    show(await client.create({ name, kind, params, ...(description !== undefined && { description }) }), json, 'saved');
  };

  task
    .command('pprc-path <name> <lss> <serial> <targetLss...>')
    .description('save a PPRC path task: establish (or --remove) paths from LSS of this ESS to each TARGET_LSS of ESS SERIAL')
    .option('--links <ids...>', 'links the paths use (1-8; establish)')
    .option('--skip', 'do not establish paths if they already exist (reported as not executed)')
    .option('--replace', 'force removal of existing paths first')
    .option('--remove', 'remove the paths instead')
    .option('--description <text>', 'free text')
    .action(async (name: string, lss: string, serial: string, targets: string[], opts: { links?: string[]; skip?: boolean; replace?: boolean; remove?: boolean; description?: string }, cmd: Command) => {
      if (opts.skip && opts.replace) throw new LunrigError('INVALID_ARGUMENT', '--skip and --replace contradict each other');
      if (opts.remove && (opts.skip || opts.replace || opts.links)) throw new LunrigError('INVALID_ARGUMENT', '--remove takes no --links, --skip or --replace');
      if (!opts.remove && opts.links === undefined) throw new LunrigError('INVALID_ARGUMENT', 'establishing paths needs --links');
      const links = (opts.links ?? []).flatMap((l) => l.split(',')).filter((l) => l !== '');
      const params = {
        action: opts.remove ? 'remove' : 'establish',
        paths: targets.map((targetLss) => ({ lss, to: serial, targetLss, ...(!opts.remove && { links }) })),
        ...(opts.skip && { ifExists: 'skip' }),
        ...(opts.replace && { ifExists: 'replace' }),
      };
      await save(cmd, name, 'pprc.path', params, opts.description);
    });

  task
    .command('pprc-establish <name>')
    .description('save a PPRC establish task: rsExecuteTask returns once the pairs are established; rsQueryComplete waits for the copy')
    .requiredOption('--pair <pairs...>', 'PRIMARY:SECONDARY or PRIMARY:SERIAL:SECONDARY (repeatable)')
    .option('--ess <serial>', 'the ESS holding the secondaries (default: this one)')
    .option('--mode <mode>', 'COPY_ENTIRE, NO_COPY or OUT_OF_SYNC_ONLY (resync)', 'COPY_ENTIRE')
    .option('--critical', 'Critical Volume mode')
    .option('--permit-online', 'establish even when a target is online to a host')
    .option('--force', 'NO_COPY on a suspended pair (drops its change recording)')
    .option('--description <text>', 'free text')
    .action(async (name: string, opts: { pair: string[]; ess?: string; mode: string; critical?: boolean; permitOnline?: boolean; force?: boolean; description?: string }, cmd: Command) => {
      const params = {
        pairs: opts.pair.map((p) => parsePprcPair(p, opts.ess)),
        mode: opts.mode,
        ...(opts.critical && { criticalVolume: true }),
        ...(opts.permitOnline && { permitIfTargetOnline: true }),
        ...(opts.force && { force: true }),
      };
      await save(cmd, name, 'pprc.establish', params, opts.description);
    });

  for (const verb of ['suspend', 'terminate'] as const) {
    task
      .command(`pprc-${verb} <name>`)
      .description(
        verb === 'suspend'
          ? 'save a PPRC suspend task (--from target: scheduled with the target storage server, which holds the secondaries)'
          : 'save a PPRC terminate task (--from source: both simplex; --from target, on the secondaries\' server: only they become simplex)',
      )
      .requiredOption('--pair <pairs...>', 'PRIMARY:SECONDARY or PRIMARY:SERIAL:SECONDARY (repeatable)')
      .option('--ess <serial>', 'the ESS holding the secondaries (default: this one)')
      .addOption(new Option('--from <ess>', 'the storage server the task is scheduled with').choices(['source', 'target']).default('source'))
      .option('--description <text>', 'free text')
      .action(async (name: string, opts: { pair: string[]; ess?: string; from: 'source' | 'target'; description?: string }, cmd: Command) => {
        await save(cmd, name, `pprc.${verb}`, { pairs: opts.pair.map((p) => parsePprcPair(p, opts.ess)), from: opts.from }, opts.description);
      });
  }

  for (const verb of ['freeze', 'release'] as const) {
    task
      .command(`pprc-${verb} <name> <lss...>`)
      .description(verb === 'freeze' ? 'save a PPRC freeze task: suspend every pair of the LSSs at once and hold their writes' : 'save a PPRC release task: let the writes a freeze held go')
      .option('--description <text>', 'free text')
      .action(async (name: string, lss: string[], opts: { description?: string }, cmd: Command) => {
        await save(cmd, name, `pprc.${verb}`, { lss }, opts.description);
      });
  }

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

/** PRIMARY:SECONDARY or PRIMARY:SERIAL:SECONDARY; `ess` for pairs that name none. */
function parsePprcPair(pair: string, ess: string | undefined): { primary: string; secondary: string; ess?: string } {
  const parts = pair.split(':');
  if (parts.some((p) => p === '') || (parts.length !== 2 && parts.length !== 3)) throw new LunrigError('INVALID_ARGUMENT', `a PPRC pair is PRIMARY:SECONDARY or PRIMARY:SERIAL:SECONDARY, got '${pair}'`);
  const serial = parts.length === 3 ? parts[1]! : ess;
  return { primary: parts[0]!, secondary: parts[parts.length - 1]!, ...(serial !== undefined && { ess: serial }) };
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
