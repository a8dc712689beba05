/**
 * `lunrig pprc ...`: PPRC (synchronous remote mirroring) on a running server
 * through the control API (src/control/routes-pprc.ts):
 *   ess add CONTROL_URL NBD_ENDPOINT | ess list
 *   link add --to SERIAL | link remove ID | link list | link fault ID [--down|--up] [--latency MS] [--bandwidth RATE] [--clear]
 *   path establish LSS SERIAL TARGET_LSS --links ID... [--skip|--replace] | path remove LSS SERIAL TARGET_LSS | path list
 *   establish PRIMARY SECONDARY [--ess SERIAL] [--mode M] [--critical] [--permit-online] [--wait]
 *   suspend VOL [--from target] | resume VOL | terminate VOL [--from target]
 *   freeze LSS... | release LSS... | lss LSS [...] | power-cycle
 *   query VOL | list | wait VOL [--threshold P] | audit VOL
 * `--wait` follows the copy to DUPLEX, with a progress bar when stderr is a terminal.
 */
import { SingleBar } from 'cli-progress';
import { Option, type Command } from 'commander';
import { ControlClient, DEFAULT_SERVER_URL } from '../control/client.js';
import { PprcClient, type Json, type PprcQuery } from '../control/pprc-client.js';
import { LunrigError } from '../errors.js';
import { formatSize, parseSize } from '../util/size.js';
import { keyValues, printJson, printLines, table } from './output.js';

interface Globals {
  server: string;
  json?: boolean;
}

/** How often `--wait` asks the server (wall clock: a user watching). */
const WAIT_POLL_MS = 500;

