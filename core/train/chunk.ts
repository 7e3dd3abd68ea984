import * as tf from '@tensorflow/tfjs-core';
import { randomBytes } from 'node:crypto';
import PQueue from 'p-queue';
import { LisaError } from '../errors.ts';
import { observeGradNorms } from '../lisa/grad-norm.ts';
import { adamwStep, type AdamWConfig, type ParamGroup } from '../optim/adamw.ts';
import { createParamGroup, disposeParamGroup, readGroupState } from '../optim/state.ts';
import { GradAccumulator } from '../optim/accumulate.ts';
import { nextBatch, type Batch, type Cursor } from '../data/index.ts';
import { heldOutLoss } from './evaluate.ts';
import type { ObjectStore } from '../store/object-store.ts';
import { unitKey } from '../store/keys.ts';
import {
  commitManifest,
  headManifest,
  MANIFEST_VERSION,
  ChunkConflictError,
  type ChunkManifest,
  type UnitRef,
} from '../store/manifest.ts';
import type { RunSpec } from '../store/run-spec.ts';
import { putUnitObject } from '../store/unit-object.ts';
import type { Model } from '../models/model.ts';
import { checkTrainingFits } from '../models/memory.ts';
import { materialize, type RunWeights } from './run-state.ts';
import { createRunModel, isLisa, periodDraw, trainingPlan, unitVariables } from './method.ts';
import type { ResourceCache } from './resources.ts';
import { openRunInputs, type Sources } from './sources.ts';
import { samplerOf } from './sampling.ts';
import type { PreparedDataset } from '../data/index.ts';

export interface StepEvent {
  step: number; // global step just finished
  stepInChunk: number;
  stepsPlanned: number;
  loss: number;
  lr: number;
  tokens: number;
  seconds: number;
}

export interface ChunkOptions {
  store: ObjectStore;
  /** the run's spec, as read from its run.json by the caller (core/runs reads it once per chunk) */
  run: RunSpec;
  cache: ResourceCache;
  /** opens the base model and data a run refers to (local path or s3://) */
  sources: Sources;
  /** absolute deadline in ms since the epoch (Date.now() clock); stepping stops in time to commit */
  deadline?: number;
  /** stops stepping after the current step, then uploads and commits, e.g. when the host shuts down */
  signal?: AbortSignal;
  /** seconds kept free before the deadline for upload and commit */
  commitReserveSeconds?: number;
  /** price of the machine this runs on, for metering */
  usdPerHour?: number;
  /** true when the backend is an accelerator, so its seconds are billed as accelerator time */
  accelerator?: boolean;
  uploadConcurrency?: number;
  now?: () => number;
  onStep?: (e: StepEvent) => void;
}

export class RunCompleteError extends LisaError {
  constructor(runId: string, steps: number) {
    super('RUN_COMPLETE', `run '${runId}' has already trained all ${steps} steps`, { runId, steps });
  }
}

export class BudgetExceededError extends LisaError {
  constructor(runId: string, spentUsd: number, maxCostUsd: number) {
    super('BUDGET_EXCEEDED', `run '${runId}' has spent $${spentUsd.toFixed(4)} of its $${maxCostUsd} budget; no chunk starts over budget`, {
      runId,
      spentUsd,
      maxCostUsd,
    });
  }
}

export class DeadlineTooShortError extends LisaError {
  constructor(runId: string, secondsLeft: number) {
    super('DEADLINE_TOO_SHORT', `run '${runId}': ${secondsLeft.toFixed(1)} s before the deadline is not enough for one step and the commit`, {
      runId,
      secondsLeft,
    });
  }
}

export function adamwConfig(run: RunSpec): AdamWConfig {
  const c = run.config;
  return {
    lr: c.lr,
    beta1: c.beta1,
    beta2: c.beta2,
    eps: c.eps,
    weightDecay: c.weightDecay,
    maxGradNorm: c.maxGradNorm,
    decayNormsAndBiases: c.decayNormsAndBiases,
    schedule: { kind: c.schedule, warmupSteps: c.warmupSteps, totalSteps: c.steps, minLrRatio: c.minLrRatio },
  };
}

/**
 * One function invocation = (the rest of) one period: read the head manifest, rebuild the model
 * from the base and the run's units, train the period's units (./method.ts: LISA's sampled units,
 * every unit, or every block's LoRA adapters) from the data cursor, upload only those units
 * (their trained tensors + AdamW m, v) and commit the next manifest with an exclusive create.
 * A chunk that stops early at its deadline leaves the rest of the period to the next chunk, which
 * trains the same units, so the schedule is the same however the run is cut into chunks.
 */
