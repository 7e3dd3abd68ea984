import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BACKENDS, harness, type Harness, type Server } from './harness.ts';

/**
 * No OpenAPI validator is installed, so the document is checked structurally: version, every
 * route with its methods, request/response schemas present, every $ref resolving, and the run
 * config schema carrying core's fields and defaults (one schema source).
 */
describe('OpenAPI document', () => {
  let h: Harness;
  let server: Server;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  let doc: any;
  beforeAll(async () => {
    h = await harness(BACKENDS[0]);
    server = await h.start();
    const r = await h.request(server, 'GET', '/openapi.json', { token: null });
    expect(r.status).toBe(200);
    doc = r.json;
  });
  afterAll(() => h.close());

  const routes: Array<[string, string, number]> = [
    ['/v1/runs', 'post', 201],
    ['/v1/runs/{id}', 'get', 200],
    ['/v1/runs/{id}/chunks', 'post', 201],
    ['/v1/runs/{id}/chunks', 'get', 200],
    ['/v1/runs/{id}/exports', 'post', 201],
    ['/v1/compositions', 'post', 201],
    ['/healthz', 'get', 200],
    ['/ping', 'get', 200],
    ['/metrics', 'get', 200],
  ];

  it('is OpenAPI 3.1 with exactly the served routes', () => {
    expect(doc.openapi).toBe('3.1.0');
    expect(doc.info).toMatchObject({ title: 'lisa-fn', version: '1' });
    const served = Object.entries(doc.paths).flatMap(([p, ops]) => Object.keys(ops as object).map((m) => `${m} ${p}`));
    expect(served.sort()).toEqual(routes.map(([p, m]) => `${m} ${p}`).sort());
  });

  it('documents a success schema for every route, errors and bearer auth for every /v1 route', () => {
    for (const [path, method, ok] of routes) {
      const op = doc.paths[path][method];
      const content = op.responses[String(ok)].content;
      const schema = (content['application/json'] ?? content['text/plain']).schema;
      expect(schema, `${method} ${path}`).toBeTruthy();
      if (!path.startsWith('/v1/')) continue;
      expect(op.security, `${method} ${path}`).toEqual([{ bearer: [] }]);
      for (const status of ['400', '401', '500']) {
        expect(op.responses[status].content['application/json'].schema, `${method} ${path} ${status}`).toEqual({ $ref: '#/components/schemas/Error' });
      }
      if (method === 'post' && path !== '/v1/runs/{id}/chunks') expect(op.requestBody.required, `${method} ${path}`).toBe(true);
      if (path.includes('{id}')) expect(op.parameters.find((p: { in: string; name: string }) => p.in === 'path').name).toBe('id');
    }
    expect(doc.components.securitySchemes.bearer).toMatchObject({ type: 'http', scheme: 'bearer' });
    expect(doc.paths['/v1/runs/{id}/chunks'].post.parameters.map((p: { name: string }) => p.name)).toContain('idempotency-key');
  });

  it('resolves every $ref', () => {
    const refs: string[] = [];
    const walk = (v: unknown): void => {
      if (Array.isArray(v)) v.forEach(walk);
      else if (v && typeof v === 'object') {
        for (const [k, x] of Object.entries(v)) {
          if (k === '$ref') refs.push(x as string);
          else walk(x);
        }
      }
    };
    walk(doc);
    expect(refs.length).toBeGreaterThan(20);
    for (const ref of new Set(refs)) {
      const [, , , name] = ref.split('/');
      expect(ref.startsWith('#/components/schemas/') && doc.components.schemas[name], ref).toBeTruthy();
    }
  });

  it("takes run creation's body from core's RunConfigSchema, defaults included", () => {
    const body = doc.paths['/v1/runs'].post.requestBody.content['application/json'].schema;
    expect(body).toEqual({ $ref: '#/components/schemas/RunConfig' });
    const cfg = doc.components.schemas.RunConfig;
    expect(cfg.required.sort()).toEqual(['base', 'data']);
    expect(cfg.additionalProperties).toBe(false);
    expect(cfg.properties.period).toMatchObject({ type: 'integer', default: 10, exclusiveMinimum: 0 });
    expect(cfg.properties.method).toMatchObject({ enum: ['lisa', 'lora', 'full'], default: 'lisa' });
    // a method's own options get their defaults only on runs of that method
    expect(cfg.properties.embedHead).toEqual({ type: 'string', enum: ['always', 'never', 'sampled'], description: 'lisa: when embed and head train (default always)' });
    expect(cfg.properties.loraRank).toMatchObject({ type: 'integer', description: 'lora: rank r of every adapter (default 8)' });
    expect(Object.keys(cfg.properties)).toContain('maxCostUsd');
    const summary = doc.components.schemas.ChunkSummary;
    expect(summary.required).toEqual(expect.arrayContaining(['seq', 'startStep', 'globalStep', 'costUsd', 'totals']));
  });
});
