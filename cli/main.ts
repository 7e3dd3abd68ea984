import { Command, CommanderError } from 'commander';
import { LisaError } from '../core/errors.ts';
import { commands } from './commands/index.ts';

const program = new Command('lisa')
  .description('LISA fine-tuning as short, resumable function calls')
  .option('--verbose', 'print stack traces for errors')
  .showHelpAfterError()
  .exitOverride();

for (const register of commands) register(program);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  process.exitCode = reportError(err, program.opts<{ verbose?: boolean }>().verbose ?? process.argv.includes('--verbose'));
}

/** Known errors print as `error CODE: message`; anything else is a bug and keeps its stack. */
function reportError(err: unknown, verbose: boolean): number {
  if (err instanceof CommanderError) return err.exitCode;
  if (err instanceof LisaError) {
    process.stderr.write(`error ${err.code}: ${err.message}\n`);
    if (verbose && err.stack) process.stderr.write(`${err.stack}\n`);
    return 1;
  }
  process.stderr.write(`${err instanceof Error && err.stack ? err.stack : String(err)}\n`);
  return 70;
}
