/**
 * lisa-fn's training step as a chunk takes it (core/train/chunk.ts): the masked token-mean loss,
 * gradients of the trained units' variables only, AdamW with global-norm clipping over them.
 * One micro-batch, the same tokens every step.
 */
import * as tf from '@tensorflow/tfjs-core';
import { createModel, randomWeights } from '../core/models/model.ts';
import { adamwStep, type AdamWConfig } from '../core/optim/adamw.ts';
import { createParamGroup, disposeParamGroup } from '../core/optim/state.ts';
import { trains, type StepConfig } from './configs.ts';

/** The run defaults (core/store/run-spec.ts) at a constant learning rate. */
export const ADAMW: AdamWConfig = {
  lr: 3e-4,
  beta1: 0.9,
  beta2: 0.999,
  eps: 1e-8,
  weightDecay: 0.01,
  maxGradNorm: 1,
  decayNormsAndBiases: false,
  schedule: { kind: 'constant', warmupSteps: 0, totalSteps: 0, minLrRatio: 1 },
};

export interface TrainingStep {
  /** Token ids [B, T + 1]: inputs are [:, :T], targets [:, 1:]. */
  ids: number[][];
  weights: Map<string, Float32Array>;
  /** HF names of the trained tensors, and how many values they hold. */
  trainedNames: string[];
  trained: number;
  /** The loss at the current weights, without a step. */
  loss(): number;
  /** One optimizer step; returns its loss. */
  step(): number;
  dispose(): void;
}

/** Deterministic token ids [batch, seq + 1] (a Lehmer sequence), the same for every engine. */
export function benchTokens(c: StepConfig): number[][] {
  let s = 7;
  return Array.from({ length: c.batch }, () => Array.from({ length: c.seq + 1 }, () => (s = (s * 48271) % 2147483647) % c.spec.vocabSize));
}

export function trainingStep(c: StepConfig): TrainingStep {
  const weights = randomWeights(c.spec, 1);
  const model = createModel(c.spec, weights);
  const trained = [...model.params].filter(([name]) => trains(c, name));
  const group = createParamGroup('bench', trained);
  const hfName = new Map(trained.map(([name, v]) => [v.name, name]));
  const vars = trained.map(([, v]) => v);
  const ids = benchTokens(c);
  const tokens = tf.tensor2d(ids.map((r) => r.slice(0, c.seq)), undefined, 'int32');
  const targets = tf.tensor2d(ids.map((r) => r.slice(1)), undefined, 'int32');
  const mask = tf.ones([c.batch, c.seq]) as tf.Tensor2D;
  let globalStep = 0;
  return {
    ids,
    weights,
    trainedNames: trained.map(([name]) => name),
    trained: vars.reduce((n, v) => n + v.size, 0),
    loss: () => tf.tidy(() => model.loss(tokens, targets, mask).dataSync()[0]),
    step: () => {
      const { value, grads } = tf.tidy(() => tf.variableGrads(() => model.loss(tokens, targets, mask), vars));
      const byName = new Map(Object.entries(grads).map(([varName, g]) => [hfName.get(varName)!, g]));
      try {
        adamwStep(ADAMW, [group], byName, globalStep++);
        return value.dataSync()[0];
      } finally {
        tf.dispose([value, ...Object.values(grads)]);
      }
    },
    dispose: () => {
      tf.dispose([tokens, targets, mask]);
      disposeParamGroup(group);
      model.dispose();
    },
  };
}
