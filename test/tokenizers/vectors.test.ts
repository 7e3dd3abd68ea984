/**
 * Real tokenizer.json files against llama.cpp's published token-id vectors
 * (models/ggml-vocab-{gpt-2,llama-bpe,llama-spm}.gguf.out; test/fixtures/tokenizers/SOURCE.md):
 * GPT-2's and Llama 3's byte-level BPE and Llama 2's sentencepiece BPE, through the same loader
 * a base's tokenizer goes through.
 */
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { loadHfTokenizer } from '../../core/tokenizers/index.ts';

const fixture = (name: string) => new URL(`../fixtures/tokenizers/${name}`, import.meta.url);
const json = (name: string): unknown => JSON.parse(name.endsWith('.gz') ? gunzipSync(readFileSync(fixture(name))).toString('utf8') : readFileSync(fixture(name), 'utf8'));
const vectors = json('vectors.json') as Record<string, Array<{ text: string; ids: number[] }>>;

describe.each([
  ['gpt-2', 'gpt2', 50257, 50256, 50256],
  ['llama-bpe', 'llama3', 128256, 128000, 128001],
  ['llama-spm', 'llama2', 32000, 1, 2],
] as const)('%s vectors', (vectorSet, file, vocabSize, bosId, eosId) => {
  const tok = loadHfTokenizer(json(`${file}.tokenizer.json.gz`), json(`${file}.tokenizer_config.json`), { file: `${file}.tokenizer.json` });

  it(`${file}: vocabulary and special tokens`, () => {
    expect([tok.vocabSize, tok.bosId, tok.eosId]).toEqual([vocabSize, bosId, eosId]);
  });

  it.each(vectors[vectorSet].map((v, i) => [i, JSON.stringify(v.text).slice(0, 40), v] as const))(`${file} encodes vector %i (%s) to llama.cpp's ids`, (_i, _label, v) => {
    expect(tok.encode(v.text)).toEqual(v.ids);
  });
});
