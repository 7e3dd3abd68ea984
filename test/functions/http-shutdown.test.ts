import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BACKENDS, harness, type Harness } from './harness.ts';

describe('graceful shutdown', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await harness(BACKENDS[0]);
  });
  afterAll(() => h.close());

  it('stops taking chunks, lets the running one commit and answer, then closes', async () => {
    const server = await h.start();
    const created = await h.createRun(server);
    const id = created.json.id;
    h.gate.armed = true;
    const inFlight = async (n: number) => {
      for (let i = 0; (await h.request(server, 'GET', '/healthz', { token: null })).json.chunksInFlight < n; i++) {
        if (i > 1000) throw new Error(`${n} chunks never started`);
        await new Promise((r) => setTimeout(r, 10));
      }
    };
    // one after the other: two requests sent at once may arrive in either order
    const running = h.request(server, 'POST', `/v1/runs/${id}/chunks`);
    await inFlight(1);
    const queued = h.request(server, 'POST', `/v1/runs/${id}/chunks`);
    await inFlight(2);
    const stopped = server.running.shutdown(20_000);
    // the load balancer is told at once; the app still answers on connections already open
    const ping = await server.lisa.app.request('/ping');
    expect([ping.status, await ping.json()]).toEqual([503, { status: 'draining' }]);
    h.gate.release();

    const [first, second] = await Promise.all([running, queued]);
    expect(first.status, first.text).toBe(201);
    expect(first.json.seq).toBe(0);
    expect([second.status, second.json.error.code]).toEqual([503, 'SERVER_SHUTTING_DOWN']);
    expect(await stopped).toBe(true);
    expect(await h.seqs(id)).toEqual([0]);
    await expect(fetch(`${server.url}/healthz`)).rejects.toThrow();
  });

  it('gives up after the grace period without a half commit', async () => {
    const server = await h.start();
    const id = (await h.createRun(server)).json.id;
    h.gate.armed = true;
    const running = h.request(server, 'POST', `/v1/runs/${id}/chunks`).catch((err: Error) => err);
    for (let i = 0; (await h.request(server, 'GET', '/healthz', { token: null })).json.chunksInFlight < 1; i++) {
      if (i > 1000) throw new Error('chunk never started');
      await new Promise((r) => setTimeout(r, 10));
    }
    expect(await server.running.shutdown(200)).toBe(false);
    // the connection was dropped before the chunk could commit; the real process exits here
    expect(await running).toBeInstanceOf(Error);
    expect(await h.seqs(id)).toEqual([]);
  });
});
