import { readdir } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ChunkListSchema, ChunkSummarySchema, CompositionSummarySchema, ExportSummarySchema, RunSpecSchema, RunStatusSchema } from '../../functions/schemas.ts';
import { BACKENDS, harness, MODEL_DIR, TINY_RUN, type Harness, type Server } from './harness.ts';

describe.each(BACKENDS)('HTTP flow ($name store)', (backend) => {
  let h: Harness;
  let server: Server;
  beforeAll(async () => {
    h = await harness(backend);
    server = await h.start({ pricing: { usdPerHour: 7.2 } });
  });
  afterAll(() => h.close());

  it('create -> 3 chunks -> status, chunk list, export, composition, metrics', async () => {
    const created = await h.createRun(server, { seed: 7, sampler: 'grad-norm' });
    expect(created.status).toBe(201);
    const spec = RunSpecSchema.strict().parse(created.json);
    expect(spec.id).toMatch(/^run-\d{14}-[0-9a-f]{6}$/);
    expect(created.headers.get('location')).toBe(`/v1/runs/${spec.id}`);
    expect(spec.config).toMatchObject({ ...TINY_RUN, base: MODEL_DIR, data: h.data, seed: 7, lr: 3e-4, schedule: 'cosine', sampler: 'grad-norm', gradNormFloor: 0.2 });
    expect(spec.base).toMatchObject({ arch: 'llama', nLayers: 5 });
    expect(spec.data).toMatchObject({ examples: 6, heldOut: 0 });

    const before = await h.request(server, 'GET', `/v1/runs/${spec.id}`);
    expect(before.status).toBe(200);
    expect(before.json.head).toBeNull();
    expect(before.json.totals).toEqual({ steps: 0, tokens: 0, seconds: 0, costUsd: 0, bytes: { in: 0, out: 0 } });

    const chunks = [];
    for (let i = 0; i < 3; i++) {
      const r = await h.request(server, 'POST', `/v1/runs/${spec.id}/chunks`, i === 0 ? {} : { body: { deadlineSeconds: 600 } });
      expect(r.status, r.text).toBe(201);
      chunks.push(ChunkSummarySchema.strict().parse(r.json));
    }
    expect(chunks.map((c) => [c.seq, c.startStep, c.globalStep, c.steps, c.period, c.stoppedBy])).toEqual([
      [0, 0, 2, 2, 0, 'period'],
      [1, 2, 4, 2, 1, 'period'],
      [2, 4, 6, 2, 2, 'period'],
    ]);
    for (const c of chunks) {
      expect(c.losses).toHaveLength(2);
      expect(c.losses.every(Number.isFinite)).toBe(true);
      // embed and head every chunk, plus one sampled block (activeLayers 1)
      expect(c.activeUnits).toEqual(['embed', expect.stringMatching(/^layers\.[0-4]$/), 'head']);
      expect(c.probabilities).toHaveLength(5);
      expect(Object.keys(c.unitGradNorms!).sort()).toEqual([...c.activeUnits].sort());
      expect(c.costUsd).toBeCloseTo((c.seconds.wall * 7.2) / 3600, 12);
      expect(c.bytes.out).toBeGreaterThan(0);
    }
    // grad-norm: period 0 draws uniformly. After it one block has a gradient-norm average and the
    // four unseen ones take it as their optimistic prior, so period 1 is uniform too. After period 1
    // (a different block, for this seed) the two seen blocks' averages differ: the smaller one is
    // drawn less often, the larger one and the unseen blocks (its prior) equally.
    for (const c of chunks.slice(0, 2)) for (const p of c.probabilities!) expect(p).toBeCloseTo(0.2, 15);
    const [first, second] = chunks.slice(0, 2).map((c) => Number(c.activeUnits[1].slice('layers.'.length)));
    expect(first).not.toBe(second);
    const p2 = chunks[2].probabilities!;
    expect(new Set(p2.map((p) => p.toFixed(12))).size).toBe(2);
    expect(p2.filter((p) => p < Math.max(...p2) - 1e-9)).toHaveLength(1);
    expect([first, second]).toContain(p2.indexOf(Math.min(...p2)));
    const last = chunks[2];
    expect(last.totals.steps).toBe(6);
    expect(last.totals.tokens).toBe(chunks.reduce((n, c) => n + c.tokens, 0));
    expect(last.totals.costUsd).toBeCloseTo(chunks.reduce((n, c) => n + c.costUsd, 0), 12);
    expect(last.totals.bytesOut).toBe(chunks.reduce((n, c) => n + c.bytes.out, 0));

    const status = await h.request(server, 'GET', `/v1/runs/${spec.id}`);
    expect(status.status).toBe(200);
    const s = RunStatusSchema.strict().parse(status.json);
    expect(s.head).toEqual(last);
    expect(s.totals).toEqual({
      steps: 6,
      tokens: last.totals.tokens,
      seconds: last.totals.seconds,
      costUsd: last.totals.costUsd,
      bytes: { in: last.totals.bytesIn, out: last.totals.bytesOut },
    });
    expect(s.complete).toBe(false);
    expect({ ...s, head: undefined, totals: undefined, complete: undefined }).toEqual({ ...spec, head: undefined, totals: undefined, complete: undefined });

    const list = await h.request(server, 'GET', `/v1/runs/${spec.id}/chunks`);
    expect(list.status).toBe(200);
    expect(ChunkListSchema.parse(list.json)).toEqual({ chunks, next: null });
    const page = await h.request(server, 'GET', `/v1/runs/${spec.id}/chunks?from=1&limit=1`);
    expect(page.json).toEqual({ chunks: [chunks[1]], next: 2 });

    const out = h.out('exported');
    const exported = await h.request(server, 'POST', `/v1/runs/${spec.id}/exports`, { body: { out } });
    expect(exported.status, exported.text).toBe(201);
    const e = ExportSummarySchema.strict().parse(exported.json);
    expect([e.runId, e.seq, e.out]).toEqual([spec.id, 2, out]);
    expect(e.units.length).toBeGreaterThan(0);
    expect((await readdir(out)).sort()).toEqual(expect.arrayContaining(['config.json', 'model.safetensors']));
    const again = await h.request(server, 'POST', `/v1/runs/${spec.id}/exports`, { body: { out } });
    expect([again.status, again.json.error.code]).toEqual([409, 'EXPORT_OUTPUT_EXISTS']);

    const composed = await h.request(server, 'POST', '/v1/compositions', {
      body: { base: MODEL_DIR, runs: [{ id: spec.id, weight: 0.5 }, { id: spec.id, weight: 0.5, at: 0 }], method: 'linear', out: h.out('composed') },
    });
    expect(composed.status, composed.text).toBe(201);
    const comp = CompositionSummarySchema.strict().parse(composed.json);
    expect(comp.runs).toEqual([
      { runId: spec.id, seq: 2, weight: 0.5 },
      { runId: spec.id, seq: 0, weight: 0.5 },
    ]);

    const metrics = await h.request(server, 'GET', '/metrics', { token: null });
    expect(metrics.status).toBe(200);
    expect(metrics.headers.get('content-type')).toMatch(/^text\/plain/);
    const m = metrics.text;
    expect(m).toContain('lisa_chunks_total{tenant="alpha",outcome="committed"} 3\n');
    expect(m).toContain('lisa_steps_total{tenant="alpha"} 6\n');
    expect(m).toContain(`lisa_tokens_total{tenant="alpha"} ${last.totals.tokens}\n`);
    expect(m).toContain(`lisa_store_bytes_total{tenant="alpha",direction="out"} ${last.totals.bytesOut}\n`);
    expect(Number(/lisa_cost_usd_total\{tenant="alpha"\} (\S+)/.exec(m)?.[1])).toBeCloseTo(last.totals.costUsd, 12);
    expect(m).toContain('lisa_chunk_duration_seconds_count{phase="wall"} 3\n');
    expect(m).toContain('lisa_http_requests_total{method="POST",route="/v1/runs/:id/chunks",status="201"} 3\n');
    expect(m).toContain('lisa_errors_total{code="EXPORT_OUTPUT_EXISTS"} 1\n');
    expect(m).toContain('lisa_chunks_in_flight 0\n');
  });

  it('a run trained to its last step answers RUN_COMPLETE (409) and says complete', async () => {
    const created = await h.createRun(server, { steps: 3 });
    const id = created.json.id;
    const first = await h.request(server, 'POST', `/v1/runs/${id}/chunks`);
    const second = await h.request(server, 'POST', `/v1/runs/${id}/chunks`);
    expect([first.json.globalStep, second.json.globalStep, second.json.stoppedBy]).toEqual([2, 3, 'run-complete']);
    const third = await h.request(server, 'POST', `/v1/runs/${id}/chunks`);
    expect(third.status).toBe(409);
    expect(third.json.error).toMatchObject({ code: 'RUN_COMPLETE', details: { runId: id, steps: 3 } });
    expect((await h.request(server, 'GET', `/v1/runs/${id}`)).json.complete).toBe(true);
    expect(await h.seqs(id)).toEqual([0, 1]);
  });
});
