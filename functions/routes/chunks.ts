import { createRoute, z } from '@hono/zod-openapi';
import { checkIdempotencyKey, chunkSummary } from '../../core/index.ts';
import type { RouteDeps } from '../context.ts';
import { NotReadyError } from '../errors.ts';
import { ChunkListQuery, ChunkListSchema, ChunkRequestSchema, ChunkSummarySchema, RunIdParam } from '../schemas.ts';
import { errors, resource, security } from './openapi.ts';

/** POST /v1/runs/{id}/chunks (train one), GET /v1/runs/{id}/chunks (the chain). */
export function chunkRoutes(deps: Pick<RouteDeps, 'chunks' | 'clock' | 'isReady'>) {
  const app = resource();

  app.openapi(
    createRoute({
      method: 'post',
      path: '/v1/runs/{id}/chunks',
      summary: 'train one chunk (the rest of the current LISA period) synchronously and commit it',
      description:
        'Honours deadlineSeconds, capped by the platform limit minus a safety margin. With an Idempotency-Key, a retry returns the ' +
        'first result and trains nothing (Idempotent-Replayed: true); while the first is still running, a retry on the same ' +
        'instance waits for it and one on another instance gets 409 IDEMPOTENCY_IN_PROGRESS with Retry-After.',
      security,
      request: {
        params: RunIdParam,
        headers: z.object({ 'idempotency-key': z.string().optional().openapi({ description: '1-255 visible ASCII characters' }) }),
        body: { content: { 'application/json': { schema: ChunkRequestSchema } }, required: false },
      },
      responses: {
        201: { description: 'the committed chunk', content: { 'application/json': { schema: ChunkSummarySchema } } },
        ...errors(400, 401, 402, 404, 409, 413, 415, 422, 500, 503),
      },
    }),
    async (c) => {
      const arrival = deps.clock();
      const { id } = c.req.valid('param');
      const body = c.req.valid('json') ?? {};
      const key = c.req.header('Idempotency-Key');
      if (key !== undefined) checkIdempotencyKey(key);
      if (!deps.isReady()) throw new NotReadyError();
      const result = await deps.chunks.handle({
        tenant: c.get('tenant'),
        runs: c.get('runs'),
        runId: id,
        deadlineSeconds: body.deadlineSeconds,
        idempotencyKey: key,
        arrival,
        log: c.get('log'),
      });
      if (result.replayed) c.header('Idempotent-Replayed', 'true');
      return c.json(result.body, 201);
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/v1/runs/{id}/chunks',
      summary: 'committed chunks of a run, oldest first, paged by seq',
      security,
      request: { params: RunIdParam, query: ChunkListQuery },
      responses: {
        200: { description: 'chunk summaries', content: { 'application/json': { schema: ChunkListSchema } } },
        ...errors(400, 401, 404, 500),
      },
    }),
    async (c) => {
      const { chunks, next } = await c.get('runs').chunks(c.req.valid('param').id, c.req.valid('query'));
      return c.json({ chunks: chunks.map(chunkSummary), next }, 200);
    },
  );

  return app;
}
