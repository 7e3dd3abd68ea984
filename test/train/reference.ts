import * as tf from '@tensorflow/tfjs-core';
import { createModel } from '../../core/models/model.ts';
import { unitOf } from '../../core/models/units.ts';
import { nextBatch } from '../../core/data/index.ts';
import { observeGradNorms, type GradNormEma } from '../../core/lisa/grad-norm.ts';
import { drawPeriod } from '../../core/lisa/samplers.ts';
import { adamwStep } from '../../core/optim/adamw.ts';
import { createParamGroup, disposeParamGroup, readGroupState, type GroupState } from '../../core/optim/state.ts';
import type { RunSpec } from '../../core/store/run-spec.ts';
import { adamwConfig } from '../../core/train/chunk.ts';
import { samplerOf, scheduleOf } from '../../core/train/sampling.ts';
import { openRunInputs } from '../../core/train/sources.ts';
import { newSources } from './harness.ts';

/** The units a static sampler (uniform, weighted, outlier) draws for `period`. */
export const periodUnits = (run: RunSpec, period: number): string[] => drawPeriod(scheduleOf(run), samplerOf(run), period).units;

/**
 * The run's LISA schedule as one uninterrupted process: one model, all AdamW state and the
 * grad-norm state kept in memory, no store. Returns the final weights, every trained unit's
 * AdamW state, each period's draw and the final grad-norm state.
 */
export async function referenceLoop(run: RunSpec, steps: number) {
  const { sources, cache } = newSources();
  const { base, dataset } = await openRunInputs(run, sources, cache);
  const model = createModel(base.spec, base.weights);
  const states = new Map<string, GroupState>();
  const cfg = adamwConfig(run);
  const sampler = samplerOf(run);
  const { period: k, optimizerState } = run.config;
  const draws: string[][] = [];
  let ema: GradNormEma = {};
  let cursor = { epoch: 0, index: 0 };
  for (let step = 0; step < steps; step++) {
    if (step % k === 0) draws.push(drawPeriod(scheduleOf(run), sampler, step / k, ema).units);
    const groups = draws.at(-1)!.map((u) =>
      createParamGroup(
        u,
        [...model.params].filter(([n]) => unitOf(base.spec, n) === u),
        optimizerState === 'restore' || step % k !== 0 ? states.get(u) : undefined,
      ),
    );
    const batch = nextBatch(dataset, cursor, run.config.batchSize);
    cursor = batch.cursor;
    const vars = groups.flatMap((g) => g.slots.map((s) => s.param));
    const hf = new Map(groups.flatMap((g) => g.slots.map((s) => [s.param.name, s.name] as const)));
    const { value, grads } = tf.variableGrads(
      () => model.loss(tf.tensor2d(batch.tokens, undefined, 'int32'), tf.tensor2d(batch.targets, undefined, 'int32'), tf.tensor2d(batch.mask)),
      vars,
    );
    const { groupNorms } = adamwStep(cfg, groups, new Map(Object.entries(grads).map(([n, g]) => [hf.get(n)!, g])), step);
    tf.dispose([value, ...Object.values(grads)]);
    if (sampler.kind === 'grad-norm') ema = observeGradNorms(ema, Object.fromEntries(groups.map((g, i) => [g.unit, groupNorms[i]])), sampler.decay);
    for (const g of groups) {
      states.set(g.unit, await readGroupState(g));
      disposeParamGroup(g);
    }
  }
  const weights = new Map([...model.params].map(([n, v]) => [n, v.dataSync() as Float32Array]));
  model.dispose();
  return { weights, states, base, draws, ema };
}
