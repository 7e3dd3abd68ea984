/**
 * The run operations: the one place that owns run rules for both front ends (the `lisa` command
 * and the HTTP function). Each operation checks the refs it is given against the caller's policy
 * and turns a missing or unreadable path into a coded error before it touches anything; the store
 * layout, the chunk pipeline and the exports stay in core/store, core/train and core/merge.
 */
import { fileURLToPath } from 'node:url';
import PQueue from 'p-queue';
import { acceleratorInUse } from '../engine/index.ts';
import { composeRuns, exportRun, type ComposeOptions, type ComposeSummary, type ExportRunOptions, type RunExportSummary } from '../merge/index.ts';
import { gcRun, type GcResult } from '../store/gc.ts';
import { manifestKey, runIdOfSpecKey, runSpecKey } from '../store/keys.ts';
import { headManifest, listSeqs, readManifest, type ChunkManifest } from '../store/manifest.ts';
import type { ObjectStore } from '../store/object-store.ts';
import { PrefixedStore } from '../store/prefixed.ts';
import { parseRunConfig, readRunSpec, type RunConfigInput, type RunSpec } from '../store/run-spec.ts';
import { runChunk, type StepEvent } from '../train/chunk.ts';
import { createRun } from '../train/create-run.ts';
import type { ResourceCache } from '../train/resources.ts';
import { loadRunModel, type RunModel } from '../train/run-model.ts';
import type { Sources } from '../train/sources.ts';
import { readOrName, runHistory, type RunHistory, type RunOverview } from './history.ts';
import { claimKey, type ClaimOutcome } from './idempotency.ts';
import { compositionRecord, exportRecord, listOutputKeys, putOutputRecord, readOutputRecord, type OutputRecord } from './outputs.ts';
import { ANY_REF, checkLocalRef, checkRefAllowed, tenantPrefix, tenantRefPolicy, usingRefs, type RefField, type RefPolicy } from './refs.ts';
import { runStatus, type RunStatus } from './status.ts';

export interface RunsOptions {
  /** where the runs live */
  store: ObjectStore;
  /** opens the bases and data runs refer to */
  sources: Sources;
  /** bases and datasets kept in memory between operations */
  cache: ResourceCache;
  /** opens s3:// bases, data and outputs, with the process's credentials */
  openStore: (url: string) => ObjectStore;
  /** which refs callers may name; default any (a local user) */
  refs?: RefPolicy;
  clock?: () => number;
  /** told what went wrong when an output was written but its record could not be */
  log?: (msg: string) => void;
}

export interface ChunkRequest {
  /** absolute deadline (ms since the epoch, the clock's); stepping stops in time to commit */
  deadline?: number;
  /** stops stepping after the current step, then commits (the host is shutting down) */
  signal?: AbortSignal;
  commitReserveSeconds?: number;
  /** price of this machine, for metering: cost = wall seconds x price */
  usdPerHour?: number;
  onStep?: (e: StepEvent) => void;
}

export type ExportRequest = Omit<ExportRunOptions, 'store' | 'runId' | 'openStore' | 'now'>;
export type ComposeRequest = Omit<ComposeOptions, 'store' | 'openStore' | 'now'>;

export class Runs {
  readonly store: ObjectStore;
  readonly refs: RefPolicy;
  private readonly clock: () => number;

  constructor(private readonly opts: RunsOptions) {
    this.store = opts.store;
    this.refs = opts.refs ?? ANY_REF;
    this.clock = opts.clock ?? Date.now;
  }

  /**
   * One tenant's runs: a view of `tenants/{tenant}/` (its own byte meter), sharing the caches,
   * with refs confined to the tenant's area plus `refPrefixes`.
   */
  forTenant(tenant: string, refPrefixes: readonly string[] = []): Runs {
    return new Runs({
      ...this.opts,
      store: new PrefixedStore(this.store, tenantPrefix(tenant)),
      refs: tenantRefPolicy(this.store.url, tenant, refPrefixes),
    });
  }

