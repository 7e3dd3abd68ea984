import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  HfTokenizerAdapter,
  Llama2cTokenizer,
  llama2cToHfTokenizer,
  loadHfTokenizer,
  loadLlama2cTokenizer,
  loadTokenizerDir,
  TokenizerFormatError,
  TokenizerNotFoundError,
} from '../../core/tokenizers/index.ts';

const fixtures = new URL('../fixtures/stories260K/', import.meta.url);
const tokBytes = new Uint8Array(readFileSync(new URL('tok512.bin', fixtures)));
const tok = loadLlama2cTokenizer(tokBytes);
const files = llama2cToHfTokenizer(tok.vocab, 512);
const hf = loadHfTokenizer(files['tokenizer.json'], files['tokenizer_config.json']);

const corpus = [
  readFileSync(new URL('reference-greedy-200.txt', fixtures), 'utf8'),
  readFileSync(new URL('reference-prompt-64.txt', fixtures), 'utf8'),
  'Once upon a time',
  'Tom and Timmy had her ball. She wanted to hold the red one!',
  'Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May.',
  '  two leading spaces, trailing  ',
  'tabs\tand\nnewlines\n\nand "quotes" — dashes – and ‘curly’ “quotes” …',
  'Ünïcödé çhàrs: naïve café, 日本語, emoji 🙂🐉✨, math ∑ x² ≤ 3/4 = 75%.',
  'xlll zooo appp ver ked end ent out her the he st on had',
  '<0x41> is spelled out, not a byte',
];

describe('stories260K tokenizer.json generated from tok512.bin', () => {
  it('holds the llama2.c vocabulary with sentencepiece spaces and every mergeable split', () => {
    const model = files['tokenizer.json'].model as { vocab: Record<string, number>; merges: string[] };
    expect(Object.keys(model.vocab)).toHaveLength(512);
    expect(model.vocab['<s>']).toBe(1);
    expect(model.vocab['<0x0A>']).toBe(13);
    expect(model.vocab['\u2581Once']).toBe(403);
    expect(model.merges).toHaveLength(165);
    expect(model.merges[0]).toBe('\u2581 t');
    expect(model.merges.every((m) => m.split(' ').length === 2)).toBe(true);
    expect(hf.vocabSize).toBe(512);
    expect(hf.bosId).toBe(1);
    expect(hf.eosId).toBe(2);
  });

  it('encodes and decodes a corpus exactly like the run.c encoder', () => {
    for (const text of corpus) {
      const ids = tok.encode(text, { bos: true, eos: true });
      expect(hf.encode(text, { bos: true, eos: true })).toEqual(ids);
      expect(hf.decode(ids)).toBe(text);
    }
    expect(hf.encode('Once upon a time', { bos: true })).toEqual([1, 403, 407, 261, 378]);
    expect(hf.encode('')).toEqual([]);
  });

  it('agrees with the run.c encoder on random text built from its pieces', () => {
    const pieces = tok.vocab.pieces.slice(259).map((p) => Buffer.from(p).toString('utf8'));
    const word = fc.oneof(fc.constantFrom(...pieces), fc.string({ unit: 'grapheme', maxLength: 3 }), fc.constantFrom(' ', '  ', '\n', '🙂', 'lll', 'her', 'the'));
    const text = fc.array(word, { maxLength: 30 }).map((ws) => ws.join('')).filter((t) => !/<\/?s>|<unk>/.test(t));
    fc.assert(
      fc.property(text, (t) => {
        const ids = tok.encode(t, { bos: true });
        expect(hf.encode(t, { bos: true })).toEqual(ids);
        expect(hf.decode(ids)).toBe(t);
      }),
      { numRuns: 500, seed: 7 },
    );
  });

  it('differs from run.c only on special-token text, which HF matches as the token', () => {
    // Each side of the special token gets its own dummy prefix: " a", <s>, " b".
    expect(hf.encode('a<s>b')).toEqual([261, 1, 268]);
    expect(hf.encode('<s>')).toEqual([1]);
    expect(tok.encode('<s>')).toEqual([410, 504, 419, 505]);
  });

  it('prints the same bytes as run.c for every non-special token', () => {
    for (let id = 3; id < 512; id++) {
      for (const prev of [0, 1, 403]) expect(hf.pieceBytes(prev, id)).toEqual(tok.pieceBytes(prev, id));
    }
    expect(hf.decodePiece(403, 2)).toBe('</s>');
    expect(() => hf.pieceBytes(0, 512)).toThrow(/token id 512 is outside the vocabulary \[0, 512\)/);
  });
});

/** GPT-2's byte-to-unicode table, to build a byte-level BPE tokenizer.json by hand. */
function byteToUnicode(): string[] {
  const out: string[] = [];
  let extra = 0;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
    out.push(String.fromCharCode(printable ? b : 256 + extra++));
  }
  return out;
}

