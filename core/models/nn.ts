/**
 * Building blocks shared by the architectures. Activations stay 2-D ([N = B*T, features]) between
 * blocks: on wasm only 2-D products run on XNNPACK, and 2-D is what every backend likes best.
 */
import * as tf from '@tensorflow/tfjs-core';
import { fusedActivation, fusedCausalAttention, fusedConv1d, fusedCrossEntropy, fusedLayerNorm, fusedRmsNorm } from '../engine/fused.ts';
import '../engine/gradients.ts';

/** Per-layer attention keys and values, [B, nKvHeads, S, headDim], S = positions so far. */
export interface KV {
  k: tf.Tensor4D;
  v: tf.Tensor4D;
}

/**
 * What a forward pass reads its parameters through. Every projection of a block goes through
 * `linear` or `conv1d` by module name (`model.layers.0.self_attn.q_proj`), so what a run adds to a
 * projection (adapters, a bias, a probe) is added in one place, not in each architecture.
 */
export interface Params {
  /** a parameter by HF name */
  w(name: string): tf.Tensor;
  /** HF nn.Linear `{module}.weight` [out, in] on x [N, in] -> [N, out] */
  linear(x: tf.Tensor2D, module: string): tf.Tensor2D;
  /** GPT-2 Conv1D `{module}.weight` [in, out] + `{module}.bias` on x [N, in] -> [N, out] */
  conv1d(x: tf.Tensor2D, module: string): tf.Tensor2D;
}

/** HF nn.Linear: x [N, in] · W^T with W [out, in] -> [N, out]. */
export function linear(x: tf.Tensor2D, w: tf.Tensor): tf.Tensor2D {
  return tf.matMul(x, w as tf.Tensor2D, false, true);
}

/** GPT-2 Conv1D: x [N, in] · W + b with W [in, out] -> [N, out]. */
export function conv1d(x: tf.Tensor2D, w: tf.Tensor, b: tf.Tensor): tf.Tensor2D {
  return fusedConv1d(x, w, b) ?? tf.add(tf.matMul(x, w as tf.Tensor2D), b);
}

/** x [N, D] * rsqrt(mean(x^2) + eps) * w (one fused kernel where the engine has it) */
export function rmsNorm(x: tf.Tensor2D, w: tf.Tensor, eps: number): tf.Tensor2D {
  const fused = fusedRmsNorm(x, w, eps);
  if (fused) return fused;
  const ms = tf.mean(tf.square(x), -1, true); // [N, 1]
  return tf.mul(tf.mul(x, tf.rsqrt(tf.add(ms, eps))), w);
}

/** (x - mean) * rsqrt(var + eps) * w + b over the last axis of x [N, D] (fused where the engine has it). */
export function layerNorm(x: tf.Tensor2D, w: tf.Tensor, b: tf.Tensor, eps: number): tf.Tensor2D {
  const fused = fusedLayerNorm(x, w, b, eps);
  if (fused) return fused;
  const { mean, variance } = tf.moments(x, -1, true); // [N, 1] each
  return tf.add(tf.mul(tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, eps))), w), b);
}

/** Embedding rows for token ids [B, T] -> [B*T, D]. */
export function embed(table: tf.Tensor, tokens: tf.Tensor2D): tf.Tensor2D {
  return tf.gather(table, tf.reshape(tokens, [-1])) as tf.Tensor2D;
}

export function silu(x: tf.Tensor): tf.Tensor {
  return fusedActivation('silu', x) ?? tf.mul(x, tf.sigmoid(x));
}

/**
 * GPT-2's gelu_new, 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), written with the identity
 * 0.5 (1 + tanh(z)) = sigmoid(2 z): on wasm tanh and pow are scalar libm calls ~6x slower than
 * the vectorised sigmoid and multiplies.
 */
export function geluTanh(x: tf.Tensor): tf.Tensor {
  const fused = fusedActivation('gelu', x);
  if (fused) return fused;
  const z2 = tf.mul(tf.mul(x, tf.add(tf.mul(tf.square(x), 0.044715), 1)), 2 * Math.sqrt(2 / Math.PI));
  return tf.mul(x, tf.sigmoid(z2));
}