  /** Validates the config, the base and the data, then claims the run id (RUN_EXISTS if taken). */
  async create(input: RunConfigInput, opts: { id?: string } = {}): Promise<RunSpec> {
    // the config's own errors first, so the refs checked below are strings
    const { base, data } = parseRunConfig(input);
    await this.checkRef('base', base, 'dir', 'read');
    await this.checkRef('data', data, 'file', 'read');
    const { store, sources, cache } = this.opts;
    return this.using({ base, data }, () => createRun({ store, input, sources, cache, runId: opts.id, now: new Date(this.clock()) }));
  }

  /** The run's spec: one GET of its run.json (RUN_NOT_FOUND when there is none). */
  spec(runId: string): Promise<RunSpec> {
    return this.using({}, () => readRunSpec(this.store, runId));
  }

  /**
   * Trains one chunk (the rest of the current period) and commits it. `run` is the id, or the spec
   * a caller has already read, so run.json is read once per chunk. Accelerator seconds are billed
   * when the engine runs on a GPU.
   */
  async chunk(run: string | RunSpec, req: ChunkRequest = {}): Promise<ChunkManifest> {
    const spec = typeof run === 'string' ? await this.spec(run) : run;
    const { store, sources, cache } = this.opts;
    return this.using({ base: spec.config.base, data: spec.config.data }, () =>
      runChunk({ ...req, store, run: spec, sources, cache, accelerator: acceleratorInUse(), now: this.clock }),
    );
  }

  /**
   * Every run id in the store, sorted: one listing of every key under runs/ (the store has no
   * cheaper way to find the run.json objects; the README's Dashboard section has what that costs).
   */
  async list(): Promise<string[]> {
    const keys = await this.using({}, () => this.store.list('runs/'));
    return keys.map(runIdOfSpecKey).filter((id): id is string => id !== null);
  }

  /** Each run's status, oldest id first; a run whose run.json or head manifest is damaged is named, not thrown. */
  async overview(): Promise<RunOverview[]> {
    const queue = new PQueue({ concurrency: 8 });
    return Promise.all(
      (await this.list()).map((id) =>
        queue.add(async () => {
          const read = await readOrName(runSpecKey(id), () => this.status(id));
          return 'value' in read ? { id, status: read.value } : { id, unreadable: read.unreadable };
        }),
      ),
    );
  }

  /**
   * Everything recorded about a run: every chunk and every export or composition record; damaged
   * ones are named and the rest returned (RunHistory). A damaged run.json is thrown.
   */
  async history(runId: string): Promise<RunHistory> {
    const spec = await this.spec(runId);
    const [seqs, outputKeys] = await this.using({}, () => Promise.all([listSeqs(this.store, runId), listOutputKeys(this.store, runId)]));
    const queue = new PQueue({ concurrency: 8 });
    const [manifests, outputs] = await this.using({}, () =>
      Promise.all([
        Promise.all(seqs.map((seq) => queue.add(() => readOrName(manifestKey(runId, seq), () => readManifest(this.store, runId, seq))))),
        Promise.all(outputKeys.map((key) => queue.add(() => readOrName(key, () => readOutputRecord(this.store, key))))),
      ]),
    );
    return runHistory(spec, manifests, outputs);
  }

  /** One committed manifest as stored, unit map included. */
  async manifest(runId: string, seq: number): Promise<ChunkManifest> {
    await this.spec(runId);
    return this.using({}, () => readManifest(this.store, runId, seq));
  }

  /** The spec, the latest chunk and the running totals. */
  async status(runId: string): Promise<RunStatus> {
    const spec = await this.spec(runId);
    return runStatus(spec, await this.using({}, () => headManifest(this.store, runId)));
  }

  /** Committed chunks from seq `from` on, oldest first, at most `limit`; `next` is the seq after them. */
  async chunks(run: string | RunSpec, page: { from?: number; limit?: number } = {}): Promise<{ chunks: ChunkManifest[]; next: number | null }> {
    const runId = typeof run === 'string' ? (await this.spec(run)).id : run.id;
    const seqs = (await this.using({}, () => listSeqs(this.store, runId))).filter((s) => s >= (page.from ?? 0));
    const limit = page.limit ?? seqs.length;
    const queue = new PQueue({ concurrency: 8 });
    const chunks = await this.using({}, () => Promise.all(seqs.slice(0, limit).map((s) => queue.add(() => readManifest(this.store, runId, s)))));
    return { chunks, next: seqs[limit] ?? null };
  }

