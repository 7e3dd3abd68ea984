import { describe, expect, it } from 'vitest';
import { ConfigError, configJson, parseConfig, UnsupportedArchitectureError, type ModelSpec } from '../../core/models/config.ts';

// stories260K converted to HF layout.
const llamaConfig = {
  architectures: ['LlamaForCausalLM'],
  model_type: 'llama',
  hidden_size: 64,
  intermediate_size: 172,
  num_hidden_layers: 5,
  num_attention_heads: 8,
  num_key_value_heads: 4,
  max_position_embeddings: 512,
  rms_norm_eps: 1e-5,
  tie_word_embeddings: true,
  vocab_size: 512,
};

const gpt2Config = {
  architectures: ['GPT2LMHeadModel'],
  model_type: 'gpt2',
  n_embd: 768,
  n_layer: 12,
  n_head: 12,
  n_positions: 1024,
  n_inner: null,
  layer_norm_epsilon: 1e-5,
  vocab_size: 50257,
  activation_function: 'gelu_new',
};

describe('parseConfig', () => {
  it('reads a llama config, with HF defaults for rope_theta and token ids', () => {
    expect(parseConfig(llamaConfig, 'models/x/config.json')).toEqual({
      arch: 'llama',
      vocabSize: 512,
      dim: 64,
      nLayers: 5,
      nHeads: 8,
      nKvHeads: 4,
      headDim: 8,
      hiddenDim: 172,
      maxSeqLen: 512,
      normEps: 1e-5,
      ropeTheta: 10000,
      tiedEmbeddings: true,
      bosId: 1,
      eosId: 2,
    } satisfies ModelSpec);
  });

  it('defaults num_key_value_heads to the head count and takes the first of several eos ids', () => {
    const { num_key_value_heads: _, ...rest } = llamaConfig;
    const spec = parseConfig({ ...rest, eos_token_id: [128001, 128009], rope_theta: 500000 }, 'c.json');
    expect(spec.nKvHeads).toBe(8);
    expect(spec.eosId).toBe(128001);
    expect(spec.ropeTheta).toBe(500000);
  });

  it('reads a gpt2 config: n_inner null means 4 * n_embd, head tied', () => {
    expect(parseConfig(gpt2Config, 'gpt2/config.json')).toEqual({
      arch: 'gpt2',
      vocabSize: 50257,
      dim: 768,
      nLayers: 12,
      nHeads: 12,
      nKvHeads: 12,
      headDim: 64,
      hiddenDim: 3072,
      maxSeqLen: 1024,
      normEps: 1e-5,
      ropeTheta: 0,
      tiedEmbeddings: true,
      bosId: 50256,
      eosId: 50256,
    } satisfies ModelSpec);
  });

  it('names what it found and what is supported for other architectures', () => {
    const bad = { architectures: ['Gemma2ForCausalLM'], model_type: 'gemma2', hidden_size: 8 };
    expect(() => parseConfig(bad, 'base/config.json')).toThrow(UnsupportedArchitectureError);
    expect(() => parseConfig(bad, 'base/config.json')).toThrow(
      'base/config.json: unsupported architecture: architectures=["Gemma2ForCausalLM"], model_type="gemma2"; ' +
        'supported: LlamaForCausalLM (model_type "llama"), MistralForCausalLM (model_type "mistral"), Qwen2ForCausalLM (model_type "qwen2"), ' +
        'Phi3ForCausalLM (model_type "phi3"), GPT2LMHeadModel (model_type "gpt2")',
    );
    let caught: unknown;
    try {
      parseConfig({}, 'empty.json');
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(UnsupportedArchitectureError);
    expect((caught as UnsupportedArchitectureError).code).toBe('MODEL_ARCHITECTURE_UNSUPPORTED');
    expect((caught as Error).message).toContain('architectures=null, model_type=null');
  });

  it('names the missing or invalid field and the file', () => {
    const { intermediate_size: _, ...missing } = llamaConfig;
    expect(() => parseConfig(missing, 'm/config.json')).toThrow(ConfigError);
    expect(() => parseConfig(missing, 'm/config.json')).toThrow(
      'm/config.json: field "intermediate_size" must be a positive integer; it is missing',
    );
    expect(() => parseConfig({ ...llamaConfig, num_hidden_layers: 2.5 }, 'm/config.json')).toThrow(
      'm/config.json: field "num_hidden_layers" must be a positive integer; got 2.5',
    );
    expect(() => parseConfig({ ...llamaConfig, rms_norm_eps: '1e-5' }, 'm/config.json')).toThrow(/"rms_norm_eps" must be a positive number; got "1e-5"/);
    expect(() => parseConfig({ ...llamaConfig, num_key_value_heads: 3 }, 'm/config.json')).toThrow(/multiple of num_key_value_heads \(3\)/);
    expect(() => parseConfig({ ...llamaConfig, rope_scaling: { type: 'linear', factor: 2 } }, 'm/config.json')).toThrow(
      'm/config.json: field "rope_scaling" has type "linear", which this build does not implement; supported: "llama3" (or none)',
    );
    expect(() => parseConfig({ ...gpt2Config, activation_function: 'relu' }, 'g.json')).toThrow(/"activation_function" must be one of/);
    expect(() => parseConfig([1], 'arr.json')).toThrow('arr.json: expected a JSON object, got an array');
  });

  it('reads the families: llama 3 rope scaling, qwen2 biases, mistral and phi3 windows, transformers 5 rope_parameters', () => {
    const scaling = { rope_type: 'llama3', factor: 32, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 };
    const llama3 = parseConfig({ ...llamaConfig, rope_theta: 500000, rope_scaling: scaling }, 'l.json');
    expect(llama3.ropeScaling).toEqual({ factor: 32, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositions: 8192 });
    const v5 = parseConfig({ ...llamaConfig, rope_parameters: { ...scaling, rope_theta: 500000 } }, 'l.json');
    expect(v5).toEqual(llama3);
    const qwen = parseConfig({ ...llamaConfig, architectures: ['Qwen2ForCausalLM'], model_type: 'qwen2', use_sliding_window: false, sliding_window: 4096 }, 'q.json');
    expect(qwen.arch).toBe('qwen2');
    expect(qwen.biases).toEqual(['self_attn.q_proj', 'self_attn.k_proj', 'self_attn.v_proj']);
    expect(qwen.slidingWindow).toBeUndefined();
    expect(parseConfig({ ...llamaConfig, model_type: 'qwen2', architectures: undefined, use_sliding_window: true, sliding_window: 4096 }, 'q.json').slidingWindow).toBe(4096);
    const mistral = parseConfig({ ...llamaConfig, architectures: ['MistralForCausalLM'], model_type: 'mistral', sliding_window: 4096 }, 'm.json');
    expect([mistral.arch, mistral.slidingWindow, mistral.biases]).toEqual(['mistral', 4096, undefined]);
    expect(parseConfig({ ...llamaConfig, model_type: 'mistral', architectures: undefined, sliding_window: null }, 'm.json').slidingWindow).toBeUndefined();
    const llamaBiased = parseConfig({ ...llamaConfig, attention_bias: true, mlp_bias: true }, 'b.json');
    expect(llamaBiased.biases).toHaveLength(7);
  });

  it('refuses by name the family features it does not implement', () => {
    const phi3 = { ...llamaConfig, architectures: ['Phi3ForCausalLM'], model_type: 'phi3' };
    expect(() => parseConfig({ ...phi3, rope_scaling: { type: 'longrope', short_factor: [1], long_factor: [2] } }, 'p.json')).toThrow(
      'p.json: field "rope_scaling" has type "longrope", which this build does not implement; supported: "llama3" (or none)',
    );
    expect(() => parseConfig({ ...phi3, partial_rotary_factor: 0.75 }, 'p.json')).toThrow('p.json: field "partial_rotary_factor" must be one of 1, null (no other value is supported); got 0.75');
    expect(() => parseConfig({ ...llamaConfig, model_type: 'qwen2', architectures: undefined, rope_scaling: { type: 'yarn', factor: 4 } }, 'q.json')).toThrow(/"yarn"/);
    expect(() => parseConfig({ ...llamaConfig, model_type: 'mistral', architectures: undefined, attention_bias: true }, 'm.json')).toThrow(/"attention_bias" must be one of false/);
    expect(() => parseConfig({ ...llamaConfig, hidden_act: 'gelu' }, 'g.json')).toThrow(/"hidden_act" must be one of "silu"/);
    expect(() => parseConfig({ ...llamaConfig, rope_scaling: { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4 } }, 'l.json')).toThrow(
      'l.json: rope_scaling: field "original_max_position_embeddings" must be a positive integer; it is missing',
    );
  });

  it('round-trips through configJson', () => {
    const scaling = { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 };
    for (const json of [
      llamaConfig,
      gpt2Config,
      { ...llamaConfig, tie_word_embeddings: false },
      { ...llamaConfig, rope_scaling: scaling, attention_bias: true },
      { ...llamaConfig, model_type: 'qwen2', architectures: undefined, use_sliding_window: true, sliding_window: 64 },
      { ...llamaConfig, model_type: 'mistral', architectures: undefined, sliding_window: 64 },
      { ...llamaConfig, model_type: 'phi3', architectures: undefined },
    ]) {
      const spec = parseConfig(json, 'a.json');
      expect(parseConfig(configJson(spec), 'b.json')).toEqual(spec);
    }
  });
});