export function registerPprcCommands(program: Command): void {
  const pprc = program
    .command('pprc')
    .description('synchronous remote mirroring (PPRC): ESSs, links, paths and pairs on a running server')
    .addOption(new Option('--server <url>', 'control API of the running server (the primary ESS)').env('LUNRIG_SERVER').default(DEFAULT_SERVER_URL));

  const context = (cmd: Command) => {
    const opts = cmd.optsWithGlobals<Globals>();
    return { client: new PprcClient(new ControlClient(opts.server, { timeoutMs: 120_000 })), json: opts.json === true };
  };
  const out = (json: boolean, value: unknown, lines: () => string[]) => (json ? printJson(value) : printLines(lines()));

  // --- ESSs ----------------------------------------------------------------
  const ess = pprc.command('ess').description('secondary ESSs: other lunrig servers this one mirrors to');
  ess
    .command('add <controlUrl> <nbd>')
    .description('register another lunrig server (control API URL, NBD HOST:PORT or socket path) as a secondary ESS; persisted')
    .option('--serial <serial>', 'refuse unless the server has this serial')
    .option('--tls-certificates <dir>', 'NBD TLS with X.509: ca-cert.pem [client-cert.pem client-key.pem]')
    .option('--tls-psk <file>', 'NBD TLS with a pre-shared key file (identity:hexkey lines)')
    .option('--tls-psk-identity <id>', 'PSK identity to use (default: the first in the file)')
    .option('--tls-optional', 'use TLS when the server offers it (default: require)')
    .action(async (controlUrl: string, nbd: string, o: { serial?: string; tlsCertificates?: string; tlsPsk?: string; tlsPskIdentity?: string; tlsOptional?: boolean }, cmd: Command) => {
      const { client, json } = context(cmd);
      const tls =
        o.tlsCertificates !== undefined || o.tlsPsk !== undefined
          ? {
              mode: o.tlsOptional ? ('optional' as const) : ('require' as const),
              ...(o.tlsCertificates !== undefined && { certificates: o.tlsCertificates }),
              ...(o.tlsPsk !== undefined && { psk: o.tlsPsk }),
              ...(o.tlsPskIdentity !== undefined && { pskIdentity: o.tlsPskIdentity }),
            }
          : undefined;
      const info = await client.addEss({ controlUrl, nbd, ...(o.serial !== undefined && { serial: o.serial }), ...(tls && { tls }) });
      out(json, info, () => [`registered ESS ${info.serial}: control ${info.controlUrl}, NBD ${info.nbdEndpoint}${info.tls ? ' (TLS)' : ''}`]);
    });
  ess
    .command('list')
    .alias('ls')
    .description('this ESS and the registered secondary ESSs')
    .action(async (_o: unknown, cmd: Command) => {
      const { client, json } = context(cmd);
      const listing = await client.listEss();
      out(json, listing, () => [
        `this ESS: ${listing.serial}`,
        ...(listing.remotes.length === 0 ? ['no remote ESSs'] : table(['SERIAL', 'CONTROL', 'NBD', 'TLS', 'LINKS OPEN'], listing.remotes.map((r) => [r.serial, r.controlUrl, r.nbdEndpoint, r.tls ? 'yes' : 'no', String(r.openLinks)]))),
      ]);
    });

  // --- links ---------------------------------------------------------------
  const link = pprc.command('link').description('physical links (1-8 per ESS pair) and their faults');
  link
    .command('add')
    .description('add a physical link to a secondary ESS')
    .requiredOption('--to <serial>', 'serial of the secondary ESS (this server\'s own serial for a local secondary)')
    .option('--id <id>', 'link id (default chosen by the server)')
    .option('--distance <km>', 'distance in km (at most 103)', Number)
    .option('--handshakes <n>', 'round trips per write (1, or 3 for ESCON)', Number)
    .action(async (o: { to: string; id?: string; distance?: number; handshakes?: number }, cmd: Command) => {
      const { client, json } = context(cmd);
      const info = await client.addLink({ to: o.to, ...(o.id !== undefined && { id: o.id }), ...(o.distance !== undefined && { distanceKm: o.distance }), ...(o.handshakes !== undefined && { handshakes: o.handshakes }) });
      out(json, info, () => [`added link ${str(info['id'])} to ESS ${str(info['to'])}`]);
    });
  link
    .command('remove <id>')
    .alias('rm')
    .description('remove a link (pairs that lose their last path suspend)')
    .action(async (id: string, _o: unknown, cmd: Command) => {
      const { client, json } = context(cmd);
      const r = await client.removeLink(id);
      out(json, r, () => [`removed link ${id}`]);
    });
  link
    .command('list')
    .alias('ls')
    .description('links and their faults')
    .action(async (_o: unknown, cmd: Command) => {
      const { client, json } = context(cmd);
      const links = await client.listLinks();
      out(json, { links }, () => linkTable(links));
    });
  link
    .command('fault <id>')
    .description('inject faults on a link: --down / --up, --latency MS (one way), --bandwidth RATE; --clear removes all')
    .option('--down', 'cut the link')
    .option('--up', 'restore the link')
    .option('--latency <ms>', 'added one-way latency in ms', Number)
    .option('--bandwidth <rate>', "limit per second, e.g. 20M, or 'unlimited'")
    .option('--clear', 'clear every fault')
    .action(async (id: string, o: { down?: boolean; up?: boolean; latency?: number; bandwidth?: string; clear?: boolean }, cmd: Command) => {
      const { client, json } = context(cmd);
      if (o.down && o.up) throw new LunrigError('INVALID_ARGUMENT', '--down and --up contradict each other');
      let info: Json;
      if (o.clear) info = await client.clearLinkFault(id);
      else {
        const fault = {
          ...(o.down && { down: true }),
          ...(o.up && { down: false }),
          ...(o.latency !== undefined && { latencyMs: o.latency }),
          ...(o.bandwidth !== undefined && { bandwidth: o.bandwidth === 'unlimited' ? null : parseSize(o.bandwidth) }),
        };
        if (Object.keys(fault).length === 0) throw new LunrigError('INVALID_ARGUMENT', 'say what to change: --down, --up, --latency, --bandwidth or --clear');
        info = await client.setLinkFault(id, fault);
      }
      out(json, info, () => linkTable([info]));
    });

  // --- paths ---------------------------------------------------------------
  const path = pprc.command('path').description('logical paths: primary LSS -> secondary ESS, LSS over links');
  path
    .command('establish <lss> <serial> <targetLss>')
    .description('establish a path from LSS of this ESS to TARGET_LSS of ESS SERIAL')
    .requiredOption('--links <ids...>', 'links the path uses (1-8)')
    .option('--skip', 'do not establish if the path exists (reported as not executed)')
    .option('--replace', 'force removal of existing paths between these LSSs first')
    .action(async (lss: string, serial: string, targetLss: string, o: { links: string[]; skip?: boolean; replace?: boolean }, cmd: Command) => {
      const { client, json } = context(cmd);
      if (o.skip && o.replace) throw new LunrigError('INVALID_ARGUMENT', '--skip and --replace contradict each other');
      const links = o.links.flatMap((l) => l.split(',')).filter((l) => l !== '');
      const r = await client.establishPath({ lss, to: serial, targetLss, links, ...(o.skip && { ifExists: 'skip' as const }), ...(o.replace && { ifExists: 'replace' as const }) });
      out(json, r, () => [r['notExecuted'] === true ? `path ${lss} -> ${serial}:${targetLss} exists: not executed` : `established path ${lss} -> ${serial}:${targetLss} over ${links.join(', ')}`]);
    });
  path
    .command('remove <lss> <serial> <targetLss>')
    .alias('rm')
    .description('remove a path (pairs that lose their last path suspend)')
    .action(async (lss: string, serial: string, targetLss: string, _o: unknown, cmd: Command) => {
      const { client, json } = context(cmd);
      const r = await client.removePath(lss, serial, targetLss);
      out(json, r, () => [`removed path ${lss} -> ${serial}:${targetLss}`]);
    });
  path
    .command('list')
    .alias('ls')
    .description('logical paths')
    .action(async (_o: unknown, cmd: Command) => {
      const { client, json } = context(cmd);
      const paths = await client.listPaths();
      out(json, { paths }, () =>
        paths.length === 0 ? ['no PPRC paths'] : table(['LSS', 'TO', 'TARGET LSS', 'LINKS'], paths.map((p) => [hex(p['lss']), str(p['to']), hex(p['targetLss']), arr(p['links']).join(',')])),
      );
    });

  // --- pairs ---------------------------------------------------------------
  pprc
    .command('establish <primary> <secondary>')
    .description('establish a pair; returns once established, the copy continues (--wait follows it to DUPLEX)')
    .option('--ess <serial>', 'the ESS holding the secondary (default: this one)')
    .addOption(new Option('--mode <mode>', 'copy-entire (default), no-copy, or out-of-sync-only (resync)').choices(['copy-entire', 'no-copy', 'out-of-sync-only']).default('copy-entire'))
    .option('--critical', 'Critical Volume mode')
    .option('--permit-online', 'establish even when the target is online to a host')
    .option('--force', 'no-copy on a suspended pair (drops the change recording)')
    .option('--wait', 'wait for DUPLEX (progress bar on a terminal)')
    .action(async (primary: string, secondary: string, o: { ess?: string; mode: 'copy-entire' | 'no-copy' | 'out-of-sync-only'; critical?: boolean; permitOnline?: boolean; force?: boolean; wait?: boolean }, cmd: Command) => {
      const { client, json } = context(cmd);
      const q = await client.establish({
        primary,
        secondary: { volume: secondary, ...(o.ess !== undefined && { ess: o.ess }) },
        mode: o.mode,
        ...(o.critical && { criticalVolume: true }),
        ...(o.permitOnline && { permitIfTargetOnline: true }),
        ...(o.force && { force: true }),
      });
      const line = `established PPRC ${primary} -> ${o.ess ?? 'local'}:${secondary} (${o.mode}${o.critical ? ', critical volume' : ''}): ${stateText(q)}`;
      if (!o.wait) return out(json, q, () => [line]);
      if (!json) printLines([line]);
      const final = await waitForDuplex(client, primary, !json && process.stderr.isTTY === true);
      out(json, final, () => [`PPRC ${primary}: ${stateText(final)}`]);
    });

  pprc
    .command('suspend <volume>')
    .description('suspend a pair: writes to the primary are recorded, not mirrored')
    .addOption(new Option('--from <ess>', 'schedule on the source or the target ESS').choices(['source', 'target']))
    .action(async (volume: string, o: { from?: 'source' | 'target' }, cmd: Command) => {
      const { client, json } = context(cmd);
      const q = await client.suspend(volume, o.from);
      out(json, q, () => [`PPRC ${volume}: ${stateText(q)}`]);
    });

  pprc
    .command('resume <volume>')
    .alias('resync')
    .description('resync a suspended pair: copy only the out-of-sync tracks (--wait follows it to DUPLEX)')
    .option('--secondary <volume>', 'the secondary (default: the one the primary records)')
    .option('--ess <serial>', 'ESS of --secondary')
    .option('--wait', 'wait for DUPLEX (progress bar on a terminal)')
    .action(async (volume: string, o: { secondary?: string; ess?: string; wait?: boolean }, cmd: Command) => {
      const { client, json } = context(cmd);
      const q = await client.resume(volume, o.secondary !== undefined ? { secondary: { volume: o.secondary, ...(o.ess !== undefined && { ess: o.ess }) } } : {});
      if (!o.wait) return out(json, q, () => [`PPRC ${volume}: resync started, ${stateText(q)}`]);
      if (!json) printLines([`PPRC ${volume}: resync started, ${stateText(q)}`]);
      const final = await waitForDuplex(client, volume, !json && process.stderr.isTTY === true);
      out(json, final, () => [`PPRC ${volume}: ${stateText(final)}`]);
    });

  pprc
    .command('terminate <volume>')
    .description('end a pair; --from target on the secondary ESS makes only the secondary simplex when the primary is gone')
    .addOption(new Option('--from <ess>', 'schedule on the source or the target ESS').choices(['source', 'target']))
    .action(async (volume: string, o: { from?: 'source' | 'target' }, cmd: Command) => {
      const { client, json } = context(cmd);
      const r = await client.terminate(volume, o.from);
      out(json, r, () => [`terminated PPRC pair of ${volume}${o.from === 'target' ? ' (from the target ESS)' : ''}`]);
    });

  pprc
    .command('freeze <lss...>')
    .description('suspend every pair of these LSSs at once and hold their writes (consistency group)')
    .action(async (lss: string[], _o: unknown, cmd: Command) => {
      const { client, json } = context(cmd);
      const r = await client.freeze(lss);
      out(json, r, () => [`froze LSS ${lss.join(', ')}`]);
    });

  pprc
    .command('release <lss...>')
    .description('release the writes a freeze or a consistency group holds')
    .action(async (lss: string[], _o: unknown, cmd: Command) => {
      const { client, json } = context(cmd);
      const r = await client.release(lss);
      out(json, r, () => [`released LSS ${lss.join(', ')}`]);
    });

  pprc
    .command('lss <lss>')
    .description('LSS settings: Critical Heavy (takes effect at the next power cycle), consistency group, timeout')
    .addOption(new Option('--critical-heavy <on|off>').choices(['on', 'off']))
    .addOption(new Option('--consistency-group <on|off>').choices(['on', 'off']))
    .option('--timeout <seconds>', 'consistency time out in seconds', Number)
    .action(async (lss: string, o: { criticalHeavy?: string; consistencyGroup?: string; timeout?: number }, cmd: Command) => {
      const { client, json } = context(cmd);
      const settings = {
        ...(o.criticalHeavy !== undefined && { criticalHeavy: o.criticalHeavy === 'on' }),
        ...(o.consistencyGroup !== undefined && { consistencyGroup: o.consistencyGroup === 'on' }),
        ...(o.timeout !== undefined && { consistencyTimeoutSec: o.timeout }),
      };
      if (Object.keys(settings).length === 0) throw new LunrigError('INVALID_ARGUMENT', 'say what to change: --critical-heavy, --consistency-group or --timeout');
      const r = await client.setLss(lss, settings);
      out(json, r, () => keyValues(Object.entries(r).map(([k, v]) => [k, typeof v === 'object' ? JSON.stringify(v) : String(v)] as const)));
    });

  pprc
    .command('power-cycle')
    .description('simulated ESS power cycle: pending CRIT (Critical Heavy) settings take effect')
    .action(async (_o: unknown, cmd: Command) => {
      const { client, json } = context(cmd);
      const r = await client.powerCycle();
      out(json, r, () => ['power cycled: CRIT settings in effect']);
    });

  pprc
    .command('query <volume>')
    .description("a volume's PPRC role, state and out-of-sync tracks, with the ESS rsQuery lines")
    .action(async (volume: string, _o: unknown, cmd: Command) => {
      const { client, json } = context(cmd);
      const q = await client.query(volume);
      out(json, q, () => [...arr(q['ess']).map(String), ...(arr(q['ess']).length > 0 ? [''] : []), ...queryDetail(volume, q)]);
    });

  pprc
    .command('list')
    .alias('ls')
    .description('every pair this ESS holds a volume of')
    .action(async (_o: unknown, cmd: Command) => {
      const { client, json } = context(cmd);
      const pairs = await client.list();
      out(json, { pairs }, () => pairTable(pairs));
    });

  pprc
    .command('wait <volume>')
    .description('rsQueryComplete: wait until the pair has copied THRESHOLD percent (default 100: DUPLEX)')
    .option('--threshold <percent>', 'completion threshold in percent', Number)
    .action(async (volume: string, o: { threshold?: number }, cmd: Command) => {
      const { client, json } = context(cmd);
      const q = await client.waitForCopy(volume, o.threshold);
      out(json, q, () => [`PPRC ${volume}: ${stateText(q)}`]);
    });

  pprc
    .command('audit <volume>')
    .description('compare the checksums of every track of the primary and the secondary')
    .action(async (volume: string, _o: unknown, cmd: Command) => {
      const { client, json } = context(cmd);
      const r = await client.audit(volume);
      out(json, r, () => keyValues(Object.entries(r).map(([k, v]) => [k, Array.isArray(v) ? (v.length > 20 ? `${v.slice(0, 20).join(', ')} ... (${v.length})` : v.join(', ') || '-') : typeof v === 'object' ? JSON.stringify(v) : String(v)] as const)));
    });
}