const MASKED = -1e9;

/** Additive causal mask for queries at positions pos0..pos0+t-1 over keys 0..s-1: [t, s]. */
function causalBias(t: number, s: number, pos0: number): tf.Tensor2D {
  const bias = new Float32Array(t * s);
  for (let i = 0; i < t; i++) for (let j = pos0 + i + 1; j < s; j++) bias[i * s + j] = MASKED;
  return tf.tensor2d(bias, [t, s]);
}

/**
 * Causal softmax attention with grouped-query heads.
 * q [B, H, T, hd]; k, v [B, KV, S, hd] with H a multiple of KV; query head h reads kv head
 * floor(h / (H / KV)), as HF's repeat_kv. Returns [B*T, H*hd] (heads concatenated per position).
 */
export function causalAttention(q: tf.Tensor4D, k: tf.Tensor4D, v: tf.Tensor4D): tf.Tensor2D {
  const fused = fusedCausalAttention(q, k, v);
  if (fused) return fused;
  const [b, h, t, hd] = q.shape;
  const [, kvHeads, s] = k.shape;
  const group = h / kvHeads;
  const pos0 = s - t;
  // Heads sharing a kv head are adjacent, so grouping them is a reshape, not a copy of k and v:
  // qg [B, KV, group*T, hd] against k [B, KV, S, hd].
  // Scaling q rather than the scores: hd/S times fewer multiplies, forward and backward.
  const qg = tf.reshape(tf.mul(q, 1 / Math.sqrt(hd)), [b, kvHeads, group * t, hd]);
  const scores = tf.matMul(qg, k, false, true); // [B, KV, group*T, S]
  const masked = tf.add(tf.reshape(scores, [b, kvHeads, group, t, s]), causalBias(t, s, pos0));
  const probs = tf.reshape(tf.softmax(masked), [b, kvHeads, group * t, s]);
  const out = tf.reshape(tf.matMul(probs, v), [b, h, t, hd]); // [B, H, T, hd]
  return tf.reshape(tf.transpose(out, [0, 2, 1, 3]), [b * t, h * hd]);
}

/**
 * Mean cross-entropy over the positions with mask 1: sum(mask * nll) / max(sum(mask), 1).
 * logits [N, V], targets int32 [N], mask float32 [N]. With p = softmax(logits), the log-sum-exp
 * is max(logits) - log(max(p)) (max(p) >= 1/V never underflows), so one softmax serves both the
 * value and the closed-form gradient (p - onehot) * weight; no elementwise exp over [N, V]
 * (wasm's is scalar and ~7x slower than its softmax).
 */
export function maskedCrossEntropy(logits: tf.Tensor2D, targets: tf.Tensor1D, mask: tf.Tensor1D): tf.Scalar {
  const ids = tf.cast(targets, 'int32');
  const weights = tf.div(mask, tf.maximum(tf.sum(mask), 1)) as tf.Tensor1D; // [N]
  const fused = fusedCrossEntropy(logits, ids, weights);
  if (fused) return fused;
  // int32 then cast: tfjs-backend-wasm 4.22's OneHot writes int bits into float32 outputs.
  const onehot = tf.cast(tf.oneHot(ids, logits.shape[1]), 'float32'); // [N, V]
  // Tensors the gradient needs go through save(): closures would be disposed by the caller's tidy
  // before backprop runs.
  const ce = tf.customGrad((...args) => {
    const [x, save] = args as [tf.Tensor2D, tf.GradSaveFunc];
    const p = tf.softmax(x); // [N, V]
    save([p, onehot, weights]);
    const lse = tf.sub(tf.max(x, -1), tf.log(tf.max(p, -1))); // [N]
    const nll = tf.sub(lse, tf.sum(tf.mul(x, onehot), -1)); // [N]
    return {
      value: tf.sum(tf.mul(nll, weights)),
      gradFunc: (dy, [probs, oh, wt]) => tf.mul(dy, tf.mul(tf.sub(probs, oh), tf.expandDims(wt, 1))),
    };
  });
  return ce(logits) as tf.Scalar;
}
