import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ObjectStore } from '../../core/store/object-store.ts';
import { BACKENDS, harness, MODEL_DIR, type Harness, type Server } from './harness.ts';

describe.each(BACKENDS)('HTTP auth and tenants ($name store)', (backend) => {
  let h: Harness;
  let server: Server;
  let runId: string;
  beforeAll(async () => {
    h = await harness(backend);
    // a store that fails like a bug would, for one run id only
    const exploding = (s: ObjectStore): ObjectStore =>
      new Proxy(s, {
        get(target, prop, receiver) {
          if (prop === 'get') {
            return (key: string, range?: { offset: number; length: number }) => {
              if (key.includes('/runs/kaboom/')) throw new TypeError('disk on fire under /srv/secret');
              return target.get(key, range);
            };
          }
          return Reflect.get(target, prop, receiver);
        },
      });
    server = await h.start({ wrapStore: exploding });
    const created = await h.createRun(server);
    expect(created.status, created.text).toBe(201);
    runId = created.json.id;
  });
  afterAll(() => h.close());

  it('answers 401 with WWW-Authenticate without a valid token, on every /v1 route', async () => {
    const routes: Array<[string, string]> = [
      ['POST', '/v1/runs'],
      ['GET', `/v1/runs/${runId}`],
      ['POST', `/v1/runs/${runId}/chunks`],
      ['GET', `/v1/runs/${runId}/chunks`],
      ['POST', `/v1/runs/${runId}/exports`],
      ['POST', '/v1/compositions'],
    ];
    for (const [method, path] of routes) {
      const body = method === 'POST' ? {} : undefined;
      const none = await h.request(server, method, path, { token: null, body });
      expect([none.status, none.json.error.code, none.headers.get('www-authenticate')]).toEqual([401, 'AUTH_TOKEN_MISSING', 'Bearer realm="lisa"']);
      const wrong = await h.request(server, method, path, { token: `${h.tokens.alpha.slice(0, -1)}x`, body });
      expect([wrong.status, wrong.headers.get('www-authenticate')]).toEqual([401, 'Bearer realm="lisa", error="invalid_token"']);
      const basic = await h.request(server, method, path, { token: null, headers: { authorization: `Basic ${Buffer.from(`alpha:${h.tokens.alpha}`).toString('base64')}` } });
      expect(basic.status).toBe(401);
    }
    expect(await h.seqs(runId)).toEqual([]);
  });

  it("hides a tenant's runs from other tenants: 404, not 403", async () => {
    const beta = h.tokens.beta;
    const get = await h.request(server, 'GET', `/v1/runs/${runId}`, { token: beta });
    expect([get.status, get.json.error.code]).toEqual([404, 'RUN_NOT_FOUND']);
    const chunk = await h.request(server, 'POST', `/v1/runs/${runId}/chunks`, { token: beta, headers: { 'idempotency-key': 'k1' } });
    expect([chunk.status, chunk.json.error.code]).toEqual([404, 'RUN_NOT_FOUND']);
    const list = await h.request(server, 'GET', `/v1/runs/${runId}/chunks`, { token: beta });
    expect(list.status).toBe(404);
    const exp = await h.request(server, 'POST', `/v1/runs/${runId}/exports`, { token: beta, body: { out: h.out('beta-export', 'beta') } });
    expect(exp.status).toBe(404);
    const comp = await h.request(server, 'POST', '/v1/compositions', {
      token: beta,
      body: { base: MODEL_DIR, runs: [{ id: runId }], method: 'linear', out: h.out('beta-composed', 'beta') },
    });
    expect([comp.status, comp.json.error.code]).toEqual([404, 'RUN_NOT_FOUND']);
    // nothing was written for the run under beta's prefix (no idempotency record either)
    expect(await h.root.list('tenants/beta/runs/')).toEqual([]);
    expect((await h.request(server, 'GET', `/v1/runs/${runId}`)).status).toBe(200);

    // beta's own run with the same config lives under beta's prefix
    const own = await h.createRun(server, {}, beta);
    expect(own.status).toBe(201);
    expect((await h.root.list(`tenants/beta/runs/${own.json.id}/`))).toEqual([`tenants/beta/runs/${own.json.id}/run.json`]);
    expect((await h.request(server, 'GET', `/v1/runs/${own.json.id}`)).status).toBe(404);
  });

  it('accepts the token in X-Lisa-Token for gateways that own Authorization', async () => {
    const r = await h.request(server, 'GET', `/v1/runs/${runId}`, { token: null, headers: { authorization: 'Bearer rp_platform_key', 'x-lisa-token': h.tokens.alpha } });
    expect(r.status).toBe(200);
  });

  it('leaves health, readiness, metrics and the OpenAPI document open', async () => {
    for (const path of ['/healthz', '/ping', '/metrics', '/openapi.json']) {
      expect((await h.request(server, 'GET', path, { token: null })).status).toBe(200);
    }
    const nf = await h.request(server, 'GET', '/nope', { token: null });
    expect([nf.status, nf.json.error.code]).toEqual([404, 'ROUTE_NOT_FOUND']);
  });

  it('answers an unexpected failure with 500, a request id and no internals', async () => {
    const r = await h.request(server, 'GET', '/v1/runs/kaboom', { headers: { 'x-request-id': 'req-abc-123' } });
    expect(r.status).toBe(500);
    expect(r.json).toEqual({
      error: { code: 'INTERNAL', message: 'internal error; the server log has the details under request id req-abc-123', requestId: 'req-abc-123' },
    });
    expect(r.headers.get('x-request-id')).toBe('req-abc-123');
    const logged = h.logs.filter((l) => l.includes('req-abc-123') && l.includes('disk on fire'));
    expect(logged).toHaveLength(1);
    expect(JSON.parse(logged[0])).toMatchObject({ level: 50, reqId: 'req-abc-123', err: { type: 'TypeError', message: 'disk on fire under /srv/secret' } });
    expect((await h.request(server, 'GET', '/healthz')).status).toBe(200);
  });

  it('never writes a token to the logs, and logs every API request with its id', async () => {
    expect(h.logs.length).toBeGreaterThan(10);
    const all = h.logs.join('');
    expect(all).not.toContain(h.tokens.alpha);
    expect(all).not.toContain(h.tokens.beta);
    expect(all).not.toContain('rp_platform_key');
    const requests = h.logs.map((l) => JSON.parse(l)).filter((l) => l.msg === 'request');
    expect(requests.every((l) => typeof l.reqId === 'string' && l.reqId.length > 0)).toBe(true);
    expect(requests.some((l) => l.status === 401 && l.path === '/v1/runs')).toBe(true);
  });

  it('rejects an over-long or non-ASCII token as invalid, not as a server error', async () => {
    for (const token of ['x'.repeat(10_000), 'tökén']) {
      const r = await h.request(server, 'GET', `/v1/runs/${runId}`, { token: null, headers: { 'x-lisa-token': encodeURIComponent(token) } });
      expect([r.status, r.json.error.code]).toEqual([401, 'AUTH_TOKEN_INVALID']);
    }
  });
});