export async function runChunk(opts: ChunkOptions): Promise<ChunkManifest> {
  const now = opts.now ?? Date.now;
  const t0 = now();
  const { store, run } = opts;
  const runId = run.id;
  const bytesIn0 = store.stats.bytesIn;
  const bytesOut0 = store.stats.bytesOut;

  const c = run.config;
  const parent = await headManifest(store, runId);
  const startStep = parent?.globalStep ?? 0;
  if (startStep >= c.steps) throw new RunCompleteError(runId, c.steps);
  const spent = parent?.totals.costUsd ?? 0;
  if (c.maxCostUsd !== undefined && spent >= c.maxCostUsd) throw new BudgetExceededError(runId, spent, c.maxCostUsd);

  const { base, dataset } = await openRunInputs(run, opts.sources, opts.cache);
  const period = Math.floor(startStep / c.period);
  const draw = periodDraw(run, period, parent);
  const active = draw.units;
  // Before any weight enters the engine: a model too big for its heap fails here, not mid-step.
  checkTrainingFits(base.spec, trainingPlan(run, base.spec, active, dataset.seqLen), tf.getBackend(), `run '${runId}' on ${c.base}`);
  const state = await materialize(store, base.spec, base.weights, parent, new Set(active));
  const stepsPlanned = Math.min((period + 1) * c.period, c.steps) - startStep;
  const tLoaded = now();

  const model = createRunModel(run, base.spec, state);
  // What each trained tensor holds as the chunk starts, for its unit's update norm: the loaded
  // weights, and under lora the adapters as the model holds them (fresh ones come from the seed).
  const before = new Map(state.weights);
  for (const [name, v] of model.adapters) before.set(name, (await v.data()) as Float32Array);
  // Under `reset` a unit keeps its moments only within one period, which may span chunks cut by deadlines.
  const periodStart = period * c.period;
  const keep = new Set(active.filter((u) => c.optimizerState === 'restore' || (parent?.units[u]?.step ?? 0) > periodStart));
  const groups = optimizerGroups(unitVariables(run, model, active), state, keep);
  const cfg = adamwConfig(run);
  const losses: number[] = [];
  const learningRates: number[] = [];
  let cursor = parent?.cursor ?? { epoch: 0, index: 0 };
  let tokens = 0;
  let stoppedBy: ChunkManifest['stoppedBy'] = 'period';
  let heldOut: ChunkManifest['heldOut'] = null;
  const reserveMs = (opts.commitReserveSeconds ?? 5) * 1000;
  const seq = parent ? parent.seq + 1 : 0;
  const attempt = randomBytes(4).toString('hex');
  const objects: UploadedUnit[] = [];
  const sampler = isLisa(run) ? samplerOf(run) : undefined;
  let gradNormEma = parent?.gradNormEma ?? {};
  const normSums = new Map(groups.map((g) => [g.unit, 0]));
  let tTrained: number;
  try {
    let slowestStepMs = 0;
    for (let i = 0; i < stepsPlanned; i++) {
      const tStep = now();
      if (opts.deadline !== undefined && tStep + slowestStepMs * 1.5 + reserveMs > opts.deadline) {
        if (i === 0) throw new DeadlineTooShortError(runId, (opts.deadline - tStep) / 1000);
        stoppedBy = 'deadline';
        break;
      }
      // At least one step, so a chunk that has loaded everything still commits progress.
      if (i > 0 && opts.signal?.aborted) {
        stoppedBy = 'aborted';
        break;
      }
      const step = trainStep(model, groups, cfg, dataset, cursor, run, startStep + i);
      cursor = step.cursor;
      tokens += step.tokens;
      losses.push(step.loss);
      learningRates.push(step.lr);
      const norms = Object.fromEntries(groups.map((g, k) => [g.unit, step.groupNorms[k]]));
      for (const g of groups) normSums.set(g.unit, normSums.get(g.unit)! + norms[g.unit]);
      if (sampler?.kind === 'grad-norm') gradNormEma = observeGradNorms(gradNormEma, norms, sampler.decay);
      slowestStepMs = Math.max(slowestStepMs, now() - tStep);
      opts.onStep?.({
        step: startStep + i + 1,
        stepInChunk: i + 1,
        stepsPlanned,
        loss: step.loss,
        lr: step.lr,
        tokens,
        seconds: (now() - tLoaded) / 1000,
      });
    }
    if (startStep + losses.length >= c.steps) stoppedBy = 'run-complete';
    heldOut = heldOutLoss(model, dataset, c.batchSize);
    tTrained = now();

    // Units stream to the store in parallel; a failure leaves none of this attempt's objects behind.
    const queue = new PQueue({ concurrency: opts.uploadConcurrency ?? 8 });
    const keys = groups.map((g) => unitKey(run.id, g.unit, seq, attempt));
    try {
      await Promise.all(
        groups.map((g, i) => queue.add(async () => objects.push(await uploadUnit(store, keys[i], g, before, run, seq, startStep + losses.length)))),
      );
    } catch (err) {
      await queue.onIdle();
      await deleteQuietly(store, keys);
      throw err;
    }
  } finally {
    groups.forEach(disposeParamGroup);
    model.dispose();
  }
  const units: Record<string, UnitRef> = { ...(parent?.units ?? {}) };
  for (const o of objects) units[o.unit] = o.ref;
  // in the order of activeUnits, whatever order the uploads finished in
  const updateNorms = new Map(objects.map((o) => [o.unit, o.updateNorm]));
  const tUploaded = now();

  const wall = (tUploaded - t0) / 1000;
  const costUsd = (wall * (opts.usdPerHour ?? 0)) / 3600;
  const bytesIn = store.stats.bytesIn - bytesIn0;
  const bytesOut = store.stats.bytesOut - bytesOut0;
  const prev = parent?.totals ?? { steps: 0, tokens: 0, seconds: 0, costUsd: 0, bytesIn: 0, bytesOut: 0 };
  const manifest: ChunkManifest = {
    version: MANIFEST_VERSION,
    runId,
    seq,
    createdAt: new Date(tUploaded).toISOString(),
    method: c.method,
    period,
    activeUnits: active,
    // lisa only: lora and full runs draw nothing, so their manifests have no probabilities
    ...(draw.probabilities ? { probabilities: draw.probabilities } : {}),
    unitGradNorms: Object.fromEntries([...normSums].map(([u, sum]) => [u, sum / losses.length])),
    unitUpdateNorms: Object.fromEntries(groups.map((g) => [g.unit, updateNorms.get(g.unit)!])),
    ...(sampler?.kind === 'grad-norm' ? { gradNormEma } : {}),
    units,
    cursor,
    startStep,
    globalStep: startStep + losses.length,
    losses,
    learningRates,
    tokens,
    heldOut,
    stoppedBy,
    seconds: {
      wall,
      load: (tLoaded - t0) / 1000,
      train: (tTrained - tLoaded) / 1000,
      upload: (tUploaded - tTrained) / 1000,
      accelerator: opts.accelerator ? wall : 0,
    },
    bytes: { in: bytesIn, out: bytesOut },
    costUsd,
    totals: {
      steps: prev.steps + losses.length,
      tokens: prev.tokens + tokens,
      seconds: prev.seconds + wall,
      costUsd: prev.costUsd + costUsd,
      bytesIn: prev.bytesIn + bytesIn,
      bytesOut: prev.bytesOut + bytesOut,
    },
  };
  try {
    await commitManifest(store, manifest);
  } catch (err) {
    // Only a loser cleans up: after any other failure the manifest may have landed.
    if (err instanceof ChunkConflictError) await deleteQuietly(store, objects.map((o) => o.ref.key));
    throw err;
  }
  return manifest;
}

