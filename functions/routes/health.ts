import { createRoute, z } from '@hono/zod-openapi';
import type { RouteDeps } from '../context.ts';
import { HealthSchema } from '../schemas.ts';
import { resource } from './openapi.ts';

/** GET /healthz (liveness), /ping (readiness), /metrics: no token needed. */
export function healthRoutes(deps: Pick<RouteDeps, 'chunks' | 'isReady' | 'metrics'>) {
  const app = resource();

  app.openapi(
    createRoute({
      method: 'get',
      path: '/healthz',
      summary: 'liveness: 200 while the process serves requests',
      responses: { 200: { description: 'alive', content: { 'application/json': { schema: HealthSchema } } } },
    }),
    (c) => c.json({ status: 'ok' as const, ready: deps.isReady(), draining: deps.chunks.isDraining, chunksInFlight: deps.chunks.chunksInFlight }, 200),
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/ping',
      summary: 'load-balancer readiness (RunPod): 200 ready, 204 initializing, 503 draining',
      responses: {
        200: { description: 'ready', content: { 'application/json': { schema: z.object({ status: z.literal('healthy') }) } } },
        204: { description: 'initializing' },
        503: { description: 'shutting down', content: { 'application/json': { schema: z.object({ status: z.literal('draining') }) } } },
      },
    }),
    (c) => {
      if (deps.chunks.isDraining) return c.json({ status: 'draining' as const }, 503);
      if (!deps.isReady()) return c.body(null, 204);
      return c.json({ status: 'healthy' as const }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/metrics',
      summary: 'Prometheus metrics',
      responses: { 200: { description: 'text exposition format', content: { 'text/plain': { schema: z.string() } } } },
    }),
    async (c) => c.text(await deps.metrics.registry.metrics(), 200, { 'Content-Type': deps.metrics.registry.contentType }),
  );

  return app;
}
