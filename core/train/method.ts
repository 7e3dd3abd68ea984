/**
 * What trains, by the run's method (docs/design-notes.md "Methods"). A period's active units each
 * become one AdamW parameter group and one stored unit object; the methods differ only in which
 * units are active and which variables a unit's group holds:
 *   lisa  the units the run's sampler draws for the period (./sampling.ts), over the base's own
 *         tensors;
 *   full  every unit, every period, over the base's own tensors;
 *   lora  every block, every period, over the block's LoRA adapters; the base stays frozen and
 *         takes no weight gradients (its variables are never in the varList).
 */
import type * as tf from '@tensorflow/tfjs-core';
import { candidateUnits } from '../lisa/schedule.ts';
import type { ModelSpec } from '../models/config.ts';
import { adapterShapes, adapterUnit, initAdapters, LORA_TARGETS, type LoraConfig } from '../models/lora.ts';
import type { TrainingPlan } from '../models/memory.ts';
import { createModel, type Model } from '../models/model.ts';
import { unitOf } from '../models/units.ts';
import type { ChunkManifest } from '../store/manifest.ts';
import type { LisaConfig, RunConfig, RunSpec } from '../store/run-spec.ts';
import type { RunWeights } from './run-state.ts';
import { chunkDraw } from './sampling.ts';

export const isLisa = (run: RunSpec): run is RunSpec<LisaConfig> => run.config.method === 'lisa';

/** The adapters of a LoRA run, or undefined for the other methods. */
export function loraConfig(c: RunConfig, spec: ModelSpec): LoraConfig | undefined {
  if (c.method !== 'lora') return undefined;
  return { rank: c.loraRank, alpha: c.loraAlpha, dropout: c.loraDropout, targets: c.loraTargets ?? LORA_TARGETS[spec.arch], seed: c.seed };
}

/** What period `period` trains: lisa's draw (with the probabilities it drew from); lora and full draw nothing. */
export interface MethodDraw {
  units: string[];
  /** lisa only */
  probabilities?: number[];
}

/**
 * The units a run trains from, in unit order: lisa's candidates (what a draw's probabilities are
 * over), every block under lora, every unit under full.
 */
export function runUnits(run: RunSpec): string[] {
  const c = run.config;
  const blocks = candidateUnits(run.base.nLayers, 'never');
  if (c.method === 'lisa') return candidateUnits(run.base.nLayers, c.embedHead);
  return c.method === 'lora' ? blocks : ['embed', ...blocks, 'head'];
}

/**
 * The units period `period` trains, for a chunk whose parent is `parent` (null: the first):
 * deterministic from the run's spec and its committed chunks.
 */
export function periodDraw(run: RunSpec, period: number, parent: ChunkManifest | null): MethodDraw {
  return isLisa(run) ? chunkDraw(run, period, parent) : { units: runUnits(run) };
}

/** What a step of the run trains, for the engine-memory estimate: the units' base tensors, or under lora the adapters. */
export function trainingPlan(run: RunSpec, spec: ModelSpec, units: readonly string[], seqLen: number): TrainingPlan {
  const lora = loraConfig(run.config, spec);
  const { batchSize } = run.config;
  if (!lora) return { units, batchSize, seqLen };
  const adapterValues = [...adapterShapes(spec, lora).values()].reduce((n, [rows, cols]) => n + rows * cols, 0);
  return { units: [], adapterValues, batchSize, seqLen };
}

/** The variables of each of `units` that train: the model's adapters under lora, its base tensors otherwise. */
export function unitVariables(run: RunSpec, model: Model, units: readonly string[]): Map<string, Array<[string, tf.Variable]>> {
  const byUnit = new Map<string, Array<[string, tf.Variable]>>(units.map((u) => [u, []]));
  const lora = run.config.method === 'lora';
  for (const [name, v] of lora ? model.adapters : model.params) {
    byUnit.get(lora ? adapterUnit(model.spec, name) : unitOf(model.spec, name))?.push([name, v]);
  }
  return byUnit;
}

/**
 * The model of a run at a materialized state: the overlaid base, plus under lora its adapters
 * (fresh, from the run's seed, where none is stored yet). The caller disposes it.
 */
export function createRunModel(run: RunSpec, spec: ModelSpec, state: Pick<RunWeights, 'weights' | 'adapters'>): Model {
  const lora = loraConfig(run.config, spec);
  if (!lora) return createModel(spec, state.weights);
  return createModel(spec, state.weights, { lora: { config: lora, tensors: new Map([...initAdapters(spec, lora), ...state.adapters]) } });
}
