/** `lunrig serve`: run the array until SIGINT/SIGTERM, then shut down cleanly. */
import { InvalidArgumentError, Option, type Command } from 'commander';
import path from 'node:path';
import { DEFAULT_CONTROL_HOST, DEFAULT_CONTROL_PORT } from '../control/defaults.js';
import { DEFAULT_NBD_ENDPOINTS, type NbdEndpoints } from '../nbd/pool-exports.js';
import type { EngineKind } from '../store/open-engine.js';
import { EXIT_FAILED } from './exit.js';
import { TLS_MODE_CHOICES, describeTls, nbdTlsFromFlags, type TlsFlags } from './nbd-tls-flags.js';
import { exportTable } from './commands-export.js';
import { lunTable, printJson, printLines } from './output.js';
import { DEFAULT_DATA_DIR } from './defaults.js';
import type { RunningServer, ServeOptions, ServeSummary } from './serve.js';

export interface ServeFlags {
  data: string;
  control: { host: string; port: number };
  /** null: `--nbd none`. */
  nbd: { host: string; port: number } | null;
  nbdSocket?: string;
  serial?: string;
  io?: EngineKind;
  json?: boolean;
  pprcAckTimeout?: number;
  pprcOnFail?: 'error' | 'suspend-and-complete';
  pprcHeartbeat?: number;
  pprcFsyncOnAck?: boolean;
  durability?: 'process' | 'power';
}

type ServeAndTlsFlags = ServeFlags & TlsFlags;

export function registerServeCommand(program: Command): void {
  program
    .command('serve')
    .description('open (or create) a pool and serve it until interrupted')
    .addOption(new Option('--data <dir>', 'pool directory, created if missing').env('LUNRIG_DATA').default(DEFAULT_DATA_DIR))
    .addOption(
      new Option('--control <host:port>', 'where the control API listens (port 0: any free port)')
        .argParser((value: string) => parseHostPort(value))
        .default({ host: DEFAULT_CONTROL_HOST, port: DEFAULT_CONTROL_PORT }, `${DEFAULT_CONTROL_HOST}:${DEFAULT_CONTROL_PORT}`),
    )
    .addOption(
      new Option('--nbd <host:port|none>', 'where the NBD server listens on TCP (port 0: any free port; none: no TCP)')
        .argParser(parseNbdListen)
        .default(DEFAULT_NBD_ENDPOINTS.tcp, `${DEFAULT_NBD_ENDPOINTS.tcp.host}:${DEFAULT_NBD_ENDPOINTS.tcp.port}`),
    )
    .option('--nbd-socket <path>', 'also serve NBD on this unix socket (removed on exit)')
    .addOption(new Option('--tls <mode>', 'NBD TLS: off, optional (on), or require (default: require when credentials are given, else off)').choices(TLS_MODE_CHOICES))
    .option('--tls-certificates <dir>', 'X.509 credentials: ca-cert.pem, server-cert.pem, server-key.pem (qemu/nbdkit layout)')
    .option('--tls-verify-peer', 'ask NBD clients for a certificate that chains to ca-cert.pem')
    .option('--tls-psk <file>', 'pre-shared keys, one identity:hexkey per line (a directory means its keys.psk)')
    .option('--serial <SSSSS>', 'storage server serial for a new pool (5 characters 0-9/A-Z; random if absent)')
    .addOption(new Option('--io <engine>', 'I/O engine').choices(['worker', 'fs']).env('LUNRIG_IO'))
    .option('--pprc-ack-timeout <ms>', 'PPRC: how long a mirrored write waits for the secondary (default 30000)', Number)
    .addOption(new Option('--pprc-on-fail <policy>', "PPRC: a write whose mirror failed gets an I/O error ('error', default) or is recorded and completes").choices(['error', 'suspend-and-complete']))
    .option('--pprc-heartbeat <ms>', 'PPRC heartbeat: a secondary whose primary stays silent this long suspends the pair (default 5000)', Number)
    .option('--pprc-fsync-on-ack', 'PPRC: mirrored writes are durable on both sides before the host is answered')
    .addOption(
      new Option(
        '--durability <rule>',
        "copy-services metadata (FlashCopy copy-on-write records, PPRC track marks): fdatasynced at host FLUSH/FUA ('process', default: survives kill -9) or before each write it covers ('power': survives power loss, slower)",
      ).choices(['process', 'power']),
    )
    .action(async (_opts: unknown, cmd: Command) => {
      const flags = cmd.optsWithGlobals<ServeAndTlsFlags>();
      const nbdTls = await nbdTlsFromFlags(flags);
      // Loaded here so `lunrig lun ...` does not pay for fastify and the store at startup.
      const { startServer, summarize } = await import('./serve.js');
      const nbd: NbdEndpoints = { ...(flags.nbd && { tcp: flags.nbd }), ...(flags.nbdSocket !== undefined && { socket: path.resolve(flags.nbdSocket) }) };
      const server = await startServer({ dataDir: flags.data, control: flags.control, nbd, nbdTls, serial: flags.serial, io: flags.io, ...copyServiceOptions(flags) });
      const stopped = stopOnSignal(server);
      const summary = summarize(server);
      if (flags.json) printJson(summary);
      else printLines(describe(summary, server.created.length, describeTls(nbdTls)));
      // The command lasts as long as the server: it resolves after a clean shutdown.
      await stopped;
      if (!flags.json) printLines([`stopped; pool ${summary.pool.dir} flushed and unlocked`]);
    });
}

