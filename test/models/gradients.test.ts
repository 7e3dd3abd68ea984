/**
 * Gradient checks of the whole training loss: every parameter tensor of tiny llama and gpt2 models
 * against central finite differences along a random ±1 direction, on the cpu backend (float32,
 * so: weights of order 0.2-1, directional derivatives rather than single entries; at eps = 1e-3
 * truncation error is ~1e-4 relative and float32 rounding ~1e-4, measured).
 * Then the same gradients on wasm (with and without the engine's overrides) against cpu.
 */
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { initEngine, setWasmOverrides } from '../../core/engine/index.ts';
import type { ModelSpec } from '../../core/models/config.ts';
import { createModel, type Model } from '../../core/models/model.ts';
import { testWeights, tinyGpt2, tinyLlama, tokenBatch } from './tiny.ts';

beforeAll(async () => {
  await initEngine({ backend: 'wasm' });
});

function batch(spec: ModelSpec) {
  const ids = tokenBatch(2, 7, spec.vocabSize, 11);
  return {
    tokens: tf.tensor2d(ids.map((r) => r.slice(0, 6)), undefined, 'int32'),
    targets: tf.tensor2d(ids.map((r) => r.slice(1)), undefined, 'int32'),
    mask: tf.tensor2d([
      [0, 0, 1, 1, 1, 1],
      [1, 1, 1, 0, 1, 1],
    ]),
  };
}

function gradients(model: Model, b: ReturnType<typeof batch>): Map<string, Float32Array> {
  const { grads, value } = tf.variableGrads(() => model.loss(b.tokens, b.targets, b.mask), [...model.params.values()]);
  const byId = new Map([...model.params].map(([n, v]) => [v.name, n]));
  const out = new Map<string, Float32Array>();
  for (const [varName, g] of Object.entries(grads)) out.set(byId.get(varName)!, g.dataSync() as Float32Array);
  tf.dispose([value, ...Object.values(grads)]);
  return out;
}

function direction(n: number, seed: number): Float32Array {
  let s = seed + 99;
  return Float32Array.from({ length: n }, () => {
    s = (s * 48271) % 2147483647;
    return s % 2 === 0 ? 1 : -1;
  });
}

const EPS = 1e-3;
// Relative error of the directional derivative, |fd - analytic| / max(|fd|, |analytic|, 1e-2).
const TOLERANCE = 1e-2;

describe.each([
  ['llama (GQA, untied)', tinyLlama],
  ['llama (tied)', { ...tinyLlama, tiedEmbeddings: true }],
  ['gpt2 (tied)', tinyGpt2],
] as [string, ModelSpec][])('finite differences on cpu: %s', (_name, spec) => {
  it('every parameter tensor', async () => {
    await tf.setBackend('cpu');
    const model = createModel(spec, testWeights(spec, 21));
    const b = batch(spec);
    const grads = gradients(model, b);
    expect([...grads.keys()].sort()).toEqual([...model.params.keys()].sort());
    const loss = () => tf.tidy(() => model.loss(b.tokens, b.targets, b.mask).dataSync()[0]);
    const worst: [string, number][] = [];
    let seed = 0;
    for (const [name, param] of model.params) {
      const g = grads.get(name)!;
      const u = direction(g.length, seed++);
      const analytic = g.reduce((s, v, i) => s + v * u[i], 0);
      const orig = param.dataSync().slice();
      param.assign(tf.tensor(orig.map((v, i) => v + EPS * u[i]), param.shape));
      const plus = loss();
      param.assign(tf.tensor(orig.map((v, i) => v - EPS * u[i]), param.shape));
      const minus = loss();
      param.assign(tf.tensor(orig, param.shape));
      const fd = (plus - minus) / (2 * EPS);
      const rel = Math.abs(fd - analytic) / Math.max(Math.abs(fd), Math.abs(analytic), 1e-2);
      worst.push([name, rel]);
    }
    worst.sort((a, b) => b[1] - a[1]);
    expect(worst[0][1], `worst: ${worst.slice(0, 3).map(([n, r]) => `${n} ${r.toExponential(2)}`).join(', ')}`).toBeLessThan(TOLERANCE);
    model.dispose();
  });
});

describe.each([
  ['llama', tinyLlama],
  ['gpt2', tinyGpt2],
] as [string, ModelSpec][])('wasm gradients equal cpu gradients: %s', (_name, spec) => {
  it.each([true, false])('engine overrides %s', async (overrides) => {
    await tf.setBackend('cpu');
    const cpuModel = createModel(spec, testWeights(spec, 21));
    const want = gradients(cpuModel, batch(spec));
    cpuModel.dispose();
    await tf.setBackend('wasm');
    setWasmOverrides(overrides);
    try {
      const model = createModel(spec, testWeights(spec, 21));
      const got = gradients(model, batch(spec));
      model.dispose();
      for (const [name, g] of want) {
        const scale = Math.max(...g.map(Math.abs));
        const diff = Math.max(...g.map((v, i) => Math.abs(v - got.get(name)![i])));
        // Different summation orders in float32: agree to 1e-4 of the tensor's largest entry.
        expect(diff / scale, name).toBeLessThan(1e-4);
      }
    } finally {
      setWasmOverrides(true);
    }
  });
});
