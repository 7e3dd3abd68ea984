import { Command } from 'commander';
import { numberArg } from '../args.ts';
import { runsFromEnv } from '../context.ts';

export function register(program: Command): void {
  program
    .command('gc')
    .description('delete unit objects that no committed manifest references, and what crashed writes left behind')
    .requiredOption('--store <url>', 'where runs live: a directory or s3://bucket/prefix')
    .requiredOption('--run <id>', 'run id')
    .option('--grace <seconds>', 'keep unreferenced objects of uncommitted seqs younger than this', numberArg(0), 3600)
    .option('--json', 'print the result as JSON')
    .action(async (o: { store: string; run: string; grace: number; json?: boolean }) => {
      const result = await (await runsFromEnv(o.store)).gc(o.run, { graceSeconds: o.grace });
      if (o.json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
      else {
        for (const key of result.deleted) process.stdout.write(`deleted ${key}\n`);
        for (const what of result.swept) process.stdout.write(`removed ${what}\n`);
        process.stdout.write(
          `${result.deleted.length} deleted, ${result.referenced} referenced kept, ${result.pending.length} pending (younger than ${o.grace} s), ${result.swept.length} left-overs of crashed writes removed\n`,
        );
      }
    });
}
