import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { initEngine } from '../../core/engine/index.ts';
import { argmax, generate, GenerateOptionsError, RunCRng, sampleToken } from '../../core/models/generate.ts';
import { createModel, type Model } from '../../core/models/model.ts';
import { testWeights, tinyGpt2, tinyLlama } from './tiny.ts';

let model: Model;

beforeAll(async () => {
  await initEngine({ backend: 'wasm' });
  model = createModel(tinyLlama, testWeights(tinyLlama, 4));
});

describe('RunCRng', () => {
  it("reproduces llama2.c run.c's xorshift64* (values from an independent Python port, seed 42)", () => {
    const rng = new RunCRng(42);
    expect([rng.u32(), rng.u32(), rng.u32()]).toEqual([1456360119, 3359763283, 3393612768]);
    const f = new RunCRng(42);
    expect(f.f32()).toBeCloseTo(0.3390852212905884, 12);
  });
});

describe('sampleToken', () => {
  const logits = Float32Array.from([0.1, 2.5, -1, 2.4, 0]);
  it('temperature 0 is argmax (first maximum)', () => {
    expect(sampleToken(logits, 0, undefined, new RunCRng(1))).toBe(1);
    expect(argmax([3, 5, 5, 1])).toBe(1);
  });
  it('a tiny top-p keeps only the most likely token whatever the coin', () => {
    for (let seed = 1; seed < 30; seed++) expect(sampleToken(logits, 1, 1e-6, new RunCRng(seed))).toBe(1);
  });
  it('follows the distribution: a coin below p[0] picks token 0', () => {
    // p = softmax([5, 0]) = [0.9933, 0.0067]; seed 42's first coin is 0.339.
    expect(sampleToken(Float32Array.from([5, 0]), 1, undefined, new RunCRng(42))).toBe(0);
    // p = softmax([0, 5]): 0.339 > p[0] = 0.0067, so token 1.
    expect(sampleToken(Float32Array.from([0, 5]), 1, undefined, new RunCRng(42))).toBe(1);
  });
});

describe('generate', () => {
  it('greedy picks the argmax of the full-sequence logits at every step', async () => {
    const seq = generate(model, [1, 4], { maxTokens: 10, temperature: 0, stopIds: [] });
    expect(seq.length).toBe(11);
    expect(seq.slice(0, 2)).toEqual([1, 4]);
    const logits = (await model.logits(tf.tensor2d([seq], undefined, 'int32')).array()) as number[][][];
    for (let t = 1; t < seq.length - 1; t++) expect(seq[t + 1]).toBe(argmax(logits[0][t]));
  });

  it('is deterministic for a seed and depends on it', () => {
    const opts = { maxTokens: 20, temperature: 1.5, topP: 0.95, stopIds: [] };
    const a = generate(model, [1], { ...opts, seed: 7 });
    const b = generate(model, [1], { ...opts, seed: 7 });
    const c = generate(model, [1], { ...opts, seed: 8 });
    expect(a).toEqual(b);
    expect(a).not.toEqual(c);
  });

  it('counts positions like run.c -n: maxTokens positions, BOS and prompt included', () => {
    const seen: number[] = [];
    const seq = generate(model, [1, 5, 6], { maxTokens: 5, temperature: 0, stopIds: [] }, (id) => seen.push(id));
    expect(seq.length).toBe(6);
    expect(seen).toEqual(seq.slice(3));
    expect(generate(model, [1, 5, 6, 7, 8, 9, 3], { maxTokens: 4, temperature: 0 })).toEqual([1, 5, 6, 7, 8]);
  });

  it('stops before emitting a stop id', () => {
    const free = generate(model, [1], { maxTokens: 12, temperature: 0, stopIds: [] });
    const stopAt = free[3];
    const seq = generate(model, [1], { maxTokens: 12, temperature: 0, stopIds: [stopAt] });
    expect(seq).toEqual(free.slice(0, free.indexOf(stopAt)));
  });

  it('does not leak tensors', () => {
    generate(model, [1], { maxTokens: 4, temperature: 0 });
    const before = tf.memory().numTensors;
    generate(model, [1, 2, 3], { maxTokens: 8, temperature: 0.8, seed: 3 });
    expect(tf.memory().numTensors).toBe(before);
  });

  it('works for gpt2 and clamps to its learned positions', () => {
    const g = createModel(tinyGpt2, testWeights(tinyGpt2, 4));
    const seq = generate(g, [0], { maxTokens: 1000, temperature: 0, stopIds: [] });
    expect(seq.length).toBe(tinyGpt2.maxSeqLen + 1);
    g.dispose();
  });

  it('rejects bad options', () => {
    expect(() => generate(model, [1], { maxTokens: 0, temperature: 0 })).toThrow(GenerateOptionsError);
    expect(() => generate(model, [1], { maxTokens: 3, temperature: -1 })).toThrow(/temperature/);
    expect(() => generate(model, [1, 99], { maxTokens: 3, temperature: 0 })).toThrow(/prompt token 99/);
  });
});
