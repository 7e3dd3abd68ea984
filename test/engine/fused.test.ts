/**
 * The fused kernels (core/engine/fused.ts) behind nn.ts's functions on the native addon: each
 * forward and gradient against the reference composition (the same function with the native
 * kernels off), against finite differences, running as one kernel, and leaving tensor counts flat.
 */
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { initEngine, setNativeKernels } from '../../core/engine/index.ts';
import { fusedSumSquares } from '../../core/engine/fused.ts';
import { causalAttention, conv1d, geluTanh, layerNorm, maskedCrossEntropy, rmsNorm, silu } from '../../core/models/nn.ts';
import { checkGradients, rand } from './finite-differences.ts';
import { nativeForTests } from './native-env.ts';

const native = nativeForTests('fused.test');

type Op = (...xs: tf.Tensor[]) => tf.Tensor;

interface Case {
  name: string;
  f: Op;
  /** Inputs' shapes and value ranges. */
  inputs: [number[], number?, number?][];
  /** The kernel the forward runs as. */
  kernel: string;
}

const targets = [3, 0, 10, 7, 7, 1];
const mask = [1, 0, 1, 1, 0, 1];

const CASES: Case[] = [
  { name: 'rmsNorm', f: (x, w) => rmsNorm(x as tf.Tensor2D, w, 1e-5), inputs: [[[5, 19]], [[19], 0.5, 1.5]], kernel: 'LisaRmsNorm' },
  { name: 'layerNorm', f: (x, w, b) => layerNorm(x as tf.Tensor2D, w, b, 1e-5), inputs: [[[5, 19]], [[19], 0.5, 1.5], [[19]]], kernel: 'LisaLayerNorm' },
  { name: 'conv1d', f: (x, w, b) => conv1d(x as tf.Tensor2D, w, b), inputs: [[[5, 7]], [[7, 9]], [[9]]], kernel: 'LisaConv1d' },
  { name: 'silu', f: (x) => silu(x), inputs: [[[3, 37], -6, 6]], kernel: 'LisaSilu' },
  { name: 'geluTanh', f: (x) => geluTanh(x), inputs: [[[3, 37], -5, 5]], kernel: 'LisaGelu' },
  {
    name: 'causalAttention, 3 heads',
    f: (q, k, v) => causalAttention(q as tf.Tensor4D, k as tf.Tensor4D, v as tf.Tensor4D),
    inputs: [[[2, 3, 5, 4]], [[2, 3, 5, 4]], [[2, 3, 5, 4]]],
    kernel: 'LisaCausalAttention',
  },
  {
    name: 'causalAttention, 4 query heads on 2 kv heads, 3 queries after 4 cached keys',
    f: (q, k, v) => causalAttention(q as tf.Tensor4D, k as tf.Tensor4D, v as tf.Tensor4D),
    inputs: [[[1, 4, 3, 4]], [[1, 2, 7, 4]], [[1, 2, 7, 4]]],
    kernel: 'LisaCausalAttention',
  },
  {
    // More queries than the kernel's block of 32: later blocks see more keys.
    name: 'causalAttention, 40 queries',
    f: (q, k, v) => causalAttention(q as tf.Tensor4D, k as tf.Tensor4D, v as tf.Tensor4D),
    inputs: [[[1, 1, 40, 2]], [[1, 1, 40, 2]], [[1, 1, 40, 2]]],
    kernel: 'LisaCausalAttention',
  },
  {
    name: 'maskedCrossEntropy',
    f: (logits) => maskedCrossEntropy(logits as tf.Tensor2D, tf.tensor1d(targets, 'int32'), tf.tensor1d(mask)),
    inputs: [[[6, 11], -3, 3]],
    kernel: 'LisaCrossEntropy',
  },
];

/** f's value and the gradients of sum(f * r) for every input, with the native kernels on or off. */
function valueAndGrads(c: Case, xs: tf.Tensor[], r: tf.Tensor, nativeOn: boolean): Float32Array[] {
  setNativeKernels(nativeOn);
  try {
    const y = tf.tidy(() => c.f(...xs));
    const grads = tf.grads((...ins: tf.Tensor[]) => tf.sum(tf.mul(c.f(...ins), r)))(xs);
    const out = [y, ...grads].map((t) => t.dataSync().slice() as Float32Array);
    tf.dispose([y, ...grads]);
    return out;
  } finally {
    setNativeKernels(true);
  }
}

