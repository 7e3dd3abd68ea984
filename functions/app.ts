import { resolve } from 'node:path';
import { OpenAPIHono, createRoute, z } from '@hono/zod-openapi';
import { bodyLimit } from 'hono/body-limit';
import { HTTPException } from 'hono/http-exception';
import { requestId } from 'hono/request-id';
import type { Logger } from 'pino';
import PQueue from 'p-queue';
import { LisaError } from '../core/errors.ts';
import type { ObjectStore } from '../core/store/object-store.ts';
import { headManifest, listSeqs, readManifest } from '../core/store/manifest.ts';
import { checkRunId, readRunSpec } from '../core/store/run-spec.ts';
import { composeRuns, exportRun, parseSize, type ExportDtype, type MergeMethod } from '../core/merge/index.ts';
import { createRun } from '../core/train/create-run.ts';
import type { ResourceCache } from '../core/train/resources.ts';
import type { Sources } from '../core/train/sources.ts';
import { bearerToken, tenantOfToken, type TokenEntry } from './auth.ts';
import { ChunkRunner, type ChunkLimits } from './chunks.ts';
import { errorBody, internalErrorBody, InvalidRequestError, NotReadyError, statusOf, UnauthorizedError } from './errors.ts';
import { checkIdempotencyKey, IdempotencyInProgressError } from './idempotency.ts';
import type { Metrics } from './metrics.ts';
import {
  ChunkListQuery,
  ChunkListSchema,
  ChunkRequestSchema,
  ChunkSummarySchema,
  CompositionRequestBody,
  CompositionSummarySchema,
  ErrorSchema,
  ExportRequestBody,
  ExportSummarySchema,
  HealthSchema,
  RunConfigBody,
  RunIdParam,
  RunSpecSchema,
  RunStatusSchema,
  chunkSummary,
} from './schemas.ts';

/** Everything the app uses from outside; it reads no process globals itself. */
export interface AppDeps {
  /** a fresh view of the store for one tenant (per request, so byte meters are per request) */
  storeFor(tenant: string): ObjectStore;
  tokens: readonly TokenEntry[];
  cache: ResourceCache;
  sources: Sources;
  /** opens s3:// bases and export outputs, with the server's credentials */
  openStore: (url: string) => ObjectStore;
  pricing: { usdPerHour: number; accelerator: boolean };
  limits: ChunkLimits;
  /** allowed prefixes of base/data refs, `{tenant}` replaced by the caller's tenant; null = any */
  refPrefixes: readonly string[] | null;
  clock: () => number;
  logger: Logger;
  metrics: Metrics;
  /** false while the engine and caches warm up: /ping answers 204, chunks 503 */
  isReady: () => boolean;
}

export interface LisaApp {
  app: OpenAPIHono<Env>;
  chunks: ChunkRunner;
}

type Env = { Variables: { requestId: string; tenant: string; log: Logger } };

/** Second header for the tenant token, for platforms whose gateway owns Authorization (RunPod). */
export const TOKEN_HEADER = 'X-Lisa-Token';
const MAX_BODY_BYTES = 64 * 1024;

export class InvalidRefError extends LisaError {
  constructor(field: string, ref: string, allowed: string[]) {
    super('INVALID_REF', `${field} '${ref}' is outside the allowed locations: ${allowed.join(', ')}`, { field, ref, allowed });
  }
}

export class RefNotFoundError extends LisaError {
  constructor(what: string, options: { cause: unknown }) {
    super('REF_NOT_FOUND', `cannot read ${what}: it does not exist`, { what }, options);
  }
}

/**
 * Run creation reads only the base and data the client named, so a missing file or object there is
 * the client's mistake (422), not a server fault.
 */
async function readingRefs<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { details?: { key?: string; store?: string } };
    if (e?.code === 'ENOENT') throw new RefNotFoundError(e.path ?? 'a referenced file', { cause: err });
    if (err instanceof LisaError && err.code === 'STORE_NOT_FOUND') throw new RefNotFoundError(`${e.details?.store}/${e.details?.key}`, { cause: err });
    throw err;
  }
}

const jsonError = { content: { 'application/json': { schema: ErrorSchema } } };
const errors = (...statuses: number[]): Record<number, { description: string } & typeof jsonError> =>
  Object.fromEntries(statuses.map((s) => [s, { description: ERROR_DESCRIPTIONS[s] ?? 'error', ...jsonError }]));
