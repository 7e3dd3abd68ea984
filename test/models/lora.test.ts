/**
 * LoRA through the Params seam: fresh adapters change nothing, the adapter path's gradients match
 * finite differences (llama's nn.Linear and GPT-2's Conv1D, dropout on), folding the adapter into
 * the weight gives the same model, and init and dropout masks are pure functions of the seed.
 */
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { initEngine } from '../../core/engine/index.ts';
import type { ModelSpec } from '../../core/models/config.ts';
import { adapterShapes, adapterUnit, dropoutMask, foldAdapter, initAdapters, LORA_TARGETS, loraA, loraB, loraModules, type LoraConfig } from '../../core/models/lora.ts';
import { createModel } from '../../core/models/model.ts';
import { mulberry32 } from '../../core/lisa/rng.ts';
import { testWeights, tinyGpt2, tinyLlama, tokenBatch } from './tiny.ts';

beforeAll(async () => {
  await initEngine({ backend: 'cpu' });
});

const lora = (spec: ModelSpec, over: Partial<LoraConfig> = {}): LoraConfig => ({ rank: 3, alpha: 6, dropout: 0, targets: LORA_TARGETS[spec.arch], seed: 4, ...over });

/** Adapters with B moved off zero, so the adapter path matters. */
function trainedAdapters(spec: ModelSpec, cfg: LoraConfig): Map<string, Float32Array> {
  const rng = mulberry32(17);
  const out = initAdapters(spec, cfg);
  for (const [name, data] of out) if (name.endsWith('lora_B.weight')) data.forEach((_, i) => (data[i] = (rng.next() - 0.5) * 0.6));
  return out;
}

function batch(spec: ModelSpec) {
  const ids = tokenBatch(2, 7, spec.vocabSize, 5);
  return {
    tokens: tf.tensor2d(ids.map((r) => r.slice(0, 6)), undefined, 'int32'),
    targets: tf.tensor2d(ids.map((r) => r.slice(1)), undefined, 'int32'),
    mask: tf.tensor2d([
      [0, 1, 1, 1, 1, 1],
      [1, 1, 1, 0, 1, 1],
    ]),
  };
}

const bits = (t: tf.Tensor): Buffer => Buffer.from((t.dataSync() as Float32Array).buffer);

describe.each([
  ['llama', tinyLlama],
  ['gpt2', tinyGpt2],
] as [string, ModelSpec][])('LoRA on %s', (_name, spec) => {
  it('fresh adapters (B = 0) leave the logits bitwise unchanged', () => {
    const weights = testWeights(spec, 3);
    const plain = createModel(spec, weights);
    const adapted = createModel(spec, weights, { lora: { config: lora(spec), tensors: initAdapters(spec, lora(spec)) } });
    const { tokens } = batch(spec);
    expect(adapted.adapters.size).toBe(2 * loraModules(spec, LORA_TARGETS[spec.arch]).length);
    expect(bits(adapted.logits(tokens)).equals(bits(plain.logits(tokens)))).toBe(true);
    plain.dispose();
    adapted.dispose();
  });

  it("one step's adapter gradients match central finite differences, dropout on", () => {
    const cfg = lora(spec, { dropout: 0.25 });
    const model = createModel(spec, testWeights(spec, 3), { lora: { config: cfg, tensors: trainedAdapters(spec, cfg) } });
    const b = batch(spec);
    const pass = { step: 7, microBatch: 1 };
    const loss = () => tf.tidy(() => model.loss(b.tokens, b.targets, b.mask, pass).dataSync()[0]);
    const { value, grads } = tf.variableGrads(() => model.loss(b.tokens, b.targets, b.mask, pass), [...model.adapters.values()]);
    // Only adapters are differentiated: the base takes no weight gradients.
    expect(Object.keys(grads).sort()).toEqual([...model.adapters.values()].map((v) => v.name).sort());
    const eps = 1e-3;
    let worst = 0;
    for (const [name, v] of model.adapters) {
      const g = grads[v.name].dataSync() as Float32Array;
      const rng = mulberry32(name.length);
      const u = Float32Array.from(g, () => (rng.next() < 0.5 ? -1 : 1));
      const analytic = g.reduce((s, x, i) => s + x * u[i], 0);
      const orig = v.dataSync().slice();
      v.assign(tf.tensor(orig.map((x, i) => x + eps * u[i]), v.shape));
      const plus = loss();
      v.assign(tf.tensor(orig.map((x, i) => x - eps * u[i]), v.shape));
      const minus = loss();
      v.assign(tf.tensor(orig, v.shape));
      const fd = (plus - minus) / (2 * eps);
      worst = Math.max(worst, Math.abs(fd - analytic) / Math.max(Math.abs(fd), Math.abs(analytic), 1e-2));
    }
    // The tolerance of test/models/gradients.test.ts (float32 central differences at eps 1e-3).
    expect(worst).toBeLessThan(1e-2);
    tf.dispose([value, ...Object.values(grads)]);
    model.dispose();
  });

  it('folding W + (alpha/r)·B·A (transposed for Conv1D) into the weights gives the same logits', () => {
    const cfg = lora(spec);
    const weights = testWeights(spec, 3);
    const adapters = trainedAdapters(spec, cfg);
    const adapted = createModel(spec, weights, { lora: { config: cfg, tensors: adapters } });
    const merged = new Map(weights);
    for (const m of loraModules(spec, cfg.targets)) {
      merged.set(`${m.module}.weight`, foldAdapter(weights.get(`${m.module}.weight`)!, adapters.get(loraA(m.module))!, adapters.get(loraB(m.module))!, m, cfg));
    }
    const plain = createModel(spec, merged);
    const { tokens } = batch(spec);
    const [x, y] = [adapted.logits(tokens).dataSync(), plain.logits(tokens).dataSync()];
    const scale = Math.max(...x.map(Math.abs));
    expect(Math.max(...x.map((v, i) => Math.abs(v - y[i]))) / scale).toBeLessThan(1e-5);
    // and the adapters did change the model
    const base = createModel(spec, weights);
    const z = base.logits(tokens).dataSync();
    expect(Math.max(...x.map((v, i) => Math.abs(v - z[i]))) / scale).toBeGreaterThan(1e-2);
    [adapted, plain, base].forEach((m) => m.dispose());
  });
});

