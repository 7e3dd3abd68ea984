import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { loadHfTokenizer } from './hf.ts';
import { loadLlama2cTokenizer } from './llama2c.ts';
import type { Tokenizer } from './tokenizer.ts';
import { TokenizerFormatError, TokenizerNotFoundError } from './tokenizer.ts';

export type { EncodeOptions, Tokenizer } from './tokenizer.ts';
export { TokenIdError, TokenizerEncodeError, TokenizerFormatError, TokenizerNotFoundError } from './tokenizer.ts';
export { Llama2cTokenizer, loadLlama2cTokenizer, parseLlama2cTokenizer } from './llama2c.ts';
export { HfTokenizerAdapter, loadHfTokenizer } from './hf.ts';
export { llama2cToHfTokenizer, TokenizerConversionError } from './llama2c-hf.ts';

/**
 * The tokenizer of a model directory. tokenizer.bin (llama2.c) wins when both files exist: it is
 * the original the reference outputs were made with, and tokenizer.json is derived from it.
 * config.json, when present, supplies the vocab size to check against and BOS/EOS ids that
 * tokenizer_config.json does not name.
 */
export async function loadTokenizerDir(dir: string): Promise<Tokenizer> {
  const config = await readJson(dir, 'config.json');
  const bin = await readOptional(join(dir, 'tokenizer.bin'));
  if (bin) {
    const vocabSize = typeof config?.vocab_size === 'number' ? config.vocab_size : undefined;
    return loadLlama2cTokenizer(bin, { file: join(dir, 'tokenizer.bin'), vocabSize });
  }
  const tokenizerJson = await readJson(dir, 'tokenizer.json');
  if (!tokenizerJson) throw new TokenizerNotFoundError(dir);
  const tokenizerConfig = (await readJson(dir, 'tokenizer_config.json')) ?? {};
  const id = (v: unknown) => (typeof v === 'number' ? v : undefined);
  return loadHfTokenizer(tokenizerJson, tokenizerConfig, { file: join(dir, 'tokenizer.json'), bosId: id(config?.bos_token_id), eosId: id(config?.eos_token_id) });
}

async function readOptional(path: string): Promise<Uint8Array | undefined> {
  try {
    return new Uint8Array(await readFile(path));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

async function readJson(dir: string, name: string): Promise<Record<string, unknown> | undefined> {
  const path = join(dir, name);
  const bytes = await readOptional(path);
  if (!bytes) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder().decode(bytes));
  } catch (err) {
    throw new TokenizerFormatError(path, undefined, `is not valid JSON: ${(err as Error).message}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new TokenizerFormatError(path, undefined, 'expected a JSON object');
  return value as Record<string, unknown>;
}
