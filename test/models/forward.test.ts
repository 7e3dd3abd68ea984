import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { initEngine } from '../../core/engine/index.ts';
import type { ModelSpec } from '../../core/models/config.ts';
import { createModel } from '../../core/models/model.ts';
import { referenceGpt2Logits, referenceLlamaLogits } from './reference.ts';
import { testWeights, tinyGpt2, tinyLlama, tokenBatch } from './tiny.ts';

beforeAll(async () => {
  await initEngine({ backend: 'wasm' });
});

const cases: [string, ModelSpec, typeof referenceLlamaLogits][] = [
  ['llama (GQA 4/2, untied)', tinyLlama, referenceLlamaLogits],
  ['llama (tied, MHA)', { ...tinyLlama, tiedEmbeddings: true, nKvHeads: 4 }, referenceLlamaLogits],
  ['gpt2 (tied)', tinyGpt2, referenceGpt2Logits],
  ['gpt2 (untied)', { ...tinyGpt2, tiedEmbeddings: false }, referenceGpt2Logits],
];

/** Largest |a - b| over the logits of every position of every sequence. */
function maxDiff(got: number[][][], want: Float64Array[][]): number {
  let d = 0;
  got.forEach((seq, b) => seq.forEach((row, t) => row.forEach((v, i) => (d = Math.max(d, Math.abs(v - want[b][t][i]))))));
  return d;
}

describe.each(['cpu', 'wasm'])('forward on %s matches the float64 reference', (backend) => {
  it.each(cases)('%s', async (_name, spec, reference) => {
    await tf.setBackend(backend);
    const weights = testWeights(spec, 3);
    const model = createModel(spec, weights);
    const tokens = tokenBatch(2, 7, spec.vocabSize, 1);
    const logits = model.logits(tf.tensor2d(tokens, undefined, 'int32'));
    const got = (await logits.array()) as number[][][];
    logits.dispose();
    const want = tokens.map((seq) => reference(spec, weights, seq));
    // float32 against float64 on logits of magnitude ~5: 1e-4 is ~100 ulps.
    expect(maxDiff(got, want)).toBeLessThan(1e-4);
    model.dispose();
  });
});

describe('grouped-query attention', () => {
  it('query head h reads kv head floor(h / (H / KV)), not h % KV', async () => {
    await tf.setBackend('cpu');
    const spec = tinyLlama;
    expect(spec.nKvHeads).toBeLessThan(spec.nHeads);
    const weights = testWeights(spec, 5);
    const model = createModel(spec, weights);
    expect(model.params.get('model.layers.0.self_attn.k_proj.weight')!.shape).toEqual([spec.nKvHeads * spec.headDim, spec.dim]);
    const tokens = tokenBatch(1, 6, spec.vocabSize, 2);
    const logits = model.logits(tf.tensor2d(tokens, undefined, 'int32'));
    const got = (await logits.array()) as number[][][];
    logits.dispose();
    expect(maxDiff(got, [referenceLlamaLogits(spec, weights, tokens[0])])).toBeLessThan(1e-4);
    const modulo = referenceLlamaLogits(spec, weights, tokens[0], (h, _heads, kv) => h % kv);
    expect(maxDiff(got, [modulo])).toBeGreaterThan(1e-2);
    model.dispose();
  });
});

describe.each(['cpu', 'wasm'])('KV-cache decoding on %s', (backend) => {
  it.each([
    ['llama', tinyLlama],
    ['gpt2', tinyGpt2],
  ] as const)('%s: feeding a prompt then one token at a time gives the full-sequence logits', async (_n, spec) => {
    await tf.setBackend(backend);
    const model = createModel(spec, testWeights(spec, 9));
    const [tokens] = tokenBatch(1, 9, spec.vocabSize, 4);
    const full = model.logits(tf.tensor2d([tokens], undefined, 'int32'));
    const want = ((await full.array()) as number[][][])[0];
    full.dispose();
    const before = tf.memory().numTensors;
    const dec = model.decoder();
    const got = [dec.feed(tokens.slice(0, 4))];
    for (let t = 4; t < tokens.length; t++) got.push(dec.feed([tokens[t]]));
    expect(dec.pos).toBe(tokens.length);
    dec.dispose();
    expect(tf.memory().numTensors).toBe(before);
    got.forEach((row, i) => {
      const ref = want[3 + i];
      row.forEach((v, j) => expect(Math.abs(v - ref[j])).toBeLessThan(1e-4));
    });
    model.dispose();
  });
});
