/**
 * Hugging Face `tokenizer.json` through @huggingface/tokenizers, behind the same Tokenizer interface
 * as the llama2.c loader. pieceBytes reproduces run.c's printing for the two families in use:
 * byte-level BPE (GPT-2: token chars map back to bytes) and sentencepiece-style BPE (U+2581 is a
 * space, `<0xNN>` a raw byte, the dummy-prefix space dropped after BOS).
 */
import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import type { ChatTokens, EncodeOptions, Tokenizer } from './tokenizer.ts';
import { TokenIdError, TokenizerEncodeError, TokenizerFormatError } from './tokenizer.ts';

export interface HfTokenizerOptions {
  /** Named in error messages. */
  file?: string;
  /** Used when tokenizer_config.json names no bos_token / eos_token (e.g. from config.json). */
  bosId?: number;
  eosId?: number;
}

type Json = Record<string, unknown>;

const isObject = (x: unknown): x is Json => typeof x === 'object' && x !== null && !Array.isArray(x);

export function loadHfTokenizer(tokenizerJson: unknown, tokenizerConfig: unknown = {}, opts: HfTokenizerOptions = {}): HfTokenizerAdapter {
  const file = opts.file ?? 'tokenizer.json';
  if (!isObject(tokenizerJson)) throw new TokenizerFormatError(file, undefined, 'expected a JSON object');
  if (!isObject(tokenizerJson.model) || !(isObject(tokenizerJson.model.vocab) || Array.isArray(tokenizerJson.model.vocab))) {
    throw new TokenizerFormatError(file, undefined, 'expected "model" with a "vocab" (object, or array for Unigram)');
  }
  if (!isObject(tokenizerConfig)) throw new TokenizerFormatError('tokenizer_config.json', undefined, 'expected a JSON object');
  // tokenizers.js requires these keys to exist, as the Rust library always writes them.
  const completed: Json = { added_tokens: [], normalizer: null, pre_tokenizer: null, post_processor: null, decoder: null, ...tokenizerJson };
  let hf: HfTokenizer;
  try {
    hf = new HfTokenizer(completed, tokenizerConfig);
  } catch (err) {
    throw new TokenizerFormatError(file, undefined, `cannot be loaded: ${(err as Error).message}`);
  }
  const special = (key: string, fallback: number | undefined): number => {
    const v = tokenizerConfig[key];
    const content = typeof v === 'string' ? v : isObject(v) && typeof v.content === 'string' ? v.content : undefined;
    if (content !== undefined) {
      const id = hf.token_to_id(content);
      if (id === undefined) throw new TokenizerFormatError('tokenizer_config.json', undefined, `${key} ${JSON.stringify(content)} is not in ${file}'s vocabulary`);
      return id;
    }
    return fallback ?? -1;
  };
  const adapter = new HfTokenizerAdapter(hf, completed, special('bos_token', opts.bosId), special('eos_token', opts.eosId));
  adapter.chat = {
    template: chatTemplateOf(tokenizerConfig.chat_template),
    bosToken: adapter.bosId >= 0 ? (hf.id_to_token(adapter.bosId) ?? '') : '',
    eosToken: adapter.eosId >= 0 ? (hf.id_to_token(adapter.eosId) ?? '') : '',
  };
  return adapter;
}

/** tokenizer_config.json's chat_template: a string, or a list of {name, template} of which "default" applies. */
function chatTemplateOf(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (Array.isArray(v)) {
    const named = v.find((t) => isObject(t) && t.name === 'default');
    return isObject(named) && typeof named.template === 'string' ? named.template : undefined;
  }
  return undefined;
}

export class HfTokenizerAdapter implements Tokenizer {
  readonly vocabSize: number;
  readonly hf: HfTokenizer;
  private readonly byteLevel: boolean;
  private readonly byteFallback: boolean;
  private readonly dummyPrefix: boolean;
  private readonly specialIds: Set<number>;
  chat?: ChatTokens;

  constructor(
    hf: HfTokenizer,
    json: Json,
    readonly bosId: number,
    readonly eosId: number,
  ) {
    this.hf = hf;
    // A loop, not Math.max(...ids): spreading a 250k-entry vocabulary overflows the argument limit.
    let maxId = -1;
    for (const id of hf.get_vocab(true).values()) if (id > maxId) maxId = id;
    this.vocabSize = maxId + 1;
    this.byteLevel = components(json.decoder).some((c) => c.type === 'ByteLevel');
    this.byteFallback = isObject(json.model) && json.model.byte_fallback === true;
    this.dummyPrefix =
      components(json.normalizer).some((c) => c.type === 'Prepend' && c.prepend === '\u2581') ||
      components(json.pre_tokenizer).some((c) => c.type === 'Metaspace' && c.prepend_scheme !== 'never' && c.add_prefix_space !== false);
    this.specialIds = new Set([...hf.get_added_tokens_decoder()].filter(([, t]) => t.special).map(([id]) => id));
  }

  encode(text: string, opts: EncodeOptions = {}): number[] {
    const ids = text.length === 0 ? [] : this.hf.encode(text, { add_special_tokens: false }).ids;
    if (opts.bos) ids.unshift(this.required(this.bosId, 'BOS'));
    if (opts.eos) ids.push(this.required(this.eosId, 'EOS'));
    return ids;
  }

  private required(id: number, what: string): number {
    if (id < 0) throw new TokenizerEncodeError(`this tokenizer has no ${what} token (tokenizer_config.json names none); encode without ${what.toLowerCase()}`);
    return id;
  }

  pieceBytes(prev: number, id: number): Uint8Array {
    const token = Number.isInteger(id) ? this.hf.id_to_token(id) : undefined;
    if (token === undefined) throw new TokenIdError(id, this.vocabSize);
    if (this.specialIds.has(id)) return new TextEncoder().encode(token);
    if (this.byteLevel) return Uint8Array.from([...token].map((ch) => UNICODE_TO_BYTE.get(ch) ?? 0x3f));
    if (this.byteFallback) {
      const m = /^<0x([0-9A-F]{2})>$/.exec(token);
      if (m) return Uint8Array.of(Number.parseInt(m[1], 16));
    }
    let text = token.replaceAll('\u2581', ' ');
    if (prev === this.bosId && this.dummyPrefix && text.startsWith(' ')) text = text.slice(1);
    return new TextEncoder().encode(text);
  }

  decodePiece(prev: number, id: number): string {
    return new TextDecoder().decode(this.pieceBytes(prev, id));
  }

  decode(ids: number[]): string {
    for (const id of ids) if (this.hf.id_to_token(id) === undefined) throw new TokenIdError(id, this.vocabSize);
    return ids.length === 0 ? '' : this.hf.decode(ids, { skip_special_tokens: true });
  }
}

/** A component and, for a Sequence, its members. */
function components(c: unknown): Json[] {
  if (!isObject(c)) return [];
  const members = c.decoders ?? c.normalizers ?? c.pretokenizers;
  return [c, ...(Array.isArray(members) ? members.flatMap(components) : [])];
}

/** GPT-2's bytes_to_unicode: printable bytes stand for themselves, the rest map to U+0100 onwards. */
const UNICODE_TO_BYTE: Map<string, number> = (() => {
  const map = new Map<string, number>();
  let extra = 0;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
    map.set(String.fromCharCode(printable ? b : 256 + extra++), b);
  }
  return map;
})();
