/**
 * Composition: several runs of one base merged into one model, unit by unit. Only units some run
 * trained are computed (with the kernels of ./kernels.ts, whose module doc defines each method);
 * every other unit is the base's, copied. A run that did not train a unit contributes the base's
 * weights there (task vector 0), exactly as a merge of full models would see it.
 *
 * DARE's drops are deterministic: the stream of run i for tensor T is
 * rngFor(seed, `lisa.merge.dare:${runId}@${seq}:${T}`, 0) (core/lisa/rng.ts), independent of the
 * order runs are listed in and of which other units are merged.
 */
import { LisaError } from '../errors.ts';
import type { ObjectStore } from '../store/object-store.ts';
import { readRunSpec, type RunSpec } from '../store/run-spec.ts';
import type { ChunkManifest } from '../store/manifest.ts';
import { rngFor } from '../lisa/rng.ts';
import { readTensorF32 } from '../tensors/safetensors.ts';
import { unitNames } from '../models/units.ts';
import { baseStore, openBaseLayout, type BaseLayout } from './base-files.ts';
import { mergeTensor, MergeParameterError, type MergeMethod } from './kernels.ts';
import { checkBase, manifestAt, modelOutput, runOverrides, type OutputOptions } from './export.ts';
import { withWorkerHasher, type Hasher } from '../tensors/hashing.ts';
import { writeModel, type ExportSummary, type UnitOverrides } from './writer.ts';

export class ComposeBaseMismatchError extends LisaError {
  /** baseSha null: the runs disagree among themselves, before the base is even read */
  constructor(base: string, baseSha: string | null, runs: { runId: string; sha256: string }[]) {
    const list = runs.map((m) => `${m.runId} (${m.sha256})`).join(', ');
    super(
      'COMPOSE_BASE_MISMATCH',
      baseSha === null
        ? `runs ${list} were trained on different bases; only runs of one base can be composed`
        : `base ${base} has sha256 ${baseSha}, but runs ${list} were trained on another base; compose them with the base they were created on`,
      { base, baseSha, runs },
    );
  }
}

export interface ComposeRun {
  runId: string;
  /** default 1 */
  weight?: number;
  /** committed seq; default the head */
  at?: number;
  /** the store the run lives in; default ComposeOptions.store */
  store?: ObjectStore;
}

export interface ComposeOptions extends OutputOptions {
  /** base model directory or s3:// prefix; every run must have been created on it */
  base: string;
  runs: ComposeRun[];
  store?: ObjectStore;
  method: MergeMethod;
  /** ties and dare: fraction of each task vector kept, (0, 1] */
  density?: number;
  /** scale of the merged task vector (task-arithmetic, ties, dare); default 1 */
  lambda?: number;
  /** dare's random drops; default 0 */
  seed?: number;
  /** dare: TIES sign consensus on the rescaled task vectors (mergekit's dare_ties) */
  consensus?: boolean;
}

export interface ComposeSummary extends ExportSummary {
  method: MergeMethod;
  runs: { runId: string; seq: number; weight: number }[];
  /** units computed by the merge; all others are the base's */
  units: string[];
}

interface OpenedRun {
  run: RunSpec;
  store: ObjectStore;
  manifest: ChunkManifest | null;
  weight: number;
}

function checkParams(opts: ComposeOptions): { density: number; lambda: number; seed: number; consensus: boolean } {
  const { method } = opts;
  if (opts.runs.length === 0) throw new MergeParameterError('compose needs at least one run');
  const density = opts.density ?? 1;
  if ((method === 'ties' || method === 'dare') && opts.density === undefined) {
    throw new MergeParameterError(`method ${method} needs a density: the fraction of each task vector to keep, in (0, 1]`);
  }
  if (!(density > 0 && density <= 1)) throw new MergeParameterError(`density must be in (0, 1], got ${density}`);
  const lambda = opts.lambda ?? 1;
  if (!Number.isFinite(lambda)) throw new MergeParameterError(`lambda must be a finite number, got ${lambda}`);
  const seed = opts.seed ?? 0;
  if (!Number.isInteger(seed) || seed < 0 || seed >= 2 ** 32) throw new MergeParameterError(`seed must be an integer in [0, 2^32), got ${seed}`);
  if (opts.consensus && method !== 'dare') throw new MergeParameterError(`consensus applies to method dare only (ties always uses it), not ${method}`);
  return { density, lambda, seed, consensus: opts.consensus ?? false };
}

