/**
 * `lunrig host ...` and `lunrig reservation ...`: hosts (initiators), LUN
 * masking and SCSI reservations on a running server, through the control
 * API (src/control/routes-hosts.ts).
 *
 *   lunrig host create host1 --lun lun0                      # nbd-name initiator host1: export name host1/lun0
 *   lunrig host create db --initiator psk:alice --initiator x509:db.example
 *   lunrig host map db lun1 ; lunrig host unmap db lun1 ; lunrig host list ; lunrig host delete db
 *   lunrig host masking on|off|auto
 *   lunrig reservation show lun0
 *   lunrig reservation register lun0 --host db --service-key 0xa1 [--aptpl]
 *   lunrig reservation pr-reserve lun0 --host db --key 0xa1 --type write_exclusive_registrants_only
 */
import { InvalidArgumentError, Option, type Command } from 'commander';
import { ControlClient, DEFAULT_SERVER_URL } from '../control/client.js';
import type { HostInfo, Initiator, MaskingMode } from '../hosts/host-registry.js';
import type { ReservationStatus } from '../hosts/reservation-types.js';
import { keyValues, printJson, printLines, table } from './output.js';

interface Globals {
  server: string;
  json?: boolean;
}

const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

function parseInitiator(value: string, previous: Initiator[] = []): Initiator[] {
  const i = value.indexOf(':');
  const kind = value.slice(0, i);
  if (i <= 0 || !['x509', 'psk', 'nbd-name'].includes(kind) || i === value.length - 1) {
    throw new InvalidArgumentError("use KIND:NAME with KIND x509, psk or nbd-name, e.g. psk:alice");
  }
  return [...previous, { kind: kind as Initiator['kind'], name: value.slice(i + 1) }];
}

