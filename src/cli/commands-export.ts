/**
 * `lunrig export ...`: the NBD exports of a running server (one per LUN,
 * named after it) and their read-only switch, through the control API.
 */
import { Option, type Command } from 'commander';
import { ControlClient, DEFAULT_SERVER_URL, type ExportInfo } from '../control/client.js';
import { formatSize } from '../util/size.js';
import { printJson, printLines, table } from './output.js';

interface ExportGlobals {
  server: string;
  json?: boolean;
}

export function registerExportCommands(program: Command): void {
  const exp = program
    .command('export')
    .description('list the NBD exports (one per LUN) and make them read-only or read-write')
    .addOption(new Option('--server <url>', 'control API of the running server').env('LUNRIG_SERVER').default(DEFAULT_SERVER_URL));

  const context = (cmd: Command) => {
    const opts = cmd.optsWithGlobals<ExportGlobals>();
    return { client: new ControlClient(opts.server), json: opts.json === true };
  };

  exp
    .command('list')
    .alias('ls')
    .description('list exports with their mode, size and NBD URIs')
    .action(async (_opts: unknown, cmd: Command) => {
      const { client, json } = context(cmd);
      const exports = await client.listExports();
      if (json) printJson({ exports });
      else printLines(exportTable(exports));
    });

  exp
    .command('set <name>')
    .description('make an export (its LUN) read-only or read-write; open connections see the change on their next write')
    .addOption(new Option('--read-only', 'refuse writes').conflicts('readWrite'))
    .addOption(new Option('--read-write', 'accept writes again'))
    .action(async (name: string, opts: { readOnly?: boolean; readWrite?: boolean }, cmd: Command) => {
      if (!opts.readOnly && !opts.readWrite) cmd.error('export set needs --read-only or --read-write', { exitCode: 2, code: 'lunrig.usage' });
      const { client, json } = context(cmd);
      const info = await client.setReadOnly(name, opts.readOnly === true);
      if (json) printJson(info);
      else printLines([`export ${info.name} is now ${info.readOnly ? 'read-only' : 'read-write'}`]);
    });
}

/** Exports as a table; an export reachable several ways gets one URI column each. */
export function exportTable(exports: readonly ExportInfo[]): string[] {
  if (exports.length === 0) return ['no exports'];
  const columns = Math.max(1, ...exports.map((e) => e.uris.length));
  const uriHeaders = columns === 1 ? ['URI'] : Array.from({ length: columns }, (_, i) => `URI ${i + 1}`);
  return table(
    ['NAME', 'SIZE', 'MODE', ...uriHeaders],
    exports.map((e) => [e.name, formatSize(e.size), e.readOnly ? 'ro' : 'rw', ...Array.from({ length: columns }, (_, i) => e.uris[i] ?? '-')]),
  );
}
