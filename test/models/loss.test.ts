import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { initEngine } from '../../core/engine/index.ts';
import { createModel, WeightsError } from '../../core/models/model.ts';
import { maskedCrossEntropy } from '../../core/models/nn.ts';
import { testWeights, tinyGpt2, tinyLlama, tokenBatch } from './tiny.ts';

beforeAll(async () => {
  await initEngine({ backend: 'wasm' });
});

describe.each(['cpu', 'wasm'])('masked cross-entropy on %s', (backend) => {
  it('equals the hand-computed mean over mask=1 positions', async () => {
    await tf.setBackend(backend);
    const logits = tf.tensor2d([
      [0, 1, 2],
      [1, 1, 1],
      [3, 0, 0],
    ]);
    const loss = maskedCrossEntropy(logits, tf.tensor1d([2, 0, 1], 'int32'), tf.tensor1d([1, 0, 1]));
    // Row 0: log(1 + e + e^2) - 2; row 2: log(e^3 + 2) - 0; row 1 is masked out.
    const want = (Math.log(1 + Math.E + Math.E ** 2) - 2 + Math.log(Math.E ** 3 + 2)) / 2;
    expect(want).toBeCloseTo(1.75126, 5);
    expect(loss.dataSync()[0]).toBeCloseTo(want, 5);
  });

  it('stays exact for logits far apart (no underflowing probability is logged)', async () => {
    await tf.setBackend(backend);
    const loss = maskedCrossEntropy(tf.tensor2d([[1000, 0, -1000]]), tf.tensor1d([2], 'int32'), tf.tensor1d([1]));
    expect(loss.dataSync()[0]).toBe(2000);
  });

  it('is 0 when every position is masked', async () => {
    await tf.setBackend(backend);
    const loss = maskedCrossEntropy(tf.tensor2d([[1, 2]]), tf.tensor1d([0], 'int32'), tf.tensor1d([0]));
    expect(loss.dataSync()[0]).toBe(0);
  });

  it('model.loss is the masked mean of -log softmax(logits)[target] of model.logits', async () => {
    await tf.setBackend(backend);
    const spec = tinyLlama;
    const model = createModel(spec, testWeights(spec, 1));
    const ids = tokenBatch(2, 6, spec.vocabSize, 3);
    const tokens = ids.map((r) => r.slice(0, 5));
    const targets = ids.map((r) => r.slice(1));
    const mask = [
      [0, 1, 1, 0, 1],
      [1, 0, 0, 0, 1],
    ];
    const logits = (await model.logits(tf.tensor2d(tokens, undefined, 'int32')).array()) as number[][][];
    let sum = 0;
    let count = 0;
    logits.forEach((seq, b) =>
      seq.forEach((row, t) => {
        if (!mask[b][t]) return;
        const m = Math.max(...row);
        const lse = m + Math.log(row.reduce((s, v) => s + Math.exp(v - m), 0));
        sum += lse - row[targets[b][t]];
        count++;
      }),
    );
    const loss = model.loss(tf.tensor2d(tokens, undefined, 'int32'), tf.tensor2d(targets, undefined, 'int32'), tf.tensor2d(mask));
    expect(loss.dataSync()[0]).toBeCloseTo(sum / count, 5);
    model.dispose();
  });
});

describe('training steps', () => {
  it.each([
    ['llama', tinyLlama],
    ['gpt2', tinyGpt2],
  ] as const)('%s on wasm: loss + grads + SGD keep the tensor count flat over 20 steps, and the loss falls', async (_n, spec) => {
    await tf.setBackend('wasm');
    const model = createModel(spec, testWeights(spec, 2));
    const ids = tokenBatch(2, 9, spec.vocabSize, 7);
    const tokens = tf.tensor2d(ids.map((r) => r.slice(0, 8)), undefined, 'int32');
    const targets = tf.tensor2d(ids.map((r) => r.slice(1)), undefined, 'int32');
    const mask = tf.ones(tokens.shape) as tf.Tensor2D;
    const vars = [...model.params.values()];
    const counts: number[] = [];
    const losses: number[] = [];
    for (let step = 0; step < 20; step++) {
      const { value, grads } = tf.variableGrads(() => model.loss(tokens, targets, mask), vars);
      losses.push(value.dataSync()[0]);
      tf.tidy(() => {
        for (const v of vars) v.assign(tf.sub(v, tf.mul(grads[v.name], 0.05)));
      });
      tf.dispose([value, ...Object.values(grads)]);
      counts.push(tf.memory().numTensors);
    }
    expect(new Set(counts).size, `tensor counts ${counts.join(',')}`).toBe(1);
    expect(losses[19]).toBeLessThan(losses[0] * 0.9);
    model.dispose();
  });
});

describe('createModel', () => {
  it('names missing tensors and wrong sizes', () => {
    const w = testWeights(tinyLlama, 1);
    w.delete('model.layers.1.mlp.up_proj.weight');
    expect(() => createModel(tinyLlama, w)).toThrow(WeightsError);
    expect(() => createModel(tinyLlama, w)).toThrow(/model\.layers\.1\.mlp\.up_proj\.weight/);
    const w2 = testWeights(tinyLlama, 1);
    w2.set('model.norm.weight', new Float32Array(3));
    expect(() => createModel(tinyLlama, w2)).toThrow(/model\.norm\.weight has 3 values; shape \[16\] needs 16/);
  });

  it('rejects tensors the config does not define but skips known non-parameters', () => {
    const w = testWeights(tinyGpt2, 1);
    w.set('transformer.h.0.attn.bias', new Float32Array(4));
    const model = createModel(tinyGpt2, w);
    expect(model.params.has('transformer.h.0.attn.bias')).toBe(false);
    model.dispose();
    w.set('transformer.h.7.mlp.c_fc.weight', new Float32Array(4));
    expect(() => createModel(tinyGpt2, w)).toThrow(/transformer\.h\.7\.mlp\.c_fc\.weight/);
  });
});