interface StepResult {
  loss: number;
  lr: number;
  /** gradient norm of each group, in the order of `groups` */
  groupNorms: number[];
  tokens: number;
  cursor: Cursor;
}

/**
 * One optimizer step over gradAccum micro-batches. Each micro-batch's gradient is weighted by
 * its share of the step's loss tokens, so the step follows the token-mean loss of the whole batch.
 * Only the groups' variables are differentiated: frozen units (and a LoRA run's base) get no
 * weight gradients.
 */
function trainStep(model: Model, groups: ParamGroup[], cfg: AdamWConfig, dataset: PreparedDataset, start: Cursor, run: RunSpec, globalStep: number): StepResult {
  const { batchSize, gradAccum } = run.config;
  const batches: Batch[] = [];
  let cursor = start;
  for (let i = 0; i < gradAccum; i++) {
    const batch = nextBatch(dataset, cursor, batchSize);
    batches.push(batch);
    cursor = batch.cursor;
  }
  const total = batches.reduce((n, b) => n + b.lossTokens, 0);
  const varList = groups.flatMap((g) => g.slots.map((s) => s.param));
  const hfName = new Map(groups.flatMap((g) => g.slots.map((s) => [s.param.name, s.name] as const)));
  const acc = new GradAccumulator();
  let loss = 0;
  let tokens = 0;
  try {
    for (const [microBatch, batch] of batches.entries()) {
      const weight = total === 0 ? 1 / batches.length : batch.lossTokens / total;
      const { value, grads } = tf.tidy(() =>
        tf.variableGrads(
          () =>
            model.loss(
              tf.tensor2d(batch.tokens, undefined, 'int32'),
              tf.tensor2d(batch.targets, undefined, 'int32'),
              tf.tensor2d(batch.mask, undefined, 'float32'),
              { step: globalStep, microBatch },
            ),
          varList,
        ),
      );
      loss += value.dataSync()[0] * weight;
      tokens += batch.tokens.reduce((n, row) => n + row.length, 0);
      acc.add(new Map(Object.entries(grads).map(([varName, g]) => [hfName.get(varName)!, g])), weight);
      tf.dispose([value, ...Object.values(grads)]);
    }
    const summed = acc.take();
    try {
      const { lr, groupNorms } = adamwStep(cfg, groups, summed, globalStep);
      return { loss, lr, groupNorms, tokens, cursor };
    } finally {
      tf.dispose([...summed.values()]);
    }
  } finally {
    acc.dispose();
  }
}

