import { createRoute } from '@hono/zod-openapi';
import { RunConfigBody, RunIdParam, RunSpecSchema, RunStatusSchema } from '../schemas.ts';
import { errors, resource, security } from './openapi.ts';

/** POST /v1/runs, GET /v1/runs/{id}. */
export function runRoutes() {
  const app = resource();

  app.openapi(
    createRoute({
      method: 'post',
      path: '/v1/runs',
      summary: 'create a run: validates the config, the base and the data, then claims a run id',
      security,
      request: { body: { content: { 'application/json': { schema: RunConfigBody } }, required: true } },
      responses: {
        201: { description: 'the stored run spec', content: { 'application/json': { schema: RunSpecSchema } } },
        ...errors(400, 401, 403, 409, 413, 415, 422, 500),
      },
    }),
    async (c) => {
      const spec = await c.get('runs').create(c.req.valid('json'));
      c.header('Location', `/v1/runs/${spec.id}`);
      return c.json(spec, 201);
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/v1/runs/{id}',
      summary: 'a run: its spec, latest chunk and running totals',
      security,
      request: { params: RunIdParam },
      responses: {
        200: { description: 'run status', content: { 'application/json': { schema: RunStatusSchema } } },
        ...errors(400, 401, 404, 500),
      },
    }),
    async (c) => c.json(await c.get('runs').status(c.req.valid('param').id), 200),
  );

  return app;
}
