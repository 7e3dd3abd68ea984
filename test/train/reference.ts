import * as tf from '@tensorflow/tfjs-core';
import { nextBatch } from '../../core/data/index.ts';
import { observeGradNorms, type GradNormEma } from '../../core/lisa/grad-norm.ts';
import { drawPeriod } from '../../core/lisa/samplers.ts';
import { adapterUnit, initAdapters } from '../../core/models/lora.ts';
import { createModel } from '../../core/models/model.ts';
import { unitOf } from '../../core/models/units.ts';
import { adamwStep } from '../../core/optim/adamw.ts';
import { createParamGroup, disposeParamGroup, readGroupState, type GroupState } from '../../core/optim/state.ts';
import type { RunSpec } from '../../core/store/run-spec.ts';
import { adamwConfig } from '../../core/train/chunk.ts';
import { isLisa, loraConfig, periodDraw, runUnits } from '../../core/train/method.ts';
import { samplerOf, scheduleOf } from '../../core/train/sampling.ts';
import { openRunInputs } from '../../core/train/sources.ts';
import { newSources } from './harness.ts';

/** The units `period` trains when its draw depends on the run alone: lora, full, and lisa's static samplers (uniform, weighted, outlier). */
export const periodUnits = (run: RunSpec, period: number): string[] => periodDraw(run, period, null).units;

/**
 * The run's schedule as one uninterrupted process: one model, all AdamW state and the grad-norm
 * state kept in memory, no store. Each period trains what the run's method says: under lisa the
 * units its sampler draws (core/lisa, not the chunk's draw), under lora every block's adapters,
 * under full every unit. Returns the final weights (adapters included), every trained unit's
 * AdamW state, each period's units and the final grad-norm state.
 */
export async function referenceLoop(run: RunSpec, steps: number) {
  const { sources, cache } = newSources();
  const { base, dataset } = await openRunInputs(run, sources, cache);
  const lora = loraConfig(run.config, base.spec);
  const model = createModel(base.spec, base.weights, lora && { lora: { config: lora, tensors: initAdapters(base.spec, lora) } });
  // LoRA trains the adapters, grouped by their block; the other methods the base's own tensors.
  const trainable = lora
    ? [...model.adapters].map(([n, v]) => [n, v, adapterUnit(base.spec, n)] as const)
    : [...model.params].map(([n, v]) => [n, v, unitOf(base.spec, n)] as const);
  const states = new Map<string, GroupState>();
  const cfg = adamwConfig(run);
  const sampler = isLisa(run) ? samplerOf(run) : undefined;
  const { period: k, optimizerState } = run.config;
  const draws: string[][] = [];
  let ema: GradNormEma = {};
  let cursor = { epoch: 0, index: 0 };
  for (let step = 0; step < steps; step++) {
    if (step % k === 0) draws.push(isLisa(run) ? drawPeriod(scheduleOf(run), samplerOf(run), step / k, ema).units : runUnits(run));
    const groups = draws.at(-1)!.map((u) =>
      createParamGroup(
        u,
        trainable.filter(([, , unit]) => unit === u).map(([n, v]) => [n, v] as const),
        optimizerState === 'restore' || step % k !== 0 ? states.get(u) : undefined,
      ),
    );
    const batch = nextBatch(dataset, cursor, run.config.batchSize);
    cursor = batch.cursor;
    const vars = groups.flatMap((g) => g.slots.map((s) => s.param));
    const hf = new Map(groups.flatMap((g) => g.slots.map((s) => [s.param.name, s.name] as const)));
    const { value, grads } = tf.variableGrads(
      () => model.loss(tf.tensor2d(batch.tokens, undefined, 'int32'), tf.tensor2d(batch.targets, undefined, 'int32'), tf.tensor2d(batch.mask), { step, microBatch: 0 }),
      vars,
    );
    const { groupNorms } = adamwStep(cfg, groups, new Map(Object.entries(grads).map(([n, g]) => [hf.get(n)!, g])), step);
    tf.dispose([value, ...Object.values(grads)]);
    if (sampler?.kind === 'grad-norm') ema = observeGradNorms(ema, Object.fromEntries(groups.map((g, i) => [g.unit, groupNorms[i]])), sampler.decay);
    for (const g of groups) {
      states.set(g.unit, await readGroupState(g));
      disposeParamGroup(g);
    }
  }
  const weights = new Map([...model.params, ...model.adapters].map(([n, v]) => [n, v.dataSync() as Float32Array]));
  model.dispose();
  return { weights, states, base, draws, ema };
}