describe('byte-level BPE tokenizer.json (GPT-2 style)', () => {
  const chars = byteToUnicode();
  const vocab: Record<string, number> = Object.fromEntries(chars.map((c, b) => [c, b]));
  Object.assign(vocab, { 'Ġt': 256, he: 257, 'Ġthe': 258, '<|endoftext|>': 259 });
  const json = {
    added_tokens: [{ id: 259, content: '<|endoftext|>', special: true, normalized: false, lstrip: false, rstrip: false, single_word: false }],
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: { type: 'BPE', vocab, merges: [['Ġ', 't'], ['h', 'e'], ['Ġt', 'he']] },
  };
  const gpt = loadHfTokenizer(json, { bos_token: '<|endoftext|>', eos_token: '<|endoftext|>' });

  it('encodes with its merges and maps token characters back to bytes', () => {
    expect(gpt).toBeInstanceOf(HfTokenizerAdapter);
    expect(gpt.vocabSize).toBe(260);
    expect(gpt.encode('the the', { bos: true, eos: true })).toEqual([259, 0x74, 257, 258, 259]);
    expect(gpt.decodePiece(259, 258)).toBe(' the');
    const emoji = gpt.encode('🙂');
    expect(emoji).toEqual([0xf0, 0x9f, 0x99, 0x82]);
    expect(emoji.map((id) => gpt.pieceBytes(0, id)[0])).toEqual([0xf0, 0x9f, 0x99, 0x82]);
    expect(gpt.decode([259, ...emoji, 259])).toBe('🙂');
  });

  it('refuses BOS when the tokenizer has none', () => {
    const noBos = loadHfTokenizer(json, {});
    expect(noBos.bosId).toBe(-1);
    expect(() => noBos.encode('x', { bos: true })).toThrow(/has no BOS token/);
  });
});

describe('malformed tokenizer.json', () => {
  const message = (f: () => unknown) => {
    try {
      f();
    } catch (e) {
      expect(e).toBeInstanceOf(TokenizerFormatError);
      return (e as Error).message;
    }
    throw new Error('expected an error');
  };

  it('names the file and what was expected', () => {
    expect(message(() => loadHfTokenizer([], {}, { file: 'x/tokenizer.json' }))).toBe('x/tokenizer.json: expected a JSON object');
    expect(message(() => loadHfTokenizer({ model: { type: 'BPE' } }, {}))).toBe('tokenizer.json: expected "model" with a "vocab" (object, or array for Unigram)');
    expect(message(() => loadHfTokenizer(files['tokenizer.json'], { bos_token: '<bos>' }))).toBe(
      'tokenizer_config.json: bos_token "<bos>" is not in tokenizer.json\'s vocabulary',
    );
    expect(message(() => loadHfTokenizer({ model: { type: 'BPE', vocab: { a: 0 } } }, {}))).toMatch(/^tokenizer\.json: cannot be loaded: /);
  });
});

describe('loadTokenizerDir', () => {
  const dir = () => mkdtempSync(join(tmpdir(), 'lisa-tok-'));

  it('prefers tokenizer.bin, else tokenizer.json with tokenizer_config.json', async () => {
    const both = dir();
    writeFileSync(join(both, 'tokenizer.bin'), tokBytes);
    writeFileSync(join(both, 'tokenizer.json'), '{}');
    expect(await loadTokenizerDir(both)).toBeInstanceOf(Llama2cTokenizer);

    const json = dir();
    writeFileSync(join(json, 'tokenizer.json'), JSON.stringify(files['tokenizer.json']));
    writeFileSync(join(json, 'tokenizer_config.json'), JSON.stringify(files['tokenizer_config.json']));
    const t = await loadTokenizerDir(json);
    expect(t).toBeInstanceOf(HfTokenizerAdapter);
    expect(t.encode('Once upon a time', { bos: true })).toEqual([1, 403, 407, 261, 378]);
  });

  it('takes BOS/EOS from config.json when tokenizer_config.json names none', async () => {
    const d = dir();
    writeFileSync(join(d, 'tokenizer.json'), JSON.stringify(files['tokenizer.json']));
    writeFileSync(join(d, 'config.json'), JSON.stringify({ bos_token_id: 1, eos_token_id: 2 }));
    const t = await loadTokenizerDir(d);
    expect([t.bosId, t.eosId]).toEqual([1, 2]);
  });

  it('checks tokenizer.bin against config.json vocab_size', async () => {
    const d = dir();
    writeFileSync(join(d, 'tokenizer.bin'), tokBytes);
    writeFileSync(join(d, 'config.json'), JSON.stringify({ vocab_size: 32000 }));
    await expect(loadTokenizerDir(d)).rejects.toThrow(`${join(d, 'tokenizer.bin')}: holds 512 tokens but the model's vocab_size is 32000`);
  });

  it('reports a missing tokenizer and unparsable JSON', async () => {
    const empty = dir();
    await expect(loadTokenizerDir(empty)).rejects.toBeInstanceOf(TokenizerNotFoundError);
    await expect(loadTokenizerDir(empty)).rejects.toThrow(`${empty}: no tokenizer found; expected tokenizer.json (Hugging Face) or tokenizer.bin (llama2.c)`);
    const bad = dir();
    writeFileSync(join(bad, 'tokenizer.json'), '{"model": ');
    await expect(loadTokenizerDir(bad)).rejects.toThrow(new RegExp(`^${join(bad, 'tokenizer.json')}: is not valid JSON: `));
  });
});