/** Poll until DUPLEX; a suspended pair is an error (it will not get there by itself). */
async function waitForDuplex(client: PprcClient, volume: string, bar: boolean): Promise<PprcQuery> {
  let q = await client.query(volume);
  const progress = bar ? new SingleBar({ format: '{bar} {percentage}% | {value}/{total} tracks | ETA {eta_formatted}', stream: process.stderr, hideCursor: true }) : undefined;
  progress?.start(q.totalTracks, q.totalTracks - q.oosTracks);
  try {
    for (;;) {
      progress?.update(q.totalTracks - q.oosTracks);
      if (isDuplex(q)) return q;
      if (q.suspended || /suspend/i.test(q.state)) {
        throw new LunrigError('PPRC_NOT_IN_PAIR', `PPRC ${volume} suspended while copying (${String(q['suspendReason'] ?? 'no reason given')}), ${q.oosTracks} tracks out of sync`, { volume, state: q.state });
      }
      if (q.role === 'simplex') throw new LunrigError('PPRC_NOT_IN_PAIR', `PPRC ${volume} is no longer in a pair`, { volume });
      await new Promise((resolve) => setTimeout(resolve, WAIT_POLL_MS));
      q = await client.query(volume);
    }
  } finally {
    progress?.stop();
  }
}

