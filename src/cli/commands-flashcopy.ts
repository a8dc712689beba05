/**
 * `lunrig flashcopy ...`: FlashCopy on a running server through the control
 * API (src/control/routes-flashcopy.ts):
 *   establish SRC TGT [--nocopy] [--incremental] [--grain SIZE] [--rate N] [--wait]
 *   withdraw VOL | list | query VOL | rate VOL N | refresh VOL
 *   group establish NAME SRC:TGT... | group withdraw NAME
 * `--wait` follows background copy to its end, with a progress bar when
 * stderr is a terminal.
 */
import { SingleBar } from 'cli-progress';
import { Option, type Command } from 'commander';
import type { GroupInfo, RelationshipInfo, VolumeQuery } from '../copy/flashcopy/index.js';
import { ControlClient, DEFAULT_SERVER_URL } from '../control/client.js';
import { LunrigError } from '../errors.js';
import { formatSize } from '../util/size.js';
import { keyValues, printJson, printLines, table } from './output.js';

interface FlashCopyGlobals {
  server: string;
  json?: boolean;
}

interface EstablishFlags {
  nocopy?: boolean;
  incremental?: boolean;
  grain?: string;
  rate?: string;
  permitIfTargetOnline?: boolean;
  relax?: string[];
  wait?: boolean;
}

type Request = <T>(method: string, path: string, body?: unknown) => Promise<T>;

/** The control API's FlashCopy endpoints, over ControlClient.request (errors come back as the server's LunrigError). */
export class FlashCopyClient {
  private readonly request: Request;

  constructor(client: ControlClient) {
    this.request = client.request.bind(client);
  }

  establish(body: Record<string, unknown>): Promise<RelationshipInfo> {
    return this.request('POST', '/v1/flashcopy', body);
  }

  establishGroup(body: Record<string, unknown>): Promise<GroupInfo> {
    return this.request('POST', '/v1/flashcopy/groups', body);
  }

  list(): Promise<{ relationships: RelationshipInfo[]; groups: GroupInfo[] }> {
    return this.request('GET', '/v1/flashcopy');
  }

  query(volume: string): Promise<VolumeQuery> {
    return this.request('GET', `/v1/flashcopy/volumes/${encodeURIComponent(volume)}`);
  }

  setRate(volume: string, rate: string | null): Promise<RelationshipInfo> {
    return this.request('PATCH', `/v1/flashcopy/volumes/${encodeURIComponent(volume)}`, { rate });
  }

  async withdraw(volume: string): Promise<RelationshipInfo[]> {
    return (await this.request<{ withdrawn: RelationshipInfo[] }>('DELETE', `/v1/flashcopy/volumes/${encodeURIComponent(volume)}`)).withdrawn;
  }

  async withdrawGroup(name: string): Promise<RelationshipInfo[]> {
    return (await this.request<{ withdrawn: RelationshipInfo[] }>('DELETE', `/v1/flashcopy/groups/${encodeURIComponent(name)}`)).withdrawn;
  }

  refresh(volume: string): Promise<RelationshipInfo> {
    return this.request('POST', `/v1/flashcopy/volumes/${encodeURIComponent(volume)}/refresh`);
  }
}

/** How often `--wait` asks the server (wall-clock: this is a user watching, not an array rule). */
const WAIT_POLL_MS = 500;

