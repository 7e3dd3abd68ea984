/**
 * Hugging Face `config.json` <-> ModelSpec. The spec is the only description of an architecture the
 * rest of lisa-fn sees: forward passes, unit maps and exports are all derived from it.
 */
import { LisaError } from '../errors.ts';

/**
 * Architectures by HF model_type. llama, mistral, qwen2 and phi3 share one forward (llama.ts): they
 * differ in what the spec below records (biases, rope scaling, attention window) and, for phi3, in
 * fused projections; gpt2 has its own.
 */
export type Arch = 'llama' | 'mistral' | 'qwen2' | 'phi3' | 'gpt2';

/** Llama 3.x RoPE frequency scaling (rope_scaling type "llama3"). */
export interface Llama3RopeScaling {
  factor: number;
  lowFreqFactor: number;
  highFreqFactor: number;
  /** original_max_position_embeddings: the context the unscaled frequencies were trained for */
  originalMaxPositions: number;
}

export interface ModelSpec {
  arch: Arch;
  vocabSize: number;
  dim: number;
  nLayers: number;
  nHeads: number;
  nKvHeads: number;
  headDim: number;
  hiddenDim: number;
  maxSeqLen: number;
  normEps: number;
  /** RoPE base; 0 for architectures with learned positions (gpt2). */
  ropeTheta: number;
  tiedEmbeddings: boolean;
  bosId: number;
  eosId: number;
  /** Projections of each layer that add a bias, as module names inside the layer ('self_attn.q_proj'); none when absent. */
  biases?: readonly string[];
  /** Llama 3.x frequency scaling; plain RoPE when absent. */
  ropeScaling?: Llama3RopeScaling;
  /** Sliding attention window (positions a query sees); sequences longer than this are refused. Unlimited when absent. */
  slidingWindow?: number;
}

/** Architectures this build can run, as HF `architectures` entries. */
export const SUPPORTED_ARCHITECTURES: Readonly<Record<Arch, string>> = {
  llama: 'LlamaForCausalLM',
  mistral: 'MistralForCausalLM',
  qwen2: 'Qwen2ForCausalLM',
  phi3: 'Phi3ForCausalLM',
  gpt2: 'GPT2LMHeadModel',
};

/** Positions one sequence may hold: the model's context, or its sliding window when that is shorter. */
export function contextLength(spec: ModelSpec): number {
  return Math.min(spec.maxSeqLen, spec.slidingWindow ?? Infinity);
}

export class ConfigError extends LisaError {
  constructor(message: string, details?: Record<string, unknown>) {
    super('MODEL_CONFIG_INVALID', message, details);
  }
}

export class UnsupportedArchitectureError extends LisaError {
  constructor(where: string, found: { architectures: unknown; modelType: unknown }) {
    const supported = Object.entries(SUPPORTED_ARCHITECTURES)
      .map(([type, cls]) => `${cls} (model_type "${type}")`)
      .join(', ');
    super(
      'MODEL_ARCHITECTURE_UNSUPPORTED',
      `${where}: unsupported architecture: architectures=${JSON.stringify(found.architectures ?? null)}, ` +
        `model_type=${JSON.stringify(found.modelType ?? null)}; supported: ${supported}`,
      { where, ...found, supported: Object.values(SUPPORTED_ARCHITECTURES) },
    );
  }
}

type Json = Record<string, unknown>;

/** Reads one field of a config with the checks every numeric field needs; errors name field and file. */
class Fields {
  constructor(
    private readonly json: Json,
    private readonly where: string,
  ) {}

  private fail(field: string, expected: string): never {
    const value = this.json[field];
    const got = value === undefined ? 'it is missing' : `got ${JSON.stringify(value)}`;
    throw new ConfigError(`${this.where}: field "${field}" must be ${expected}; ${got}`, { where: this.where, field });
  }