function isDuplex(q: PprcQuery): boolean {
  return /^duplex$/i.test(q.state) && !q.suspended;
}

function stateText(q: PprcQuery): string {
  const pct = q.totalTracks > 0 ? Math.floor(((q.totalTracks - q.oosTracks) * 100) / q.totalTracks) : 100;
  return `${q.state}, ${q.oosTracks} of ${q.totalTracks} tracks out of sync (${pct}% copied)${q['writeInhibited'] === true ? ', write-inhibited' : ''}${q['suspendReason'] !== undefined && q.suspended ? `, ${String(q['suspendReason'])}` : ''}`;
}

function queryDetail(volume: string, q: PprcQuery): string[] {
  const pairs: Array<readonly [string, string]> = [
    ['volume', volume],
    ['role', q.role],
    ['state', q.state],
    ['suspended', q.suspended ? `yes${q['suspendReason'] !== undefined ? ` (${String(q['suspendReason'])})` : ''}` : 'no'],
    ['out of sync', `${q.oosTracks} of ${q.totalTracks} tracks`],
  ];
  if (q['writeInhibited'] !== undefined) pairs.push(['write-inhibited', q['writeInhibited'] ? 'yes' : 'no']);
  const pair = q['pair'] as Json | undefined;
  if (pair) {
    const p = (pair['primary'] ?? {}) as Json;
    const s = (pair['secondary'] ?? {}) as Json;
    pairs.unshift(['pair', str(pair['id'])]);
    pairs.push(['primary', `${str(p['serial'])}:${str(p['volume'])} (LSS ${hex(p['lss'])})`]);
    pairs.push(['secondary', `${str(s['serial'])}:${str(s['volume'])} (LSS ${hex(s['lss'])}, volume ${str(s['volumeId'])})`]);
    pairs.push(['critical volume', pair['criticalVolume'] === true ? 'yes' : 'no']);
    pairs.push(['track size', typeof pair['trackSize'] === 'number' ? formatSize(pair['trackSize']) : '-']);
  }
  return keyValues(pairs);
}

