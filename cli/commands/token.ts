import type { Command } from 'commander';
import { newToken } from '../../functions/auth.ts';

export function register(program: Command): void {
  const token = program.command('token').description('bearer tokens of the HTTP API');
  token
    .command('hash')
    .description('generate a random token for a tenant and print it with its LISA_TOKENS entry')
    .requiredOption('--tenant <name>', "tenant the token belongs to; its runs live under tenants/<name>/ of the store")
    .action((o: { tenant: string }) => {
      const { token: secret, line } = newToken(o.tenant);
      process.stdout.write(
        `# token for tenant '${o.tenant}': give it to the client; it is shown once and stored nowhere\n${secret}\n` +
          `# server entry for LISA_TOKENS (comma-separated) or a line of LISA_TOKENS_FILE\n${line}\n`,
      );
    });
}
