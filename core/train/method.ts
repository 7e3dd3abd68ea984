/**
 * What trains, by the run's method (DESIGN.md "method"). A period's active units each become one
 * AdamW parameter group and one stored unit object; the methods differ only in which units are
 * active and which variables a unit's group holds:
 *   lisa  the period's sampled units (core/lisa/schedule.ts), over the base's own tensors;
 *   full  every unit, every period, over the base's own tensors;
 *   lora  every block, every period, over the block's LoRA adapters; the base stays frozen and
 *         takes no weight gradients (its variables are never in the varList).
 */
import type * as tf from '@tensorflow/tfjs-core';
import { sampleUnits, type ScheduleConfig } from '../lisa/schedule.ts';
import type { ModelSpec } from '../models/config.ts';
import { adapterUnit, initAdapters, LORA_TARGETS, type LoraConfig } from '../models/lora.ts';
import { createModel, type Model } from '../models/model.ts';
import { unitNames, unitOf } from '../models/units.ts';
import { METHOD_DEFAULTS, type RunConfig, type RunSpec } from '../store/run-spec.ts';
import type { RunWeights } from './run-state.ts';

/** The LISA schedule of a run's config (method lisa). */
export function scheduleConfig(c: RunConfig, nLayers: number): ScheduleConfig {
  const d = METHOD_DEFAULTS.lisa;
  return { nLayers, activeLayers: c.activeLayers ?? d.activeLayers, embedHead: c.embedHead ?? d.embedHead, probabilities: c.layerProbabilities, seed: c.seed };
}

/** The adapters of a LoRA run, or undefined for the other methods. */
export function loraConfig(c: RunConfig, spec: ModelSpec): LoraConfig | undefined {
  if (c.method !== 'lora') return undefined;
  const d = METHOD_DEFAULTS.lora;
  return {
    rank: c.loraRank ?? d.loraRank,
    alpha: c.loraAlpha ?? d.loraAlpha,
    dropout: c.loraDropout ?? d.loraDropout,
    targets: c.loraTargets ?? LORA_TARGETS[spec.arch],
    seed: c.seed,
  };
}

/** The units period `period` trains: deterministic from the run's spec. */
export function periodUnits(run: RunSpec, spec: ModelSpec, period: number): string[] {
  const c = run.config;
  if (c.method === 'full') return unitNames(spec);
  if (c.method === 'lora') return unitNames(spec).filter((u) => u.startsWith('layers.'));
  return sampleUnits(scheduleConfig(c, spec.nLayers), period);
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
