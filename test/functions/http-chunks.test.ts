import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readManifest } from '../../core/store/manifest.ts';
import { PrefixedStore } from '../../core/store/prefixed.ts';
import { ChunkRunner } from '../../functions/chunks.ts';
import { createMetrics } from '../../functions/metrics.ts';
import { Registry } from 'prom-client';
import { BACKENDS, harness, MODEL_DIR, type Harness, type Response, type Server } from './harness.ts';

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const t0 = Date.now();
  while (!(await check())) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('chunk deadline', () => {
  const runner = (platformTimeoutSeconds: number | null, safetyMarginSeconds: number): ChunkRunner =>
    new ChunkRunner({
      pricing: { usdPerHour: 0 },
      limits: { platformTimeoutSeconds, safetyMarginSeconds },
      clock: Date.now,
      metrics: createMetrics(new Registry()),
    });
  it('is min(requested, platform limit - margin), or whichever exists', () => {
    expect(runner(330, 30).chunkSeconds(100)).toBe(100);
    expect(runner(330, 30).chunkSeconds(1000)).toBe(300);
    expect(runner(330, 30).chunkSeconds(undefined)).toBe(300);
    expect(runner(null, 30).chunkSeconds(1000)).toBe(1000);
    expect(runner(null, 30).chunkSeconds(undefined)).toBeUndefined();
  });
});

