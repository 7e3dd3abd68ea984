/**
 * Straight-loop float64 forward passes, written from the HF modeling code rather than from our
 * tfjs one, as an independent check of logits. One sequence, no batching, no cache.
 */
import type { ModelSpec } from '../../core/models/config.ts';

type W = Map<string, Float32Array>;

/** y[o] = sum_i W[o, i] x[i] for W stored [out, in] */
function linearOI(w: Float32Array, x: Float64Array, out: number): Float64Array {
  const n = x.length;
  const y = new Float64Array(out);
  for (let o = 0; o < out; o++) {
    let s = 0;
    for (let i = 0; i < n; i++) s += w[o * n + i] * x[i];
    y[o] = s;
  }
  return y;
}

/** y[o] = sum_i W[i, o] x[i] + b[o] for W stored [in, out] (GPT-2 Conv1D) */
function conv1dIO(w: Float32Array, b: Float32Array, x: Float64Array): Float64Array {
  const out = b.length;
  const y = Float64Array.from(b);
  for (let i = 0; i < x.length; i++) for (let o = 0; o < out; o++) y[o] += w[i * out + o] * x[i];
  return y;
}

function rms(x: Float64Array, w: Float32Array, eps: number): Float64Array {
  let ss = 0;
  for (const v of x) ss += v * v;
  const r = 1 / Math.sqrt(ss / x.length + eps);
  return x.map((v, i) => v * r * w[i]);
}

function ln(x: Float64Array, w: Float32Array, b: Float32Array, eps: number): Float64Array {
  const mean = x.reduce((a, v) => a + v, 0) / x.length;
  const variance = x.reduce((a, v) => a + (v - mean) ** 2, 0) / x.length;
  const r = 1 / Math.sqrt(variance + eps);
  return x.map((v, i) => (v - mean) * r * w[i] + b[i]);
}

function softmaxInPlace(x: Float64Array): void {
  const m = Math.max(...x);
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i] = Math.exp(x[i] - m);
  for (let i = 0; i < x.length; i++) x[i] /= s;
}

/** Which kv head a query head reads; HF's repeat_kv gives floor(h / (H / KV)). */
export type KvHeadOf = (head: number, heads: number, kvHeads: number) => number;
const hfKvHead: KvHeadOf = (head, heads, kvHeads) => Math.floor(head / (heads / kvHeads));

/** Causal attention for one position t over keys[0..t]. */
function attend(
  q: Float64Array,
  keys: Float64Array[],
  values: Float64Array[],
  h: number,
  kvH: number,
  hd: number,
  kvHeadOf: KvHeadOf = hfKvHead,
): Float64Array {
  const out = new Float64Array(h * hd);
  for (let head = 0; head < h; head++) {
    const kv = kvHeadOf(head, h, kvH);
    const scores = new Float64Array(keys.length);
    for (let j = 0; j < keys.length; j++) {
      let s = 0;
      for (let d = 0; d < hd; d++) s += q[head * hd + d] * keys[j][kv * hd + d];
      scores[j] = s / Math.sqrt(hd);
    }
    softmaxInPlace(scores);
    for (let j = 0; j < keys.length; j++) for (let d = 0; d < hd; d++) out[head * hd + d] += scores[j] * values[j][kv * hd + d];
  }
  return out;
}

/** HF apply_rotary_pos_emb on one position's heads: x*cos + rotate_half(x)*sin. */
function ropeHF(x: Float64Array, heads: number, hd: number, pos: number, theta: number): Float64Array {
  const y = new Float64Array(x.length);
  const half = hd / 2;
  for (let h = 0; h < heads; h++) {
    for (let i = 0; i < hd; i++) {
      const f = pos * Math.pow(theta, -(2 * (i % half)) / hd);
      const rot = i < half ? -x[h * hd + i + half] : x[h * hd + i - half];
      y[h * hd + i] = x[h * hd + i] * Math.cos(f) + rot * Math.sin(f);
    }
  }
  return y;
}

