import type { Logger } from 'pino';
import { chunkSummary, IdempotencyInProgressError, keyHash, requestHash, type ChunkSummary, type Runs, type RunSpec } from '../core/index.ts';
import { ShuttingDownError } from './errors.ts';
import { recordCommit, type Metrics } from './metrics.ts';

export interface ChunkLimits {
  /** the platform's per-request limit; null = none */
  platformTimeoutSeconds: number | null;
  /** kept free under the platform limit for the response to get out */
  safetyMarginSeconds: number;
  commitReserveSeconds?: number;
  /** how long an idempotency claim holds when a chunk has no deadline at all */
  unboundedClaimSeconds?: number;
}

export interface ChunkRunnerDeps {
  pricing: { usdPerHour: number };
  limits: ChunkLimits;
  clock: () => number;
  metrics: Metrics;
}

export interface ChunkRequest {
  tenant: string;
  /** the tenant's runs */
  runs: Runs;
  runId: string;
  deadlineSeconds?: number;
  idempotencyKey?: string;
  /** when the request arrived: the platform's clock started then, not when the chunk starts */
  arrival: number;
  log: Logger;
}

export interface ChunkResponse {
  body: ChunkSummary;
  /** true when this request trained nothing and returns an earlier request's result */
  replayed: boolean;
}

/** Claims outlive the chunk's deadline by this much, for the upload, commit and the result write. */
const CLAIM_GRACE_SECONDS = 60;

/**
 * Runs chunks for many runs in one process. Chunks of the same run are serialized (each waits for
 * the previous one to commit and then continues from it) so concurrent requests do not race each
 * other into conflicts; other instances can still race, and the loser's ChunkConflictError names
 * the seq that won. The base/dataset cache (in the Runs) is shared by all runs.
 */
export class ChunkRunner {
  private readonly tails = new Map<string, Promise<void>>();
  private readonly joins = new Map<string, Promise<ChunkSummary>>();
  private readonly inFlight = new Set<Promise<unknown>>();
  private draining = false;
  private readonly stopping = new AbortController();

  constructor(private readonly deps: ChunkRunnerDeps) {}

  get chunksInFlight(): number {
    return this.inFlight.size;
  }

  get isDraining(): boolean {
    return this.draining;
  }

  /** Effective chunk length: the request's wish, capped by the platform limit minus the margin. */
  chunkSeconds(requested: number | undefined): number | undefined {
    const { platformTimeoutSeconds: limit, safetyMarginSeconds: margin } = this.deps.limits;
    const cap = limit === null ? undefined : limit - margin;
    if (requested === undefined) return cap;
    return cap === undefined ? requested : Math.min(requested, cap);
  }

  async handle(req: ChunkRequest): Promise<ChunkResponse> {
    if (this.draining) throw new ShuttingDownError();
    // 404 before anything is written under the run's prefix; the one read of run.json for this chunk
    const spec = await req.runs.spec(req.runId);
    const key = req.idempotencyKey;
    if (key === undefined) return { body: await this.track(this.serialized(req, spec)), replayed: false };

    const joinKey = `${req.tenant}/${req.runId}/${keyHash(key)}`;
    const running = this.joins.get(joinKey);
    if (running) return { body: await running, replayed: true };
    let replayed = false;
    const p = this.track(
      (async () => {
        const seconds = this.chunkSeconds(req.deadlineSeconds);
        const ttl = (seconds ?? this.deps.limits.unboundedClaimSeconds ?? 3600) + CLAIM_GRACE_SECONDS;
        const claim = await req.runs.claimIdempotencyKey(req.runId, key, requestHash({ deadlineSeconds: req.deadlineSeconds }), ttl);
        if (claim.kind === 'replay') {
          replayed = true;
          return claim.response.body as ChunkSummary;
        }
        if (claim.kind === 'busy') throw new IdempotencyInProgressError(req.runId, claim.retryAfterSeconds);
        let body: ChunkSummary;
        try {
          body = await this.serialized(req, spec);
        } catch (err) {
          await claim.release().catch((e: unknown) => req.log.warn({ err: e }, 'could not release idempotency claim'));
          throw err;
        }
        return (await claim.complete({ status: 201, body })).body as ChunkSummary;
      })(),
    );
    this.joins.set(joinKey, p);
    const forget = (): void => void (this.joins.get(joinKey) === p && this.joins.delete(joinKey));
    p.then(forget, forget);
    return { body: await p, replayed };
  }

  /**
   * Stops starting chunks (queued ones fail with SERVER_SHUTTING_DOWN) and waits up to `timeoutMs` for
   * running ones to commit. True when everything settled in time.
   */
  async drain(timeoutMs: number): Promise<boolean> {
    this.draining = true;
    // Running chunks stop stepping and commit what they trained, so the grace period is spent on uploads.
    this.stopping.abort();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), timeoutMs);
    });
    const settled = Promise.allSettled([...this.inFlight]).then(() => true as const);
    try {
      return await Promise.race([settled, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  private track<T>(p: Promise<T>): Promise<T> {
    this.inFlight.add(p);
    this.deps.metrics.chunksInFlight.set(this.inFlight.size);
    const done = (): void => {
      this.inFlight.delete(p);
      this.deps.metrics.chunksInFlight.set(this.inFlight.size);
    };
    p.then(done, done);
    return p;
  }

  /** One chunk, after every earlier chunk of the same run in this process has finished. */
  private serialized(req: ChunkRequest, spec: RunSpec): Promise<ChunkSummary> {
    const runKey = `${req.tenant}/${req.runId}`;
    const prev = this.tails.get(runKey) ?? Promise.resolve();
    const result = prev.then(() => this.runOne(req, spec));
    const tail = result.then(
      () => undefined,
      () => undefined,
    );
    this.tails.set(runKey, tail);
    void tail.then(() => {
      if (this.tails.get(runKey) === tail) this.tails.delete(runKey);
    });
    return result;
  }

  private async runOne(req: ChunkRequest, spec: RunSpec): Promise<ChunkSummary> {
    if (this.draining) throw new ShuttingDownError();
    const seconds = this.chunkSeconds(req.deadlineSeconds);
    const { metrics, pricing, limits } = this.deps;
    try {
      const manifest = await req.runs.chunk(spec, {
        deadline: seconds === undefined ? undefined : req.arrival + seconds * 1000,
        commitReserveSeconds: limits.commitReserveSeconds,
        usdPerHour: pricing.usdPerHour,
        signal: this.stopping.signal,
      });
      recordCommit(metrics, req.tenant, manifest);
      req.log.info(
        { runId: req.runId, seq: manifest.seq, steps: manifest.globalStep - manifest.startStep, stoppedBy: manifest.stoppedBy, costUsd: manifest.costUsd, seconds: manifest.seconds.wall },
        'chunk committed',
      );
      return chunkSummary(manifest);
    } catch (err) {
      metrics.chunks.inc({ tenant: req.tenant, outcome: (err as { code?: string }).code ?? 'INTERNAL' });
      throw err;
    }
  }
}
