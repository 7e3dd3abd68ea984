import { Command } from 'commander';
import { commands } from './commands/index.ts';
import { reportError } from './errors.ts';

const program = new Command('lisa')
  .description('LISA fine-tuning as short, resumable function calls')
  .option('--verbose', 'print stack traces for errors')
  .showHelpAfterError()
  .exitOverride();

for (const register of commands) register(program);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  const verbose = program.opts<{ verbose?: boolean }>().verbose ?? process.argv.includes('--verbose');
  process.exitCode = reportError(err, verbose, (text) => process.stderr.write(text));
}