describe.each(BACKENDS)('HTTP chunks ($name store)', (backend) => {
  let h: Harness;
  let a: Server;
  let b: Server;
  const run = async (server: Server, config: Record<string, unknown> = {}): Promise<string> => {
    const r = await h.createRun(server, config);
    expect(r.status, r.text).toBe(201);
    return r.json.id;
  };
  const chunk = (server: Server, id: string, opts: { key?: string; body?: unknown } = {}): Promise<Response> =>
    h.request(server, 'POST', `/v1/runs/${id}/chunks`, { body: opts.body, headers: opts.key ? { 'idempotency-key': opts.key } : {} });
  const healthy = async (server: Server): Promise<void> => {
    const r = await h.request(server, 'GET', '/healthz', { token: null });
    expect([r.status, r.json.status]).toEqual([200, 'ok']);
  };
  /** the run's chain as stored: each manifest continues exactly where its parent stopped */
  const expectLinearChain = async (id: string, n: number): Promise<void> => {
    expect(await h.seqs(id)).toEqual([...Array(n).keys()]);
    const store = new PrefixedStore(h.root, 'tenants/alpha/');
    let step = 0;
    for (let seq = 0; seq < n; seq++) {
      const m = await readManifest(store, id, seq);
      expect([m.seq, m.startStep]).toEqual([seq, step]);
      expect(m.globalStep).toBeGreaterThan(m.startStep);
      step = m.globalStep;
    }
  };

  beforeAll(async () => {
    h = await harness(backend);
    a = await h.start();
    b = await h.start();
  });
  afterAll(() => h.close());

  it('an idempotent retry returns the first result and trains nothing', async () => {
    const id = await run(a);
    const first = await chunk(a, id, { key: 'retry-1', body: { deadlineSeconds: 300 } });
    expect(first.status, first.text).toBe(201);
    expect(first.headers.get('idempotent-replayed')).toBeNull();
    for (const server of [a, b]) {
      const again = await chunk(server, id, { key: 'retry-1', body: { deadlineSeconds: 300 } });
      expect(again.status).toBe(201);
      expect(again.headers.get('idempotent-replayed')).toBe('true');
      expect(again.json).toEqual(first.json);
    }
    expect(await h.seqs(id)).toEqual([0]);

    const reused = await chunk(a, id, { key: 'retry-1', body: { deadlineSeconds: 301 } });
    expect([reused.status, reused.json.error.code]).toEqual([422, 'IDEMPOTENCY_KEY_REUSED']);
    const fresh = await chunk(a, id, { key: 'retry-2' });
    expect([fresh.status, fresh.json.seq]).toEqual([201, 1]);

    // two copies of one request at once on one instance: one chunk, the same answer twice
    const [x, y] = await Promise.all([chunk(a, id, { key: 'dup' }), chunk(a, id, { key: 'dup' })]);
    expect([x.status, y.status]).toEqual([201, 201]);
    expect(x.json).toEqual(y.json);
    expect(x.json.seq).toBe(2);
    await expectLinearChain(id, 3);
    await healthy(a);
  });

  it('a retry on another instance while the first still runs gets 409 IDEMPOTENCY_IN_PROGRESS, then the result', async () => {
    const id = await run(b);
    h.gate.armed = true;
    const pending = chunk(a, id, { key: 'slow' });
    await until('the claim', async () => (await h.root.list(`tenants/alpha/runs/${id}/idempotency/`)).length > 0);
    const busy = await chunk(b, id, { key: 'slow' });
    expect([busy.status, busy.json.error.code]).toEqual([409, 'IDEMPOTENCY_IN_PROGRESS']);
    expect(Number(busy.headers.get('retry-after'))).toBeGreaterThan(0);
    h.gate.release();
    const done = await pending;
    expect(done.status, done.text).toBe(201);
    const replay = await chunk(b, id, { key: 'slow' });
    expect([replay.status, replay.headers.get('idempotent-replayed')]).toEqual([201, 'true']);
    expect(replay.json).toEqual(done.json);
    expect(await h.seqs(id)).toEqual([0]);
  });

  it('8 concurrent chunk requests on one instance leave a linear, gap-free chain', async () => {
    const id = await run(a);
    const responses = await Promise.all(Array.from({ length: 8 }, () => chunk(a, id)));
    expect(responses.map((r) => r.status)).toEqual(Array(8).fill(201));
    expect(responses.map((r) => r.json.seq).sort((p, q) => p - q)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    await expectLinearChain(id, 8);
    await healthy(a);
  });

  it('racing instances: losers get 409 CHUNK_CONFLICT naming the winning seq; the chain stays linear', async () => {
    const id = await run(a);
    const responses = await Promise.all(Array.from({ length: 8 }, (_, i) => chunk(i % 2 ? b : a, id)));
    const won = responses.filter((r) => r.status === 201);
    const lost = responses.filter((r) => r.status !== 201);
    for (const r of lost) {
      expect([r.status, r.json.error.code]).toEqual([409, 'CHUNK_CONFLICT']);
      expect(r.json.error.details.runId).toBe(id);
      expect(won.map((w) => w.json.seq)).toContain(r.json.error.details.winningSeq);
    }
    expect(won.length).toBeGreaterThanOrEqual(4);
    await expectLinearChain(id, won.length);
    await healthy(a);
    await healthy(b);
  });

  it('over budget: 402 with the amount spent, and nothing trained', async () => {
    const pricey = await h.start({ pricing: { usdPerHour: 36_000 } });
    const id = await run(pricey, { maxCostUsd: 0.001 });
    const first = await chunk(pricey, id);
    expect(first.status).toBe(201);
    expect(first.json.costUsd).toBeGreaterThan(0.001);
    const over = await chunk(pricey, id);
    expect(over.status).toBe(402);
    expect(over.json.error).toMatchObject({ code: 'BUDGET_EXCEEDED', details: { runId: id, spentUsd: first.json.totals.costUsd, maxCostUsd: 0.001 } });
    expect(over.json.error.message).toContain(`$${first.json.totals.costUsd.toFixed(4)}`);
    expect(await h.seqs(id)).toEqual([0]);
    const status = await h.request(pricey, 'GET', `/v1/runs/${id}`);
    expect(status.json.totals.costUsd).toBe(first.json.totals.costUsd);
    // the engine decides what is billed as accelerator time: wasm is not an accelerator
    expect(first.json.seconds.accelerator).toBe(0);
    await healthy(pricey);
  });

  it('a deadline too short for a step and the commit is 422, and the platform limit caps the request', async () => {
    const id = await run(a);
    const short = await chunk(a, id, { body: { deadlineSeconds: 0.5 } });
    expect([short.status, short.json.error.code]).toEqual([422, 'DEADLINE_TOO_SHORT']);
    // 60 s asked, but the platform allows 20 - 10 = 10 s: less than the 30 s commit reserve
    const capped = await h.start({ limits: { platformTimeoutSeconds: 20, safetyMarginSeconds: 10, commitReserveSeconds: 30 } });
    const r = await chunk(capped, id, { body: { deadlineSeconds: 60 } });
    expect([r.status, r.json.error.code]).toEqual([422, 'DEADLINE_TOO_SHORT']);
    const roomy = await h.start({ limits: { platformTimeoutSeconds: null, safetyMarginSeconds: 10, commitReserveSeconds: 30 } });
    expect((await chunk(roomy, id, { body: { deadlineSeconds: 60 } })).status).toBe(201);
    expect(await h.seqs(id)).toEqual([0]);
    await healthy(capped);
  });

  it('malformed input: 400 with each field path and what was expected; the server keeps serving', async () => {
    const bad = await h.request(a, 'POST', '/v1/runs', { body: { base: 3, period: 0, schedule: 'sideways', extra: true } });
    expect([bad.status, bad.json.error.code]).toEqual([400, 'REQUEST_INVALID']);
    const issues = bad.json.error.details.issues as Array<{ path: string; message: string }>;
    expect(issues.map((i) => i.path).sort()).toEqual(['base', 'data', 'extra', 'period', 'schedule']);
    expect(issues.find((i) => i.path === 'base')?.message).toBe('Invalid input: expected string, received number');
    expect(issues.find((i) => i.path === 'period')?.message).toBe('Too small: expected number to be >0');
    expect(issues.find((i) => i.path === 'schedule')?.message).toBe('Invalid option: expected one of "cosine"|"linear"|"constant"');
    expect(bad.json.error.message).toContain('period: Too small: expected number to be >0');
    await healthy(a);

    const id = await run(a);
    const cases: Array<[string, string, { body?: unknown; raw?: string; headers?: Record<string, string> }, number, string, string?]> = [
      ['POST', '/v1/runs', { raw: '{"base": ' }, 400, 'REQUEST_JSON_INVALID'],
      ['POST', '/v1/runs', { raw: '{}', headers: { 'content-type': 'text/plain' } }, 415, 'REQUEST_MEDIA_TYPE_UNSUPPORTED'],
      ['POST', `/v1/runs/${id}/chunks`, { body: { deadlineSeconds: 'soon' } }, 400, 'REQUEST_INVALID', 'deadlineSeconds'],
      ['POST', `/v1/runs/${id}/chunks`, { body: { deadlineSeconds: -1 } }, 400, 'REQUEST_INVALID', 'deadlineSeconds'],
      ['POST', `/v1/runs/${id}/chunks`, { body: { steps: 4 } }, 400, 'REQUEST_INVALID', 'steps'],
      ['POST', `/v1/runs/${id}/chunks`, { headers: { 'idempotency-key': 'k'.repeat(256) } }, 400, 'IDEMPOTENCY_KEY_INVALID'],
      ['GET', `/v1/runs/${id}/chunks?limit=0`, {}, 400, 'REQUEST_INVALID', 'limit'],
      ['GET', '/v1/runs/bad.id', {}, 400, 'RUN_ID_INVALID'],
      ['POST', '/v1/runs/bad.id/chunks', {}, 400, 'RUN_ID_INVALID'],
      ['POST', '/v1/runs', { body: { base: 'x', data: 'y', extra: 'x'.repeat(70_000) } }, 413, 'REQUEST_TOO_LARGE'],
      ['POST', '/v1/runs', { body: { base: h.out('no-such-model'), data: h.data } }, 422, 'REF_NOT_FOUND'],
      ['POST', `/v1/runs/${id}/exports`, { body: { out: h.out('adapter'), adapter: true } }, 422, 'EXPORT_RUN_NOT_LORA'],
      ['POST', `/v1/runs/${id}/exports`, { body: { out: h.out('both'), adapter: true, delta: true } }, 400, 'EXPORT_OPTIONS_INVALID'],
      ['POST', `/v1/runs/${id}/exports`, { body: { out: `${h.dir}/x`, dtype: 'fp8' } }, 400, 'REQUEST_INVALID', 'dtype'],
      ['POST', '/v1/compositions', { body: { base: 'b', runs: [], method: 'average', out: 'o' } }, 400, 'REQUEST_INVALID', 'method'],
      ['GET', '/v1/runs/run-does-not-exist', {}, 404, 'RUN_NOT_FOUND'],
    ];
    for (const [method, path, opts, status, code, field] of cases) {
      const r = await h.request(a, method, path, opts);
      expect([method, path, r.status, r.json?.error?.code], r.text).toEqual([method, path, status, code]);
      if (field) expect((r.json.error.details.issues as Array<{ path: string }>).map((i) => i.path)).toContain(field);
      expect(typeof r.json.error.requestId).toBe('string');
      await healthy(a);
    }
    const missingData = await h.createRun(a, { data: h.out('missing.jsonl') });
    expect([missingData.status, missingData.json.error.code]).toEqual([422, 'REF_NOT_FOUND']);
    expect(missingData.json.error.message).toBe(`data ${h.out('missing.jsonl')}: no such file or directory`);
    const tooMany = await h.createRun(a, { activeLayers: 9 });
    expect([tooMany.status, tooMany.json.error.code]).toEqual([400, 'RUN_CONFIG_INVALID']);
    const wrongOption = await h.createRun(a, { sampler: 'uniform', gradNormFloor: 0.5 });
    expect([wrongOption.status, wrongOption.json.error.code, wrongOption.json.error.message]).toEqual([
      400,
      'RUN_CONFIG_INVALID',
      "invalid run config: gradNormFloor: belongs to sampler 'grad-norm', but this run's sampler is 'uniform'",
    ]);
    // a lisa option (TINY_RUN's activeLayers, a sampler's) on a run of another method names each one
    const otherMethod = await h.createRun(a, { method: 'full', gradNormFloor: 0.5 });
    expect([otherMethod.status, otherMethod.json.error.code, otherMethod.json.error.message]).toEqual([
      400,
      'RUN_CONFIG_INVALID',
      "invalid run config: activeLayers: applies to method lisa only; this run's method is full; gradNormFloor: applies to method lisa only; this run's method is full",
    ]);
    expect(await h.seqs(id)).toEqual([]);
    await healthy(a);
  });

  it('a LoRA run: chunks upload the blocks\' adapters and draw nothing, the adapter export is PEFT\'s pair of files', async () => {
    const created = await h.request(a, 'POST', '/v1/runs', {
      body: { base: MODEL_DIR, data: h.data, fields: ['question', 'answer'], seqLen: 32, batchSize: 2, period: 2, steps: 4, method: 'lora', loraRank: 2 },
    });
    expect(created.status, created.text).toBe(201);
    expect(created.json.config).toMatchObject({ method: 'lora', loraRank: 2, loraAlpha: 16, loraDropout: 0 });
    expect(created.json.config).not.toHaveProperty('sampler');
    const c = await chunk(a, created.json.id);
    expect(c.status, c.text).toBe(201);
    expect([c.json.method, c.json.activeUnits, c.json.probabilities]).toEqual(['lora', ['layers.0', 'layers.1', 'layers.2', 'layers.3', 'layers.4'], null]);
    const out = h.out(`adapter-${backend.name}`);
    const e = await h.request(a, 'POST', `/v1/runs/${created.json.id}/exports`, { body: { out, adapter: true } });
    expect(e.status, e.text).toBe(201);
    expect([...e.json.files].sort()).toEqual(['adapter_config.json', 'adapter_model.safetensors', 'lisa-export.json']);
  });

  it('/ping says 204 while initializing and chunks wait with 503 SERVER_NOT_READY', async () => {
    const id = await run(a);
    const cold = await h.start({ ready: false });
    const ping = await h.request(cold, 'GET', '/ping', { token: null });
    expect([ping.status, ping.text]).toEqual([204, '']);
    const early = await chunk(cold, id);
    expect([early.status, early.json.error.code, early.headers.get('retry-after')]).toEqual([503, 'SERVER_NOT_READY', '5']);
    cold.setReady(true);
    const warm = await h.request(cold, 'GET', '/ping', { token: null });
    expect([warm.status, warm.json]).toEqual([200, { status: 'healthy' }]);
    expect((await chunk(cold, id)).status).toBe(201);
  });
});
