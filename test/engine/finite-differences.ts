/**
 * Gradients against central finite differences on the current backend: L(x) = sum(f(x) * r) for
 * a fixed random r, every input entry perturbed by eps = 1e-3. Tolerance:
 * |fd - analytic| <= 5e-3 * max(1, |analytic|) (float32 rounding ~1e-4 at eps 1e-3).
 */
import * as tf from '@tensorflow/tfjs-core';
import { expect } from 'vitest';

let seed = 1;

/** Uniform values in [lo, hi) from a fixed Lehmer sequence. */
export function rand(shape: number[], lo = -1, hi = 1): tf.Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  return tf.tensor(
    Float32Array.from({ length: n }, () => {
      seed = (seed * 48271) % 2147483647;
      return lo + ((hi - lo) * seed) / 2147483647;
    }),
    shape,
  );
}

export function checkGradients(f: (...xs: tf.Tensor[]) => tf.Tensor, inputs: tf.Tensor[]): void {
  const out = tf.tidy(() => f(...inputs));
  const r = rand(out.shape);
  const loss = (...xs: tf.Tensor[]) => tf.sum(tf.mul(f(...xs), r));
  const analytic = tf.grads(loss)(inputs).map((g) => g.dataSync());
  const eps = 1e-3;
  inputs.forEach((x, k) => {
    const base = x.dataSync().slice();
    for (let i = 0; i < base.length; i++) {
      const at = (delta: number) => {
        const v = base.slice();
        v[i] += delta;
        const xs = inputs.map((y, j) => (j === k ? tf.tensor(v, x.shape) : y));
        return tf.tidy(() => loss(...xs).dataSync()[0]);
      };
      const fd = (at(eps) - at(-eps)) / (2 * eps);
      const a = analytic[k][i];
      expect(Math.abs(fd - a), `input ${k} entry ${i}: fd ${fd} analytic ${a}`).toBeLessThanOrEqual(5e-3 * Math.max(1, Math.abs(a)));
    }
  });
}
