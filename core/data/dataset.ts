/**
 * A dataset file → tokenized training and held-out examples.
 *
 * Formats: 'jsonl' (instruction data, one object per line, mapped fields → prompt + response,
 * loss on the response), 'chat' (conversations rendered with a chat template, loss on the
 * assistant's turns: chat.ts) and 'text' (one token stream packed into windows, loss everywhere).
 * Examples whose response is cut away entirely by seqLen carry no loss and are dropped.
 * Held out: `heldOut` examples picked by a seeded draw (stream 'data.heldout' of the seed, see
 * core/lisa/rng.ts) — not the first or last lines, since files are often sorted — and kept, like
 * the training examples, in file order.
 */
import { permutation, rngFor } from '../lisa/rng.ts';
import { DataConfigError, EmptyDatasetError, UnknownFormatError } from './errors.ts';
import { encodeInstruction, lossTokens, packText, type DataTokenizer, type Example } from './example.ts';
import { parseJsonl } from './jsonl.ts';
import { promptFormat } from './template.ts';
import { chatFormat, encodeChat, parseChatRows } from './chat.ts';
import type { Tokenizer } from '../tokenizers/tokenizer.ts';

export const DATA_FORMATS = ['jsonl', 'text', 'chat'] as const;
export type DataFormat = (typeof DATA_FORMATS)[number];

export interface DatasetOptions {
  /** Where the text came from (path or URL), for messages. */
  source: string;
  format: DataFormat;
  /** jsonl: prompt fields…, response field (default instruction, input, output). */
  fields?: readonly string[];
  /** jsonl: prompt template (template.ts); default per field mapping. */
  template?: string;
  /** chat: a Jinja chat template (and what names it in errors) instead of the tokenizer's. */
  chatTemplate?: { text: string; where: string };
  /** The model's context: input positions it can take. */
  maxSeqLen: number;
  /** Input positions per example, at most maxSeqLen (default maxSeqLen). */
  seqLen?: number;
  /** Examples held out for evaluation (default 0). */
  heldOut?: number;
  /** Seeds the held-out pick and the per-epoch shuffle. */
  seed: number;
  /** Shuffle the training examples every epoch (default true). */
  shuffle?: boolean;
  tokenizer: DataTokenizer & Pick<Tokenizer, 'chat'>;
}

export interface DatasetStats {
  /** JSONL records or text windows before dropping. */
  records: number;
  /** Examples cut short by seqLen. */
  truncated: number;
  /** Examples with no loss token left after truncation. */
  dropped: number;
  /** Loss-bearing tokens in the training examples (one epoch). */
  trainTokens: number;
}

export interface PreparedDataset {
  source: string;
  seqLen: number;
  seed: number;
  shuffle: boolean;
  train: Example[];
  heldOut: Example[];
  stats: DatasetStats;
}

/** The stream name of the held-out draw under the dataset's seed. */
export const HELDOUT_STREAM = 'data.heldout';

export function prepareDataset(text: string, opts: DatasetOptions): PreparedDataset {
  const { source, maxSeqLen, tokenizer } = opts;
  if (!Number.isInteger(maxSeqLen) || maxSeqLen < 1) throw new DataConfigError(`maxSeqLen must be a positive integer, got ${maxSeqLen}`);
  const seqLen = opts.seqLen ?? maxSeqLen;
  if (!Number.isInteger(seqLen) || seqLen < 1 || seqLen > maxSeqLen) {
    throw new DataConfigError(`seqLen must be an integer between 1 and the model's context ${maxSeqLen}, got ${seqLen}`, { seqLen, maxSeqLen });
  }
  const heldOut = opts.heldOut ?? 0;
  if (!Number.isInteger(heldOut) || heldOut < 0) throw new DataConfigError(`heldOut must be a non-negative integer, got ${heldOut}`);

  let examples: Example[];
  let records: number;
  let truncated = 0;
  if (opts.format === 'jsonl') {
    const format = promptFormat(opts.fields, opts.template);
    const rows = parseJsonl(text, source, [...format.promptFields, format.responseField]);
    if (rows.length === 0) throw new EmptyDatasetError(source, 'no JSONL records (the file is empty or only blank lines)');
    records = rows.length;
    examples = [];
    for (const r of rows) {
      const e = encodeInstruction(tokenizer, format.render(r.values), r.values[format.responseField], seqLen);
      if (e.truncated) truncated++;
      examples.push(e.example);
    }
  } else if (opts.format === 'chat') {
    const format = chatFormat(tokenizer.chat, opts.chatTemplate);
    const rows = parseChatRows(text, source);
    if (rows.length === 0) throw new EmptyDatasetError(source, 'no JSONL records (the file is empty or only blank lines)');
    records = rows.length;
    examples = rows.map((row) => {
      const e = encodeChat(tokenizer, format, row, seqLen, source);
      if (e.truncated) truncated++;
      return e.example;
    });
  } else if (opts.format === 'text') {
    if (text.trim() === '') throw new EmptyDatasetError(source, 'the text is empty');
    examples = packText(tokenizer, text, seqLen);
    records = examples.length;
  } else {
    throw new UnknownFormatError(source, String(opts.format), DATA_FORMATS);
  }

  const kept = examples.filter((e) => lossTokens(e) > 0);
  const dropped = examples.length - kept.length;
  if (kept.length === 0) {
    throw new EmptyDatasetError(source, `none of the ${records} records has a response token left within seqLen ${seqLen} (prompts too long?)`);
  }
  if (heldOut >= kept.length) {
    throw new DataConfigError(`heldOut ${heldOut} leaves no training examples: ${source} has ${kept.length} usable examples`, {
      heldOut,
      examples: kept.length,
    });
  }
  const held = new Set(permutation(kept.length, rngFor(opts.seed, HELDOUT_STREAM, 0)).slice(0, heldOut));
  const train = kept.filter((_, i) => !held.has(i));
  return {
    source,
    seqLen,
    seed: opts.seed,
    shuffle: opts.shuffle ?? true,
    train,
    heldOut: kept.filter((_, i) => held.has(i)),
    stats: { records, truncated, dropped, trainTokens: train.reduce((n, e) => n + lossTokens(e), 0) },
  };
}
