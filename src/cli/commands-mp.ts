/**
 * `lunrig port ...`, `lunrig fate-group ...`, `lunrig fault-timeline ...`:
 * extra target ports (NBD listeners) of a running server, their faults,
 * fate groups and scripted timelines, through the control API
 * (src/control/routes-multipath.ts).
 *
 * Fault syntax (one word each, several per command):
 *   down | hang | standby
 *   latency=MS | latency=uniform:MIN:MAX | latency=exp:MEAN | latency=normal:MEAN:SD   [@read|@write]
 *   error=RATE[:CODE]                                                                   [@read|@write]
 *   flap=PERIOD_MS:DUTY[:down|hang|error]
 *
 *   lunrig port add p1 --tcp 127.0.0.1:0 [--lun lun0]      # all LUNs unless --lun
 *   lunrig port fault p1 down ; lunrig port fault p1 latency=20 error=0.05 ; lunrig port clear p1
 *   lunrig fate-group create vios1 p1 p2 ; lunrig fate-group fault vios1 hang
 *   lunrig fault-timeline add 0@p1=down 5000@p1=clear 8000@group:vios1=flap=1000:0.5 12000@group:vios1=clear
 */
import { InvalidArgumentError, Option, type Command } from 'commander';
import { ControlClient, DEFAULT_SERVER_URL } from '../control/client.js';
import type { Fault, FaultOps, LatencySpec } from '../multipath/fault-switch.js';
import type { PortInfo, TimelineInfo, TimelineStepRequest } from '../multipath/port-manager.js';
import { printJson, printLines, table } from './output.js';

interface Globals {
  server: string;
  json?: boolean;
}

const num = (s: string | undefined, what: string): number => {
  const n = Number(s);
  if (s === undefined || s === '' || !Number.isFinite(n)) throw new InvalidArgumentError(`${what}: not a number: ${JSON.stringify(s)}`);
  return n;
};

/** One fault word (see the file comment). */
export function parseFault(word: string): Fault {
  const [body, opsPart] = word.split('@') as [string, string | undefined];
  const ops: FaultOps | undefined = opsPart === undefined ? undefined : opsPart === 'read' || opsPart === 'write' || opsPart === 'all' ? opsPart : invalid(word);
  const eq = body.indexOf('=');
  const kind = eq < 0 ? body : body.slice(0, eq);
  const args = eq < 0 ? [] : body.slice(eq + 1).split(':');
  switch (kind) {
    case 'down':
    case 'hang':
    case 'standby':
      return { kind };
    case 'latency': {
      const [a, b, c] = args;
      let ms: LatencySpec;
      if (a === 'uniform') ms = { dist: 'uniform', min: num(b, word), max: num(c, word) };
      else if (a === 'exp' || a === 'exponential') ms = { dist: 'exponential', mean: num(b, word) };
      else if (a === 'normal') ms = { dist: 'normal', mean: num(b, word), stddev: num(c, word) };
      else ms = num(a, word);
      return { kind: 'latency', ms, ...(ops && { ops }) };
    }
    case 'error':
      return { kind: 'error', rate: num(args[0], word), ...(args[1] !== undefined && { code: args[1] as never }), ...(ops && { ops }) };
    case 'flap': {
      const fault = args[2];
      if (fault !== undefined && fault !== 'down' && fault !== 'hang' && fault !== 'error') invalid(word);
      return { kind: 'flap', periodMs: num(args[0], word), duty: num(args[1], word), ...(fault !== undefined && { fault }) };
    }
    default:
      return invalid(word);
  }
}

function invalid(word: string): never {
  throw new InvalidArgumentError(`unknown fault '${word}': use down, hang, standby, latency=MS, error=RATE[:CODE], flap=PERIOD:DUTY[:down|hang|error]`);
}

/** AT_MS@TARGET=FAULT[+FAULT...] or AT_MS@TARGET=clear; TARGET is a port name or group:NAME. */
export function parseStep(word: string): TimelineStepRequest {
  const m = /^(\d+)@([^=]+)=(.+)$/.exec(word);
  if (!m) throw new InvalidArgumentError(`timeline step '${word}': use MS@PORT=FAULT, MS@group:NAME=FAULT, or =clear`);
  const [, at, target, spec] = m as unknown as [string, string, string, string];
  const faults = spec === 'clear' ? [] : spec.split('+').map(parseFault);
  return { atMs: Number(at), ...(target.startsWith('group:') ? { group: target.slice(6) } : { port: target }), faults };
}

