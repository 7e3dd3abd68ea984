/**
 * The size ceiling on wasm: random-weight models with the exact shapes of SmolLM2-135M,
 * Qwen2.5-0.5B and Llama-3.2-1B (bench/model-shapes.ts), weights generated in memory (never
 * written to disk). For each, and for one LISA step (embed, head and 2 blocks; AdamW) and one full
 * fine-tuning step (every unit): the engine-memory estimate (core/models/memory.ts); then, where
 * it fits the 4 GiB heap, the measured step time, the engine's peak tensor bytes and the process's
 * peak RSS; where it does not, the coded error the chunk raises before loading.
 *
 *   npx tsx bench/models.ts [--only smollm2|qwen25|llama32] [--batch 1] [--seq 64]
 *
 * Prints a table and writes bench/results/models.json. Timings are never asserted.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import { initEngine } from '../core/engine/index.ts';
import type { ModelSpec } from '../core/models/config.ts';
import { checkTrainingFits, trainingBytes } from '../core/models/memory.ts';
import { createModel, randomWeights } from '../core/models/model.ts';
import { unitNames, unitOf } from '../core/models/units.ts';
import { adamwStep, type AdamWConfig } from '../core/optim/adamw.ts';
import { createParamGroup, disposeParamGroup } from '../core/optim/state.ts';
import { LLAMA_32_1B, QWEN25_05B, SMOLLM2_135M } from './model-shapes.ts';

const { values: args } = parseArgs({ options: { only: { type: 'string' }, batch: { type: 'string', default: '1' }, seq: { type: 'string', default: '64' } } });
const batch = Number(args.batch);
const seq = Number(args.seq);
const MODELS: Array<[string, string, ModelSpec]> = [
  ['smollm2', 'SmolLM2-135M', SMOLLM2_135M],
  ['qwen25', 'Qwen2.5-0.5B', QWEN25_05B],
  ['llama32', 'Llama-3.2-1B', LLAMA_32_1B],
];
const ADAMW: AdamWConfig = { lr: 1e-4, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01, maxGradNorm: 1, decayNormsAndBiases: false, schedule: { kind: 'constant', warmupSteps: 0, totalSteps: 10, minLrRatio: 1 } };
const gib = (b: number) => +(b / 1024 ** 3).toFixed(2);

await initEngine({ backend: 'wasm' });
const rows: Array<Record<string, unknown>> = [];
for (const [key, name, spec] of MODELS) {
  if (args.only && args.only !== key) continue;
  const plans: Array<[string, string[]]> = [
    ['LISA γ=2', ['embed', 'layers.0', `layers.${spec.nLayers - 1}`, 'head']],
    ['full', unitNames(spec)],
  ];
  let weights: Map<string, Float32Array> | undefined;
  for (const [method, units] of plans) {
    const plan = { units, batchSize: batch, seqLen: seq };
    const row: Record<string, unknown> = { model: name, method, estimateGiB: gib(trainingBytes(spec, plan)) };
    try {
      checkTrainingFits(spec, plan, 'wasm', name);
    } catch (err) {
      rows.push({ ...row, result: `${(err as { code: string }).code}` });
      continue;
    }
    weights ??= randomWeights(spec, 1);
    const model = createModel(spec, weights);
    const tokens = tf.tensor2d(Array.from({ length: batch }, (_, b) => Array.from({ length: seq }, (_, t) => (b * 7919 + t * 104729) % spec.vocabSize)), undefined, 'int32');
    const mask = tf.ones([batch, seq]) as tf.Tensor2D;
    const trained = new Set(units);
    const seconds: number[] = [];
    let peak = 0;
    for (let step = 0; step < 2; step++) {
      const groups = units.map((u) => createParamGroup(u, [...model.params].filter(([n]) => unitOf(spec, n) === u)));
      const byVar = new Map(groups.flatMap((g) => g.slots.map((s) => [s.param.name, s.name] as const)));
      const t0 = performance.now();
      const { value, grads } = tf.variableGrads(() => model.loss(tokens, tokens, mask), [...model.params].filter(([n]) => trained.has(unitOf(spec, n))).map(([, v]) => v));
      peak = Math.max(peak, tf.memory().numBytes);
      adamwStep(ADAMW, groups, new Map(Object.entries(grads).map(([k, g]) => [byVar.get(k)!, g])), step);
      value.dataSync();
      seconds.push((performance.now() - t0) / 1000);
      peak = Math.max(peak, tf.memory().numBytes);
      tf.dispose([value, ...Object.values(grads)]);
      groups.forEach(disposeParamGroup);
    }
    tf.dispose([tokens, mask]);
    model.dispose();
    rows.push({ ...row, result: 'trained', secondsPerStep: +seconds[1].toFixed(2), enginePeakGiB: gib(peak), rssPeakGiB: gib(process.resourceUsage().maxRSS * 1024) });
  }
}
console.table(rows);
await mkdir(new URL('./results/', import.meta.url), { recursive: true });
await writeFile(new URL('./results/models.json', import.meta.url), `${JSON.stringify({ batch, seq, backend: 'wasm', rows }, null, 2)}\n`);
