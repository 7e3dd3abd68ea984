/** Tiny specs and weights with enough magnitude that every nonlinearity matters in tests. */
import type { ModelSpec } from '../../core/models/config.ts';
import { randomWeights } from '../../core/models/model.ts';

/** GQA (4 query heads over 2 kv heads) and an untied head. */
export const tinyLlama: ModelSpec = {
  arch: 'llama',
  vocabSize: 11,
  dim: 16,
  nLayers: 2,
  nHeads: 4,
  nKvHeads: 2,
  headDim: 4,
  hiddenDim: 24,
  maxSeqLen: 32,
  normEps: 1e-5,
  ropeTheta: 10000,
  tiedEmbeddings: false,
  bosId: 1,
  eosId: 2,
};

export const tinyGpt2: ModelSpec = {
  arch: 'gpt2',
  vocabSize: 13,
  dim: 12,
  nLayers: 2,
  nHeads: 3,
  nKvHeads: 3,
  headDim: 4,
  hiddenDim: 20,
  maxSeqLen: 16,
  normEps: 1e-5,
  ropeTheta: 0,
  tiedEmbeddings: true,
  bosId: 0,
  eosId: 0,
};

/** randomWeights with matrices scaled to std ~0.2 and norms/biases moved off 1/0. */
export function testWeights(spec: ModelSpec, seed: number): Map<string, Float32Array> {
  const w = randomWeights(spec, seed);
  let s = seed * 7919 + 1;
  const noise = () => {
    s = (s * 16807) % 2147483647;
    return s / 2147483647 - 0.5;
  };
  for (const [name, data] of w) {
    if (name.endsWith('.bias')) data.forEach((_, i) => (data[i] = 0.2 * noise()));
    else if (/(norm|ln_\d|ln_f)\.weight$/.test(name)) data.forEach((_, i) => (data[i] = 1 + 0.4 * noise()));
    else data.forEach((v, i) => (data[i] = v * 10));
  }
  return w;
}

/** Deterministic token batch [b][t] in [0, vocab). */
export function tokenBatch(b: number, t: number, vocab: number, seed: number): number[][] {
  let s = seed + 12345;
  return Array.from({ length: b }, () =>
    Array.from({ length: t }, () => {
      s = (s * 48271) % 2147483647;
      return s % vocab;
    }),
  );
}