/** `HOST:PORT`, `[v6addr]:PORT` or `:PORT` (default host). */
export function parseHostPort(value: string, example = `${DEFAULT_CONTROL_HOST}:${DEFAULT_CONTROL_PORT}`): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(value.trim());
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new InvalidArgumentError(`expected HOST:PORT, e.g. ${example}`);
  return { host: m[1] ?? (m[2] || DEFAULT_CONTROL_HOST), port };
}

/** `--nbd`: HOST:PORT as for --control, or `none` for no TCP listener. */
export function parseNbdListen(value: string): { host: string; port: number } | null {
  return value.trim() === 'none' ? null : parseHostPort(value, `${DEFAULT_NBD_ENDPOINTS.tcp.host}:${DEFAULT_NBD_ENDPOINTS.tcp.port} or none`);
}

function describe(summary: ServeSummary, created: number, tls: string): string[] {
  return [
    `lunrig ${summary.version} serving pool ${summary.pool.dir} (serial ${summary.pool.serial})`,
    ...summary.services.map((s) => `  ${s.name.padEnd(8)} ${s.url}`),
    '',
    created > 0 ? `LUNs (the pool was empty; created ${created} default LUNs):` : 'LUNs:',
    ...lunTable(summary.luns).map((l) => `  ${l}`),
    '',
    ...(summary.exports.some((e) => e.uris.length > 0)
      ? ['NBD exports (attach with nbd-client -N NAME, qemu, nbdinfo, nbdfuse):', ...exportTable(summary.exports).map((l) => `  ${l}`), tls, '']
      : ['NBD is off (--nbd none and no --nbd-socket).', '']),
    'Stop with Ctrl-C (SIGINT) or SIGTERM.',
  ];
}

/**
 * The first SIGINT/SIGTERM stops the services and flushes the pool; the
 * returned promise settles when that is done. A second signal exits at once.
 */
function stopOnSignal(server: RunningServer): Promise<void> {
  return new Promise((resolve, reject) => {
    let stopping = false;
    const onSignal = (signal: NodeJS.Signals) => {
      if (stopping) {
        process.stderr.write(`lunrig: ${signal} again, exiting without a clean shutdown\n`);
        process.exit(EXIT_FAILED);
      }
      stopping = true;
      server.stop().then(resolve, reject);
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
}

/** What the copy-service flags ask of startServer (exported for tests). */
export function copyServiceOptions(flags: Partial<ServeFlags>): Pick<ServeOptions, 'pprc' | 'cowDurability'> {
  return {
    pprc: {
      ...(flags.pprcAckTimeout !== undefined && { remoteAckTimeoutMs: flags.pprcAckTimeout }),
      ...(flags.pprcOnFail !== undefined && { failedWritePolicy: flags.pprcOnFail }),
      ...(flags.pprcHeartbeat !== undefined && { heartbeatTimeoutMs: flags.pprcHeartbeat }),
      ...(flags.pprcFsyncOnAck && { fsyncOnAck: true }),
      ...(flags.durability && { durability: flags.durability }),
    },
    ...(flags.durability && { cowDurability: flags.durability }),
  };
}
