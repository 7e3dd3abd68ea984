import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { loadLlama2cTokenizer, parseLlama2cTokenizer } from '../../core/tokenizers/llama2c.ts';
import { TokenizerFormatError } from '../../core/tokenizers/tokenizer.ts';

const fixtures = new URL('../fixtures/stories260K/', import.meta.url);
const tokBytes = new Uint8Array(readFileSync(new URL('tok512.bin', fixtures)));
const tok = loadLlama2cTokenizer(tokBytes, { file: 'tok512.bin' });
const greedy200 = readFileSync(new URL('reference-greedy-200.txt', fixtures), 'utf8');

/** A line-by-line port of run.c's encode(): the O(n^2) scan the heap version must agree with. */
function runcEncode(text: string, bos: boolean, eos: boolean): number[] {
  const vocab = parseLlama2cTokenizer(tokBytes);
  const str = (p: Uint8Array) => Buffer.from(p).toString('latin1');
  const pieces = vocab.pieces.map(str);
  const lookup = (s: string) => pieces.indexOf(s);
  const tokens: number[] = [];
  if (bos) tokens.push(1);
  const bytes = Buffer.from(text, 'utf8');
  if (bytes.length > 0) tokens.push(lookup(' '));
  let buf: number[] = [];
  for (let c = 0; c < bytes.length; c++) {
    if ((bytes[c] & 0xc0) !== 0x80) buf = [];
    buf.push(bytes[c]);
    if (c + 1 < bytes.length && (bytes[c + 1] & 0xc0) === 0x80 && buf.length < 4) continue;
    const id = lookup(Buffer.from(buf).toString('latin1'));
    if (id !== -1) tokens.push(id);
    else for (const b of buf) tokens.push(b + 3);
    buf = [];
  }
  for (;;) {
    let bestScore = -1e10;
    let bestId = -1;
    let bestIdx = -1;
    for (let i = 0; i < tokens.length - 1; i++) {
      const id = lookup(pieces[tokens[i]] + pieces[tokens[i + 1]]);
      if (id !== -1 && vocab.scores[id] > bestScore) {
        bestScore = vocab.scores[id];
        bestId = id;
        bestIdx = i;
      }
    }
    if (bestIdx === -1) break;
    tokens.splice(bestIdx, 2, bestId);
  }
  if (eos) tokens.push(2);
  return tokens;
}

