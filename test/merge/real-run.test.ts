/**
 * End to end on a real run: stories260K trained by runChunk for a few chunks, then exported; the
 * exported directory must load (loadBaseDir, loadTokenizerDir) into a model whose logits equal,
 * bit for bit, those of the run's in-store model (materialize + createModel) at the same seq.
 */
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { join, resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initEngine } from '../../core/engine/index.ts';
import { composeRuns, exportRun } from '../../core/merge/index.ts';
import { loadBaseDir } from '../../core/models/load.ts';
import { createModel } from '../../core/models/model.ts';
import { loadTokenizerDir } from '../../core/tokenizers/index.ts';
import { FsStore } from '../../core/store/fs-store.ts';
import { readManifest } from '../../core/store/manifest.ts';
import { createRun } from '../../core/train/create-run.ts';
import { runChunk } from '../../core/train/chunk.ts';
import { materialize } from '../../core/train/run-state.ts';
import { ResourceCache } from '../../core/train/resources.ts';
import { createSources } from '../../core/train/sources.ts';
import { tempDir } from './helpers.ts';

const BASE = resolve('models/stories260K');
const TOKENS = [[1, 403, 407, 261, 378, 488, 289, 64, 275, 370, 14, 19, 300, 301, 302, 303]];

let root: string;
let cleanup: () => Promise<void>;
let store: FsStore;
const sources = createSources((url) => new FsStore(url));
const cache = new ResourceCache();

beforeAll(async () => {
  await initEngine({ backend: 'cpu' });
  ({ path: root, cleanup } = await tempDir());
  store = new FsStore(join(root, 'store'));
  const data = join(root, 'data.jsonl');
  const stories = ['Once upon a time there was a cat.', 'The dog ran to the park.', 'Lily saw a big red ball.', 'Tom liked to play in the sun.'];
  await writeFile(data, stories.map((s, i) => JSON.stringify({ prompt: `Story ${i}:`, response: s })).join('\n'));
  for (const [id, seed] of [['story', 1], ['other', 2]] as const) {
    const run = await createRun({
      store,
      runId: id,
      sources,
      cache,
      input: { base: BASE, data, fields: ['prompt', 'response'], seqLen: 32, period: 2, batchSize: 2, steps: 6, activeLayers: 1, lr: 1e-2, seed },
    });
    for (let i = 0; i < 3; i++) await runChunk({ store, run, sources, cache });
  }
}, 300_000);
afterAll(() => cleanup?.());

async function runLogits(seq: number): Promise<Float32Array> {
  const base = await loadBaseDir(BASE);
  const manifest = await readManifest(store, 'story', seq);
  const { weights } = await materialize(store, base.spec, base.weights, manifest, new Set());
  return logitsOf(base.spec, weights);
}

function logitsOf(spec: Parameters<typeof createModel>[0], weights: Map<string, Float32Array>): Float32Array {
  const model = createModel(spec, weights);
  try {
    return tf.tidy(() => model.logits(tf.tensor2d(TOKENS, undefined, 'int32'))).dataSync() as Float32Array;
  } finally {
    model.dispose();
  }
}

describe('export of a trained stories260K run', () => {
  it('reloads with logits bitwise equal to the in-store model, at the head and at an earlier seq', async () => {
    const head = await exportRun({ store, runId: 'story', out: join(root, 'head') });
    expect(head.seq).toBe(2);
    const loaded = await loadBaseDir(head.out);
    expect(logitsOf(loaded.spec, loaded.weights)).toEqual(await runLogits(2));

    const early = await exportRun({ store, runId: 'story', out: join(root, 'at0'), at: 0 });
    const loadedEarly = await loadBaseDir(early.out);
    const earlyLogits = logitsOf(loadedEarly.spec, loadedEarly.weights);
    expect(earlyLogits).toEqual(await runLogits(0));
    expect(earlyLogits).not.toEqual(await runLogits(2));

    // what `lisa generate --model DIR` needs: a tokenizer that loads, and the same vocabulary
    const tok = await loadTokenizerDir(head.out);
    expect(tok.vocabSize).toBe(loaded.spec.vocabSize);
    expect(tok.encode('Once upon a time')).toEqual((await loadTokenizerDir(BASE)).encode('Once upon a time'));
  });

  it('`lisa generate --model DIR` runs on exports of every kind, greedy output equal to the run itself', async () => {
    const lisa = (args: string[]) => promisify(execFile)(process.execPath, ['bin/lisa.js', 'generate', '--prompt', 'Once upon a time', '--max-tokens', '40', '--temperature', '0', ...args]);
    const f32 = await exportRun({ store, runId: 'story', out: join(root, 'gen-f32') });
    const fromRun = await lisa(['--store', store.root, '--run', 'story']);
    expect(fromRun.stdout.startsWith('Once upon a time')).toBe(true);
    expect((await lisa(['--model', f32.out])).stdout).toBe(fromRun.stdout);
    const bf16 = await exportRun({ store, runId: 'story', out: join(root, 'gen-bf16'), dtype: 'bf16', shardSize: 100_000 });
    expect(bf16.files).toContain('model.safetensors.index.json');
    const composed = await composeRuns({ base: BASE, store, runs: [{ runId: 'story' }, { runId: 'other' }], method: 'ties', density: 0.5, dtype: 'f16', out: join(root, 'gen-ties') });
    for (const dir of [bf16.out, composed.out]) expect((await lisa(['--model', dir])).stdout, dir).toMatch(/^Once upon a time.{20,}/s);
  });

  it('task arithmetic of two runs is the base plus both task vectors where they trained', async () => {
    const c = await composeRuns({ base: BASE, store, runs: [{ runId: 'story' }, { runId: 'other' }], method: 'task-arithmetic', out: join(root, 'ta') });
    const merged = (await loadBaseDir(c.out)).weights;
    const base = await loadBaseDir(BASE);
    const a = (await materialize(store, base.spec, base.weights, await readManifest(store, 'story', 2), new Set())).weights;
    const b = (await materialize(store, base.spec, base.weights, await readManifest(store, 'other', 2), new Set())).weights;
    for (const [name, b0] of base.weights) {
      const expected = Float32Array.from(b0, (x, j) => x + ((a.get(name)![j] - x) + (b.get(name)![j] - x)));
      expect(merged.get(name), name).toEqual(expected);
    }
  });
});