export async function composeRuns(opts: ComposeOptions): Promise<ComposeSummary> {
  const params = checkParams(opts);
  return withWorkerHasher((hasher) => composeWith(opts, params, hasher));
}

async function composeWith(opts: ComposeOptions, params: ReturnType<typeof checkParams>, hasher: Hasher): Promise<ComposeSummary> {
  const runs: OpenedRun[] = [];
  for (const r of opts.runs) {
    const store = r.store ?? opts.store;
    if (!store) throw new MergeParameterError(`run ${r.runId}: no store given`);
    const run = await readRunSpec(store, r.runId);
    const weight = r.weight ?? 1;
    if (!Number.isFinite(weight)) throw new MergeParameterError(`run ${r.runId}: weight ${weight} is not a finite number`);
    runs.push({ run, store, manifest: await manifestAt(store, run.id, r.at), weight });
  }

  const total = runs.reduce((n, r) => n + r.weight, 0);
  if (opts.method === 'linear' && Math.abs(total) < 1e-8) throw new MergeParameterError(`linear merge weights sum to ${total}; they must not sum to 0`);

  const base = await openBaseLayout(opts.base, baseStore(opts.base, opts.openStore));
  try {
    return await composeOnBase(opts, params, hasher, runs, base);
  } finally {
    await base.close();
  }
}

async function composeOnBase(
  opts: ComposeOptions,
  params: ReturnType<typeof checkParams>,
  hasher: Hasher,
  runs: OpenedRun[],
  base: BaseLayout,
): Promise<ComposeSummary> {
  const shas = [...new Set(runs.map((r) => r.run.base.sha256))];
  const named = runs.map((r) => ({ runId: r.run.id, sha256: r.run.base.sha256 }));
  if (shas.length > 1) throw new ComposeBaseMismatchError(opts.base, null, named);
  const sha = shas[0];
  const verify = checkBase(base, sha, hasher, (actual) => new ComposeBaseMismatchError(opts.base, actual.sha256, named));

  // A LoRA run contributes its merged weights (base + its adapters' delta), like any other run.
  const perRun = runs.map((r) => runOverrides(r.store, r.run, r.manifest, base, hasher));
  const touched = new Set(perRun.flatMap((o) => [...o.units]));
  const weights = runs.map((r) => r.weight);
  const overrides: UnitOverrides = {
    units: touched,
    async load(unit) {
      const names = [...base.tensors].filter(([, t]) => t.unit === unit).map(([n]) => n);
      const baseTensors = new Map<string, Float32Array>();
      for (const n of names) {
        const t = base.tensors.get(n)!;
        baseTensors.set(n, await readTensorF32(t.source, t.info));
      }
      const loaded = await Promise.all(
        perRun.map((o) => (o.units.has(unit) ? o.load(unit) : { tensors: baseTensors, verified: Promise.resolve() })),
      );
      const models = loaded.map((l) => l.tensors);
      const out = new Map<string, Float32Array>();
      for (const n of names) {
        const b = baseTensors.get(n)!;
        const thetas = models.map((m, i) => {
          const x = m.get(n);
          if (!x || x.length !== b.length) throw new MergeParameterError(`run ${runs[i].run.id}: unit ${unit} has no tensor ${n} of the base's shape`);
          return x;
        });
        const rngs = opts.method === 'dare' ? runs.map((r) => rngFor(params.seed, `lisa.merge.dare:${r.run.id}@${r.manifest?.seq ?? -1}:${n}`, 0)) : [];
        out.set(n, mergeTensor(opts.method, b, thetas, weights, params, rngs));
      }
      const verified = Promise.all(loaded.map((l) => l.verified)).then(() => undefined);
      verified.catch(() => undefined);
      return { tensors: out, verified };
    },
  };
  const summary = await writeModel({
    base,
    overrides,
    provenance: {
      format: 'lisa-composition',
      version: 1,
      baseSha256: sha,
      method: opts.method,
      ...params,
      runs: runs.map((r) => ({ runId: r.run.id, seq: r.manifest?.seq ?? -1, weight: r.weight })),
    },
    verify,
    ...(await modelOutput(opts, hasher)),
  });
  return {
    ...summary,
    method: opts.method,
    runs: runs.map((r) => ({ runId: r.run.id, seq: r.manifest?.seq ?? -1, weight: r.weight })),
    units: unitNames(base.spec).filter((u) => touched.has(u)),
  };
}
