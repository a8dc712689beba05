/** `lunrig lun ...`: LUN provisioning through a running server's control API. */
import { Option, type Command } from 'commander';
import { ControlClient, DEFAULT_SERVER_URL } from '../control/client.js';
import { formatSize } from '../util/size.js';
import { hex2, lunDetail, lunTable, printJson, printLines } from './output.js';

interface LunGlobals {
  server: string;
  json?: boolean;
}

export function registerLunCommands(program: Command): void {
  const lun = program
    .command('lun')
    .description('create, list, inspect, grow and delete LUNs on a running server')
    .addOption(new Option('--server <url>', 'control API of the running server').env('LUNRIG_SERVER').default(DEFAULT_SERVER_URL));

  const context = (cmd: Command) => {
    const opts = cmd.optsWithGlobals<LunGlobals>();
    return { client: new ControlClient(opts.server), json: opts.json === true };
  };

  lun
    .command('create <name>')
    .description('create a sparse LUN')
    .requiredOption('--size <size>', "capacity: bytes or with a unit, e.g. 10G (a multiple of 512)")
    .option('--lss <LL>', 'open-systems LSS, hex 10..1f (default 10)')
    .option('--read-only', 'refuse writes to the LUN')
    .action(async (name: string, opts: { size: string; lss?: string; readOnly?: boolean }, cmd: Command) => {
      const { client, json } = context(cmd);
      const info = await client.createLun({ name, size: opts.size, ...(opts.lss !== undefined && { lss: opts.lss }), ...(opts.readOnly && { readOnly: true }) });
      if (json) printJson(info);
      else printLines([`created LUN ${info.name}: ${formatSize(info.size)}, LSS ${hex2(info.lss)} (${info.lssAddress}), volume id ${info.volumeId}${info.readOnly ? ', read-only' : ''}`]);
    });

  lun
    .command('list')
    .alias('ls')
    .description('list LUNs')
    .action(async (_opts: unknown, cmd: Command) => {
      const { client, json } = context(cmd);
      const luns = await client.listLuns();
      if (json) printJson({ luns });
      else printLines(lunTable(luns));
    });

  lun
    .command('info <name>')
    .description("describe a LUN, with the space it occupies")
    .action(async (name: string, _opts: unknown, cmd: Command) => {
      const { client, json } = context(cmd);
      const info = await client.lunInfo(name);
      if (json) printJson(info);
      else printLines(lunDetail(info));
    });

  lun
    .command('grow <name>')
    .description('grow a LUN to a new, larger size')
    .requiredOption('--size <size>', 'new capacity, e.g. 20G')
    .action(async (name: string, opts: { size: string }, cmd: Command) => {
      const { client, json } = context(cmd);
      const info = await client.growLun(name, opts.size);
      if (json) printJson(info);
      else printLines([`LUN ${info.name} is now ${formatSize(info.size)} (${info.size} bytes)`]);
    });

  lun
    .command('delete <name>')
    .alias('rm')
    .description('delete a LUN and its data')
    .action(async (name: string, _opts: unknown, cmd: Command) => {
      const { client, json } = context(cmd);
      await client.deleteLun(name);
      if (json) printJson({ deleted: name });
      else printLines([`deleted LUN ${name}`]);
    });
}
