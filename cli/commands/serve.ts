import type { Command } from 'commander';
import { configFromEnv } from '../../functions/config.ts';
import { runServer } from '../../functions/server.ts';
import { intArg } from '../args.ts';

interface ServeOptions {
  store?: string;
  port?: number;
  host?: string;
}

export function register(program: Command): void {
  program
    .command('serve')
    .description('serve the HTTP API: runs, chunks, metrics (env vars: docs/deploy.md)')
    .option('--store <url>', 'where runs live: a directory or s3://bucket/prefix (default $LISA_STORE)')
    .option('--port <n>', 'port to listen on (default $PORT or 8080; 0 picks a free one)', intArg(0))
    .option('--host <address>', 'address to bind (default $HOST or 127.0.0.1; 0.0.0.0 in containers)')
    .action(async (o: ServeOptions) => {
      // the server keeps the process alive; SIGTERM/SIGINT stop it gracefully
      await runServer(await configFromEnv(process.env, o), process.env);
    });
}
