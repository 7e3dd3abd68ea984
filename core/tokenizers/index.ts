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

/** Reads a file of a model folder by name; undefined when it does not exist. */
export type TokenizerFileReader = (name: string) => Promise<Uint8Array | undefined>;

export async function loadTokenizerDir(dir: string): Promise<Tokenizer> {
  return loadTokenizerFiles((name) => readOptional(join(dir, name)), (name) => join(dir, name));
}

/**
 * The tokenizer of a model folder (a directory, an S3 prefix). tokenizer.bin (llama2.c) wins when
 * both files exist: it is the original the reference outputs were made with, and tokenizer.json
 * is derived from it. config.json, when present, supplies the vocab size to check against and
 * BOS/EOS ids that tokenizer_config.json does not name. `where` names a file in errors.
 */
export async function loadTokenizerFiles(read: TokenizerFileReader, where: (name: string) => string): Promise<Tokenizer> {
  const json = async (name: string) => parseJson(where(name), await read(name));
  const config = await json('config.json');
  const bin = await read('tokenizer.bin');
  if (bin) {
    const vocabSize = typeof config?.vocab_size === 'number' ? config.vocab_size : undefined;
    return loadLlama2cTokenizer(bin, { file: where('tokenizer.bin'), vocabSize });
  }
  const tokenizerJson = await json('tokenizer.json');
  if (!tokenizerJson) throw new TokenizerNotFoundError(where(''));
  const tokenizerConfig = (await json('tokenizer_config.json')) ?? {};
  const id = (v: unknown) => (typeof v === 'number' ? v : undefined);
  return loadHfTokenizer(tokenizerJson, tokenizerConfig, { file: where('tokenizer.json'), bosId: id(config?.bos_token_id), eosId: id(config?.eos_token_id) });
}

async function readOptional(path: string): Promise<Uint8Array | undefined> {
  try {
    return new Uint8Array(await readFile(path));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

function parseJson(path: string, bytes: Uint8Array | undefined): Record<string, unknown> | undefined {
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
