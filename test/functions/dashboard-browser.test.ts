/**
 * The dashboard in headless Chromium (Debian's chromium through playwright-core; `npm test` installs
 * it with infra/browser/ensure-chromium.sh when missing). Screenshots of both pages go to
 * tmp/test-artifacts/dashboard/ on every run, and to docs/ (for the README) with
 * LISA_UPDATE_SCREENSHOTS=1: they show timings, so writing them on every run would dirty the tree.
 */
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { tenantPrefix } from '../../core/runs/refs.ts';
import { BACKENDS, harness, MODEL_DIR, TINY_RUN, type Harness, type Server } from './harness.ts';

const CHROMIUM = process.env.LISA_CHROMIUM ?? '/usr/bin/chromium';
const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const ARTIFACTS = resolve('tmp/test-artifacts/dashboard');
const EVIL = '<script>alert(1)</script>';
/** the charts' series colours (functions/dashboard/assets/dashboard.js) */
const COLOURS = { loss: [0x1f, 0x77, 0xb4], heldOut: [0xd6, 0x27, 0x28], lr: [0x2c, 0xa0, 0x2c] };

let h: Harness;
let server: Server;
let browser: Browser;
let runId: string;
let evilId: string;
/** everything a page said on its console as an error or warning, threw, or opened as a dialog */
const problems: string[] = [];

function watch(page: Page): Page {
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') problems.push(`${page.url()}: console ${m.type()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`${page.url()}: ${e.message}`));
  page.on('dialog', (d) => {
    problems.push(`${page.url()}: dialog ${d.message()}`);
    void d.dismiss();
  });
  return page;
}

async function signedIn(token: string): Promise<{ context: BrowserContext; page: Page }> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 1000 } });
  const page = watch(await context.newPage());
  await page.goto(`${server.url}/`);
  expect(new URL(page.url()).pathname).toBe('/login');
  await page.fill('input[name="token"]', token);
  await Promise.all([page.waitForURL(`${server.url}/`), page.click('form.sign-in button[type="submit"]')]);
  return { context, page };
}

async function screenshot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: join(ARTIFACTS, name), fullPage: true });
  // the README shows what a first screen shows
  if (process.env.LISA_UPDATE_SCREENSHOTS === '1') await page.screenshot({ path: resolve('docs', name) });
}

/** Pixels of a chart's canvas within a small distance of each colour. */
function pixelsOf(page: Page, chart: string, colours: number[][]): Promise<number[]> {
  return page.evaluate(
    ({ chart, colours }) => {
      const canvas = document.querySelector<HTMLCanvasElement>(`#${chart} canvas`)!;
      const { data } = canvas.getContext('2d')!.getImageData(0, 0, canvas.width, canvas.height);
      return colours.map(([r, g, b]) => {
        let n = 0;
        for (let i = 0; i < data.length; i += 4) if (Math.abs(data[i] - r) + Math.abs(data[i + 1] - g) + Math.abs(data[i + 2] - b) < 30 && data[i + 3] > 200) n++;
        return n;
      });
    },
    { chart, colours },
  );
}

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`no chromium at ${CHROMIUM}: run bash infra/browser/ensure-chromium.sh (npm test does), or set LISA_CHROMIUM`);
  await mkdir(ARTIFACTS, { recursive: true });
  h = await harness(BACKENDS[0]);
  server = await h.start();
  runId = (await h.createRun(server, { heldOut: 2, seed: 3 })).json.id;
  for (let i = 0; i < 3; i++) expect((await h.request(server, 'POST', `/v1/runs/${runId}/chunks`)).status).toBe(201);
  await h.root.put(`${tenantPrefix('alpha')}inputs/${EVIL}.jsonl`, await h.root.get(`${tenantPrefix('alpha')}inputs/qa.jsonl`));
  const evil = await h.request(server, 'POST', '/v1/runs', { body: { base: MODEL_DIR, data: h.area('alpha', `inputs/${EVIL}.jsonl`), ...TINY_RUN } });
  expect(evil.status, evil.text).toBe(201);
  evilId = evil.json.id;
  // playwright gives each launch a fresh --user-data-dir of its own
  browser = await chromium.launch({ executablePath: CHROMIUM, args: FLAGS });
});

afterAll(async () => {
  await browser?.close();
  await h?.close();
});