  /** Writes the run at a seq as a merged model (or a delta package) to `out`. */
  async export(runId: string, req: ExportRequest): Promise<RunExportSummary> {
    await this.checkRef('out', req.out, req.delta ? 'file' : 'dir', 'write');
    if (req.base !== undefined) await this.checkRef('base', req.base, 'dir', 'read');
    const refs = { out: req.out, ...(req.base !== undefined ? { base: req.base } : {}) };
    const summary = await this.using(refs, () => exportRun({ ...req, store: this.store, runId, openStore: this.opts.openStore, now: this.clock }));
    await this.record([runId], exportRecord(summary, req, new Date(this.clock())));
    return summary;
  }

  /** Merges several runs of one base into a model at `out`. */
  async compose(req: ComposeRequest): Promise<ComposeSummary> {
    await this.checkRef('base', req.base, 'dir', 'read');
    await this.checkRef('out', req.out, 'dir', 'write');
    const summary = await this.using({ base: req.base, out: req.out }, () => composeRuns({ ...req, store: this.store, openStore: this.opts.openStore, now: this.clock }));
    // runs read from another store keep no record here
    const here = new Set(req.runs.filter((r) => r.store === undefined).map((r) => r.runId));
    await this.record([...here], compositionRecord(summary, req, new Date(this.clock())));
    return summary;
  }

  /** Deletes the run's unit objects no manifest references (those of uncommitted seqs after `graceSeconds`). */
  gc(runId: string, opts: { graceSeconds?: number } = {}): Promise<GcResult> {
    return this.using({}, () => gcRun(this.store, runId, { graceSeconds: opts.graceSeconds, now: new Date(this.clock()) }));
  }

  /** The run's model at a committed seq (default the head; -1 the base), for generation. The caller disposes it. */
  async model(runId: string, at?: number): Promise<RunModel> {
    const spec = await this.spec(runId);
    const { store, sources, cache } = this.opts;
    return this.using({ base: spec.config.base, data: spec.config.data }, () => loadRunModel({ store, run: spec, at, sources, cache }));
  }

  /**
   * Claims an idempotency key for a request on the run (see idempotency.ts): the recorded response
   * to replay, busy, or the claim to complete or release.
   */
  claimIdempotencyKey(runId: string, key: string, requestHash: string, ttlSeconds: number): Promise<ClaimOutcome> {
    return claimKey(this.store, runId, key, requestHash, this.clock, ttlSeconds);
  }

  /**
   * Records a finished output in each run's area (outputs.ts). The output is already complete, so a
   * record that cannot be written is logged, not thrown: the caller would otherwise retry an
   * export that succeeded, and find its output taken.
   */
  private async record(runIds: string[], record: OutputRecord): Promise<void> {
    const failed = await Promise.allSettled(runIds.map((id) => putOutputRecord(this.store, id, record)));
    failed.forEach((r, i) => {
      if (r.status === 'rejected') this.opts.log?.(`${record.kind} to ${record.out} is complete, but its record in run '${runIds[i]}' could not be stored: ${(r.reason as Error).message}`);
    });
  }

  /**
   * Runs `work`, turning a failure to use one of `refs` into its coded error. A local user's
   * directory store counts as a ref too; a confined caller's store is the operator's, whose
   * failures are not the caller's to fix (they stay server errors).
   */
  private using<T>(refs: Partial<Record<RefField, string>>, work: () => Promise<T>): Promise<T> {
    const local = this.store.url.startsWith('file://') && !this.refs.confined;
    return usingRefs(local ? { ...refs, store: fileURLToPath(this.store.url) } : refs, work);
  }

  private async checkRef(field: 'base' | 'data' | 'out', ref: string, expect: 'dir' | 'file', mode: 'read' | 'write'): Promise<void> {
    await checkRefAllowed(this.refs, field, ref, mode);
    await checkLocalRef(field, ref, expect, mode);
  }
}
