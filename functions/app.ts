import { randomBytes } from 'node:crypto';
import { OpenAPIHono } from '@hono/zod-openapi';
import { bodyLimit } from 'hono/body-limit';
import { requestId } from 'hono/request-id';
import { ChunkRunner } from './chunks.ts';
import type { AppDeps, Env } from './context.ts';
import { dashboardRoutes } from './dashboard/routes.ts';
import { Sessions } from './dashboard/session.ts';
import { InvalidRequestError } from './errors.ts';
import { bearerAuth, TOKEN_HEADER } from './middleware/auth.ts';
import { errorHandler, notFound } from './middleware/errors.ts';
import { tenantRuns } from './middleware/refs.ts';
import { requestLog } from './middleware/request-log.ts';
import { chunkRoutes } from './routes/chunks.ts';
import { compositionRoutes } from './routes/compositions.ts';
import { exportRoutes } from './routes/exports.ts';
import { healthRoutes } from './routes/health.ts';
import { runRoutes } from './routes/runs.ts';

export type { AppDeps } from './context.ts';
export { TOKEN_HEADER } from './middleware/auth.ts';

export interface LisaApp {
  app: OpenAPIHono<Env>;
  chunks: ChunkRunner;
}

const MAX_BODY_BYTES = 64 * 1024;

/**
 * The HTTP function: request ids and logs for every request; on /v1 a body limit, bearer auth and
 * the tenant's runs with its ref policy; then the routes by resource; errors mapped by kind. The
 * dashboard's pages (functions/dashboard/) are served at / and /runs/{id} behind their own sign-in.
 */
export function createApp(deps: AppDeps): LisaApp {
  const chunks = new ChunkRunner({ pricing: deps.pricing, limits: deps.limits, clock: deps.clock, metrics: deps.metrics });
  const app = new OpenAPIHono<Env>();
  app.openAPIRegistry.registerComponent('securitySchemes', 'bearer', {
    type: 'http',
    scheme: 'bearer',
    description: `a tenant token (lisa token hash); may also be sent as ${TOKEN_HEADER} when a gateway owns Authorization`,
  });

  app.use(requestId());
  app.use(requestLog(deps));
  app.use('/v1/*', bodyLimit({ maxSize: MAX_BODY_BYTES, onError: () => { throw new InvalidRequestError('REQUEST_TOO_LARGE', `request body over ${MAX_BODY_BYTES} bytes`); } }));
  app.use('/v1/*', bearerAuth(deps.tokens));
  app.use('/v1/*', tenantRuns(deps));
  app.onError(errorHandler(deps));
  app.notFound(notFound);

  const routeDeps = { ...deps, chunks };
  app.route('/', runRoutes());
  app.route('/', chunkRoutes(routeDeps));
  app.route('/', exportRoutes());
  app.route('/', compositionRoutes());
  app.route('/', healthRoutes(routeDeps));
  const sessions = new Sessions(deps.tokens, deps.sessionKey ?? randomBytes(32), deps.clock);
  app.route(
    '/',
    dashboardRoutes({
      access: { sessions, runsOf: (tenant) => deps.runs.forTenant(tenant, deps.refPrefixes) },
      logError: (err, c) => (c.get('log') ?? deps.logger).error({ err, reqId: c.get('requestId') }, 'dashboard page failed'),
    }),
  );

  app.doc31('/openapi.json', {
    openapi: '3.1.0',
    info: { title: 'lisa-fn', version: '1', description: 'LISA fine-tuning as short, resumable function calls' },
  });

  return { app, chunks };
}
