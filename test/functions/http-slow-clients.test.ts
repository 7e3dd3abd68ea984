/**
 * Slow and large clients against a real loopback server: bodies over the limit are refused before
 * they are read whole, clients trickling headers or a body are cut off, and a client that
 * disconnects mid-chunk leaves a whole commit or none.
 */
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PrefixedStore } from '../../core/store/prefixed.ts';
import { gcRun } from '../../core/store/gc.ts';
import { checkRun } from '../faults/invariants.ts';
import { BACKENDS, harness, type Harness, type Server } from './harness.ts';

interface RawResult {
  /** what the server sent before closing */
  response: string;
  /** ms from the first byte sent until the server closed the connection */
  closedAfterMs: number;
  bytesSent: number;
}

/**
 * Sends `head`, then `next()` every `everyMs` ms until it returns null or the server closes the
 * connection (or `limitMs` passes: then the test fails on closedAfterMs).
 */
function raw(server: Server, head: string, next: () => string | null, everyMs: number, limitMs = 20_000): Promise<RawResult> {
  const url = new URL(server.url);
  return new Promise((resolve) => {
    const sock = connect(Number(url.port), url.hostname);
    const t0 = Date.now();
    let response = '';
    let bytesSent = 0;
    const send = (s: string): void => {
      if (sock.writable) sock.write(s);
      bytesSent += Buffer.byteLength(s);
    };
    const timer = setInterval(() => {
      const piece = next();
      if (piece !== null) send(piece);
      if (Date.now() - t0 > limitMs) sock.destroy();
    }, everyMs);
    sock.on('data', (d) => (response += d.toString()));
    sock.on('error', () => undefined); // a write after the server closed: the close is what we wait for
    sock.on('close', () => {
      clearInterval(timer);
      resolve({ response, closedAfterMs: Date.now() - t0, bytesSent });
    });
    send(head);
  });
}

describe('slow and large clients', () => {
  let h: Harness;
  let server: Server;
  const post = (path: string, extra: string): string =>
    `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${h.tokens.alpha}\r\nContent-Type: application/json\r\n${extra}\r\n`;

  beforeAll(async () => {
    h = await harness(BACKENDS[0]);
    // headers within 1 + 1 s, a body within 1 s after them
    server = await h.start({ keepAliveSeconds: 1, bodyTimeoutSeconds: 1 });
  });
  afterAll(() => h.close());

  it('a body declared over 64 KiB is refused with 413 at once, and the connection closed without reading it', async () => {
    const r = await raw(server, `${post('/v1/runs', 'Content-Length: 10000000\r\n')}{"base":`, () => 'x'.repeat(1000), 50);
    expect(r.response).toMatch(/^HTTP\/1\.1 413 /);
    expect(r.response).toContain('"code":"REQUEST_TOO_LARGE"');
    expect(r.response.toLowerCase()).toContain('connection: close');
    expect(r.closedAfterMs).toBeLessThan(5000);
  });

  it('a chunked body that never ends is cut off at the limit with 413', async () => {
    const piece = `4000\r\n${'x'.repeat(0x4000)}\r\n`;
    const r = await raw(server, post('/v1/runs', 'Transfer-Encoding: chunked\r\n'), () => piece, 5);
    expect(r.response).toMatch(/^HTTP\/1\.1 413 /);
    // the server closed while the client was still sending: it never waited for the end
    expect(r.closedAfterMs).toBeLessThan(10_000);
  });

  it('slowloris headers (a header line every 200 ms) get 408 and the connection closes', async () => {
    let n = 0;
    const r = await raw(server, 'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n', () => `X-Slow-${n++}: a\r\n`, 200);
    expect(r.response).toMatch(/^HTTP\/1\.1 408 /);
    // headers timeout 2 s, checked every second
    expect(r.closedAfterMs).toBeGreaterThanOrEqual(1900);
    expect(r.closedAfterMs).toBeLessThan(6000);
  });

  it('a body trickling one byte every 200 ms gets 408, and the app acts on none of it', async () => {
    const runsBefore = await h.root.list('tenants/alpha/runs/');
    const body = JSON.stringify({ base: 'x', data: 'y', seed: 1 }).padEnd(200, ' ');
    let at = 0;
    const r = await raw(server, post('/v1/runs', `Content-Length: ${body.length}\r\n`), () => (at < body.length ? body[at++] : null), 200);
    expect(r.response).toMatch(/^HTTP\/1\.1 408 /);
    expect(r.closedAfterMs).toBeLessThan(7000);
    expect(at).toBeLessThan(body.length);
    expect(await h.root.list('tenants/alpha/runs/')).toEqual(runsBefore);
  });

  it('a client disconnecting mid-chunk leaves the whole chunk committed, and its retry gets that answer', async () => {
    const created = await h.createRun(server);
    const id = created.json.id;
    h.gate.armed = true;
    const gone = new AbortController();
    const request = fetch(`${server.url}/v1/runs/${id}/chunks`, {
      method: 'POST',
      headers: { authorization: `Bearer ${h.tokens.alpha}`, 'idempotency-key': 'walks-away' },
      signal: gone.signal,
    }).catch((err: Error) => err);
    const inFlight = async (): Promise<number> => (await h.request(server, 'GET', '/healthz', { token: null })).json.chunksInFlight;
    for (let i = 0; (await inFlight()) < 1; i++) {
      if (i > 1000) throw new Error('the chunk never started');
      await new Promise((r) => setTimeout(r, 10));
    }
    gone.abort();
    expect(await request).toBeInstanceOf(Error);
    h.gate.release();
    for (let i = 0; (await inFlight()) > 0; i++) {
      if (i > 3000) throw new Error('the chunk never finished');
      await new Promise((r) => setTimeout(r, 10));
    }
    const store = new PrefixedStore(h.root, 'tenants/alpha/');
    const state = await checkRun(store, id);
    expect(state.seqs).toEqual([0]);
    expect(await gcRun(store, id, { graceSeconds: 0 })).toMatchObject({ deleted: [], swept: [] });
    const retry = await h.request(server, 'POST', `/v1/runs/${id}/chunks`, { headers: { 'idempotency-key': 'walks-away' } });
    expect([retry.status, retry.headers.get('idempotent-replayed'), retry.json.seq]).toEqual([201, 'true', 0]);
    expect(retry.json.globalStep).toBe(state.head!.globalStep);
  });
});
