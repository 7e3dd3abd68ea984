/**
 * Prompt in, text out, printed the way llama2.c's run.c prints: the prompt's pieces first (run.c
 * prints each position's token as it consumes it, prompt included), then each generated piece as
 * it is chosen. The caller owns the sink (stdout, an HTTP stream) and any final newline.
 */
import type { Tokenizer } from '../tokenizers/tokenizer.ts';
import { contextLength } from './config.ts';
import { generate, type GenerateOptions } from './generate.ts';
import type { Model } from './model.ts';

export interface TextGenerationOptions extends Omit<GenerateOptions, 'stopIds'> {
  prompt: string;
  /** a chat prompt (core/data chatPrompt): its ids replace BOS + prompt, its stop ids end the reply */
  chat?: { ids: number[]; stopIds: number[] };
}

export interface TextGeneration {
  /** BOS, the prompt's ids, then the generated ids. */
  ids: number[];
  /** How many of `ids` came from BOS + prompt. */
  promptLength: number;
}

/**
 * run.c's safe_printf: a piece that is a single byte which is neither printable ASCII nor
 * whitespace (a control byte, or one byte of a multi-byte character) is not printed.
 */
export function runcPrintable(piece: Uint8Array): Uint8Array {
  if (piece.length !== 1) return piece;
  const b = piece[0];
  const printable = b >= 0x20 && b <= 0x7e;
  const space = b === 0x20 || (b >= 0x09 && b <= 0x0d);
  return printable || space ? piece : piece.subarray(0, 0);
}

export function generateText(model: Model, tokenizer: Tokenizer, opts: TextGenerationOptions, write: (bytes: Uint8Array) => void): TextGeneration {
  const { prompt, chat, ...genOpts } = opts;
  // A tokenizer without a BOS of its own (some HF ones) still gets the model's BOS at position 0.
  const plainIds = () => (tokenizer.bosId >= 0 ? tokenizer.encode(prompt, { bos: true }) : [model.spec.bosId, ...tokenizer.encode(prompt)]);
  const promptIds = chat?.ids ?? plainIds();
  const print = (prev: number, id: number) => {
    const bytes = runcPrintable(tokenizer.pieceBytes(prev, id));
    if (bytes.length > 0) write(bytes);
  };
  // Prompt tokens past the last position are never consumed, so run.c never prints them. A chat
  // prompt is the template's text, not the user's: only the reply is printed.
  const positions = Math.min(genOpts.maxTokens, contextLength(model.spec));
  if (!chat) for (let i = 1; i < promptIds.length && i <= positions; i++) print(promptIds[i - 1], promptIds[i]);
  let prev = promptIds[promptIds.length - 1];
  const ids = generate(model, promptIds, { ...genOpts, stopIds: chat?.stopIds }, (id) => {
    print(prev, id);
    prev = id;
  });
  return { ids, promptLength: Math.min(promptIds.length, positions + 1) };
}