describe('LoRA pieces', () => {
  it('targets select modules by their last name part; adapters have PEFT shapes and belong to their block', () => {
    expect(loraModules(tinyGpt2, ['c_proj']).map((m) => m.module)).toEqual([
      'transformer.h.0.attn.c_proj',
      'transformer.h.0.mlp.c_proj',
      'transformer.h.1.attn.c_proj',
      'transformer.h.1.mlp.c_proj',
    ]);
    const shapes = adapterShapes(tinyGpt2, lora(tinyGpt2, { targets: ['c_fc'] }));
    // Conv1D c_fc weight [12, 20]: in 12, out 20
    expect(shapes.get('transformer.h.1.mlp.c_fc.lora_A.weight')).toEqual([3, 12]);
    expect(shapes.get('transformer.h.1.mlp.c_fc.lora_B.weight')).toEqual([20, 3]);
    const llama = adapterShapes(tinyLlama, lora(tinyLlama, { targets: ['k_proj', 'down_proj'] }));
    // Linear k_proj weight [8, 16] (2 kv heads × 4), down_proj [16, 24]
    expect([...llama]).toEqual([
      ['model.layers.0.self_attn.k_proj.lora_A.weight', [3, 16]],
      ['model.layers.0.self_attn.k_proj.lora_B.weight', [8, 3]],
      ['model.layers.0.mlp.down_proj.lora_A.weight', [3, 24]],
      ['model.layers.0.mlp.down_proj.lora_B.weight', [16, 3]],
      ['model.layers.1.self_attn.k_proj.lora_A.weight', [3, 16]],
      ['model.layers.1.self_attn.k_proj.lora_B.weight', [8, 3]],
      ['model.layers.1.mlp.down_proj.lora_A.weight', [3, 24]],
      ['model.layers.1.mlp.down_proj.lora_B.weight', [16, 3]],
    ]);
    expect(adapterUnit(tinyLlama, 'model.layers.1.mlp.down_proj.lora_B.weight')).toBe('layers.1');
  });

  it('init: A ~ U(-1/√in, 1/√in) from the seed, B = 0', () => {
    const cfg = lora(tinyLlama);
    const a = initAdapters(tinyLlama, cfg);
    expect([...initAdapters(tinyLlama, cfg)]).toEqual([...a]);
    const other = initAdapters(tinyLlama, { ...cfg, seed: 5 });
    const name = loraA('model.layers.0.mlp.down_proj');
    expect(other.get(name)).not.toEqual(a.get(name));
    const values = a.get(name)!; // in = 24
    expect(Math.max(...values.map(Math.abs))).toBeLessThanOrEqual(1 / Math.sqrt(24));
    expect(Math.max(...values.map(Math.abs))).toBeGreaterThan(0.8 / Math.sqrt(24));
    expect(a.get(loraB('model.layers.0.mlp.down_proj'))!.every((x) => x === 0)).toBe(true);
  });

  it('dropout masks: a pure function of (seed, module, step, micro-batch), entries 0 or 1/(1-p)', () => {
    const cfg = lora(tinyLlama, { dropout: 0.2 });
    const m = dropoutMask(cfg, 'model.layers.0.self_attn.q_proj', { step: 3, microBatch: 0 }, 100, 50);
    expect(dropoutMask(cfg, 'model.layers.0.self_attn.q_proj', { step: 3, microBatch: 0 }, 100, 50)).toEqual(m);
    for (const other of [
      dropoutMask(cfg, 'model.layers.0.self_attn.k_proj', { step: 3, microBatch: 0 }, 100, 50),
      dropoutMask(cfg, 'model.layers.0.self_attn.q_proj', { step: 4, microBatch: 0 }, 100, 50),
      dropoutMask(cfg, 'model.layers.0.self_attn.q_proj', { step: 3, microBatch: 1 }, 100, 50),
    ]) {
      expect(other).not.toEqual(m);
    }
    expect(new Set(m)).toEqual(new Set([0, Math.fround(1 / 0.8)]));
    const dropped = m.filter((x) => x === 0).length / m.length;
    expect(dropped).toBeGreaterThan(0.17);
    expect(dropped).toBeLessThan(0.23);
  });
});
