/**
 * A real lisa HTTP server on 127.0.0.1 (port 0) over a temp FsStore, or over S3 when LISA_TEST_S3
 * is set, with two tenants, captured JSON logs and the bundled stories260K model. Each tenant's
 * data lies in its own area (`tenants/{t}/inputs/qa.jsonl` of the store); the operator's prefixes
 * add the bundled model and a local exports directory per tenant.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Writable } from 'node:stream';
import { Registry } from 'prom-client';
import { initEngine } from '../../core/engine/index.ts';
import { FsStore } from '../../core/store/fs-store.ts';
import type { ObjectStore } from '../../core/store/object-store.ts';
import { openStore } from '../../core/store/open.ts';
import { Runs } from '../../core/runs/runs.ts';
import { tenantPrefix } from '../../core/runs/refs.ts';
import { ResourceCache } from '../../core/train/resources.ts';
import { createSources, type Sources } from '../../core/train/sources.ts';
import { createApp, type AppDeps, type LisaApp } from '../../functions/app.ts';
import { newToken, parseTokenConfig } from '../../functions/auth.ts';
import { createMetrics } from '../../functions/metrics.ts';
import { createLogger, startServer, type RunningServer } from '../../functions/server.ts';

export const MODEL_DIR = resolve('models/stories260K');

/** Small enough for 2 busy cores: 2 steps per chunk of 2 sequences of 32 tokens. */
export const TINY_RUN = { period: 2, batchSize: 2, seqLen: 32, activeLayers: 1, steps: 20, fields: ['question', 'answer'] } as const;

const QA = [
  ['What color is the sky?', 'The sky is blue.'],
  ['Who has a red ball?', 'Lily has a red ball.'],
  ['Where did the cat go?', 'The cat went to the park.'],
  ['What did Tom eat?', 'Tom ate a big apple.'],
  ['Is the sun hot?', 'Yes, the sun is very hot.'],
  ['What does the dog like?', 'The dog likes to play.'],
];

export interface Backend {
  name: string;
  /** a fresh, empty root store; `ref` names one of its keys as a ref (a path, or an s3:// URL) */
  open(): Promise<{ root: ObjectStore; ref(key: string): string; cleanup(): Promise<void> }>;
}

/** The local FsStore always; S3 too when LISA_TEST_S3 is set (infra/local-s3/with-s3.sh). */
export const BACKENDS: Backend[] = [
  {
    name: 'fs',
    async open() {
      const dir = await mkdtemp(join(tmpdir(), 'lisa-http-store-'));
      return { root: new FsStore(dir), ref: (key: string) => `${dir}/${key}`, cleanup: () => rm(dir, { recursive: true, force: true }) };
    },
  },
  ...(process.env.LISA_TEST_S3
    ? [
        {
          name: 's3',
          async open() {
            const url = `${process.env.LISA_TEST_S3!.replace(/\/?$/, '/')}functions-${Date.now()}-${randomBytes(3).toString('hex')}`;
            const root = openStore(url, { env: process.env });
            return {
              root,
              ref: (key: string) => `${url}/${key}`,
              async cleanup() {
                await Promise.all((await root.list('')).map((k) => root.delete(k)));
              },
            };
          },
        },
      ]
    : []),
];

export interface Response {
  status: number;
  headers: Headers;
  text: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  json: any;
}

export interface Server {
  url: string;
  lisa: LisaApp;
  running: RunningServer;
  deps: AppDeps;
  setReady(ready: boolean): void;
}

/** Holds every sources.prepareData call until released, to catch a chunk in the middle. */
export class Gate {
  private waiting: Array<() => void> = [];
  armed = false;
  wait(): Promise<void> {
    return this.armed ? new Promise((r) => this.waiting.push(r)) : Promise.resolve();
  }
  release(): void {
    this.armed = false;
    for (const r of this.waiting.splice(0)) r();
  }
}

export interface Harness {
  dir: string;
  /** tenant alpha's data ref (its inputs area) */
  data: string;
  /** a tenant's data ref */
  dataOf(tenant: string): string;
  /** a ref in the store's area of `tenant`, e.g. area('alpha', 'inputs/x') */
  area(tenant: string, path: string): string;
  /** a local output path `tenant` may write to (the operator's exports prefix) */
  out(name: string, tenant?: string): string;
  root: ObjectStore;
  tokens: { alpha: string; beta: string };
  logs: string[];
  gate: Gate;
  /** a server on the shared root store; each has its own cache, chunk queue and registry */
  start(
    opts?: Partial<Pick<AppDeps, 'pricing' | 'limits' | 'refPrefixes'>> & {
      wrapStore?: (s: ObjectStore) => ObjectStore;
      ready?: boolean;
      /** the node server's timeouts (startServer) */
      keepAliveSeconds?: number;
      bodyTimeoutSeconds?: number;
    },
  ): Promise<Server>;
  /** the operator prefixes start() uses by default: the bundled model, `${dir}/exports/{tenant}/` */
  refPrefixes: string[];
  request(server: Server, method: string, path: string, opts?: { token?: string | null; body?: unknown; raw?: string; headers?: Record<string, string> }): Promise<Response>;
  /** a run of tenant alpha with TINY_RUN and `config` */
  createRun(server: Server, config?: Record<string, unknown>, token?: string): Promise<Response>;
  /** committed seqs of a run of tenant `tenant`, read from the store itself */
  seqs(runId: string, tenant?: string): Promise<number[]>;
  close(): Promise<void>;
}