  /** A positive integer; `fallback` is used when the field is absent or null. */
  int(field: string, fallback?: number): number {
    const v = this.json[field] ?? fallback;
    if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) this.fail(field, 'a positive integer');
    return v;
  }

  /** A non-negative integer token id; HF allows a list (several stop ids): the first one is used. */
  tokenId(field: string, fallback: number): number {
    let v = this.json[field] ?? fallback;
    if (Array.isArray(v) && v.length > 0) v = v[0];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) this.fail(field, 'a non-negative integer token id');
    return v;
  }

  positive(field: string, fallback?: number): number {
    const v = this.json[field] ?? fallback;
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) this.fail(field, 'a positive number');
    return v;
  }

  bool(field: string, fallback: boolean): boolean {
    const v = this.json[field] ?? fallback;
    if (typeof v !== 'boolean') this.fail(field, 'true or false');
    return v;
  }

  /** Fields whose non-default values change the math in ways this implementation does not do. */
  oneOf(field: string, allowed: readonly unknown[]): void {
    const v = this.json[field];
    if (v !== undefined && !allowed.includes(v)) {
      this.fail(field, `one of ${allowed.map((a) => JSON.stringify(a)).join(', ')} (no other value is supported)`);
    }
  }
}

function detectArch(json: Json, where: string): Arch {
  const architectures = json.architectures;
  const modelType = json.model_type;
  if (Array.isArray(architectures) && architectures.length > 0) {
    for (const [arch, cls] of Object.entries(SUPPORTED_ARCHITECTURES) as [Arch, string][]) {
      if (architectures.includes(cls)) return arch;
    }
  } else if (typeof modelType === 'string' && Object.hasOwn(SUPPORTED_ARCHITECTURES, modelType)) {
    return modelType as Arch;
  }
  throw new UnsupportedArchitectureError(where, { architectures, modelType });
}

/** Parses a HF config.json (already JSON-decoded). `where` names the file in error messages. */
export function parseConfig(json: unknown, where: string): ModelSpec {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new ConfigError(`${where}: expected a JSON object, got ${Array.isArray(json) ? 'an array' : typeof json}`, {
      where,
    });
  }
  const obj = json as Json;
  const arch = detectArch(obj, where);
  const f = new Fields(obj, where);
  const spec = arch === 'gpt2' ? parseGpt2(f, where) : parseLlamaFamily(arch, f, obj, where);
  if (spec.nHeads % spec.nKvHeads !== 0) {
    throw new ConfigError(
      `${where}: num_attention_heads (${spec.nHeads}) must be a multiple of num_key_value_heads (${spec.nKvHeads})`,
      { where, field: 'num_key_value_heads' },
    );
  }
  if (spec.headDim % 2 !== 0 && arch !== 'gpt2') {
    throw new ConfigError(`${where}: head dimension ${spec.headDim} must be even for rotary embeddings`, {
      where,
      field: 'head_dim',
    });
  }
  return spec;
}

const QKV = ['self_attn.q_proj', 'self_attn.k_proj', 'self_attn.v_proj'];
const MLP = ['mlp.gate_proj', 'mlp.up_proj', 'mlp.down_proj'];

/** HF defaults that differ between the llama-shaped configs (LlamaConfig, MistralConfig, Qwen2Config, Phi3Config). */
const LLAMA_DEFAULTS: Record<Exclude<Arch, 'gpt2'>, { normEps: number; maxSeqLen: number; bosId: number; eosId: number }> = {
  llama: { normEps: 1e-6, maxSeqLen: 2048, bosId: 1, eosId: 2 },
  mistral: { normEps: 1e-6, maxSeqLen: 4096 * 32, bosId: 1, eosId: 2 },
  qwen2: { normEps: 1e-6, maxSeqLen: 32768, bosId: 151643, eosId: 151643 },
  phi3: { normEps: 1e-5, maxSeqLen: 4096, bosId: 1, eosId: 32000 },
};

