/**
 * A Hugging Face tokenizer.json equivalent to a llama2.c tokenizer.bin, laid out as HF's own
 * LlamaConverter writes sentencepiece BPE models: "▁" for spaces, a "▁" prepended to non-empty
 * text, BPE with byte fallback, BOS added by the post-processor.
 *
 * run.c merges the adjacent pair whose concatenation scores highest; HF BPE merges the pair with
 * the lowest rank. Listing every split (left, right) of every piece as a merge, ranked by the
 * merged piece's score (as HF's SentencePieceExtractor does), gives the same order whenever scores
 * are distinct. They can differ only if two different pairs forming the same piece are live at
 * once; the tests compare both encoders on a corpus and on random text. One deliberate HF
 * difference remains: HF matches "<s>", "</s>" and "<unk>" written in the input text as the
 * special tokens, where run.c spells them out character by character.
 */
import { LisaError } from '../errors.ts';
import { type Llama2cVocab, LLAMA2C_BOS, LLAMA2C_BYTE_OFFSET, LLAMA2C_EOS } from './llama2c.ts';

const SPACE = '\u2581';
const SPECIALS = ['<unk>', '<s>', '</s>'] as const;

export class TokenizerConversionError extends LisaError {
  constructor(what: string) {
    super('TOKENIZER_NOT_CONVERTIBLE', `tokenizer.bin cannot be expressed as a Hugging Face tokenizer.json: ${what}`);
  }
}

export interface HfTokenizerFiles {
  'tokenizer.json': Record<string, unknown>;
  'tokenizer_config.json': Record<string, unknown>;
  'special_tokens_map.json': Record<string, unknown>;
}

export function llama2cToHfTokenizer(vocab: Llama2cVocab, modelMaxLength: number): HfTokenizerFiles {
  assertOnlyTextMerges(vocab);
  const utf8 = new TextDecoder('utf-8', { fatal: true });
  const pieces = vocab.pieces.map((p, id) => {
    if (id < LLAMA2C_BYTE_OFFSET) return SPECIALS[id];
    let s: string;
    try {
      s = utf8.decode(p);
    } catch {
      throw new TokenizerConversionError(`token ${id} is not valid UTF-8`);
    }
    if (s.includes(SPACE)) throw new TokenizerConversionError(`token ${id} contains U+2581, which HF uses for spaces`);
    return s.replaceAll(' ', SPACE);
  });
  const vocabJson: Record<string, number> = {};
  pieces.forEach((p, id) => {
    if (p in vocabJson) throw new TokenizerConversionError(`token ${id} repeats token ${vocabJson[p]} (${JSON.stringify(p)})`);
    vocabJson[p] = id;
  });

  const ids = new Map(pieces.map((p, id) => [p, id]));
  const isMergeable = (id: number | undefined): id is number => id !== undefined && id >= LLAMA2C_BYTE_OFFSET + 256;
  const merges: Array<{ left: string; right: string; score: number; id: number }> = [];
  for (const [id, piece] of pieces.entries()) {
    if (!isMergeable(id)) continue;
    const chars = Array.from(piece);
    for (let k = 1; k < chars.length; k++) {
      const left = chars.slice(0, k).join('');
      const right = chars.slice(k).join('');
      if (isMergeable(ids.get(left)) && isMergeable(ids.get(right))) merges.push({ left, right, score: vocab.scores[id], id });
    }
  }
  // Highest score first; a piece's splits stay together (stable sort keeps split order).
  merges.sort((a, b) => b.score - a.score || a.id - b.id);

  const addedToken = (id: number) => ({ id, content: SPECIALS[id], single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
  const bos = SPECIALS[LLAMA2C_BOS];
  const eos = SPECIALS[LLAMA2C_EOS];
  const tokenizerJson = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [0, 1, 2].map(addedToken),
    normalizer: {
      type: 'Sequence',
      normalizers: [
        { type: 'Prepend', prepend: SPACE },
        { type: 'Replace', pattern: { String: ' ' }, content: SPACE },
      ],
    },
    pre_tokenizer: null,
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: bos, type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [
        { SpecialToken: { id: bos, type_id: 0 } },
        { Sequence: { id: 'A', type_id: 0 } },
        { SpecialToken: { id: bos, type_id: 1 } },
        { Sequence: { id: 'B', type_id: 1 } },
      ],
      special_tokens: { [bos]: { id: bos, ids: [LLAMA2C_BOS], tokens: [bos] } },
    },
    decoder: {
      type: 'Sequence',
      decoders: [
        { type: 'Replace', pattern: { String: SPACE }, content: ' ' },
        { type: 'ByteFallback' },
        { type: 'Fuse' },
        { type: 'Strip', content: ' ', start: 1, stop: 0 },
      ],
    },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: SPECIALS[0],
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: true,
      byte_fallback: true,
      vocab: vocabJson,
      // "left right" strings: every tokenizers version reads them, and no piece holds an ASCII space.
      merges: merges.map((m) => `${m.left} ${m.right}`),
    },
  };
  const tokenizerConfig = {
    tokenizer_class: 'LlamaTokenizer',
    add_bos_token: true,
    add_eos_token: false,
    bos_token: bos,
    eos_token: eos,
    unk_token: SPECIALS[0],
    pad_token: null,
    clean_up_tokenization_spaces: false,
    legacy: true,
    model_max_length: modelMaxLength,
    added_tokens_decoder: Object.fromEntries([0, 1, 2].map((id) => {
      const { id: _, ...rest } = addedToken(id);
      return [String(id), rest];
    })),
  };
  return {
    'tokenizer.json': tokenizerJson,
    'tokenizer_config.json': tokenizerConfig,
    'special_tokens_map.json': { bos_token: bos, eos_token: eos, unk_token: SPECIALS[0] },
  };
}

/**
 * run.c would merge any two pieces whose bytes concatenate to a third; the HF model below only
 * merges text pieces, so a vocabulary where a special or byte-fallback piece takes part in such a
 * concatenation has no HF equivalent.
 */
function assertOnlyTextMerges(vocab: Llama2cVocab): void {
  const binary = vocab.pieces.map((p) => String.fromCharCode(...p));
  const ids = new Map<string, number>();
  binary.forEach((p, id) => ids.has(p) || ids.set(p, id));
  for (const [id, piece] of binary.entries()) {
    for (let k = 1; k < piece.length; k++) {
      const left = ids.get(piece.slice(0, k));
      const right = ids.get(piece.slice(k));
      if (left === undefined || right === undefined) continue;
      const low = [id, left, right].find((x) => x < LLAMA2C_BYTE_OFFSET + 256);
      if (low !== undefined) throw new TokenizerConversionError(`run.c can merge tokens ${left} and ${right} into ${id}, which involves special or byte token ${low}`);
    }
  }
}