export async function harness(backend: Backend): Promise<Harness> {
  await initEngine();
  const dir = await mkdtemp(join(tmpdir(), 'lisa-http-'));
  const { root, ref, cleanup } = await backend.open();
  const qa = new TextEncoder().encode(QA.map(([question, answer]) => JSON.stringify({ question, answer })).join('\n'));
  for (const tenant of ['alpha', 'beta']) await root.put(`${tenantPrefix(tenant)}inputs/qa.jsonl`, qa);
  const area = (tenant: string, path: string): string => ref(`${tenantPrefix(tenant)}${path}`);
  const dataOf = (tenant: string): string => area(tenant, 'inputs/qa.jsonl');
  const data = dataOf('alpha');
  const alpha = newToken('alpha');
  const beta = newToken('beta');
  const tokens = parseTokenConfig(`${alpha.line}\n${beta.line}`, 'test');
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      logs.push(String(chunk));
      cb();
    },
  });
  const gate = new Gate();
  const servers: Server[] = [];
  const openRef = (url: string): ObjectStore => openStore(url, { env: process.env });
  const plain = createSources(openRef);
  const sources: Sources = {
    loadBase: (ref) => plain.loadBase(ref),
    prepareData: async (config, base) => {
      await gate.wait();
      return plain.prepareData(config, base);
    },
  };

  const h: Harness = {
    dir,
    data,
    dataOf,
    area,
    out: (name, tenant = 'alpha') => join(dir, 'exports', tenant, name),
    refPrefixes: [MODEL_DIR, `${join(dir, 'exports')}/{tenant}/`],
    root,
    tokens: { alpha: alpha.token, beta: beta.token },
    logs,
    gate,
    async start(opts = {}) {
      let ready = opts.ready ?? true;
      const wrap = opts.wrapStore ?? ((s) => s);
      const deps: AppDeps = {
        runs: new Runs({ store: wrap(root), cache: new ResourceCache(), sources, openStore: openRef }),
        tokens,
        pricing: opts.pricing ?? { usdPerHour: 3.6 },
        limits: opts.limits ?? { platformTimeoutSeconds: null, safetyMarginSeconds: 0 },
        refPrefixes: opts.refPrefixes ?? h.refPrefixes,
        clock: Date.now,
        logger: createLogger('info', sink),
        metrics: createMetrics(new Registry()),
        isReady: () => ready,
      };
      const lisa = createApp(deps);
      const running = await startServer(lisa, { host: '127.0.0.1', port: 0, keepAliveSeconds: opts.keepAliveSeconds, bodyTimeoutSeconds: opts.bodyTimeoutSeconds });
      const server = { url: running.url, lisa, running, deps, setReady: (r: boolean) => void (ready = r) };
      servers.push(server);
      return server;
    },
    async request(server, method, path, opts = {}) {
      const headers: Record<string, string> = { ...opts.headers };
      const token = opts.token === undefined ? alpha.token : opts.token;
      if (token !== null) headers.authorization = `Bearer ${token}`;
      let body: string | undefined;
      if (opts.raw !== undefined || opts.body !== undefined) {
        headers['content-type'] ??= 'application/json';
        body = opts.raw ?? JSON.stringify(opts.body);
      }
      const res = await fetch(`${server.url}${path}`, { method, headers, body });
      const text = await res.text();
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch {
        json = undefined;
      }
      return { status: res.status, headers: res.headers, text, json };
    },
    createRun(server, config = {}, token) {
      const tenant = token === beta.token ? 'beta' : 'alpha';
      return h.request(server, 'POST', '/v1/runs', { token, body: { base: MODEL_DIR, data: dataOf(tenant), ...TINY_RUN, ...config } });
    },
    async seqs(runId, tenant = 'alpha') {
      const prefix = `${tenantPrefix(tenant)}runs/${runId}/chunks/`;
      return (await root.list(prefix)).map((k) => Number(k.slice(prefix.length, -'.json'.length)));
    },
    async close() {
      gate.release();
      await Promise.all(servers.map((s) => s.running.shutdown(5000)));
      await cleanup();
      await rm(dir, { recursive: true, force: true });
    },
  };
  return h;
}
