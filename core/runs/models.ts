/**
 * Models outside a run's store that front ends work with: a model directory to generate from, a
 * chat template file to apply, a llama2.c checkpoint to convert, a delta package to apply. Paths are checked as refs (coded
 * errors for missing, unreadable or wrong-type paths), like the run operations' own.
 */
import { readFile } from 'node:fs/promises';
import { applyDelta, type ApplyDeltaOptions, type ExportSummary } from '../merge/index.ts';
import { openStore } from '../store/open.ts';
import type { StoreEnv } from '../store/s3-store.ts';
import { convertLlama2c, type ConvertResult } from '../models/llama2c.ts';
import { loadBaseDir } from '../models/load.ts';
import { createModel, type Model } from '../models/model.ts';
import { loadTokenizerDir, type Tokenizer } from '../tokenizers/index.ts';
import { checkLocalRef, usingRefs } from './refs.ts';

export interface TextModel {
  /** the caller disposes it */
  model: Model;
  tokenizer: Tokenizer;
}

/** A Hugging Face model directory, loaded to generate from. */
export async function openModelDir(dir: string): Promise<TextModel> {
  await checkLocalRef('base', dir, 'dir', 'read');
  return usingRefs({ base: dir }, async () => {
    const base = await loadBaseDir(dir);
    return { model: createModel(base.spec, base.weights), tokenizer: await loadTokenizerDir(dir) };
  });
}

/** A Jinja chat template file (`--chat-template`); `where` names it in template errors. */
export async function readChatTemplate(path: string): Promise<{ text: string; where: string }> {
  await checkLocalRef('chatTemplate', path, 'file', 'read');
  return usingRefs({ chatTemplate: path }, async () => ({ text: await readFile(path, 'utf8'), where: path }));
}

/** A llama2.c checkpoint and tokenizer as a new Hugging Face model directory `out`. */
export async function convertLlama2cFiles(checkpoint: string, tokenizer: string, out: string): Promise<ConvertResult> {
  await checkLocalRef('checkpoint', checkpoint, 'file', 'read');
  await checkLocalRef('tokenizer', tokenizer, 'file', 'read');
  await checkLocalRef('out', out, 'dir', 'write');
  return usingRefs({ checkpoint, tokenizer, out }, async () =>
    convertLlama2c({ bytes: new Uint8Array(await readFile(checkpoint)), file: checkpoint }, { bytes: new Uint8Array(await readFile(tokenizer)), file: tokenizer }, out),
  );
}

/** Rebuilds a full model from a base and a delta package (`lisa export --delta`); s3:// refs use `env`'s settings. */
export async function applyDeltaPackage(req: Omit<ApplyDeltaOptions, 'openStore'>, env: StoreEnv): Promise<ExportSummary> {
  const opts: ApplyDeltaOptions = { ...req, openStore: (url) => openStore(url, { env }) };
  await checkLocalRef('base', opts.base, 'dir', 'read');
  await checkLocalRef('delta', opts.delta, 'file', 'read');
  await checkLocalRef('out', opts.out, 'dir', 'write');
  return usingRefs({ base: opts.base, delta: opts.delta, out: opts.out }, () => applyDelta(opts));
}
