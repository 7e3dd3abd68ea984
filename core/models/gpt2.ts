/**
 * GPT-2 forward pass over Hugging Face weights (GPT2LMHeadModel naming): learned positions,
 * pre-LayerNorm blocks, Conv1D projections (weights [in, out]) with biases, tanh GELU, head tied
 * to the token embedding unless the config says otherwise. Shapes: B batch, T new positions,
 * S = past + T, N = B*T, D = dim, H heads, hd = D/H, F = hidden dim, V = vocab.
 */
import * as tf from '@tensorflow/tfjs-core';
import { LisaError } from '../errors.ts';
import type { ModelSpec } from './config.ts';
import { causalAttention, embed, geluTanh, layerNorm, linear, type KV, type Params } from './nn.ts';

/** More positions than the model can attend over: GPT-2's learned positions, or a sliding window we do not implement past its length. */
export class SequenceTooLongError extends LisaError {
  constructor(positions: number, max: number, field: 'n_positions' | 'sliding_window' = 'n_positions') {
    const what = field === 'n_positions' ? `the model's ${max} learned positions (n_positions)` : `the model's sliding attention window of ${max} (sliding_window; longer sequences are not supported)`;
    super('MODEL_SEQUENCE_TOO_LONG', `${positions} positions exceed ${what}`, { positions, max, field });
  }
}

/** [N, D] -> [B, H, T, hd] */
function heads(x: tf.Tensor2D, b: number, t: number, h: number, hd: number): tf.Tensor4D {
  return tf.transpose(tf.reshape(x, [b, t, h, hd]), [0, 2, 1, 3]);
}

/**
 * tokens int32 [B, T] following `past` (one KV per layer, or none) -> logits [N, V] and the
 * layers' keys/values including the new positions.
 */
export function gpt2Forward(
  spec: ModelSpec,
  params: Params,
  tokens: tf.Tensor2D,
  past?: KV[],
): { logits: tf.Tensor2D; present: KV[] } {
  const [b, t] = tokens.shape;
  const { dim: d, nHeads: h, headDim: hd, normEps: eps } = spec;
  const pos0 = past ? past[0].k.shape[2] : 0;
  if (pos0 + t > spec.maxSeqLen) throw new SequenceTooLongError(pos0 + t, spec.maxSeqLen);
  const present: KV[] = [];
  const { w } = params;

  const positions = tf.slice(w('transformer.wpe.weight'), [pos0, 0], [t, d]); // [T, D]
  const tokEmb = tf.reshape(embed(w('transformer.wte.weight'), tokens), [b, t, d]);
  let x = tf.reshape(tf.add(tokEmb, positions), [b * t, d]) as tf.Tensor2D; // [N, D]
  for (let l = 0; l < spec.nLayers; l++) {
    const p = `transformer.h.${l}.`;

    // Attention block.
    const a = layerNorm(x, w(`${p}ln_1.weight`), w(`${p}ln_1.bias`), eps); // [N, D]
    const qkv = params.conv1d(a, `${p}attn.c_attn`); // [N, 3D]
    const [q, k, v] = tf.split(qkv, 3, -1) as tf.Tensor2D[]; // [N, D] each
    let kh = heads(k, b, t, h, hd); // [B, H, T, hd]
    let vh = heads(v, b, t, h, hd);
    if (past) {
      kh = tf.concat([past[l].k, kh], 2); // [B, H, S, hd]
      vh = tf.concat([past[l].v, vh], 2);
    }
    present.push({ k: kh, v: vh });
    const attn = causalAttention(heads(q, b, t, h, hd), kh, vh); // [N, D]
    x = tf.add(x, params.conv1d(attn, `${p}attn.c_proj`));

    // MLP block.
    const m = layerNorm(x, w(`${p}ln_2.weight`), w(`${p}ln_2.bias`), eps); // [N, D]
    const hidden = geluTanh(params.conv1d(m, `${p}mlp.c_fc`)) as tf.Tensor2D; // [N, F]
    x = tf.add(x, params.conv1d(hidden, `${p}mlp.c_proj`));
  }
  x = layerNorm(x, w('transformer.ln_f.weight'), w('transformer.ln_f.bias'), eps);
  const head = spec.tiedEmbeddings ? w('transformer.wte.weight') : w('lm_head.weight'); // [V, D]
  return { logits: linear(x, head), present }; // [N, V]
}
