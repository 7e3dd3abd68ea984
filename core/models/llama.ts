/**
 * The llama-shaped families over Hugging Face weights (LlamaForCausalLM naming and conventions):
 * RMSNorm, rotary position embeddings in HF's rotate_half layout, grouped-query attention,
 * SwiGLU MLP, optionally tied embeddings. The variants, all read from the spec:
 * - qwen2 (and llama with attention_bias/mlp_bias): projections with a bias, added by Params.linear;
 * - llama 3.x: RoPE frequencies scaled as rope_scaling "llama3" says;
 * - mistral, phi3 (and qwen2 with use_sliding_window): a sliding window; a sequence longer than it
 *   is refused (within it, windowed attention is plain causal attention);
 * - phi3: q, k, v fused into one qkv_proj and gate, up into gate_up_proj, split after the product.
 * Shapes: B batch, T new positions, S = past + T, N = B*T, D = dim, H/KV query/kv heads,
 * hd = head dim, F = hidden (intermediate) dim, V = vocab.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Llama3RopeScaling, ModelSpec } from './config.ts';
import { SequenceTooLongError } from './gpt2.ts';
import { causalAttention, embed, linear, rmsNorm, silu, type KV, type Params } from './nn.ts';

const ropeCache = new Map<string, { cos: Float32Array; sin: Float32Array }>();

/**
 * HF's _compute_llama3_parameters: frequencies whose wavelength exceeds the original context /
 * lowFreqFactor are divided by `factor`, those shorter than context / highFreqFactor kept, and
 * the ones between interpolated smoothly. In float64 (HF works in float32 tensors; the two agree
 * to ~1e-7 relative, far below what a rotation angle of a few hundred radians can show).
 */
function llama3Frequency(freq: number, s: Llama3RopeScaling): number {
  const wavelen = (2 * Math.PI) / freq;
  if (wavelen < s.originalMaxPositions / s.highFreqFactor) return freq;
  if (wavelen > s.originalMaxPositions / s.lowFreqFactor) return freq / s.factor;
  const smooth = (s.originalMaxPositions / wavelen - s.lowFreqFactor) / (s.highFreqFactor - s.lowFreqFactor);
  return (1 - smooth) * (freq / s.factor) + smooth * freq;
}

/**
 * cos/sin tables [positions, hd] for HF rotate_half: frequency i (< hd/2) appears in columns i and
 * i + hd/2. Computed in float32 steps as HF (and llama2.c) do, so angles round the same way.
 */
function ropeTables(theta: number, hd: number, positions: number, scaling?: Llama3RopeScaling): { cos: Float32Array; sin: Float32Array } {
  const key = `${theta}/${hd}/${JSON.stringify(scaling ?? null)}`;
  const cached = ropeCache.get(key);
  if (cached && cached.cos.length >= positions * hd) return cached;
  const f = Math.fround;
  const cos = new Float32Array(positions * hd);
  const sin = new Float32Array(positions * hd);
  const half = hd / 2;
  for (let i = 0; i < half; i++) {
    const base = f(1 / f(Math.pow(theta, f((2 * i) / hd))));
    const freq = scaling ? f(llama3Frequency(base, scaling)) : base;
    for (let p = 0; p < positions; p++) {
      const angle = f(p * freq);
      cos[p * hd + i] = cos[p * hd + i + half] = Math.cos(angle);
      sin[p * hd + i] = sin[p * hd + i + half] = Math.sin(angle);
    }
  }
  const tables = { cos, sin };
  ropeCache.set(key, tables);
  return tables;
}

const rotations = new Map<number, tf.Tensor2D>();

/**
 * R [hd, hd] with x · R = rotate_half(x) = concat(-x[hd/2:], x[:hd/2]). Each output is one input
 * times ±1, so the product is exact; as a 2-D matmul it is one fast kernel on every backend where
 * slicing the last axis in halves and concatenating is several slow ones (wasm).
 */
function rotateHalfMatrix(hd: number): tf.Tensor2D {
  let r = rotations.get(hd);
  if (!r) {
    const m = new Float32Array(hd * hd);
    const half = hd / 2;
    for (let j = 0; j < half; j++) {
      m[(j + half) * hd + j] = -1;
      m[j * hd + j + half] = 1;
    }
    r = tf.keep(tf.tensor2d(m, [hd, hd]));
    rotations.set(hd, r);
  }
  return r;
}