function parseLlamaFamily(arch: Exclude<Arch, 'gpt2'>, f: Fields, json: Json, where: string): ModelSpec {
  f.oneOf('hidden_act', ['silu']);
  f.oneOf('partial_rotary_factor', [1, null]);
  const defaults = LLAMA_DEFAULTS[arch];
  const dim = f.int('hidden_size');
  const nHeads = f.int('num_attention_heads');
  if (dim % nHeads !== 0) f.int('head_dim'); // without it the head size is undefined
  const biases: string[] = [];
  if (arch === 'llama') {
    // LlamaConfig: attention_bias puts a bias on q, k, v and o; mlp_bias on the three MLP projections.
    if (f.bool('attention_bias', false)) biases.push(...QKV, 'self_attn.o_proj');
    if (f.bool('mlp_bias', false)) biases.push(...MLP);
  } else {
    f.oneOf('attention_bias', [false]);
    f.oneOf('mlp_bias', [false]);
  }
  if (arch === 'qwen2') biases.push(...QKV); // Qwen2Attention's q, k, v always have one; o_proj never.
  const spec: ModelSpec = {
    arch,
    vocabSize: f.int('vocab_size'),
    dim,
    nLayers: f.int('num_hidden_layers'),
    nHeads,
    nKvHeads: f.int('num_key_value_heads', nHeads),
    headDim: f.int('head_dim', dim / nHeads),
    hiddenDim: f.int('intermediate_size'),
    maxSeqLen: f.int('max_position_embeddings', defaults.maxSeqLen),
    normEps: f.positive('rms_norm_eps', defaults.normEps),
    ropeTheta: 0,
    tiedEmbeddings: f.bool('tie_word_embeddings', false),
    bosId: f.tokenId('bos_token_id', defaults.bosId),
    eosId: f.tokenId('eos_token_id', defaults.eosId),
  };
  Object.assign(spec, parseRope(json, where));
  if (biases.length > 0) spec.biases = biases;
  const window = slidingWindow(arch, f, json);
  if (window !== undefined) spec.slidingWindow = window;
  return spec;
}

/**
 * rope_theta and rope_scaling (transformers 4), or rope_parameters (transformers 5, which holds the
 * theta too). Only the llama3 scaling is implemented; every other scaling type is refused by name.
 */
function parseRope(json: Json, where: string): Pick<ModelSpec, 'ropeTheta' | 'ropeScaling'> {
  const params = json.rope_parameters ?? json.rope_scaling ?? null;
  const field = json.rope_parameters !== undefined ? 'rope_parameters' : 'rope_scaling';
  const theta = (json.rope_parameters as Json | undefined)?.rope_theta ?? json.rope_theta ?? 10000;
  if (typeof theta !== 'number' || !Number.isFinite(theta) || theta <= 0) {
    throw new ConfigError(`${where}: rope_theta must be a positive number; got ${JSON.stringify(theta)}`, { where, field: 'rope_theta' });
  }
  if (params === null) return { ropeTheta: theta };
  const p = new Fields(params as Json, `${where}: ${field}`);
  if (typeof params !== 'object' || Array.isArray(params)) {
    throw new ConfigError(`${where}: field "${field}" must be an object or null; got ${JSON.stringify(params)}`, { where, field });
  }
  const type = (params as Json).rope_type ?? (params as Json).type ?? 'default';
  if (type === 'default') return { ropeTheta: theta };
  if (type !== 'llama3') {
    throw new ConfigError(`${where}: field "${field}" has type ${JSON.stringify(type)}, which this build does not implement; supported: "llama3" (or none)`, {
      where,
      field,
    });
  }
  const ropeScaling: Llama3RopeScaling = {
    factor: p.positive('factor'),
    lowFreqFactor: p.positive('low_freq_factor'),
    highFreqFactor: p.positive('high_freq_factor'),
    originalMaxPositions: p.int('original_max_position_embeddings'),
  };
  if (ropeScaling.highFreqFactor <= ropeScaling.lowFreqFactor) {
    throw new ConfigError(`${where}: ${field}.high_freq_factor must exceed low_freq_factor`, { where, field });
  }
  return { ropeTheta: theta, ropeScaling };
}