function pairTable(pairs: readonly Json[]): string[] {
  if (pairs.length === 0) return ['no PPRC pairs'];
  return table(
    ['ID', 'PRIMARY', 'SECONDARY', 'STATE', 'OOS TRACKS', 'CRITICAL', 'WRITE-INHIBITED'],
    pairs.map((p) => {
      const prim = (p['primary'] ?? {}) as Json;
      const sec = (p['secondary'] ?? {}) as Json;
      return [
        str(p['id']),
        `${str(prim['serial'])}:${str(prim['volume'])}`,
        `${str(sec['serial'])}:${str(sec['volume'])}`,
        str(p['state']),
        p['oosTracks'] !== undefined ? String(p['oosTracks']) : '-',
        p['criticalVolume'] === true ? 'yes' : 'no',
        p['writeInhibited'] === true ? 'yes' : 'no',
      ];
    }),
  );
}

function linkTable(links: readonly Json[]): string[] {
  if (links.length === 0) return ['no PPRC links'];
  return table(
    ['ID', 'TO', 'INDEX', 'KM', 'STATE', 'LATENCY', 'BANDWIDTH', 'REQUESTS', 'BYTES'],
    links.map((l) => [
      str(l['id']),
      str(l['to']),
      str(l['index']),
      str(l['distanceKm']),
      l['down'] === true ? 'down' : 'up',
      typeof l['latencyMs'] === 'number' && l['latencyMs'] > 0 ? `+${l['latencyMs']} ms` : '-',
      typeof l['bandwidth'] === 'number' && l['bandwidth'] > 0 ? `${formatSize(l['bandwidth'])}/s` : 'unlimited',
      str(l['requests']),
      typeof l['bytes'] === 'number' ? formatSize(l['bytes']) : '-',
    ]),
  );
}

function str(v: unknown): string {
  return v === undefined || v === null ? '-' : String(v);
}

function hex(v: unknown): string {
  return typeof v === 'number' ? v.toString(16).padStart(2, '0') : str(v);
}

function arr(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [];
}