/** x [N = B*T, heads*hd] rotated for positions pos0..pos0+T-1: x*cos + rotate_half(x)*sin. */
function rope(spec: ModelSpec, x: tf.Tensor2D, b: number, t: number, heads: number, pos0: number): tf.Tensor4D {
  const hd = spec.headDim;
  const tables = ropeTables(spec.ropeTheta, hd, Math.max(pos0 + t, 256), spec.ropeScaling);
  const cos = tf.tensor4d(tables.cos.subarray(pos0 * hd, (pos0 + t) * hd), [1, t, 1, hd]);
  const sin = tf.tensor4d(tables.sin.subarray(pos0 * hd, (pos0 + t) * hd), [1, t, 1, hd]);
  const rotated = tf.reshape(tf.matMul(tf.reshape(x, [-1, hd]), rotateHalfMatrix(hd)), [b, t, heads, hd]);
  return tf.add(tf.mul(tf.reshape(x, [b, t, heads, hd]), cos), tf.mul(rotated, sin));
}

/** q [N, H*hd], k and v [N, KV*hd] of the layer whose modules start with `p`. */
function projectQkv(spec: ModelSpec, params: Params, a: tf.Tensor2D, p: string): tf.Tensor2D[] {
  if (spec.arch !== 'phi3') return ['q_proj', 'k_proj', 'v_proj'].map((m) => params.linear(a, `${p}self_attn.${m}`));
  const kv = spec.nKvHeads * spec.headDim;
  return tf.split(params.linear(a, `${p}self_attn.qkv_proj`), [spec.nHeads * spec.headDim, kv, kv], -1);
}

/** down(silu(gate(m)) * up(m)): [N, D] -> [N, D]. */
function swiglu(spec: ModelSpec, params: Params, m: tf.Tensor2D, p: string): tf.Tensor2D {
  const [gate, up] =
    spec.arch === 'phi3'
      ? tf.split(params.linear(m, `${p}mlp.gate_up_proj`), 2, -1) // [N, F] each, gate first
      : [params.linear(m, `${p}mlp.gate_proj`), params.linear(m, `${p}mlp.up_proj`)];
  return params.linear(tf.mul(silu(gate), up) as tf.Tensor2D, `${p}mlp.down_proj`);
}

/**
 * tokens int32 [B, T] following `past` (one KV per layer, or none) -> logits [N, V] and the
 * layers' keys/values including the new positions.
 */
export function llamaForward(
  spec: ModelSpec,
  params: Params,
  tokens: tf.Tensor2D,
  past?: KV[],
): { logits: tf.Tensor2D; present: KV[] } {
  const [b, t] = tokens.shape;
  const { nHeads: h, nKvHeads: kv, headDim: hd, normEps: eps } = spec;
  const pos0 = past ? past[0].k.shape[2] : 0;
  if (spec.slidingWindow !== undefined && pos0 + t > spec.slidingWindow) {
    throw new SequenceTooLongError(pos0 + t, spec.slidingWindow, 'sliding_window');
  }
  const present: KV[] = [];
  const { w } = params;

  let x = embed(w('model.embed_tokens.weight'), tokens); // [N, D]
  for (let l = 0; l < spec.nLayers; l++) {
    const p = `model.layers.${l}.`;

    // Attention block.
    const a = rmsNorm(x, w(`${p}input_layernorm.weight`), eps); // [N, D]
    const [qn, kn, vn] = projectQkv(spec, params, a, p);
    const q = rope(spec, qn, b, t, h, pos0); // [B, T, H, hd]
    const k = rope(spec, kn, b, t, kv, pos0); // [B, T, KV, hd]
    const v = tf.reshape(vn, [b, t, kv, hd]);
    let kh = tf.transpose(k, [0, 2, 1, 3]) as tf.Tensor4D; // [B, KV, T, hd]
    let vh = tf.transpose(v, [0, 2, 1, 3]) as tf.Tensor4D; // [B, KV, T, hd]
    if (past) {
      kh = tf.concat([past[l].k, kh], 2); // [B, KV, S, hd]
      vh = tf.concat([past[l].v, vh], 2);
    }
    present.push({ k: kh, v: vh });
    const qh = tf.transpose(q, [0, 2, 1, 3]) as tf.Tensor4D; // [B, H, T, hd]
    const attn = causalAttention(qh, kh, vh); // [N, H*hd]
    x = tf.add(x, params.linear(attn, `${p}self_attn.o_proj`)); // [N, D]

    // SwiGLU MLP block.
    const m = rmsNorm(x, w(`${p}post_attention_layernorm.weight`), eps); // [N, D]
    x = tf.add(x, swiglu(spec, params, m, p)); // [N, D]
  }
  x = rmsNorm(x, w('model.norm.weight'), eps);
  const head = spec.tiedEmbeddings ? w('model.embed_tokens.weight') : w('lm_head.weight'); // [V, D]
  return { logits: linear(x, head), present }; // [N, V]
}
