import { createRoute } from '@hono/zod-openapi';
import type { ExportDtype, MergeMethod } from '../../core/index.ts';
import { CompositionRequestBody, CompositionSummarySchema } from '../schemas.ts';
import { errors, resource, security } from './openapi.ts';

/** POST /v1/compositions. */
export function compositionRoutes() {
  const app = resource();

  app.openapi(
    createRoute({
      method: 'post',
      path: '/v1/compositions',
      summary: "merge several of the tenant's runs on one base (linear, task arithmetic, TIES, DARE) into a model",
      description: "Synchronous: it must finish within the platform request limit. The output must be a new or empty location in the tenant's exports area.",
      security,
      request: { body: { content: { 'application/json': { schema: CompositionRequestBody } }, required: true } },
      responses: {
        201: { description: 'what was written', content: { 'application/json': { schema: CompositionSummarySchema } } },
        ...errors(400, 401, 403, 404, 409, 413, 415, 422, 500),
      },
    }),
    async (c) => {
      const body = c.req.valid('json');
      const summary = await c.get('runs').compose({
        ...body,
        runs: body.runs.map((r) => ({ runId: r.id, weight: r.weight, at: r.at })),
        method: body.method as MergeMethod,
        dtype: body.dtype as ExportDtype,
      });
      return c.json(summary, 201);
    },
  );

  return app;
}
