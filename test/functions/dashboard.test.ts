import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { once } from 'node:events';
import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openRuns } from '../../core/runs/open.ts';
import { tenantPrefix } from '../../core/runs/refs.ts';
import { serveLocalDashboard } from '../../functions/dashboard/local.ts';
import { BACKENDS, harness, MODEL_DIR, TINY_RUN, type Harness, type Server } from './harness.ts';

const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";
const EVIL = '<script>alert(1)</script>';

interface Page {
  status: number;
  headers: Headers;
  text: string;
}

async function get(url: string, cookie?: string, headers: Record<string, string> = {}): Promise<Page> {
  const res = await fetch(url, { headers: { ...headers, ...(cookie ? { cookie } : {}) }, redirect: 'manual' });
  return { status: res.status, headers: res.headers, text: await res.text() };
}

function post(url: string, form: Record<string, string>, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(url, { method: 'POST', body: new URLSearchParams(form), headers, redirect: 'manual' });
}

/** The cookie a sign-in sets, as a Cookie header. */
async function signIn(server: Server, token: string): Promise<string> {
  const res = await post(`${server.url}/login`, { token, next: '/' });
  expect(res.status).toBe(303);
  return res.headers.get('set-cookie')!.split(';')[0];
}

const cells = (html: string): number => html.match(/<td class="cell /g)?.length ?? 0;
const rows = (html: string, table: string): number => html.split(`id="${table}"`)[1]?.split('<tbody>')[1].split('</tbody>')[0].match(/<tr>/g)?.length ?? 0;

/** A GET with a Host header of our choosing (fetch does not let a caller set Host). */
function getAs(url: string, host: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    request(url, { headers: { host } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode!, text }));
    })
      .on('error', reject)
      .end();
  });
}

