/**
 * The unit map: which LISA unit (what the schedule samples and the store versions) owns each HF
 * tensor. Units are 'embed', 'layers.{i}' and 'head'; with tied embeddings the shared matrix
 * belongs to 'embed' and 'head' keeps only the final norm.
 */
import { LisaError } from '../errors.ts';
import type { ModelSpec } from './config.ts';

export type UnitName = string;

export class UnknownTensorError extends LisaError {
  constructor(tensorName: string, spec: ModelSpec) {
    super(
      'MODEL_UNKNOWN_TENSOR',
      `tensor "${tensorName}" is not part of a ${spec.arch} model with ${spec.nLayers} layers ` +
        `(expected names like ${[...tensorShapes(spec).keys()].slice(0, 3).join(', ')}, ...)`,
      { tensorName, arch: spec.arch },
    );
  }
}

export function unitNames(spec: ModelSpec): UnitName[] {
  return ['embed', ...Array.from({ length: spec.nLayers }, (_, i) => `layers.${i}`), 'head'];
}

interface TensorDef {
  shape: number[];
  unit: UnitName;
}

/**
 * The llama-shaped families: llama, mistral and qwen2 name their tensors alike; phi3 fuses q, k, v
 * into qkv_proj and gate, up into gate_up_proj (each HF Linear [out, in]). Biases are [out].
 */
function llamaTensors(s: ModelSpec): Map<string, TensorDef> {
  const m = new Map<string, TensorDef>();
  const q = s.nHeads * s.headDim;
  const kv = s.nKvHeads * s.headDim;
  const fused = s.arch === 'phi3';
  // [module inside the layer, out, in], in HF's module order
  const attention: Array<[string, number, number]> = fused
    ? [['self_attn.qkv_proj', q + 2 * kv, s.dim]]
    : [
        ['self_attn.q_proj', q, s.dim],
        ['self_attn.k_proj', kv, s.dim],
        ['self_attn.v_proj', kv, s.dim],
      ];
  attention.push(['self_attn.o_proj', s.dim, q]);
  const mlp: Array<[string, number, number]> = fused
    ? [['mlp.gate_up_proj', 2 * s.hiddenDim, s.dim]]
    : [
        ['mlp.gate_proj', s.hiddenDim, s.dim],
        ['mlp.up_proj', s.hiddenDim, s.dim],
      ];
  mlp.push(['mlp.down_proj', s.dim, s.hiddenDim]);
  const biases = new Set(s.biases ?? []);
  const unknown = [...biases].find((b) => ![...attention, ...mlp].some(([name]) => name === b));
  if (unknown !== undefined) throw new RangeError(`spec.biases names ${unknown}, which is not a projection of a ${s.arch} layer`);
  m.set('model.embed_tokens.weight', { shape: [s.vocabSize, s.dim], unit: 'embed' });
  for (let i = 0; i < s.nLayers; i++) {
    const unit = `layers.${i}`;
    const p = `model.layers.${i}.`;
    const add = ([name, out, inp]: [string, number, number]) => {
      m.set(`${p}${name}.weight`, { shape: [out, inp], unit });
      if (biases.has(name)) m.set(`${p}${name}.bias`, { shape: [out], unit });
    };
    m.set(`${p}input_layernorm.weight`, { shape: [s.dim], unit });
    attention.forEach(add);
    m.set(`${p}post_attention_layernorm.weight`, { shape: [s.dim], unit });
    mlp.forEach(add);
  }
  m.set('model.norm.weight', { shape: [s.dim], unit: 'head' });
  if (!s.tiedEmbeddings) m.set('lm_head.weight', { shape: [s.vocabSize, s.dim], unit: 'head' });
  return m;
}

function gpt2Tensors(s: ModelSpec): Map<string, TensorDef> {
  const m = new Map<string, TensorDef>();
  m.set('transformer.wte.weight', { shape: [s.vocabSize, s.dim], unit: 'embed' });
  m.set('transformer.wpe.weight', { shape: [s.maxSeqLen, s.dim], unit: 'embed' });
  for (let i = 0; i < s.nLayers; i++) {
    const unit = `layers.${i}`;
    const p = `transformer.h.${i}.`;
    // GPT-2 uses Conv1D: weights are [in, out].
    m.set(`${p}ln_1.weight`, { shape: [s.dim], unit });
    m.set(`${p}ln_1.bias`, { shape: [s.dim], unit });
    m.set(`${p}attn.c_attn.weight`, { shape: [s.dim, 3 * s.dim], unit });
    m.set(`${p}attn.c_attn.bias`, { shape: [3 * s.dim], unit });
    m.set(`${p}attn.c_proj.weight`, { shape: [s.dim, s.dim], unit });
    m.set(`${p}attn.c_proj.bias`, { shape: [s.dim], unit });
    m.set(`${p}ln_2.weight`, { shape: [s.dim], unit });
    m.set(`${p}ln_2.bias`, { shape: [s.dim], unit });
    m.set(`${p}mlp.c_fc.weight`, { shape: [s.dim, s.hiddenDim], unit });
    m.set(`${p}mlp.c_fc.bias`, { shape: [s.hiddenDim], unit });
    m.set(`${p}mlp.c_proj.weight`, { shape: [s.hiddenDim, s.dim], unit });
    m.set(`${p}mlp.c_proj.bias`, { shape: [s.dim], unit });
  }
  m.set('transformer.ln_f.weight', { shape: [s.dim], unit: 'head' });
  m.set('transformer.ln_f.bias', { shape: [s.dim], unit: 'head' });
  if (!s.tiedEmbeddings) m.set('lm_head.weight', { shape: [s.vocabSize, s.dim], unit: 'head' });
  return m;
}

// Specs are plain values compared by content, so the cache key is their JSON.
const defsCache = new Map<string, Map<string, TensorDef>>();

function tensorDefs(spec: ModelSpec): Map<string, TensorDef> {
  const key = JSON.stringify(spec);
  let defs = defsCache.get(key);
  if (!defs) {
    defs = spec.arch === 'gpt2' ? gpt2Tensors(spec) : llamaTensors(spec);
    if (defsCache.size > 32) defsCache.clear();
    defsCache.set(key, defs);
  }
  return defs;
}

/** Every HF tensor of the architecture, in checkpoint order, with its shape. */
export function tensorShapes(spec: ModelSpec): Map<string, number[]> {
  return new Map([...tensorDefs(spec)].map(([name, d]) => [name, [...d.shape]]));
}

export function unitOf(spec: ModelSpec, tensorName: string): UnitName {
  const def = tensorDefs(spec).get(tensorName);
  if (!def) throw new UnknownTensorError(tensorName, spec);
  return def.unit;
}

/**
 * The architecture's name for a checkpoint tensor, or null for a buffer that is not a parameter.
 * GPT-2 checkpoints on the Hub were saved from the bare GPT2Model (no "transformer." prefix) and
 * carry the causal-mask buffers attn.bias / attn.masked_bias; older llama-family checkpoints
 * carry rotary_emb.inv_freq. Those buffers are recomputed, not learned.
 */
export function canonicalName(spec: ModelSpec, name: string): string | null {
  if (spec.arch === 'gpt2') {
    if (/^(transformer\.)?h\.\d+\.attn\.(masked_)?bias$/.test(name)) return null;
    if (!name.startsWith('transformer.') && name !== 'lm_head.weight') return `transformer.${name}`;
  }
  if (spec.arch !== 'gpt2' && /^model\.layers\.\d+\.self_attn\.rotary_emb\.inv_freq$/.test(name)) return null;
  return name;
}
