import * as tf from '@tensorflow/tfjs-core';
import { nextBatch } from '../../core/data/index.ts';
import { adapterUnit, initAdapters } from '../../core/models/lora.ts';
import { createModel } from '../../core/models/model.ts';
import { unitOf } from '../../core/models/units.ts';
import { adamwStep } from '../../core/optim/adamw.ts';
import { createParamGroup, disposeParamGroup, readGroupState, type GroupState } from '../../core/optim/state.ts';
import type { RunSpec } from '../../core/store/run-spec.ts';
import { adamwConfig } from '../../core/train/chunk.ts';
import { loraConfig, periodUnits } from '../../core/train/method.ts';
import { openRunInputs } from '../../core/train/sources.ts';
import { newSources } from './harness.ts';

/**
 * The same schedule as one uninterrupted process: one model, all AdamW state kept in memory,
 * no store. Returns the final weights (adapters included) and every trained unit's state.
 */
export async function referenceLoop(run: RunSpec, steps: number) {
  const { sources, cache } = newSources();
  const { base, dataset } = await openRunInputs(run, sources, cache);
  const lora = loraConfig(run.config, base.spec);
  const model = createModel(base.spec, base.weights, lora && { lora: { config: lora, tensors: initAdapters(base.spec, lora) } });
  // LoRA trains the adapters, grouped by their block; the other methods the base's own tensors.
  const trainable = lora ? [...model.adapters].map(([n, v]) => [n, v, adapterUnit(base.spec, n)] as const) : [...model.params].map(([n, v]) => [n, v, unitOf(base.spec, n)] as const);
  const states = new Map<string, GroupState>();
  const cfg = adamwConfig(run);
  let cursor = { epoch: 0, index: 0 };
  for (let step = 0; step < steps; step++) {
    const active = periodUnits(run, base.spec, Math.floor(step / run.config.period));
    const groups = active.map((u) =>
      createParamGroup(
        u,
        trainable.filter(([, , unit]) => unit === u).map(([n, v]) => [n, v] as const),
        run.config.optimizerState === 'restore' ? states.get(u) : step % run.config.period === 0 ? undefined : states.get(u),
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
    adamwStep(cfg, groups, new Map(Object.entries(grads).map(([k, g]) => [hf.get(k)!, g])), step);
    tf.dispose([value, ...Object.values(grads)]);
    for (const g of groups) {
      states.set(g.unit, await readGroupState(g));
      disposeParamGroup(g);
    }
  }
  const weights = new Map([...model.params, ...model.adapters].map(([n, v]) => [n, v.dataSync() as Float32Array]));
  model.dispose();
  return { weights, states, base };
}
