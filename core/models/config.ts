/**
 * Hugging Face `config.json` <-> ModelSpec. The spec is the only description of an architecture the
 * rest of lisa-fn sees: forward passes, unit maps and exports are all derived from it.
 */
import { LisaError } from '../errors.ts';

export type Arch = 'llama' | 'gpt2';

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
}

/** Architectures this build can run, as HF `architectures` entries. */
export const SUPPORTED_ARCHITECTURES: Readonly<Record<Arch, string>> = {
  llama: 'LlamaForCausalLM',
  gpt2: 'GPT2LMHeadModel',
};

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
  } else if (modelType === 'llama' || modelType === 'gpt2') {
    return modelType;
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
  const spec = arch === 'llama' ? parseLlama(f) : parseGpt2(f, where);
  if (spec.nHeads % spec.nKvHeads !== 0) {
    throw new ConfigError(
      `${where}: num_attention_heads (${spec.nHeads}) must be a multiple of num_key_value_heads (${spec.nKvHeads})`,
      { where, field: 'num_key_value_heads' },
    );
  }
  if (spec.headDim % 2 !== 0 && arch === 'llama') {
    throw new ConfigError(`${where}: head dimension ${spec.headDim} must be even for rotary embeddings`, {
      where,
      field: 'head_dim',
    });
  }
  return spec;
}

function parseLlama(f: Fields): ModelSpec {
  f.oneOf('hidden_act', ['silu']);
  f.oneOf('rope_scaling', [null]);
  f.oneOf('attention_bias', [false]);
  f.oneOf('mlp_bias', [false]);
  const dim = f.int('hidden_size');
  const nHeads = f.int('num_attention_heads');
  if (dim % nHeads !== 0) f.int('head_dim'); // without it the head size is undefined
  return {
    arch: 'llama',
    vocabSize: f.int('vocab_size'),
    dim,
    nLayers: f.int('num_hidden_layers'),
    nHeads,
    nKvHeads: f.int('num_key_value_heads', nHeads),
    headDim: f.int('head_dim', dim / nHeads),
    hiddenDim: f.int('intermediate_size'),
    maxSeqLen: f.int('max_position_embeddings', 2048),
    normEps: f.positive('rms_norm_eps', 1e-6),
    ropeTheta: f.positive('rope_theta', 10000),
    // HF's LlamaConfig default.
    tiedEmbeddings: f.bool('tie_word_embeddings', false),
    bosId: f.tokenId('bos_token_id', 1),
    eosId: f.tokenId('eos_token_id', 2),
  };
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
  if (spec.arch === 'llama') {
    return {
      architectures: [SUPPORTED_ARCHITECTURES.llama],
      model_type: 'llama',
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
      rope_scaling: null,
      attention_bias: false,
      mlp_bias: false,
      tie_word_embeddings: spec.tiedEmbeddings,
      bos_token_id: spec.bosId,
      eos_token_id: spec.eosId,
      torch_dtype: 'float32',
    };
  }
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