const ERROR_DESCRIPTIONS: Record<number, string> = {
  400: 'invalid input: details.issues lists each field path and what was expected',
  401: 'missing or invalid bearer token',
  402: 'the run has spent its maxCostUsd (details.spentUsd)',
  404: "no such run for this tenant (other tenants' runs are not found either)",
  409: 'conflict: another attempt committed (details.winningSeq), run complete, or the same Idempotency-Key still running',
  413: 'request body over 64 KiB',
  415: 'request body not application/json',
  422: 'deadline too short for a step and the commit, an Idempotency-Key reused with another body, or a base/dataset that cannot be used',
  500: 'internal error; quote the request id',
  503: 'initializing or shutting down; retry',
};
const security = [{ bearer: [] }];

export function createApp(deps: AppDeps): LisaApp {
  const chunks = new ChunkRunner({
    cache: deps.cache,
    sources: deps.sources,
    pricing: deps.pricing,
    limits: deps.limits,
    clock: deps.clock,
    metrics: deps.metrics,
  });
  const app = new OpenAPIHono<Env>({
    defaultHook: (result) => {
      if (!result.success) throw validationError(result.error.issues);
    },
  });
  app.openAPIRegistry.registerComponent('securitySchemes', 'bearer', {
    type: 'http',
    scheme: 'bearer',
    description: `a tenant token (lisa token hash); may also be sent as ${TOKEN_HEADER} when a gateway owns Authorization`,
  });

  app.use(requestId());
  app.use(async (c, next) => {
    const t0 = deps.clock();
    c.set('log', deps.logger.child({ reqId: c.get('requestId') }));
    await next();
    const route = c.req.routePath || 'unmatched';
    const seconds = (deps.clock() - t0) / 1000;
    deps.metrics.httpRequests.inc({ method: c.req.method, route, status: String(c.res.status) });
    deps.metrics.httpDuration.observe({ method: c.req.method, route }, seconds);
    if (route !== '/ping' && route !== '/metrics' && route !== '/healthz') {
      c.get('log').info({ method: c.req.method, path: c.req.path, status: c.res.status, ms: Math.round(seconds * 1000), tenant: c.get('tenant') }, 'request');
    }
  });
  app.use('/v1/*', bodyLimit({ maxSize: MAX_BODY_BYTES, onError: () => { throw new InvalidRequestError('PAYLOAD_TOO_LARGE', `request body over ${MAX_BODY_BYTES} bytes`); } }));
  app.use('/v1/*', async (c, next) => {
    const token = c.req.header(TOKEN_HEADER) ?? bearerToken(c.req.header('Authorization'));
    if (token === null) throw new UnauthorizedError('missing');
    const tenant = tenantOfToken(deps.tokens, token);
    if (tenant === null) throw new UnauthorizedError('invalid');
    c.set('tenant', tenant);
    await next();
  });

  app.onError((err, c) => {
    const reqId = c.get('requestId');
    if (err instanceof HTTPException) err = fromHttpException(err);
    if (!(err instanceof LisaError)) {
      (c.get('log') ?? deps.logger).error({ err, reqId }, 'unhandled error');
      deps.metrics.errors.inc({ code: 'INTERNAL' });
      return c.json(internalErrorBody(reqId), 500);
    }
    const status = statusOf(err.code);
    deps.metrics.errors.inc({ code: err.code });
    const log = c.get('log') ?? deps.logger;
    if (status >= 500) log.error({ err, reqId }, err.message);
    else log.info({ code: err.code, status }, err.message);
    if (err instanceof UnauthorizedError) c.header('WWW-Authenticate', err.reason === 'missing' ? 'Bearer realm="lisa"' : 'Bearer realm="lisa", error="invalid_token"');
    if (err instanceof IdempotencyInProgressError) c.header('Retry-After', String(err.retryAfterSeconds));
    if (status === 503) c.header('Retry-After', '5');
    return c.json(errorBody(err, reqId), status);
  });
  app.notFound((c) => c.json(errorBody(new LisaError('NOT_FOUND', `no route ${c.req.method} ${c.req.path}`), c.get('requestId')), 404));

  const checkRefs = (tenant: string, refs: Record<string, string>): void => {
    if (deps.refPrefixes === null) return;
    const allowed = deps.refPrefixes.map((p) => p.replaceAll('{tenant}', tenant));
    for (const [field, ref] of Object.entries(refs)) {
      // URLs compare as written; local paths as the absolute path they resolve to
      const normalized = ref.includes('://') ? ref : resolve(ref);
      if (ref.split('/').includes('..') || !allowed.some((p) => normalized.startsWith(p))) throw new InvalidRefError(field, ref, allowed);
    }
  };

  app.openapi(
    createRoute({
      method: 'post',
      path: '/v1/runs',
      summary: 'create a run: validates the config, the base and the data, then claims a run id',
      security,
      request: { body: { content: { 'application/json': { schema: RunConfigBody } }, required: true } },
      responses: {
        201: { description: 'the stored run spec', content: { 'application/json': { schema: RunSpecSchema } } },
        ...errors(400, 401, 409, 413, 415, 422, 500),
      },
    }),
    async (c) => {
      const tenant = c.get('tenant');
      const input = c.req.valid('json');
      checkRefs(tenant, { base: input.base, data: input.data });
      const spec = await readingRefs(() =>
        createRun({ store: deps.storeFor(tenant), input, sources: deps.sources, cache: deps.cache, now: new Date(deps.clock()) }),
      );
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
    async (c) => {
      const { id } = c.req.valid('param');
      const store = deps.storeFor(c.get('tenant'));
      const spec = await readRunSpec(store, id);
      const head = await headManifest(store, id);
      const t = head?.totals ?? { steps: 0, tokens: 0, seconds: 0, costUsd: 0, bytesIn: 0, bytesOut: 0 };
      return c.json(
        {
          ...spec,
          head: head ? chunkSummary(head) : null,
          totals: { steps: t.steps, tokens: t.tokens, seconds: t.seconds, costUsd: t.costUsd, bytes: { in: t.bytesIn, out: t.bytesOut } },
          complete: (head?.globalStep ?? 0) >= spec.config.steps,
        },
        200,
      );
    },
  );

  app.openapi(
    createRoute({
      method: 'post',
      path: '/v1/runs/{id}/chunks',
      summary: 'train one chunk (the rest of the current LISA period) synchronously and commit it',
      description:
        'Honours deadlineSeconds, capped by the platform limit minus a safety margin. With an Idempotency-Key, a retry returns the ' +
        'first result and trains nothing (Idempotent-Replayed: true); while the first is still running, a retry on the same ' +
        'instance waits for it and one on another instance gets 409 IDEMPOTENCY_IN_PROGRESS with Retry-After.',
      security,
      request: {
        params: RunIdParam,
        headers: z.object({ 'idempotency-key': z.string().optional().openapi({ description: '1-255 visible ASCII characters' }) }),
        body: { content: { 'application/json': { schema: ChunkRequestSchema } }, required: false },
      },
      responses: {
        201: { description: 'the committed chunk', content: { 'application/json': { schema: ChunkSummarySchema } } },
        ...errors(400, 401, 402, 404, 409, 413, 415, 422, 500, 503),
      },
    }),
    async (c) => {
      const arrival = deps.clock();
      const { id } = c.req.valid('param');
      const body = c.req.valid('json') ?? {};
      const key = c.req.header('Idempotency-Key');
      if (key !== undefined) checkIdempotencyKey(key);
      checkRunId(id);
      if (!deps.isReady()) throw new NotReadyError();
      const result = await chunks.handle({
        tenant: c.get('tenant'),
        store: deps.storeFor(c.get('tenant')),
        runId: id,
        deadlineSeconds: body.deadlineSeconds,
        idempotencyKey: key,
        arrival,
        log: c.get('log'),
      });
      if (result.replayed) c.header('Idempotent-Replayed', 'true');
      return c.json(result.body, 201);
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/v1/runs/{id}/chunks',
      summary: 'committed chunks of a run, oldest first, paged by seq',
      security,
      request: { params: RunIdParam, query: ChunkListQuery },
      responses: {
        200: { description: 'chunk summaries', content: { 'application/json': { schema: ChunkListSchema } } },
        ...errors(400, 401, 404, 500),
      },
    }),
    async (c) => {
      const { id } = c.req.valid('param');
      const { from, limit } = c.req.valid('query');
      const store = deps.storeFor(c.get('tenant'));
      await readRunSpec(store, id);
      const seqs = (await listSeqs(store, id)).filter((s) => s >= from);
      const page = seqs.slice(0, limit);
      const queue = new PQueue({ concurrency: 8 });
      const manifests = await Promise.all(page.map((s) => queue.add(() => readManifest(store, id, s))));
      return c.json({ chunks: manifests.map(chunkSummary), next: seqs[limit] ?? null }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'post',
      path: '/v1/runs/{id}/exports',
      summary: 'write the run (at a committed seq) as a merged Hugging Face model, or as a delta package',
      description: 'Synchronous: it must finish within the platform request limit. The output must be a new or empty location.',
      security,
      request: { params: RunIdParam, body: { content: { 'application/json': { schema: ExportRequestBody } }, required: true } },
      responses: {
        201: { description: 'what was written', content: { 'application/json': { schema: ExportSummarySchema } } },
        ...errors(400, 401, 404, 409, 413, 415, 422, 500),
      },
    }),
    async (c) => {
      const { id } = c.req.valid('param');
      const body = c.req.valid('json');
      const tenant = c.get('tenant');
      checkRefs(tenant, { out: body.out });
      const store = deps.storeFor(tenant);
      await readRunSpec(store, id);
      const summary = await exportRun({
          store,
          runId: id,
          at: body.at,
          out: body.out,
          dtype: body.dtype as ExportDtype,
          shardSize: shardBytes(body.shardSize),
          delta: body.delta,
          adapter: body.adapter,
          openStore: deps.openStore,
          now: deps.clock,
        });
      return c.json(summary, 201);
    },
  );

  app.openapi(
    createRoute({
      method: 'post',
      path: '/v1/compositions',
      summary: "merge several of the tenant's runs on one base (linear, task arithmetic, TIES, DARE) into a model",
      description: 'Synchronous: it must finish within the platform request limit. The output must be a new or empty location.',
      security,
      request: { body: { content: { 'application/json': { schema: CompositionRequestBody } }, required: true } },
      responses: {
        201: { description: 'what was written', content: { 'application/json': { schema: CompositionSummarySchema } } },
        ...errors(400, 401, 404, 409, 413, 415, 422, 500),
      },
    }),
    async (c) => {
      const body = c.req.valid('json');
      const tenant = c.get('tenant');
      checkRefs(tenant, { base: body.base, out: body.out });
      const summary = await composeRuns({
          base: body.base,
          runs: body.runs.map((r) => ({ runId: r.id, weight: r.weight, at: r.at })),
          store: deps.storeFor(tenant),
          method: body.method as MergeMethod,
          density: body.density,
          lambda: body.lambda,
          seed: body.seed,
          consensus: body.consensus,
          out: body.out,
          dtype: body.dtype as ExportDtype,
          shardSize: shardBytes(body.shardSize),
          openStore: deps.openStore,
          now: deps.clock,
        });
      return c.json(summary, 201);
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/healthz',
      summary: 'liveness: 200 while the process serves requests',
      responses: { 200: { description: 'alive', content: { 'application/json': { schema: HealthSchema } } } },
    }),
    (c) => c.json({ status: 'ok' as const, ready: deps.isReady(), draining: chunks.isDraining, chunksInFlight: chunks.chunksInFlight }, 200),
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/ping',
      summary: 'load-balancer readiness (RunPod): 200 ready, 204 initializing, 503 draining',
      responses: {
        200: { description: 'ready', content: { 'application/json': { schema: z.object({ status: z.literal('healthy') }) } } },
        204: { description: 'initializing' },
        503: { description: 'shutting down', content: { 'application/json': { schema: z.object({ status: z.literal('draining') }) } } },
      },
    }),
    (c) => {
      if (chunks.isDraining) return c.json({ status: 'draining' as const }, 503);
      if (!deps.isReady()) return c.body(null, 204);
      return c.json({ status: 'healthy' as const }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/metrics',
      summary: 'Prometheus metrics',
      responses: { 200: { description: 'text exposition format', content: { 'text/plain': { schema: z.string() } } } },
    }),
    async (c) => c.text(await deps.metrics.registry.metrics(), 200, { 'Content-Type': deps.metrics.registry.contentType }),
  );

  app.doc31('/openapi.json', {
    openapi: '3.1.0',
    info: { title: 'lisa-fn', version: '1', description: 'LISA fine-tuning as short, resumable function calls' },
  });

  return { app, chunks };
}

function validationError(issues: z.core.$ZodIssue[]): InvalidRequestError {
  const list = issues.flatMap((i) =>
    i.code === 'unrecognized_keys'
      ? i.keys.map((k) => ({ path: [...i.path, k].join('.'), message: 'unknown field; expected one of the documented fields' }))
      : [{ path: i.path.length ? i.path.join('.') : '(body)', message: i.message }],
  );
  return new InvalidRequestError('INVALID_REQUEST', `invalid request: ${list.map((i) => `${i.path}: ${i.message}`).join('; ')}`, { issues: list });
}

const shardBytes = (size: number | string | undefined): number | undefined => (typeof size === 'string' ? parseSize(size) : size);

/** hono's own 4xx (body parsing) as stable codes; anything else stays an unexpected error. */
function fromHttpException(err: HTTPException): Error {
  if (err.status === 400) return new InvalidRequestError('INVALID_JSON', `request body is not valid JSON (${err.message})`);
  if (err.status === 415) return new InvalidRequestError('UNSUPPORTED_MEDIA_TYPE', 'send the request body as application/json');
  return err.status < 500 ? new InvalidRequestError('INVALID_REQUEST', err.message) : err;
}