export function registerFlashCopyCommands(program: Command): void {
  const fc = program
    .command('flashcopy')
    .alias('fc')
    .description('point-in-time copies: establish, withdraw, list and query FlashCopy relationships on a running server')
    .addOption(new Option('--server <url>', 'control API of the running server').env('LUNRIG_SERVER').default(DEFAULT_SERVER_URL));

  const context = (cmd: Command) => {
    const opts = cmd.optsWithGlobals<FlashCopyGlobals>();
    return { client: new FlashCopyClient(new ControlClient(opts.server)), json: opts.json === true };
  };

  const establishOptions = (cmd: Command): Command =>
    cmd
      .option('--nocopy', 'no background copy: copy on write only; lasts until withdrawn')
      .option('--incremental', 'keep the relationship after the copy, recording changes, for refresh')
      .option('--grain <size>', 'copy grain (track) size, a power of two from 4K to 1M (default 64K)')
      .option('--rate <n>', 'background copy rate per second, e.g. 64M (0 pauses; default unlimited)')
      .option('--permit-if-target-online', 'establish even when a host has the target online')
      .option('--relax <rule...>', 'relax ESS rules: cross-lss, smaller-target, multiple-targets');

  establishOptions(
    fc
      .command('establish <source> <target>')
      .description('establish source -> target; returns at T0 (no data is copied first)')
      .option('--wait', 'wait for background copy to finish (progress bar on a terminal)'),
  ).action(async (source: string, target: string, opts: EstablishFlags, cmd: Command) => {
    const { client, json } = context(cmd);
    const info = await client.establish({ source, target, ...establishBody(opts) });
    if (!opts.wait) {
      if (json) printJson(info);
      else printLines([`established FlashCopy ${describe(info)}`]);
      return;
    }
    if (!json) printLines([`established FlashCopy ${describe(info)}`]);
    const final = await waitForCopy(client, info, !json && process.stderr.isTTY === true);
    if (json) printJson(final);
    else printLines([final.state === 'none' ? `FlashCopy ${final.id} completed: ${final.source} and ${final.target} are independent` : `FlashCopy ${final.id} copied; it stays to record changes`]);
  });

  fc
    .command('withdraw <volume>')
    .description('end the relationship(s) of a source or target volume')
    .action(async (volume: string, _opts: unknown, cmd: Command) => {
      const { client, json } = context(cmd);
      const withdrawn = await client.withdraw(volume);
      if (json) printJson({ withdrawn });
      else printLines(withdrawn.map((r) => `withdrew FlashCopy ${r.id}: ${r.source} -> ${r.target} (${r.progress.remainingGrains} of ${r.progress.grains} grains were not copied)`));
    });

  fc
    .command('list')
    .alias('ls')
    .description('list FlashCopy relationships')
    .action(async (_opts: unknown, cmd: Command) => {
      const { client, json } = context(cmd);
      const listing = await client.list();
      if (json) printJson(listing);
      else printLines(relationshipTable(listing.relationships));
    });

  fc
    .command('query <volume>')
    .description("a volume's FlashCopy role and relationships, with the ESS rsQuery lines")
    .action(async (volume: string, _opts: unknown, cmd: Command) => {
      const { client, json } = context(cmd);
      const q = await client.query(volume);
      if (json) printJson(q);
      else printLines([...q.ess, ...q.relationships.flatMap((r) => ['', ...relationshipDetail(r)])]);
    });

  fc
    .command('rate <volume> <rate>')
    .description("change the background copy rate of the volume's relationship (e.g. 64M; 0 pauses; 'unlimited')")
    .action(async (volume: string, rate: string, _opts: unknown, cmd: Command) => {
      const { client, json } = context(cmd);
      const info = await client.setRate(volume, rate === 'unlimited' ? null : rate);
      if (json) printJson(info);
      else printLines([`FlashCopy ${info.id} copies at ${rateText(info.rate)}`]);
    });

  fc
    .command('refresh <volume>')
    .description('incremental FlashCopy: take a new T0, copying only what changed')
    .action(async (volume: string, _opts: unknown, cmd: Command) => {
      const { client, json } = context(cmd);
      const info = await client.refresh(volume);
      if (json) printJson(info);
      else printLines([`refreshed FlashCopy ${describe(info)}: ${info.progress.remainingGrains} grains to copy`]);
    });

  const group = fc.command('group').description('consistency groups: several pairs with one T0');
  establishOptions(group.command('establish <name> <pairs...>').description('establish SOURCE:TARGET pairs with one T0 (all or none)')).action(
    async (name: string, pairs: string[], opts: EstablishFlags, cmd: Command) => {
      const { client, json } = context(cmd);
      const info = await client.establishGroup({ name, pairs: pairs.map(parsePair), ...establishBody(opts) });
      if (json) printJson(info);
      else printLines([`established FlashCopy group ${info.name} (T0 ${info.t0}):`, ...info.relationships.map((r) => `  ${describe(r)}`)]);
    },
  );
  group
    .command('withdraw <name>')
    .description('withdraw every relationship of a group at once')
    .action(async (name: string, _opts: unknown, cmd: Command) => {
      const { client, json } = context(cmd);
      const withdrawn = await client.withdrawGroup(name);
      if (json) printJson({ withdrawn });
      else printLines([`withdrew FlashCopy group ${name}: ${withdrawn.map((r) => r.id).join(', ')}`]);
    });
}