describe('llama2.c tokenizer (tok512.bin)', () => {
  it('reads all 512 tokens', () => {
    expect(tok.vocabSize).toBe(512);
    expect(tok.vocab.maxTokenLength).toBe(7);
    expect(tok.bosId).toBe(1);
    expect(tok.eosId).toBe(2);
  });

  it('encodes "Once upon a time" like run.c', () => {
    expect(tok.encode('Once upon a time', { bos: true })).toEqual([1, 403, 407, 261, 378]);
    expect(tok.encode('Once upon a time')).toEqual([403, 407, 261, 378]);
    expect(tok.encode('Once upon a time', { bos: true, eos: true })).toEqual([1, 403, 407, 261, 378, 2]);
  });

  it('adds no dummy prefix to empty text', () => {
    expect(tok.encode('')).toEqual([]);
    expect(tok.encode('', { bos: true, eos: true })).toEqual([1, 2]);
  });

  it('falls back to bytes for characters outside the vocabulary and decodes them back', () => {
    // U+1F642 is F0 9F 99 82; byte b is token b + 3; 410 is the dummy prefix " ".
    expect(tok.encode('🙂')).toEqual([410, 0xf0 + 3, 0x9f + 3, 0x99 + 3, 0x82 + 3]);
    expect(Array.from(tok.pieceBytes(410, 0xf0 + 3))).toEqual([0xf0]);
    const text = 'Lily saw a 🐉 and said "héllo 世界" ✨.';
    expect(tok.decode(tok.encode(text, { bos: true, eos: true }))).toBe(text);
    expect(tok.decode(tok.encode(text))).toBe(text);
  });

  it('prints pieces like run.c: leading space dropped after BOS, <0xNN> as the raw byte', () => {
    expect(tok.decodePiece(1, 403)).toBe('Once');
    expect(tok.decodePiece(403, 403)).toBe(' Once');
    expect(tok.decodePiece(403, 407)).toBe(' upon');
    expect(Array.from(tok.pieceBytes(0, 0x0a + 3))).toEqual([0x0a]);
    expect(tok.decodePiece(0, 2)).toBe('\n</s>\n');
    expect(() => tok.pieceBytes(0, 512)).toThrow(/token id 512 is outside the vocabulary \[0, 512\)/);
  });

  it('merges the leftmost pair when scores tie, like run.c', () => {
    // "ll" (306) could merge at either position of "lll"; run.c's scan keeps the first.
    expect(tok.encode('xlll')).toEqual([410, 444, 306, 421]);
    expect(tok.encode('zooo')).toEqual([410, 451, 347, 414]);
    expect(tok.encode('xlll')).toEqual(runcEncode('xlll', false, false));
  });

  it('round-trips the reference story', () => {
    const ids = tok.encode(greedy200, { bos: true });
    expect(ids.slice(0, 5)).toEqual([1, 403, 407, 261, 378]);
    expect(tok.decode(ids)).toBe(greedy200);
  });

  it('agrees with a literal port of run.c on arbitrary text', () => {
    const pieces = parseLlama2cTokenizer(tokBytes).pieces.slice(259).map((p) => Buffer.from(p).toString('utf8'));
    const word = fc.oneof(fc.constantFrom(...pieces), fc.string({ unit: 'grapheme', maxLength: 3 }), fc.constantFrom(' ', '  ', '\n', '🙂', 'é', 'lll', 'ooo', 'ppp'));
    const text = fc.array(word, { maxLength: 24 }).map((ws) => ws.join(''));
    fc.assert(
      fc.property(text, fc.boolean(), (t, bos) => {
        expect(tok.encode(t, { bos, eos: bos })).toEqual(runcEncode(t, bos, bos));
        expect(tok.decode(tok.encode(t, { bos }))).toBe(t);
      }),
      { numRuns: 300, seed: 42 },
    );
  });
});

describe('malformed tokenizer.bin', () => {
  const expectFormatError = (bytes: Uint8Array, message: string, opts = {}) => {
    let err: unknown;
    try {
      parseLlama2cTokenizer(bytes, { file: 'bad.bin', ...opts });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(TokenizerFormatError);
    expect((err as TokenizerFormatError).code).toBe('TOKENIZER_INVALID');
    expect((err as Error).message).toBe(message);
  };

  it('rejects a file too short for its header', () => {
    expectFormatError(new Uint8Array(2), 'bad.bin: at byte offset 0: expected an int32 max_token_length, but the file has only 2 bytes');
  });

  it('rejects a nonsensical max_token_length', () => {
    const b = tokBytes.slice();
    new DataView(b.buffer).setInt32(0, -3, true);
    expectFormatError(b, 'bad.bin: at byte offset 0: max_token_length is -3; expected 1..65536 (is this a llama2.c tokenizer.bin?)');
  });

  it('names the token and offset of a truncated entry', () => {
    // Token 0 "<unk>" is 13 bytes from offset 4; token 1 starts at 17 and its piece at 25.
    expectFormatError(tokBytes.slice(0, 20), 'bad.bin: at byte offset 17: token 1 is truncated: expected float32 score and int32 length (8 bytes), 3 left');
    expectFormatError(tokBytes.slice(0, 27), 'bad.bin: at byte offset 25: token 1 is truncated: its piece needs 5 bytes, 2 left');
  });

  it('rejects a piece longer than max_token_length', () => {
    const b = tokBytes.slice();
    new DataView(b.buffer).setInt32(8, 99, true);
    expectFormatError(b, 'bad.bin: at byte offset 8: token 0 has length 99; expected 0..7 (max_token_length)');
  });

  it('rejects a vocabulary of the wrong size or without byte tokens', () => {
    expectFormatError(tokBytes, 'bad.bin: holds 512 tokens but the model\'s vocab_size is 32000', { vocabSize: 32000 });
    const b = tokBytes.slice();
    b[4 + 13 + 13 + 14 + 8 + 3] = 'G'.charCodeAt(0); // token 3's piece "<0x00>" -> "<0xG0>"
    expectFormatError(b, 'bad.bin: token 3 is "<0xG0>"; run.c\'s byte fallback needs "<0x00>" there');
  });
});