export function referenceLlamaLogits(s: ModelSpec, w: W, tokens: number[], kvHeadOf: KvHeadOf = hfKvHead): Float64Array[] {
  const keys: Float64Array[][] = Array.from({ length: s.nLayers }, () => []);
  const values: Float64Array[][] = Array.from({ length: s.nLayers }, () => []);
  const emb = w.get('model.embed_tokens.weight')!;
  return tokens.map((tok, pos) => {
    let x: Float64Array = Float64Array.from(emb.subarray(tok * s.dim, (tok + 1) * s.dim));
    for (let l = 0; l < s.nLayers; l++) {
      const p = (n: string) => w.get(`model.layers.${l}.${n}`)!;
      const a = rms(x, p('input_layernorm.weight'), s.normEps);
      const q = ropeHF(linearOI(p('self_attn.q_proj.weight'), a, s.nHeads * s.headDim), s.nHeads, s.headDim, pos, s.ropeTheta);
      keys[l].push(ropeHF(linearOI(p('self_attn.k_proj.weight'), a, s.nKvHeads * s.headDim), s.nKvHeads, s.headDim, pos, s.ropeTheta));
      values[l].push(linearOI(p('self_attn.v_proj.weight'), a, s.nKvHeads * s.headDim));
      const att = attend(q, keys[l], values[l], s.nHeads, s.nKvHeads, s.headDim, kvHeadOf);
      const o = linearOI(p('self_attn.o_proj.weight'), att, s.dim);
      x = x.map((v, i) => v + o[i]);
      const m = rms(x, p('post_attention_layernorm.weight'), s.normEps);
      const g = linearOI(p('mlp.gate_proj.weight'), m, s.hiddenDim);
      const u = linearOI(p('mlp.up_proj.weight'), m, s.hiddenDim);
      const hidden = g.map((v, i) => (v / (1 + Math.exp(-v))) * u[i]);
      const d = linearOI(p('mlp.down_proj.weight'), hidden, s.dim);
      x = x.map((v, i) => v + d[i]);
    }
    x = rms(x, w.get('model.norm.weight')!, s.normEps);
    return linearOI(s.tiedEmbeddings ? emb : w.get('lm_head.weight')!, x, s.vocabSize);
  });
}

export function referenceGpt2Logits(s: ModelSpec, w: W, tokens: number[]): Float64Array[] {
  const keys: Float64Array[][] = Array.from({ length: s.nLayers }, () => []);
  const values: Float64Array[][] = Array.from({ length: s.nLayers }, () => []);
  const wte = w.get('transformer.wte.weight')!;
  const wpe = w.get('transformer.wpe.weight')!;
  const gelu = (v: number) => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3)));
  return tokens.map((tok, pos) => {
    let x: Float64Array = new Float64Array(s.dim).map((_, i) => wte[tok * s.dim + i] + wpe[pos * s.dim + i]);
    for (let l = 0; l < s.nLayers; l++) {
      const p = (n: string) => w.get(`transformer.h.${l}.${n}`)!;
      const a = ln(x, p('ln_1.weight'), p('ln_1.bias'), s.normEps);
      const qkv = conv1dIO(p('attn.c_attn.weight'), p('attn.c_attn.bias'), a);
      keys[l].push(qkv.slice(s.dim, 2 * s.dim));
      values[l].push(qkv.slice(2 * s.dim));
      const att = attend(qkv.slice(0, s.dim), keys[l], values[l], s.nHeads, s.nHeads, s.headDim);
      const o = conv1dIO(p('attn.c_proj.weight'), p('attn.c_proj.bias'), att);
      x = x.map((v, i) => v + o[i]);
      const m = ln(x, p('ln_2.weight'), p('ln_2.bias'), s.normEps);
      const hidden = conv1dIO(p('mlp.c_fc.weight'), p('mlp.c_fc.bias'), m).map(gelu);
      const d = conv1dIO(p('mlp.c_proj.weight'), p('mlp.c_proj.bias'), hidden);
      x = x.map((v, i) => v + d[i]);
    }
    x = ln(x, w.get('transformer.ln_f.weight')!, w.get('transformer.ln_f.bias')!, s.normEps);
    return linearOI(s.tiedEmbeddings ? wte : w.get('lm_head.weight')!, x, s.vocabSize);
  });
}