export function registerMultipathCommands(program: Command): void {
  const serverOption = () => new Option('--server <url>', 'control API of the running server').env('LUNRIG_SERVER').default(DEFAULT_SERVER_URL);
  const context = (cmd: Command) => {
    const opts = cmd.optsWithGlobals<Globals>();
    return { client: new ControlClient(opts.server), json: opts.json === true };
  };
  const showPorts = (ports: PortInfo[]): string[] =>
    ports.length === 0
      ? ['no target ports']
      : table(
          ['PORT', 'ADDRESS', 'LUNS', 'STATE', 'FAULTS', 'GROUPS', 'REQUESTS', 'INJECTED'],
          ports.map((p) => [
            p.name,
            p.address,
            p.luns === 'all' ? 'all' : p.luns.join(','),
            `${p.state}${p.listening ? '' : ' (not listening)'}`,
            p.faults.map((f) => f.kind).join('+') || '-',
            p.fateGroups.join(',') || '-',
            String(p.stats.requests),
            String(p.stats.injectedErrors),
          ]),
        );

  const port = program.command('port').description('extra target ports (NBD listeners) for multipath, and their faults').addOption(serverOption());

  port
    .command('add <name>')
    .description('add a target port serving every LUN (or --lun ones) on TCP or a unix socket')
    .option('--tcp <host:port>', 'TCP address (port 0: any free one)')
    .option('--socket <path>', 'unix socket path')
    .option('--lun <lun>', 'serve only this LUN (repeatable)', (v: string, prev: string[] = []) => [...prev, v])
    .action(async (name: string, o: { tcp?: string; socket?: string; lun?: string[] }, cmd: Command) => {
      const { client, json } = context(cmd);
      let tcp: { host: string; port: number } | undefined;
      if (o.tcp !== undefined) {
        const i = o.tcp.lastIndexOf(':');
        if (i <= 0) throw new InvalidArgumentError('--tcp: use HOST:PORT');
        tcp = { host: o.tcp.slice(0, i).replace(/^\[|\]$/g, ''), port: num(o.tcp.slice(i + 1), '--tcp port') };
      }
      if (!tcp && o.socket === undefined) tcp = { host: '127.0.0.1', port: 0 };
      const info = await client.request<PortInfo>('POST', '/v1/ports', { name, ...tcp, ...(o.socket !== undefined && { socket: o.socket }), ...(o.lun && { luns: o.lun }) });
      if (json) printJson(info);
      else printLines([`added port ${info.name} at ${info.address} serving ${info.luns === 'all' ? 'all LUNs' : info.luns.join(', ')}`]);
    });

  port
    .command('list')
    .alias('ls')
    .description('list target ports with their state and faults')
    .action(async (_o: unknown, cmd: Command) => {
      const { client, json } = context(cmd);
      const res = await client.request<{ ports: PortInfo[] }>('GET', '/v1/ports');
      if (json) printJson(res);
      else printLines(showPorts(res.ports));
    });

  port
    .command('delete <name>')
    .alias('rm')
    .description('remove a target port (its connections drop)')
    .action(async (name: string, _o: unknown, cmd: Command) => {
      const { client, json } = context(cmd);
      await client.request('DELETE', `/v1/ports/${encodeURIComponent(name)}`);
      if (json) printJson({ deleted: name });
      else printLines([`removed port ${name}`]);
    });

  port
    .command('fault <name> <faults...>')
    .description('set the faults of a port (replacing any): down, hang, standby, latency=MS, error=RATE[:CODE], flap=PERIOD:DUTY')
    .action(async (name: string, words: string[], _o: unknown, cmd: Command) => {
      const { client, json } = context(cmd);
      const info = await client.request<PortInfo>('PUT', `/v1/ports/${encodeURIComponent(name)}/faults`, { faults: words.map(parseFault) });
      if (json) printJson(info);
      else printLines(showPorts([info]));
    });

  port
    .command('clear <name>')
    .description('clear the faults of a port')
    .action(async (name: string, _o: unknown, cmd: Command) => {
      const { client, json } = context(cmd);
      const info = await client.request<PortInfo>('DELETE', `/v1/ports/${encodeURIComponent(name)}/faults`);
      if (json) printJson(info);
      else printLines(showPorts([info]));
    });

  const group = program.command('fate-group').description('ports that share a component (HBA, switch, controller, VIOS): one fault hits all').addOption(serverOption());

  group
    .command('create <name> <ports...>')
    .description('group ports')
    .action(async (name: string, ports: string[], _o: unknown, cmd: Command) => {
      const { client, json } = context(cmd);
      const g = await client.request<{ name: string; ports: string[] }>('POST', '/v1/fate-groups', { name, ports });
      if (json) printJson(g);
      else printLines([`fate group ${g.name}: ${g.ports.join(', ')}`]);
    });

  group
    .command('list')
    .alias('ls')
    .description('list fate groups')
    .action(async (_o: unknown, cmd: Command) => {
      const { client, json } = context(cmd);
      const res = await client.request<{ groups: { name: string; ports: string[] }[] }>('GET', '/v1/fate-groups');
      if (json) printJson(res);
      else printLines(res.groups.length === 0 ? ['no fate groups'] : table(['GROUP', 'PORTS'], res.groups.map((g) => [g.name, g.ports.join(',')])));
    });

  group
    .command('delete <name>')
    .alias('rm')
    .description('delete a fate group (its ports stay)')
    .action(async (name: string, _o: unknown, cmd: Command) => {
      const { client, json } = context(cmd);
      await client.request('DELETE', `/v1/fate-groups/${encodeURIComponent(name)}`);
      if (json) printJson({ deleted: name });
      else printLines([`deleted fate group ${name}`]);
    });

  for (const [verb, desc] of [
    ['fault <name> <faults...>', 'set the same faults on every port of the group at once'],
    ['clear <name>', "clear every member's faults"],
  ] as const) {
    group
      .command(verb)
      .description(desc)
      .action(async (name: string, ...rest: unknown[]) => {
        const cmd = rest[rest.length - 1] as Command;
        const words = verb.startsWith('fault') ? (rest[0] as string[]) : [];
        const { client, json } = context(cmd);
        const g = await client.request<{ name: string; ports: string[] }>(words.length > 0 ? 'PUT' : 'DELETE', `/v1/fate-groups/${encodeURIComponent(name)}/faults`, words.length > 0 ? { faults: words.map(parseFault) } : undefined);
        if (json) printJson(g);
        else printLines([`fate group ${g.name} (${g.ports.join(', ')}): ${words.join(' ') || 'cleared'}`]);
      });
  }

  const tl = program.command('fault-timeline').description('faults scripted on a timeline (steps relative to now)').addOption(serverOption());

  tl.command('add <steps...>')
    .description('schedule steps MS@PORT=FAULT[+FAULT], MS@group:NAME=FAULT, MS@PORT=clear')
    .action(async (words: string[], _o: unknown, cmd: Command) => {
      const { client, json } = context(cmd);
      const info = await client.request<TimelineInfo>('POST', '/v1/fault-timelines', { steps: words.map(parseStep) });
      if (json) printJson(info);
      else printLines([`scheduled timeline ${info.id}: ${info.steps} steps`]);
    });

  tl.command('list')
    .alias('ls')
    .description('list timelines and the steps fired so far')
    .action(async (_o: unknown, cmd: Command) => {
      const { client, json } = context(cmd);
      const res = await client.request<{ timelines: TimelineInfo[] }>('GET', '/v1/fault-timelines');
      if (json) printJson(res);
      else printLines(res.timelines.length === 0 ? ['no timelines'] : table(['ID', 'STEPS', 'FIRED', 'DONE'], res.timelines.map((t) => [t.id, String(t.steps), t.fired.map((f) => f.note ?? '').join('; ') || '-', t.done ? 'yes' : 'no'])));
    });

  tl.command('cancel <id>')
    .description('drop the steps not yet applied')
    .action(async (id: string, _o: unknown, cmd: Command) => {
      const { client, json } = context(cmd);
      await client.request('DELETE', `/v1/fault-timelines/${encodeURIComponent(id)}`);
      if (json) printJson({ cancelled: id });
      else printLines([`cancelled timeline ${id}`]);
    });
}
