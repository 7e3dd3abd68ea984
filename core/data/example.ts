/**
 * Training examples: token ids plus a loss mask over them.
 *
 * An Example is `ids` and `mask` of equal length, where mask[i] = 1 means "the model is trained
 * to predict ids[i] from ids[0..i-1]". mask[0] is always 0 (nothing precedes the first token).
 * A batch row feeds ids[0..n-2] and targets ids[1..n-1] with the mask mask[1..n-1] (batch.ts).
 * `seqLen` counts input positions, so an example holds at most seqLen + 1 ids.
 */
import type { Tokenizer } from '../tokenizers/tokenizer.ts';

export interface Example {
  ids: number[];
  mask: number[];
}

/** What data needs from a tokenizer; any core/tokenizers Tokenizer fits. */
export type DataTokenizer = Pick<Tokenizer, 'bosId' | 'eosId' | 'encode'>;

export interface Encoded {
  example: Example;
  /** True when the example lost tokens to seqLen. */
  truncated: boolean;
}

/**
 * [BOS] prompt response [EOS], loss on the response tokens and EOS. Prompt and response are
 * encoded separately (as LMFlow, the LISA paper's code, does) so the prompt's tokens are exactly
 * those a generation call encodes from the same prompt text. Cut to seqLen + 1 ids at the end.
 */
export function encodeInstruction(tok: DataTokenizer, prompt: string, response: string, seqLen: number): Encoded {
  const p = tok.encode(prompt);
  const r = tok.encode(response);
  const ids = [tok.bosId, ...p, ...r, tok.eosId];
  const mask = [0, ...p.map(() => 0), ...r.map(() => 1), 1];
  const truncated = ids.length > seqLen + 1;
  return { example: { ids: ids.slice(0, seqLen + 1), mask: mask.slice(0, seqLen + 1) }, truncated };
}

/**
 * [BOS] text [EOS] cut into windows of seqLen + 1 ids that overlap by one id (stride seqLen),
 * loss on every position but each window's first, so every id after BOS is a target exactly once.
 * The last window may be shorter (it is padded in batches); a window needs at least 2 ids.
 */
export function packText(tok: DataTokenizer, text: string, seqLen: number): Example[] {
  const ids = [tok.bosId, ...tok.encode(text), tok.eosId];
  const out: Example[] = [];
  for (let start = 0; start + 1 < ids.length; start += seqLen) {
    const window = ids.slice(start, start + seqLen + 1);
    out.push({ ids: window, mask: window.map((_, i) => (i === 0 ? 0 : 1)) });
  }
  return out;
}

export function lossTokens(e: Example): number {
  let n = 0;
  for (const m of e.mask) n += m;
  return n;
}
