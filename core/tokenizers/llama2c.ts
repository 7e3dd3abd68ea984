/**
 * llama2.c tokenizer (`tokenizer.bin`, e.g. tok512.bin) with run.c's exact encode/decode rules.
 *
 * File: int32 max_token_length, then per token: float32 score, int32 byte length, the piece bytes
 * (little-endian). Ids 0,1,2 are <unk>, BOS, EOS; ids 3..258 are the byte fallbacks <0x00>..<0xFF>.
 * Pieces are compared as raw bytes (run.c uses strcmp), so they are kept as "binary strings"
 * (one char per byte) for map lookups.
 */
import type { EncodeOptions, Tokenizer } from './tokenizer.ts';
import { TokenIdError, TokenizerFormatError } from './tokenizer.ts';

export const LLAMA2C_BOS = 1;
export const LLAMA2C_EOS = 2;
/** Byte b is token b + 3 (run.c's byte fallback). */
export const LLAMA2C_BYTE_OFFSET = 3;

/** run.c starts its best score at -1e10, so pairs scoring at or below that never merge. */
const RUNC_MIN_SCORE = -1e10;

export interface Llama2cVocab {
  maxTokenLength: number;
  /** Raw bytes of each piece, as stored in the file (spaces are ' ', not sentencepiece's U+2581). */
  pieces: Uint8Array[];
  scores: Float32Array;
}

export interface Llama2cTokenizerOptions {
  /** Named in error messages. */
  file?: string;
  /** When given (the checkpoint's vocab_size), the file must hold exactly this many tokens. */
  vocabSize?: number;
}

export function parseLlama2cTokenizer(bytes: Uint8Array, opts: Llama2cTokenizerOptions = {}): Llama2cVocab {
  const file = opts.file ?? 'tokenizer.bin';
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.byteLength < 4) {
    throw new TokenizerFormatError(file, 0, `expected an int32 max_token_length, but the file has only ${bytes.byteLength} bytes`);
  }
  const maxTokenLength = view.getInt32(0, true);
  // run.c sizes its merge buffer from this; llama2.c's exporter writes the longest piece's length.
  if (maxTokenLength <= 0 || maxTokenLength > 1 << 16) {
    throw new TokenizerFormatError(file, 0, `max_token_length is ${maxTokenLength}; expected 1..65536 (is this a llama2.c tokenizer.bin?)`);
  }
  const pieces: Uint8Array[] = [];
  const scores: number[] = [];
  let offset = 4;
  while (offset < bytes.byteLength) {
    const id = pieces.length;
    if (bytes.byteLength - offset < 8) {
      throw new TokenizerFormatError(file, offset, `token ${id} is truncated: expected float32 score and int32 length (8 bytes), ${bytes.byteLength - offset} left`);
    }
    const score = view.getFloat32(offset, true);
    const length = view.getInt32(offset + 4, true);
    if (!Number.isFinite(score)) {
      throw new TokenizerFormatError(file, offset, `token ${id} has score ${score}; expected a finite float32`);
    }
    if (length < 0 || length > maxTokenLength) {
      throw new TokenizerFormatError(file, offset + 4, `token ${id} has length ${length}; expected 0..${maxTokenLength} (max_token_length)`);
    }
    if (bytes.byteLength - offset - 8 < length) {
      throw new TokenizerFormatError(file, offset + 8, `token ${id} is truncated: its piece needs ${length} bytes, ${bytes.byteLength - offset - 8} left`);
    }
    pieces.push(bytes.slice(offset + 8, offset + 8 + length));
    scores.push(score);
    offset += 8 + length;
  }
  if (opts.vocabSize !== undefined && pieces.length !== opts.vocabSize) {
    throw new TokenizerFormatError(file, undefined, `holds ${pieces.length} tokens but the model's vocab_size is ${opts.vocabSize}`);
  }
  const minVocab = LLAMA2C_BYTE_OFFSET + 256;
  if (pieces.length < minVocab) {
    throw new TokenizerFormatError(file, undefined, `holds ${pieces.length} tokens; expected at least ${minVocab} (<unk>, BOS, EOS and 256 byte tokens)`);
  }
  for (let b = 0; b < 256; b++) {
    const want = byteTokenPiece(b);
    const got = toBinary(pieces[b + LLAMA2C_BYTE_OFFSET]);
    if (got !== want) {
      throw new TokenizerFormatError(file, undefined, `token ${b + LLAMA2C_BYTE_OFFSET} is ${JSON.stringify(got)}; run.c's byte fallback needs ${JSON.stringify(want)} there`);
    }
  }
  return { maxTokenLength, pieces, scores: Float32Array.from(scores) };
}

export function loadLlama2cTokenizer(bytes: Uint8Array, opts: Llama2cTokenizerOptions = {}): Llama2cTokenizer {
  return new Llama2cTokenizer(parseLlama2cTokenizer(bytes, opts));
}

export class Llama2cTokenizer implements Tokenizer {
  readonly vocabSize: number;
  readonly bosId = LLAMA2C_BOS;
  readonly eosId = LLAMA2C_EOS;
  readonly vocab: Llama2cVocab;
  private readonly binary: string[];
  private readonly lookup = new Map<string, number>();
  private readonly printed: Uint8Array[];

  constructor(vocab: Llama2cVocab) {
    this.vocab = vocab;
    this.vocabSize = vocab.pieces.length;
    this.binary = vocab.pieces.map(toBinary);
    // Duplicate pieces make run.c's bsearch pick an unspecified one; the first id is our choice.
    this.binary.forEach((p, id) => {
      if (!this.lookup.has(p)) this.lookup.set(p, id);
    });
    this.printed = vocab.pieces.map((p) => {
      const m = /^<0x([0-9A-Fa-f]{2})>$/.exec(toBinary(p));
      return m ? Uint8Array.of(Number.parseInt(m[1], 16)) : p;
    });
  }

