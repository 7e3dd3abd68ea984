import { describe, expect, it } from 'vitest';
import { tinyGpt2, tinyLlama } from './tiny.ts';
import { tensorShapes, unitNames, unitOf, UnknownTensorError } from '../../core/models/units.ts';

describe('unit map', () => {
  it('lists embed, every layer and head', () => {
    expect(unitNames(tinyLlama)).toEqual(['embed', 'layers.0', 'layers.1', 'head']);
  });

  it('gives every llama tensor with HF shapes ([out, in] linears, GQA k/v)', () => {
    const shapes = tensorShapes(tinyLlama);
    expect(shapes.size).toBe(1 + 2 * 9 + 2);
    expect(shapes.get('model.embed_tokens.weight')).toEqual([11, 16]);
    expect(shapes.get('model.layers.1.self_attn.q_proj.weight')).toEqual([16, 16]);
    expect(shapes.get('model.layers.1.self_attn.k_proj.weight')).toEqual([8, 16]);
    expect(shapes.get('model.layers.1.self_attn.o_proj.weight')).toEqual([16, 16]);
    expect(shapes.get('model.layers.0.mlp.gate_proj.weight')).toEqual([24, 16]);
    expect(shapes.get('model.layers.0.mlp.down_proj.weight')).toEqual([16, 24]);
    expect(shapes.get('lm_head.weight')).toEqual([11, 16]);
    expect(tensorShapes({ ...tinyLlama, tiedEmbeddings: true }).has('lm_head.weight')).toBe(false);
  });

  it('gives every gpt2 tensor with Conv1D [in, out] shapes', () => {
    const shapes = tensorShapes(tinyGpt2);
    expect(shapes.size).toBe(2 + 2 * 12 + 2);
    expect(shapes.get('transformer.wpe.weight')).toEqual([16, 12]);
    expect(shapes.get('transformer.h.0.attn.c_attn.weight')).toEqual([12, 36]);
    expect(shapes.get('transformer.h.0.attn.c_attn.bias')).toEqual([36]);
    expect(shapes.get('transformer.h.1.mlp.c_fc.weight')).toEqual([12, 20]);
    expect(shapes.get('transformer.h.1.mlp.c_proj.weight')).toEqual([20, 12]);
  });

  it('maps tensors to units; the tied matrix belongs to embed, the final norm to head', () => {
    expect(unitOf(tinyLlama, 'model.embed_tokens.weight')).toBe('embed');
    expect(unitOf(tinyLlama, 'model.layers.1.mlp.up_proj.weight')).toBe('layers.1');
    expect(unitOf(tinyLlama, 'model.norm.weight')).toBe('head');
    expect(unitOf(tinyLlama, 'lm_head.weight')).toBe('head');
    expect(unitOf(tinyGpt2, 'transformer.wte.weight')).toBe('embed');
    expect(unitOf(tinyGpt2, 'transformer.wpe.weight')).toBe('embed');
    expect(unitOf(tinyGpt2, 'transformer.h.0.ln_2.bias')).toBe('layers.0');
    expect(unitOf(tinyGpt2, 'transformer.ln_f.bias')).toBe('head');
  });

  it('throws on tensors the architecture does not have', () => {
    expect(() => unitOf(tinyLlama, 'model.layers.2.mlp.up_proj.weight')).toThrow(UnknownTensorError);
    expect(() => unitOf({ ...tinyLlama, tiedEmbeddings: true }, 'lm_head.weight')).toThrow(/tensor "lm_head.weight" is not part of a llama model/);
  });
});