/**
 * AdamW groups for the active units' variables, with m and v restored from the run's latest
 * objects for the units in `keep`, zero for the others and for units never trained. Frozen units
 * get no state.
 */
function optimizerGroups(params: Map<string, Array<[string, tf.Variable]>>, state: RunWeights, keep: ReadonlySet<string>): ParamGroup[] {
  const groups: ParamGroup[] = [];
  try {
    for (const [unit, list] of params) {
      const step = state.adamSteps.get(unit);
      const restore = keep.has(unit) && step !== undefined;
      const slots = new Map(list.map(([name]) => [name, state.adam.get(name)!]));
      groups.push(createParamGroup(unit, list, restore ? { step, slots } : undefined));
    }
  } catch (err) {
    groups.forEach(disposeParamGroup);
    throw err;
  }
  return groups;
}

interface UploadedUnit {
  unit: string;
  ref: UnitRef;
  /** L2 norm of the unit's weight change over the chunk */
  updateNorm: number;
}

/** Uploads a trained unit; `before` holds its weights as the chunk loaded them, for the update norm. */
async function uploadUnit(
  store: ObjectStore,
  key: string,
  g: ParamGroup,
  before: ReadonlyMap<string, Float32Array>,
  run: RunSpec,
  seq: number,
  globalStep: number,
): Promise<UploadedUnit> {
  const state = await readGroupState(g);
  const tensors = await Promise.all(
    g.slots.map(async (s) => ({ name: s.name, shape: s.param.shape, weight: (await s.param.data()) as Float32Array, ...state.slots.get(s.name)! })),
  );
  const updateNorm = l2Distance(tensors.map((t) => [before.get(t.name)!, t.weight]));
  const { bytes, sha256 } = await putUnitObject(
    store,
    key,
    { unit: g.unit, adamStep: g.step, tensors },
    { runId: run.id, seq: String(seq), globalStep: String(globalStep), baseSha256: run.base.sha256 },
  );
  return { unit: g.unit, ref: { key, sha256, bytes, seq, step: globalStep, adamStep: g.step }, updateNorm };
}

/** ‖after − before‖₂ over several tensors taken as one vector, summed in float64 in the order given. */
export function l2Distance(pairs: ReadonlyArray<readonly [before: Float32Array, after: Float32Array]>): number {
  let sum = 0;
  for (const [a, b] of pairs) {
    for (let i = 0; i < a.length; i++) {
      const d = b[i] - a[i];
      sum += d * d;
    }
  }
  return Math.sqrt(sum);
}

async function deleteQuietly(store: ObjectStore, keys: string[]): Promise<void> {
  await Promise.allSettled(keys.map((k) => store.delete(k)));
}

