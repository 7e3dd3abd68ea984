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
    const bad = { architectures: ['MistralForCausalLM'], model_type: 'mistral', hidden_size: 8 };
    expect(() => parseConfig(bad, 'base/config.json')).toThrow(UnsupportedArchitectureError);
    expect(() => parseConfig(bad, 'base/config.json')).toThrow(
      'base/config.json: unsupported architecture: architectures=["MistralForCausalLM"], model_type="mistral"; ' +
        'supported: LlamaForCausalLM (model_type "llama"), GPT2LMHeadModel (model_type "gpt2")',
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
    expect(() => parseConfig({ ...llamaConfig, rope_scaling: { type: 'linear', factor: 2 } }, 'm/config.json')).toThrow(/"rope_scaling"/);
    expect(() => parseConfig({ ...gpt2Config, activation_function: 'relu' }, 'g.json')).toThrow(/"activation_function" must be one of/);
    expect(() => parseConfig([1], 'arr.json')).toThrow('arr.json: expected a JSON object, got an array');
  });

  it('round-trips through configJson', () => {
    for (const json of [llamaConfig, gpt2Config, { ...llamaConfig, tie_word_embeddings: false }]) {
      const spec = parseConfig(json, 'a.json');
      expect(parseConfig(configJson(spec), 'b.json')).toEqual(spec);
    }
  });
});
