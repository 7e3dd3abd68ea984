import type { Command } from 'commander';
import { serveLocalDashboard } from '../../functions/dashboard/local.ts';
import { intArg } from '../args.ts';
import { runsFromEnv } from '../context.ts';

export function register(program: Command): void {
  program
    .command('dashboard')
    .description("serve the run dashboard of a store on 127.0.0.1 (no token; only this machine can reach it); prints its URL")
    .requiredOption('--store <url>', 'where runs live: a directory or s3://bucket/prefix')
    .option('--port <n>', 'port on 127.0.0.1 (0 picks a free one)', intArg(0), 8081)
    .action(async (o: { store: string; port: number }) => {
      const runs = await runsFromEnv(o.store, { access: 'read' });
      const dashboard = await serveLocalDashboard(runs, {
        port: o.port,
        logError: (err) => process.stderr.write(`dashboard: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`),
      });
      process.stdout.write(`dashboard of ${runs.store.url} at ${dashboard.url} (Ctrl-C stops it)\n`);
      const stop = () => void dashboard.close().then(() => process.exit(0));
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
}