  encode(text: string, opts: EncodeOptions = {}): number[] {
    const ids = this.initialTokens(new TextEncoder().encode(text), opts.bos ?? false);
    const merged = this.merge(ids);
    if (opts.eos) merged.push(this.eosId);
    return merged;
  }

  /** run.c: BOS, the dummy " " prefix (non-empty text only), then one token per UTF-8 character. */
  private initialTokens(utf8: Uint8Array, bos: boolean): number[] {
    const ids: number[] = bos ? [this.bosId] : [];
    if (utf8.length === 0) return ids;
    // The dummy prefix is looked up like a one-byte character, so prepending the byte is the same thing.
    const bytes = new Uint8Array(utf8.length + 1);
    bytes[0] = 0x20;
    bytes.set(utf8, 1);
    let start = 0;
    let len = 0;
    for (let i = 0; i < bytes.length; i++) {
      if ((bytes[i] & 0xc0) !== 0x80) {
        start = i;
        len = 0;
      }
      len++;
      // run.c caps a character at 4 bytes; longer runs of continuation bytes are split.
      if (i + 1 < bytes.length && (bytes[i + 1] & 0xc0) === 0x80 && len < 4) continue;
      const char = bytes.subarray(start, start + len);
      const id = this.lookup.get(toBinary(char));
      if (id !== undefined) ids.push(id);
      else for (const b of char) ids.push(b + LLAMA2C_BYTE_OFFSET);
      start = i + 1;
      len = 0;
    }
    return ids;
  }

  /**
   * run.c's merge loop (repeatedly merge the adjacent pair whose concatenation is the highest-scoring
   * piece, leftmost on ties) in O(n log n): a heap ordered by (score desc, position asc) holds every
   * live pair; a merged token keeps its left part's position, so positions stay in sequence order and
   * the heap's top is exactly the pair run.c's full scan would pick. Like run.c, BOS takes part.
   */
  private merge(ids: number[]): number[] {
    const n = ids.length;
    if (n < 2) return ids;
    const tok = ids.slice();
    const next = Int32Array.from({ length: n }, (_, i) => (i + 1 < n ? i + 1 : -1));
    const prev = Int32Array.from({ length: n }, (_, i) => i - 1);
    const version = new Int32Array(n);
    const alive = new Uint8Array(n).fill(1);
    const heap = new PairHeap();
    const consider = (i: number): void => {
      const j = next[i];
      if (j < 0) return;
      const id = this.lookup.get(this.binary[tok[i]] + this.binary[tok[j]]);
      if (id === undefined) return;
      const score = this.vocab.scores[id];
      if (!(score > RUNC_MIN_SCORE)) return;
      heap.push({ score, pos: i, right: j, id, vl: version[i], vr: version[j] });
    };
    for (let i = 0; i + 1 < n; i++) consider(i);
    for (let p = heap.pop(); p; p = heap.pop()) {
      const { pos: i, right: j } = p;
      if (!alive[i] || !alive[j] || next[i] !== j || version[i] !== p.vl || version[j] !== p.vr) continue;
      tok[i] = p.id;
      version[i]++;
      alive[j] = 0;
      next[i] = next[j];
      if (next[j] >= 0) prev[next[j]] = i;
      if (prev[i] >= 0) consider(prev[i]);
      consider(i);
    }
    const out: number[] = [];
    for (let i = 0; i >= 0; i = next[i]) out.push(tok[i]);
    return out;
  }

  pieceBytes(prev: number, id: number): Uint8Array {
    if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) throw new TokenIdError(id, this.vocabSize);
    let piece = this.vocab.pieces[id];
    // After BOS, sentencepiece drops the dummy prefix's space; run.c does too (llama2.c PR #89).
    if (prev === this.bosId && piece[0] === 0x20) piece = piece.subarray(1);
    else piece = this.printed[id];
    return piece;
  }

  decodePiece(prev: number, id: number): string {
    return new TextDecoder().decode(this.pieceBytes(prev, id));
  }

  decode(ids: number[]): string {
    const parts: Uint8Array[] = [];
    let prev = this.bosId;
    for (const id of ids) {
      if (id !== this.bosId && id !== this.eosId) parts.push(this.pieceBytes(prev, id));
      prev = id;
    }
    return new TextDecoder().decode(concatBytes(parts));
  }
}

export function byteTokenPiece(b: number): string {
  return `<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`;
}

function toBinary(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return s;
}

function concatBytes(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

interface PairEntry {
  score: number;
  pos: number;
  right: number;
  id: number;
  vl: number;
  vr: number;
}

/** Max-heap by score, then min position. */
class PairHeap {
  private readonly items: PairEntry[] = [];

  private before(a: PairEntry, b: PairEntry): boolean {
    return a.score > b.score || (a.score === b.score && a.pos < b.pos);
  }

  push(e: PairEntry): void {
    const items = this.items;
    items.push(e);
    let i = items.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.before(items[i], items[parent])) break;
      [items[i], items[parent]] = [items[parent], items[i]];
      i = parent;
    }
  }

  pop(): PairEntry | undefined {
    const items = this.items;
    if (items.length === 0) return undefined;
    const top = items[0];
    const last = items.pop() as PairEntry;
    if (items.length > 0) {
      items[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let best = i;
        if (l < items.length && this.before(items[l], items[best])) best = l;
        if (r < items.length && this.before(items[r], items[best])) best = r;
        if (best === i) break;
        [items[i], items[best]] = [items[best], items[i]];
        i = best;
      }
    }
    return top;
  }
}
