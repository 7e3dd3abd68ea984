import { createRoute } from '@hono/zod-openapi';
import type { ExportDtype } from '../../core/index.ts';
import { ExportRequestBody, ExportSummarySchema, RunIdParam } from '../schemas.ts';
import { errors, resource, security } from './openapi.ts';

/** POST /v1/runs/{id}/exports. */
export function exportRoutes() {
  const app = resource();

  app.openapi(
    createRoute({
      method: 'post',
      path: '/v1/runs/{id}/exports',
      summary: "write the run (at a committed seq) as a merged Hugging Face model, a delta package, or a LoRA run's PEFT adapter",
      description: "Synchronous: it must finish within the platform request limit. The output must be a new or empty location in the tenant's exports area.",
      security,
      request: { params: RunIdParam, body: { content: { 'application/json': { schema: ExportRequestBody } }, required: true } },
      responses: {
        201: { description: 'what was written', content: { 'application/json': { schema: ExportSummarySchema } } },
        ...errors(400, 401, 403, 404, 409, 413, 415, 422, 500),
      },
    }),
    async (c) => {
      const body = c.req.valid('json');
      const summary = await c.get('runs').export(c.req.valid('param').id, { ...body, dtype: body.dtype as ExportDtype });
      return c.json(summary, 201);
    },
  );

  return app;
}
