import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { initEngine } from '../../core/engine/index.ts';
import { randomWeights } from '../../core/models/model.ts';
import { projectionInputNorms } from '../../core/train/calibrate.ts';
import { smallLlama } from './harness.ts';

beforeAll(async () => {
  await initEngine({ backend: 'cpu' });
});

const weights = randomWeights(smallLlama, 3);
const base = { spec: smallLlama, weights };
const examples = [
  { ids: [1, 40, 41, 42, 43, 2], mask: [0, 0, 0, 1, 1, 1] },
  { ids: [1, 77, 2], mask: [0, 1, 1] }, // padded by 3 positions in a batch with the first
];

/** ‖X_j‖ of layer 0's attention input by hand: Σ over real positions of rmsNorm(embedding)_j², square-rooted. */
function layer0AttentionInputNorms(): number[] {
  const { dim, normEps } = smallLlama;
  const table = weights.get('model.embed_tokens.weight')!;
  const gain = weights.get('model.layers.0.input_layernorm.weight')!;
  const sq = new Array(dim).fill(0);
  for (const e of examples) {
    for (const id of e.ids.slice(0, -1)) {
      const x = table.subarray(id * dim, (id + 1) * dim);
      const rms = Math.sqrt(x.reduce((s, v) => s + v * v, 0) / dim + normEps);
      x.forEach((v, j) => (sq[j] += ((v / rms) * gain[j]) ** 2));
    }
  }
  return sq.map(Math.sqrt);
}

describe('projectionInputNorms', () => {
  it('captures every projection through the Params seam, with ‖X_j‖ over real positions only (to float32 precision)', () => {
    projectionInputNorms(base, examples, 2); // the forward's first call caches its rotation matrix
    const before = tf.memory().numTensors;
    const norms = projectionInputNorms(base, examples, 2);
    expect(tf.memory().numTensors).toBe(before);
    expect(norms.size).toBe(7 * smallLlama.nLayers);
    expect([...norms.keys()].slice(0, 7)).toEqual(
      ['self_attn.q_proj', 'self_attn.k_proj', 'self_attn.v_proj', 'self_attn.o_proj', 'mlp.gate_proj', 'mlp.up_proj', 'mlp.down_proj'].map((m) => `model.layers.0.${m}`),
    );
    const expected = layer0AttentionInputNorms();
    for (const m of ['q_proj', 'k_proj', 'v_proj']) {
      const { kind, norms: got } = norms.get(`model.layers.0.self_attn.${m}`)!;
      expect(kind).toBe('linear');
      expect(got.length).toBe(smallLlama.dim);
      got.forEach((v, j) => expect(Math.abs(v - expected[j]) / expected[j], `${m}[${j}]`).toBeLessThan(1e-5));
    }
    // One batch of two or two batches of one: padding changes nothing.
    const single = projectionInputNorms(base, examples, 1);
    for (const [m, { norms: n }] of norms) n.forEach((v, j) => expect(Math.abs(v - single.get(m)!.norms[j]) / v, m).toBeLessThan(1e-5));
  });
});