describe('dashboard pages over lisa serve', () => {
  let h: Harness;
  let server: Server;
  let alpha: string;
  let beta: string;
  let runId: string;
  beforeAll(async () => {
    h = await harness(BACKENDS[0]);
    server = await h.start();
    alpha = await signIn(server, h.tokens.alpha);
    beta = await signIn(server, h.tokens.beta);
    runId = (await h.createRun(server, { heldOut: 2 })).json.id;
    for (let i = 0; i < 3; i++) expect((await h.request(server, 'POST', `/v1/runs/${runId}/chunks`)).status).toBe(201);
  });
  afterAll(() => h.close());

  it('asks for sign-in first, with a strict CSP and hardening headers; the API does not take the cookie', async () => {
    for (const path of ['/', `/runs/${runId}?heat=p`, `/runs/${runId}/head`, `/runs/${runId}/chunks/0.json`]) {
      const page = await get(`${server.url}${path}`);
      expect([page.status, page.headers.get('location')], path).toEqual([303, `/login?next=${encodeURIComponent(path)}`]);
      const form = await get(`${server.url}${page.headers.get('location')}`);
      expect(form.status).toBe(200);
      expect(form.text).toContain('<form method="post" action="/login" class="sign-in">');
      expect(form.text).toContain(`<input type="hidden" name="next" value="${path}">`);
    }
    expect((await get(`${server.url}/login?next=${encodeURIComponent('//evil.example/')}`)).text).toContain('<input type="hidden" name="next" value="/">');
    const page = await get(`${server.url}/`, alpha);
    expect(page.status).toBe(200);
    expect(Object.fromEntries(['content-security-policy', 'x-content-type-options', 'x-frame-options', 'cache-control', 'referrer-policy'].map((k) => [k, page.headers.get(k)]))).toEqual({
      'content-security-policy': CSP,
      'x-content-type-options': 'nosniff',
      'x-frame-options': 'DENY',
      'cache-control': 'no-store',
      'referrer-policy': 'same-origin',
    });
    // a bearer token is for the API; the pages take the session cookie only
    expect((await get(`${server.url}/`, undefined, { authorization: `Bearer ${h.tokens.alpha}` })).status).toBe(303);
    const api = await h.request(server, 'GET', `/v1/runs/${runId}`, { token: null, headers: { cookie: alpha } });
    expect([api.status, api.json.error.code]).toEqual([401, 'AUTH_TOKEN_MISSING']);
    expect((await get(`${server.url}/v1/runs/${runId}`)).headers.get('content-security-policy')).toBeNull();
  });

  it('signs in with a token: an HttpOnly, SameSite=Strict session cookie and back to the page asked for; refuses bad tokens and other sites', async () => {
    const res = await post(`${server.url}/login`, { token: h.tokens.alpha, next: `/runs/${runId}?heat=grad` });
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toBe(`/runs/${runId}?heat=grad`);
    const cookie = res.headers.get('set-cookie')!;
    expect(cookie).toMatch(/^lisa_session=alpha\.\d{10}\.[0-9a-f]{16}\.[A-Za-z0-9_-]{43}; Max-Age=43200; Path=\/; HttpOnly; SameSite=Strict$/);
    expect(cookie).not.toContain(h.tokens.alpha.slice(5));
    const behindTls = await post(`${server.url}/login`, { token: h.tokens.alpha }, { 'x-forwarded-proto': 'https' });
    expect(behindTls.headers.get('set-cookie')).toMatch(/; Secure; SameSite=Strict$/);

    expect((await post(`${server.url}/login`, { token: h.tokens.alpha, next: '//evil.example/x' })).headers.get('location')).toBe('/');
    expect((await post(`${server.url}/login`, { token: h.tokens.alpha, next: 'https://evil.example/' })).headers.get('location')).toBe('/');
    const wrong = await post(`${server.url}/login`, { token: `${h.tokens.alpha}x`, next: '/' });
    expect([wrong.status, wrong.headers.get('set-cookie')]).toEqual([401, null]);
    expect(await wrong.text()).toContain('That token matches no tenant on this server.');
    const empty = await post(`${server.url}/login`, { token: ' ' });
    expect([empty.status, (await empty.text()).includes('Enter a token.')]).toEqual([400, true]);
    const foreign = await post(`${server.url}/login`, { token: h.tokens.alpha }, { origin: 'http://evil.example' });
    expect(foreign.status).toBe(403);
    expect(await foreign.text()).toContain('<code>REQUEST_CROSS_ORIGIN</code>: a form posted from http://evil.example to this dashboard');
    expect((await post(`${server.url}/login`, { token: h.tokens.alpha }, { origin: server.url })).status).toBe(303);

    const out = await post(`${server.url}/logout`, {});
    expect([out.status, out.headers.get('location')]).toEqual([303, '/login']);
    expect(out.headers.get('set-cookie')).toMatch(/^lisa_session=; Max-Age=0; Path=\//);
    const forged = alpha.replace('lisa_session=alpha.', 'lisa_session=beta.');
    expect((await get(`${server.url}/`, forged)).status).toBe(303);
  });

  it("lists only the tenant's runs; another tenant's run is not found", async () => {
    const list = await get(`${server.url}/`, alpha);
    expect(list.text).toContain(`<a href="/runs/${runId}">${runId}</a>`);
    expect(list.text).toContain('<span class="scope">tenant alpha</span>');
    expect(rows(list.text, 'runs')).toBeGreaterThanOrEqual(1);
    const other = await get(`${server.url}/`, beta);
    expect(other.text).toContain('<p class="empty">No runs yet.</p>');
    expect(other.text).not.toContain(runId);
    const stolen = await get(`${server.url}/runs/${runId}`, beta);
    expect(stolen.status).toBe(404);
    expect(stolen.text).toContain(`<code>RUN_NOT_FOUND</code>: run &#39;${runId}&#39; not found in`);
    expect((await get(`${server.url}/runs/${runId}/chunks/0.json`, beta)).status).toBe(404);
    expect((await get(`${server.url}/runs/${runId}/head`, beta)).status).toBe(404);
  });

  it('a run after 3 chunks: totals, both series, units × chunks cells, the chunk table with links to each manifest', async () => {
    const page = await get(`${server.url}/runs/${runId}`, alpha);
    expect(page.status).toBe(200);
    const chunks = (await h.request(server, 'GET', `/v1/runs/${runId}/chunks`)).json.chunks;
    expect(page.text).toContain(`<main data-run="${runId}" data-head="2" data-live="true">`);
    expect(page.text).toContain('Training: 6 of 20 steps in 3 chunks; this page refreshes as chunks commit.');
    const series = JSON.parse(page.text.split('<script type="application/json" id="series">')[1].split('</script>')[0]);
    expect(series).toEqual({
      steps: [1, 2, 3, 4, 5, 6],
      loss: chunks.flatMap((c: { losses: number[] }) => c.losses),
      heldOut: chunks.flatMap((c: { heldOut: { loss: number } }) => [null, c.heldOut.loss]),
      lr: chunks.flatMap((c: { learningRates: number[] }) => c.learningRates),
    });
    // 7 units (embed, 5 blocks, head) x 3 chunks; trained cells coloured by their update norm
    expect(cells(page.text.split('id="heatmap"')[1].split('</table>')[0])).toBe(21);
    for (const c of chunks) {
      for (const u of c.activeUnits) expect(page.text).toMatch(new RegExp(`<td class="cell q\\d" title="${u} · chunk ${c.seq}, steps ${c.startStep}–${c.globalStep}: trained · update norm `));
    }
    expect(page.text.match(/<td class="cell off"/g)).toHaveLength(21 - chunks.reduce((n: number, c: { activeUnits: string[] }) => n + c.activeUnits.length, 0));
    expect(rows(page.text, 'chunks')).toBe(3);
    for (const seq of [0, 1, 2]) expect(page.text).toContain(`<td><a href="/runs/${runId}/chunks/${seq}.json">${seq}</a></td>`);
    expect(page.text).toContain(`<tr><th scope="row">data</th><td>${h.data}</td></tr>`);
    expect(page.text).toContain('<div><dt>budget left</dt><dd>no budget set</dd></div>');

    const manifest = await get(`${server.url}/runs/${runId}/chunks/1.json`, alpha);
    expect(manifest.headers.get('content-type')).toBe('application/json; charset=utf-8');
    // the stored record, verified: everything but its checksum
    const { checksum, ...stored } = JSON.parse(new TextDecoder().decode(await h.root.get(`${tenantPrefix('alpha')}runs/${runId}/chunks/00000001.json`))) as Record<string, unknown>;
    expect(checksum).toMatch(/^[0-9a-f]{64}$/);
    expect(JSON.parse(manifest.text)).toEqual(stored);
    expect((await get(`${server.url}/runs/${runId}/chunks/x.json`, alpha)).status).toBe(404);
    const missing = await get(`${server.url}/runs/${runId}/chunks/9.json`, alpha);
    expect([missing.status, missing.text.includes('<code>CHUNK_NOT_FOUND</code>')]).toEqual([404, true]);
    expect(JSON.parse((await get(`${server.url}/runs/${runId}/head`, alpha)).text)).toEqual({ seq: 2, complete: false });

    const grad = await get(`${server.url}/runs/${runId}?heat=grad`, alpha);
    expect(grad.text).toContain('<strong aria-current="page">gradient norm</strong>');
    const p = await get(`${server.url}/runs/${runId}?heat=p`, alpha);
    // uniform over 5 blocks: every block cell has p = 0.2; embed and head (always trained) have none
    expect(p.text.match(/sampling probability 0\.2"/g)).toHaveLength(15);
    const bad = await get(`${server.url}/runs/${runId}?heat=colour`, alpha);
    expect([bad.status, bad.text.includes("heat: expected one of update, grad, p, got &#39;colour&#39;")]).toEqual([400, true]);
  });

  it('exports and compositions show on the run page', async () => {
    const out = h.out('dash-export');
    expect((await h.request(server, 'POST', `/v1/runs/${runId}/exports`, { body: { out } })).status).toBe(201);
    const composed = h.out('dash-composed');
    const comp = await h.request(server, 'POST', '/v1/compositions', { body: { base: MODEL_DIR, runs: [{ id: runId, weight: 0.5 }], method: 'linear', out: composed } });
    expect(comp.status, comp.text).toBe(201);
    const page = await get(`${server.url}/runs/${runId}`, alpha);
    expect(rows(page.text, 'outputs')).toBe(2);
    expect(page.text).toMatch(new RegExp(`<td>export</td><td>seq 2</td><td><code>${out}</code></td>`));
    expect(page.text).toMatch(new RegExp(`<td>composition \\(linear\\)</td><td>${runId}@2×0\\.5</td><td><code>${composed}</code></td>`));
  });

  it('escapes every string: a data ref and a template holding <script> render as text', async () => {
    const key = `${tenantPrefix('alpha')}inputs/${EVIL}.jsonl`;
    await h.root.put(key, await h.root.get(`${tenantPrefix('alpha')}inputs/qa.jsonl`));
    const created = await h.request(server, 'POST', '/v1/runs', {
      body: { base: MODEL_DIR, data: h.area('alpha', `inputs/${EVIL}.jsonl`), ...TINY_RUN, template: `${EVIL} {question}` },
    });
    expect(created.status, created.text).toBe(201);
    const page = await get(`${server.url}/runs/${created.json.id}`, alpha);
    expect(page.text).not.toContain(EVIL);
    expect(page.text).toContain('&lt;script&gt;alert(1)&lt;/script&gt;.jsonl</td>');
    expect(page.text).toContain('<tr><th scope="row">template</th><td>&lt;script&gt;alert(1)&lt;/script&gt; {question}</td></tr>');
    // zero chunks: empty charts with a sentence, the heat map's rows without cells
    expect(page.text).toContain('No chunk committed yet: the charts are empty until the first one commits.');
    expect(page.text).toContain('<script type="application/json" id="series">{"steps":[],"loss":[],"heldOut":[],"lr":[]}</script>');
    expect(cells(page.text.split('id="heatmap"')[1].split('</table>')[0])).toBe(0);
    const bad = await get(`${server.url}/runs/${encodeURIComponent(EVIL)}`, alpha);
    expect(bad.status).toBe(400);
    expect(bad.text).not.toContain(EVIL);
    expect(bad.text).toContain('invalid run id &#39;&lt;script&gt;alert(1)&lt;/script&gt;&#39;');
  });

  it('an unknown run is a 404 page, not a stack; a damaged manifest is named and the rest renders', async () => {
    const unknown = await get(`${server.url}/runs/no-such-run`, alpha);
    expect(unknown.status).toBe(404);
    expect(unknown.headers.get('content-type')).toBe('text/html; charset=UTF-8');
    expect(unknown.headers.get('content-security-policy')).toBe(CSP);
    expect(unknown.text).toContain('<h1>Not found</h1>');
    expect(unknown.text).toMatch(/<code>RUN_NOT_FOUND<\/code>: run &#39;no-such-run&#39; not found in /);
    expect(unknown.text).not.toMatch(/\n\s+at /);

    const damaged = (await h.createRun(server)).json.id;
    for (let i = 0; i < 3; i++) await h.request(server, 'POST', `/v1/runs/${damaged}/chunks`);
    const key = `runs/${damaged}/chunks/00000001.json`;
    await h.root.put(`${tenantPrefix('alpha')}${key}`, new TextEncoder().encode('{"version": 1, "se'));
    const page = await get(`${server.url}/runs/${damaged}`, alpha);
    expect(page.status).toBe(200);
    expect(page.text).toContain(`<li><code>${key}</code>: STORE_OBJECT_INVALID: object ${key} in store `);
    expect(rows(page.text, 'chunks')).toBe(2);
    expect(cells(page.text.split('id="heatmap"')[1].split('</table>')[0])).toBe(14);

    await h.root.put(`${tenantPrefix('alpha')}runs/${damaged}/run.json`, new TextEncoder().encode('{'));
    const list = await get(`${server.url}/`, alpha);
    expect(list.status).toBe(200);
    expect(list.text).toContain(`<code>runs/${damaged}/run.json</code>: STORE_OBJECT_INVALID: `);
    expect(list.text).toContain(`<a href="/runs/${runId}">${runId}</a>`);
    const run = await get(`${server.url}/runs/${damaged}`, alpha);
    expect(run.status).toBe(500);
    expect(run.text).toContain(`<code>STORE_OBJECT_INVALID</code>: object runs/${damaged}/run.json in store `);
    expect(run.text).toMatch(/Request id <code>[^<]+<\/code>/);
  });

  it('a LoRA run: its method on the runs page; its blocks trained in every chunk, embed and head frozen; no sampling view', async () => {
    const lora = (await h.createRun(server, { method: 'lora', activeLayers: undefined, loraRank: 2, maxCostUsd: 1 })).json.id;
    const chunk = await h.request(server, 'POST', `/v1/runs/${lora}/chunks`);
    expect(chunk.status).toBe(201);
    const left = `$${(1 - chunk.json.totals.costUsd).toFixed(4)} of $1.0000`;
    const list = await get(`${server.url}/`, alpha);
    expect(list.text).toContain(`<tr><td><a href="/runs/${lora}">${lora}</a></td>`);
    expect(list.text.split(`/runs/${lora}"`)[1].split('</tr>')[0]).toContain(`<td>lora: rank 2, α 16</td><td>2 / 20</td>`);
    expect(list.text).toContain(`<td>${left}</td><td>training</td></tr>`);
    expect(list.text.split(`/runs/${runId}"`)[1].split('</tr>')[0]).toContain('<td>lisa: γ 1, K 2, uniform</td>');
    const page = await get(`${server.url}/runs/${lora}`, alpha);
    const heat = page.text.split('id="heatmap"')[1].split('</table>')[0];
    expect(heat.match(/<td class="cell q\d" title="layers\.\d · chunk 0, steps 0–2: trained · update norm [^"]+ · gradient norm [^"]+"/g)).toHaveLength(5);
    expect(heat.match(/<td class="cell off" title="(embed|head) · chunk 0, steps 0–2: frozen"/g)).toHaveLength(2);
    expect(page.text).toContain('<nav class="heat-views">Colour by: <strong aria-current="page">update norm</strong> · <a href');
    expect(page.text).not.toContain('sampling probability</a>');
  });

  it('serves uPlot and its own script from the package', async () => {
    const require = createRequire(import.meta.url);
    const uplot = await get(`${server.url}/assets/uplot.js`);
    expect([uplot.status, uplot.headers.get('content-type')]).toEqual([200, 'text/javascript; charset=utf-8']);
    expect(uplot.text).toBe(await readFile(require.resolve('uplot/dist/uPlot.iife.min.js'), 'utf8'));
    expect((await get(`${server.url}/assets/dashboard.js`)).text).toContain("document.getElementById('series')");
    expect((await get(`${server.url}/assets/nope.js`)).status).toBe(404);
  });
});

describe('lisa dashboard: a local store on loopback', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await harness(BACKENDS[0]);
  });
  afterAll(() => h.close());

  it('shows every run of the store without sign-in, only to Host 127.0.0.1 or localhost', async () => {
    const runs = await openRuns(`${h.dir}/local`, { env: process.env });
    await runs.create({ base: MODEL_DIR, data: h.area('alpha', 'inputs/qa.jsonl'), ...TINY_RUN, fields: ['question', 'answer'] }, { id: 'local-run' });
    const dashboard = await serveLocalDashboard(runs, { port: 0, logError: () => undefined });
    try {
      expect(dashboard.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
      const list = await get(dashboard.url);
      expect(list.status).toBe(200);
      expect(list.text).toContain('<a href="/runs/local-run">local-run</a>');
      expect(list.text).toContain(`<span class="scope">file://${h.dir}/local</span>`);
      expect(list.headers.get('content-security-policy')).toBe(CSP);
      expect((await get(`${dashboard.url}runs/local-run`)).status).toBe(200);
      const unknown = await get(`${dashboard.url}runs/no-such-run`);
      expect([unknown.status, unknown.headers.get('content-security-policy')]).toEqual([404, CSP]);
      expect(unknown.text).toMatch(/<h1>Not found<\/h1>\n<p class="problem"><code>RUN_NOT_FOUND<\/code>: run &#39;no-such-run&#39; not found in /);
      const port = new URL(dashboard.url).port;
      expect((await getAs(`${dashboard.url}runs/local-run`, `localhost:${port}`)).status).toBe(200);
      const rebound = await getAs(dashboard.url, `evil.example:${port}`);
      expect([rebound.status, rebound.text]).toEqual([403, `REQUEST_HOST_INVALID: this dashboard answers only as 127.0.0.1:${port} or localhost:${port}, not 'evil.example:${port}'\n`]);
      expect((await get(`${dashboard.url}login`)).status).toBe(404);
    } finally {
      await dashboard.close();
    }
  });

  it('`lisa dashboard --store S --port 0` prints the URL it serves', async () => {
    const child = spawn('node', ['bin/lisa.js', 'dashboard', '--store', `${h.dir}/local`, '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      let out = '';
      child.stdout.on('data', (d) => (out += d));
      for (let i = 0; i < 600 && !out.includes('\n'); i++) await new Promise((r) => setTimeout(r, 50));
      expect(out).toMatch(new RegExp(`^dashboard of file://${h.dir}/local at http://127\\.0\\.0\\.1:\\d+/ \\(Ctrl-C stops it\\)\\n$`));
      const page = await get(out.split(' at ')[1].split(' ')[0]);
      expect(page.status).toBe(200);
      expect(page.text).toContain('local-run');
    } finally {
      child.kill('SIGINT');
      await once(child, 'exit');
    }
  });
});