describe('the dashboard in Chromium', () => {
  beforeEach(() => {
    problems.length = 0;
  });

  it('after 3 chunks a run shows both loss curves, the learning rate and a units × chunks heat map, and refreshes when a chunk commits', async () => {
    const { context, page } = await signedIn(h.tokens.alpha);
    await expect.poll(() => page.locator('#runs tbody tr').count()).toBe(2);
    await screenshot(page, 'dashboard-runs.png');

    await Promise.all([page.waitForURL(`${server.url}/runs/${runId}`), page.click(`a[href="/runs/${runId}"]`)]);
    await page.waitForSelector('#chart-loss canvas');
    await page.waitForSelector('#chart-lr canvas');
    expect(await page.locator('#chart-loss .u-legend .u-label').allTextContents()).toEqual(['step', 'training loss', 'held-out loss']);
    const [loss, heldOut] = await pixelsOf(page, 'chart-loss', [COLOURS.loss, COLOURS.heldOut]);
    const [lr] = await pixelsOf(page, 'chart-lr', [COLOURS.lr]);
    expect({ loss: loss > 100, heldOut: heldOut > 50, lr: lr > 100 }, `pixels drawn: loss ${loss}, held-out ${heldOut}, lr ${lr}`).toEqual({ loss: true, heldOut: true, lr: true });
    // 7 units (embed, layers.0-4, head) x 3 chunks
    expect(await page.locator('#heatmap tbody tr').count()).toBe(7);
    expect(await page.locator('#heatmap td.cell').count()).toBe(21);
    expect(await page.locator('#heatmap td.cell.off').count()).toBe(21 - 3 * 3);
    expect(await page.locator('#chunks tbody tr').count()).toBe(3);

    // a chunk commits while the page is open: the page's script swaps in the new state
    expect((await h.request(server, 'POST', `/v1/runs/${runId}/chunks`)).status).toBe(201);
    await expect.poll(() => page.locator('#chunks tbody tr').count(), { timeout: 30_000, interval: 500 }).toBe(4);
    expect(await page.locator('#heatmap td.cell').count()).toBe(28);
    await page.waitForSelector('#chart-loss canvas');
    expect((await pixelsOf(page, 'chart-loss', [COLOURS.heldOut]))[0]).toBeGreaterThan(50);
    await screenshot(page, 'dashboard-run.png');

    await page.click(`a[href="/runs/${runId}/chunks/0.json"]`);
    expect(JSON.parse((await page.locator('body').textContent())!)).toMatchObject({ runId, seq: 0 });
    await context.close();
    expect(problems).toEqual([]);
  });

  it('a run whose data field holds <script> renders it as text; zero chunks draw empty charts with a sentence', async () => {
    const { context, page } = await signedIn(h.tokens.alpha);
    await page.goto(`${server.url}/runs/${evilId}`);
    await page.waitForSelector('#chart-loss canvas');
    expect(await page.locator('#config tr:has(th:text-is("data")) td').textContent()).toBe(h.area('alpha', `inputs/${EVIL}.jsonl`));
    const scripts = await page.evaluate(() => [...document.scripts].map((s) => (s.src ? new URL(s.src).pathname : s.type)));
    expect(scripts).toEqual(['/assets/uplot.js', '/assets/dashboard.js', 'application/json']);
    expect(await page.locator('p.empty').first().textContent()).toBe('No chunk committed yet: the charts are empty until the first one commits.');
    expect(await page.locator('#heatmap td.cell').count()).toBe(0);
    await context.close();
    expect(problems).toEqual([]);
  });

  it("a second tenant's token sees no runs, and not the first tenant's run", async () => {
    const { context, page } = await signedIn(h.tokens.beta);
    expect(await page.locator('main').textContent()).toContain('No runs yet.');
    expect(await page.locator('header .scope').textContent()).toBe('tenant beta');
    const response = await page.goto(`${server.url}/runs/${runId}`);
    expect(response!.status()).toBe(404);
    expect(await page.locator('h1').textContent()).toBe('Not found');
    await context.close();
    // the browser reports the 404 itself, and nothing else
    expect(problems).toEqual([`${server.url}/runs/${runId}: console error: Failed to load resource: the server responded with a status of 404 (Not Found)`]);
  });
});