/** The window this config applies to every layer, if any: Mistral's and Phi-3's sliding_window; Qwen2's only with use_sliding_window. */
function slidingWindow(arch: Exclude<Arch, 'gpt2'>, f: Fields, json: Json): number | undefined {
  if (arch === 'llama') return undefined;
  if (arch === 'qwen2' && !f.bool('use_sliding_window', false)) return undefined;
  return json.sliding_window === null || json.sliding_window === undefined ? undefined : f.int('sliding_window');
}

function parseGpt2(f: Fields, where: string): ModelSpec {
  // gelu_new and gelu_pytorch_tanh are the same tanh approximation.
  f.oneOf('activation_function', ['gelu_new', 'gelu_pytorch_tanh']);
  f.oneOf('scale_attn_by_inverse_layer_idx', [false]);
  f.oneOf('reorder_and_upcast_attn', [false]);
  const dim = f.int('n_embd');
  const nHeads = f.int('n_head');
  if (dim % nHeads !== 0) {
    throw new ConfigError(`${where}: n_embd (${dim}) must be a multiple of n_head (${nHeads})`, { where, field: 'n_head' });
  }
  return {
    arch: 'gpt2',
    vocabSize: f.int('vocab_size'),
    dim,
    nLayers: f.int('n_layer'),
    nHeads,
    nKvHeads: nHeads,
    headDim: dim / nHeads,
    hiddenDim: f.int('n_inner', 4 * dim),
    maxSeqLen: f.int('n_positions', 1024),
    normEps: f.positive('layer_norm_epsilon', 1e-5),
    ropeTheta: 0,
    tiedEmbeddings: f.bool('tie_word_embeddings', true),
    bosId: f.tokenId('bos_token_id', 50256),
    eosId: f.tokenId('eos_token_id', 50256),
  };
}

/** A HF config.json for `spec`; parseConfig(configJson(s)) equals s. */
export function configJson(spec: ModelSpec): Record<string, unknown> {
  if (spec.arch === 'gpt2') {
    return {
      architectures: [SUPPORTED_ARCHITECTURES.gpt2],
      model_type: 'gpt2',
      vocab_size: spec.vocabSize,
      n_embd: spec.dim,
      n_layer: spec.nLayers,
      n_head: spec.nHeads,
      n_inner: spec.hiddenDim,
      n_positions: spec.maxSeqLen,
      n_ctx: spec.maxSeqLen,
      layer_norm_epsilon: spec.normEps,
      activation_function: 'gelu_new',
      tie_word_embeddings: spec.tiedEmbeddings,
      bos_token_id: spec.bosId,
      eos_token_id: spec.eosId,
      torch_dtype: 'float32',
    };
  }
  const s = spec.ropeScaling;
  const biased = (m: string) => spec.biases?.includes(m) ?? false;
  return {
    architectures: [SUPPORTED_ARCHITECTURES[spec.arch]],
    model_type: spec.arch,
    vocab_size: spec.vocabSize,
    hidden_size: spec.dim,
    intermediate_size: spec.hiddenDim,
    num_hidden_layers: spec.nLayers,
    num_attention_heads: spec.nHeads,
    num_key_value_heads: spec.nKvHeads,
    head_dim: spec.headDim,
    hidden_act: 'silu',
    max_position_embeddings: spec.maxSeqLen,
    rms_norm_eps: spec.normEps,
    rope_theta: spec.ropeTheta,
    rope_scaling: s
      ? { rope_type: 'llama3', factor: s.factor, low_freq_factor: s.lowFreqFactor, high_freq_factor: s.highFreqFactor, original_max_position_embeddings: s.originalMaxPositions }
      : null,
    ...(spec.arch === 'llama' ? { attention_bias: biased('self_attn.o_proj'), mlp_bias: biased('mlp.gate_proj') } : {}),
    ...(spec.arch === 'qwen2' ? { use_sliding_window: spec.slidingWindow !== undefined } : {}),
    ...(spec.arch !== 'llama' ? { sliding_window: spec.slidingWindow ?? null } : {}),
    tie_word_embeddings: spec.tiedEmbeddings,
    bos_token_id: spec.bosId,
    eos_token_id: spec.eosId,
    torch_dtype: 'float32',
  };
}