export function registerHostCommands(program: Command): void {
  const serverOption = () => new Option('--server <url>', 'control API of the running server').env('LUNRIG_SERVER').default(DEFAULT_SERVER_URL);
  const context = (cmd: Command) => {
    const opts = cmd.optsWithGlobals<Globals>();
    return { client: new ControlClient(opts.server), json: opts.json === true };
  };

  const host = program.command('host').description('hosts (initiators) and LUN masking: which host sees which LUN').addOption(serverOption());

  host
    .command('create <name>')
    .description('create a host; without --initiator it is reached as export name NAME/LUN')
    .option('--initiator <kind:name>', 'x509:CN, psk:IDENTITY or nbd-name:NAME (repeatable)', parseInitiator)
    .option('--lun <lun>', 'map a LUN (repeatable)', collect)
    .action(async (name: string, opts: { initiator?: Initiator[]; lun?: string[] }, cmd: Command) => {
      const { client, json } = context(cmd);
      const info = await client.request<HostInfo>('POST', '/v1/hosts', { name, ...(opts.initiator && { initiators: opts.initiator }), ...(opts.lun && { luns: opts.lun }) });
      if (json) printJson(info);
      else printLines([`created host ${info.name}: ${describeInitiators(info)}; LUNs: ${info.luns.join(', ') || 'none'}`]);
    });

  host
    .command('list')
    .alias('ls')
    .description('list hosts, their initiators and LUNs, and the masking mode')
    .action(async (_opts: unknown, cmd: Command) => {
      const { client, json } = context(cmd);
      const res = await client.request<{ masking: { mode: MaskingMode; enabled: boolean }; hosts: HostInfo[] }>('GET', '/v1/hosts');
      if (json) return printJson(res);
      printLines([
        `masking: ${res.masking.mode} (${res.masking.enabled ? 'on' : 'off'})`,
        ...(res.hosts.length === 0 ? ['no hosts'] : table(['HOST', 'INITIATORS', 'LUNS'], res.hosts.map((h) => [h.name, describeInitiators(h), h.luns.join(',') || '-']))),
      ]);
    });

  host
    .command('delete <name>')
    .alias('rm')
    .description('delete a host')
    .action(async (name: string, _opts: unknown, cmd: Command) => {
      const { client, json } = context(cmd);
      await client.request('DELETE', `/v1/hosts/${encodeURIComponent(name)}`);
      if (json) printJson({ deleted: name });
      else printLines([`deleted host ${name}`]);
    });

  for (const [verb, method, what] of [
    ['map', 'PUT', 'let a host see a LUN'],
    ['unmap', 'DELETE', 'hide a LUN from a host'],
  ] as const) {
    host
      .command(`${verb} <host> <lun>`)
      .description(what)
      .action(async (h: string, lun: string, _opts: unknown, cmd: Command) => {
        const { client, json } = context(cmd);
        const info = await client.request<HostInfo>(method, `/v1/hosts/${encodeURIComponent(h)}/luns/${encodeURIComponent(lun)}`);
        if (json) printJson(info);
        else printLines([`host ${info.name} LUNs: ${info.luns.join(', ') || 'none'}`]);
      });
  }

  host
    .command('masking [mode]')
    .description('show or set LUN masking: auto (on once a host exists), on, off')
    .action(async (mode: string | undefined, _opts: unknown, cmd: Command) => {
      const { client, json } = context(cmd);
      const res =
        mode === undefined
          ? await client.request<{ mode: MaskingMode; enabled: boolean }>('GET', '/v1/masking')
          : await client.request<{ mode: MaskingMode; enabled: boolean }>('PUT', '/v1/masking', { mode });
      if (json) printJson(res);
      else printLines([`masking: ${res.mode} (${res.enabled ? 'on' : 'off'})`]);
    });

  const rsv = program
    .command('reservation')
    .alias('rsv')
    .description('SCSI-2 reserve/release and SPC-3 persistent reservations of a LUN, sent as one host through one target port')
    .addOption(serverOption());

  rsv
    .command('show <lun>')
    .description('PR generation, registered keys, the reservation and the SCSI-2 holder')
    .action(async (lun: string, _opts: unknown, cmd: Command) => {
      const { client, json } = context(cmd);
      const st = await client.request<ReservationStatus>('GET', `/v1/luns/${encodeURIComponent(lun)}/reservations`);
      if (json) printJson(st);
      else printLines(describeStatus(st));
    });

  const commands = [
    ['reserve', 'SCSI-2 RESERVE'],
    ['release', 'SCSI-2 RELEASE'],
    ['lun-reset', 'LOGICAL UNIT RESET (clears a SCSI-2 reserve)'],
    ['register', 'PR REGISTER (--key: the registered key, --service-key: the new one; 0 unregisters)'],
    ['register-and-ignore', 'PR REGISTER AND IGNORE EXISTING KEY'],
    ['pr-reserve', 'PR RESERVE (--key, --type)'],
    ['pr-release', 'PR RELEASE (--key, --type)'],
    ['clear', 'PR CLEAR (--key)'],
    ['preempt', 'PR PREEMPT (--key, --service-key of the victim, --type)'],
    ['preempt-and-abort', 'PR PREEMPT AND ABORT'],
  ] as const;
  for (const [name, what] of commands) {
    rsv
      .command(`${name} <lun>`)
      .description(what)
      .requiredOption('--host <host>', 'the initiator sending the command')
      .option('--port <port>', "the target port it arrives on (default: 'default', the main NBD listener)")
      .option('--key <key>', 'reservation key (hex 0x.. or a number)')
      .option('--service-key <key>', 'service action reservation key')
      .option('--type <type>', 'PR type: write_exclusive, exclusive_access, write_exclusive_registrants_only, exclusive_access_registrants_only, write_exclusive_all_registrants, exclusive_access_all_registrants, or its SPC code')
      .option('--aptpl', 'REGISTER: persist through power loss (server restarts)')
      .option('--all-target-ports', 'REGISTER: ALL_TG_PT')
      .action(async (lun: string, o: { host: string; port?: string; key?: string; serviceKey?: string; type?: string; aptpl?: boolean; allTargetPorts?: boolean }, cmd: Command) => {
        const { client, json } = context(cmd);
        const type = o.type === undefined ? undefined : /^\d+$/.test(o.type) ? Number(o.type) : o.type;
        const st = await client.request<ReservationStatus>('POST', `/v1/luns/${encodeURIComponent(lun)}/reservations`, {
          command: name.replace(/-/g, '_'),
          host: o.host,
          ...(o.port !== undefined && { port: o.port }),
          ...(o.key !== undefined && { key: o.key }),
          ...(o.serviceKey !== undefined && { serviceKey: o.serviceKey }),
          ...(type !== undefined && { type }),
          ...(o.aptpl && { aptpl: true }),
          ...(o.allTargetPorts && { allTargetPorts: true }),
        });
        if (json) printJson(st);
        else printLines(describeStatus(st));
      });
  }
}

function describeInitiators(h: HostInfo): string {
  return h.initiators.map((i) => `${i.kind}:${i.name}`).join(', ') || 'none';
}

function describeStatus(st: ReservationStatus): string[] {
  const res = st.reservation;
  return [
    ...keyValues([
      ['PR generation', String(st.generation)],
      ['reservation', res ? `${res.type} key ${res.key}${res.holder ? ` holder ${res.holder.host}@${res.holder.port}` : ' (all registrants)'}` : 'none'],
      ['SCSI-2 reserve', st.scsi2 ? `${st.scsi2.host}@${st.scsi2.port}` : 'none'],
      ['APTPL', st.aptpl ? 'yes' : 'no'],
    ]),
    ...(st.registrations.length === 0 ? ['no registrations'] : table(['HOST', 'PORT', 'KEY'], st.registrations.map((r) => [r.host, r.port, r.key]))),
  ];
}