function establishBody(opts: EstablishFlags): Record<string, unknown> {
  return {
    ...(opts.nocopy && { mode: 'nocopy' }),
    ...(opts.incremental && { incremental: true }),
    ...(opts.grain !== undefined && { grainSize: opts.grain }),
    ...(opts.rate !== undefined && { rate: opts.rate }),
    ...(opts.permitIfTargetOnline && { permitIfTargetOnline: true }),
    ...(opts.relax !== undefined && { relax: opts.relax }),
  };
}

function parsePair(pair: string): { source: string; target: string } {
  const m = /^([^:]+):([^:]+)$/.exec(pair);
  if (!m) throw new LunrigError('INVALID_ARGUMENT', `a pair is SOURCE:TARGET, got '${pair}'`);
  return { source: m[1]!, target: m[2]! };
}

/** Poll until the relationship has nothing left to copy: ended (COPY) or copied (incremental). */
async function waitForCopy(client: FlashCopyClient, info: RelationshipInfo, bar: boolean): Promise<RelationshipInfo> {
  if (info.mode === 'nocopy') throw new LunrigError('INVALID_ARGUMENT', '--wait needs background copy: a NOCOPY relationship never finishes copying');
  const progress = bar ? new SingleBar({ format: '{bar} {percentage}% | {value}/{total} grains | ETA {eta_formatted}', stream: process.stderr, hideCursor: true }) : undefined;
  progress?.start(info.progress.grains, info.progress.copiedGrains);
  try {
    for (;;) {
      const q = await client.query(info.source);
      const current = q.relationships.find((r) => r.id === info.id);
      if (!current) return { ...info, state: 'none', progress: { ...info.progress, copiedGrains: info.progress.grains, remainingGrains: 0, bytesRemaining: 0, percent: 100, etaSeconds: null } };
      progress?.update(current.progress.copiedGrains);
      if (current.state === 'copied') return current;
      await new Promise((resolve) => setTimeout(resolve, WAIT_POLL_MS));
    }
  } finally {
    progress?.stop();
  }
}

function describe(r: RelationshipInfo): string {
  const mode = r.mode === 'nocopy' ? 'NOCOPY' : r.incremental ? 'COPY, incremental' : 'COPY';
  const relaxed = r.profile === 'relaxed' ? `, relaxed: ${r.relaxed.join(', ')}` : '';
  return `${r.id}: ${r.source} -> ${r.target} (${mode}, ${formatSize(r.grainSize)} grains${relaxed}), T0 ${r.t0}`;
}

function rateText(rate: number | null): string {
  return rate === null ? 'an unlimited rate' : rate === 0 ? 'rate 0 (paused)' : `${formatSize(rate)}/s`;
}

function eta(r: RelationshipInfo): string {
  const s = r.progress.etaSeconds;
  return s === null ? '-' : s < 120 ? `${s}s` : `${Math.round(s / 60)}m`;
}

export function relationshipTable(rels: readonly RelationshipInfo[]): string[] {
  if (rels.length === 0) return ['no FlashCopy relationships'];
  return table(
    ['ID', 'SOURCE', 'TARGET', 'MODE', 'STATE', 'GRAIN', 'COPIED', 'REMAINING', 'ETA', 'PROFILE'],
    rels.map((r) => [
      r.id,
      r.source,
      r.target,
      r.mode === 'nocopy' ? 'nocopy' : r.incremental ? 'copy+inc' : 'copy',
      r.state,
      formatSize(r.grainSize),
      `${r.progress.percent}%`,
      String(r.progress.remainingGrains),
      eta(r),
      r.profile,
    ]),
  );
}

function relationshipDetail(r: RelationshipInfo): string[] {
  return keyValues([
    ['relationship', `${r.id}: ${r.source} -> ${r.target}`],
    ['state', r.state],
    ['mode', r.mode === 'nocopy' ? 'NOCOPY' : r.incremental ? 'COPY, incremental' : 'COPY'],
    ['T0', r.t0],
    ['grain', `${formatSize(r.grainSize)} (${r.progress.grains} grains over ${formatSize(r.size)})`],
    ['copied', `${r.progress.copiedGrains} grains (${r.progress.percent}%), ${r.progress.remainingGrains} remaining, ETA ${eta(r)}`],
    ['rate', rateText(r.rate)],
    ['profile', r.profile === 'relaxed' ? `relaxed (${r.relaxed.join(', ')})` : 'strict'],
    ...(r.group !== null ? [['group', r.group] as const] : []),
    ...(r.changedGrains !== undefined ? [['changed', `${r.changedGrains} grains since T0`] as const] : []),
  ]);
}