function worstRelative(a: Float32Array, b: Float32Array): number {
  let scale = 0;
  for (const x of b) scale = Math.max(scale, Math.abs(x));
  let worst = 0;
  a.forEach((x, i) => (worst = Math.max(worst, Math.abs(x - b[i]) / Math.max(scale, 1e-30))));
  return worst;
}

describe('fused kernels on other backends', () => {
  it('never run there: nn.ts runs its reference composition (cpu standing in for tensorflow)', async () => {
    await initEngine({ backend: 'cpu' });
    for (const c of CASES) {
      const xs = c.inputs.map(([shape, lo, hi]) => rand(shape, lo ?? -1, hi ?? 1));
      const profile = await tf.profile(() => tf.tidy(() => void c.f(...xs)));
      expect(profile.kernels.map((k) => k.name).filter((n) => n.startsWith('Lisa')), c.name).toEqual([]);
    }
    expect(fusedSumSquares(tf.ones([3]))).toBeUndefined();
  });
});

describe.runIf(native)('fused kernels on the native addon', () => {
  beforeAll(async () => {
    await initEngine({ backend: 'wasm' });
  });

  for (const c of CASES) {
    const inputs = () => c.inputs.map(([shape, lo, hi]) => rand(shape, lo ?? -1, hi ?? 1));

    it(`${c.name}: value and gradients equal the reference composition within 2e-6 of their largest entry`, () => {
      const xs = inputs();
      const r = rand(tf.tidy(() => c.f(...xs)).shape);
      const fused = valueAndGrads(c, xs, r, true);
      const reference = valueAndGrads(c, xs, r, false);
      fused.forEach((x, i) => expect(worstRelative(x, reference[i]), `${i === 0 ? 'value' : `gradient of input ${i - 1}`}`).toBeLessThan(2e-6));
    });

    it(`${c.name}: gradients match finite differences`, () => {
      checkGradients(c.f, inputs());
    });

    it(`${c.name}: the forward is one ${c.kernel} kernel, and tensor counts stay flat`, async () => {
      const xs = inputs();
      const profile = await tf.profile(() => tf.tidy(() => void c.f(...xs)));
      expect(profile.kernels.map((k) => k.name)).toContain(c.kernel);
      const r = rand(tf.tidy(() => c.f(...xs)).shape);
      valueAndGrads(c, xs, r, true);
      const [tensors, buffers] = [tf.memory().numTensors, tf.backend().numDataIds()];
      valueAndGrads(c, xs, r, true);
      expect([tf.memory().numTensors, tf.backend().numDataIds()]).toEqual([tensors, buffers]);
    });
  }

  it('sum of squares equals a float64 sum within 1e-6, for lengths around its 16-wide blocks', () => {
    for (const n of [1, 15, 16, 17, 1000]) {
      const x = rand([n], -2, 2);
      let want = 0;
      for (const v of x.dataSync()) want += v * v;
      expect(Math.abs(fusedSumSquares(x)! - want) / want).toBeLessThan(1e-6);
    }
  });

  it('refuses attention shapes it cannot run, with a code', () => {
    const heap = new ArrayBuffer(4096);
    expect(() => native!.attention(heap, 0, 256, 512, 768, 1, 3, 2, 2, 2, 4, 0.5)).toThrow(
      expect.objectContaining({ code: 'LISA_NATIVE_ARGS', message: 'attention: query heads must be a positive multiple of kv heads' }),
    );
    expect(() => native!.attention(heap, 0, 256, 512, 768, 1, 2, 2, 3, 2, 4, 0.5)).toThrow('attention: more queries than keys');
    expect(() => native!.attention(heap, 0, 256, 512, 4040, 1, 2, 2, 2, 2, 4, 0.5)).toThrow(
      expect.objectContaining({ code: 'LISA_NATIVE_BOUNDS', message: 'attention: an operand reaches past the end of the heap' }),
    );
  });
});
