/**
 * The `lunrig` command line. Exit codes: 0 ok, 1 the server or array refused
 * or could not be reached (one line on stderr: `lunrig: CODE: message`),
 * 2 the command line is wrong.
 */
import { Command, CommanderError } from 'commander';
import { VERSION } from '../version.js';
import { registerExportCommands } from './commands-export.js';
import { registerFlashCopyCommands } from './commands-flashcopy.js';
import { registerLunCommands } from './commands-lun.js';
import { registerHostCommands } from './commands-host.js';
import { registerMultipathCommands } from './commands-mp.js';
import { registerPprcCommands } from './commands-pprc.js';
import { registerServeCommand } from './commands-serve.js';
import { runEss } from './commands-ess.js';
import { registerTaskCommands } from './commands-task.js';
import { EXIT_FAILED, EXIT_OK, EXIT_USAGE, failureLine, usageLine } from './exit.js';

export function buildProgram(): Command {
  const program = new Command('lunrig')
    .description('a storage-array emulator: sparse-file LUNs served over NBD, with a control API')
    .version(VERSION, '-V, --version')
    .option('--json', 'machine-readable output: one JSON document on stdout')
    .showSuggestionAfterError(true)
    // Subcommands inherit these two (they are set before the subcommands are added):
    // commander throws instead of exiting, and its messages leave as our one line in runCli.
    .exitOverride()
    .configureOutput({ outputError: () => undefined });
  registerServeCommand(program);
  registerLunCommands(program);
  registerFlashCopyCommands(program);
  registerPprcCommands(program);
  registerExportCommands(program);
  registerHostCommands(program);
  registerMultipathCommands(program);
  registerTaskCommands(program);
  program.addHelpText('after', '\nESS Copy Services CLI (its own arguments and return codes): lunrig ess rsExecuteTask | rsQuery | rsQueryComplete | rsList2105s | rsTestConnection');
  return program;
}

/** Run a command to completion (for `serve`: until it has shut down) and return the exit code. */
export async function runCli(argv: readonly string[]): Promise<number> {
  // The ESS CLI shim keeps the ESS's own argument style and return codes (spec §4.4).
  if (argv[2] === 'ess') return runEss(argv.slice(3));
  try {
    await buildProgram().parseAsync([...argv]);
    return EXIT_OK;
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.exitCode === 0) return EXIT_OK; // --help, --version
      // A command group run without a subcommand has already printed its help.
      if (err.code !== 'commander.help') process.stderr.write(`${usageLine(err.message)}\n`);
      return EXIT_USAGE;
    }
    process.stderr.write(`${failureLine(err)}\n`);
    return EXIT_FAILED;
  }
}
