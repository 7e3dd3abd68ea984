import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import { LisaError, type Runs } from '../../core/index.ts';
import { dashboardRoutes } from './routes.ts';

export class HostNotAllowedError extends LisaError {
  constructor(host: string | undefined, allowed: readonly string[]) {
    super('REQUEST_HOST_INVALID', `this dashboard answers only as ${allowed.join(' or ')}, not '${host ?? ''}'`, { host });
  }
}

export interface LocalDashboard {
  url: string;
  close(): Promise<void>;
}

/**
 * `lisa dashboard`: the dashboard of one store on 127.0.0.1, without sign-in, so only this machine
 * can reach it. Requests must name it as 127.0.0.1:port or localhost:port, which keeps a web page
 * from reading it through a DNS name rebound to 127.0.0.1.
 */
export async function serveLocalDashboard(runs: Runs, opts: { port: number; logError: (err: unknown) => void }): Promise<LocalDashboard> {
  let allowed: string[] = [];
  const app = new Hono();
  app.use('*', async (c, next) => {
    if (!allowed.includes(c.req.header('Host') ?? '')) throw new HostNotAllowedError(c.req.header('Host'), allowed);
    await next();
  });
  app.route('/', dashboardRoutes({ access: { runs }, logError: (err) => opts.logError(err) }));
  app.onError((err, c) => c.text(err instanceof LisaError ? `${err.code}: ${err.message}\n` : 'internal error\n', err instanceof HostNotAllowedError ? 403 : 500));
  app.notFound((c) => c.text(`ROUTE_NOT_FOUND: no route ${c.req.method} ${c.req.path}\n`, 404));
  const server = await new Promise<Server>((resolve, reject) => {
    const s = serve({ fetch: app.fetch, hostname: '127.0.0.1', port: opts.port }, () => resolve(s as Server)) as Server;
    s.once('error', reject);
  });
  const port = (server.address() as AddressInfo).port;
  allowed = [`127.0.0.1:${port}`, `localhost:${port}`];
  return {
    url: `http://127.0.0.1:${port}/`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
