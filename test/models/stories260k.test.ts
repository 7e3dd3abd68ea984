import { readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { type BackendName, initEngine } from '../../core/engine/index.ts';
import { loadBaseDir } from '../../core/models/load.ts';
import { createModel, type Model } from '../../core/models/model.ts';
import { generateText, runcPrintable } from '../../core/models/textgen.ts';
import { loadTokenizerDir, type Tokenizer } from '../../core/tokenizers/index.ts';

const dir = new URL('../../models/stories260K/', import.meta.url).pathname;
const fixtures = new URL('../fixtures/stories260K/', import.meta.url);
const reference = (name: string) => readFileSync(new URL(name, fixtures), 'utf8');

let model: Model;
let tokenizer: Tokenizer;

beforeAll(async () => {
  await initEngine({ backend: process.env.LISA_BACKEND as BackendName | undefined });
  const base = await loadBaseDir(dir);
  model = createModel(base.spec, base.weights);
  tokenizer = await loadTokenizerDir(dir);
});

function run(prompt: string, maxTokens: number): string {
  const chunks: Buffer[] = [];
  generateText(model, tokenizer, { prompt, maxTokens, temperature: 0 }, (b) => chunks.push(Buffer.from(b)));
  return Buffer.concat(chunks).toString('utf8');
}

describe('stories260K against llama2.c run.c', () => {
  it('encodes the prompt like run.c', () => {
    expect(tokenizer.encode('Once upon a time', { bos: true })).toEqual([1, 403, 407, 261, 378]);
  });

  it('gives run.c position-0 logits after BOS', () => {
    const logits = tf.tidy(() => model.logits(tf.tensor2d([[1]], [1, 1], 'int32'))).dataSync() as Float32Array;
    expect(logits).toHaveLength(512);
    expect(Math.abs(logits[403] - 17.0235)).toBeLessThan(1e-3);
    expect(Math.abs(logits[385] - 15.4062)).toBeLessThan(1e-3);
    expect(Math.abs(logits[410] - 13.1083)).toBeLessThan(1e-3);
    const top3 = Array.from(logits.keys()).sort((a, b) => logits[b] - logits[a]).slice(0, 3);
    expect(top3).toEqual([403, 385, 410]);
  });

  it('reproduces greedy generation from BOS, 200 positions, byte for byte', () => {
    expect(run('', 200)).toBe(reference('reference-greedy-200.txt'));
  });

  it('reproduces "Once upon a time" with 64 positions byte for byte', () => {
    expect(run('Once upon a time', 64)).toBe(reference('reference-prompt-64.txt'));
  });

  it('prints only the prompt positions that fit, like run.c with a small -n', () => {
    expect(run('Once upon a time', 2)).toBe('Once upon');
  });

  it("drops lone non-printable bytes like run.c's safe_printf", () => {
    expect(Array.from(runcPrintable(Uint8Array.of(0xf0)))).toEqual([]);
    expect(Array.from(runcPrintable(Uint8Array.of(0x07)))).toEqual([]);
    expect(Array.from(runcPrintable(Uint8Array.of(0x0a)))).toEqual([0x0a]);
    expect(Array.from(runcPrintable(Uint8Array.of(0x41)))).toEqual([0x41]);
    expect(Array.from(runcPrintable(Uint8Array.of(0xc3, 0xa9)))).toEqual([0xc3, 0xa9]);
  });
});
