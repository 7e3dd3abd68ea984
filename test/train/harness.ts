import * as tf from '@tensorflow/tfjs-core';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ModelSpec } from '../../core/models/config.ts';
import { createModel, randomWeights } from '../../core/models/model.ts';
import { unitOf } from '../../core/models/units.ts';
import { nextBatch } from '../../core/data/index.ts';
import { adamwStep } from '../../core/optim/adamw.ts';
import { createParamGroup, disposeParamGroup, readGroupState, type GroupState } from '../../core/optim/state.ts';
import type { RunSpec } from '../../core/store/run-spec.ts';
import { adamwConfig, periodUnits } from '../../core/train/chunk.ts';
import { saveModelDir } from '../../core/models/load.ts';
import { openStore } from '../../core/store/open.ts';
import type { ObjectStore } from '../../core/store/object-store.ts';
import { ResourceCache } from '../../core/train/resources.ts';
import { createSources, openRunInputs, type Sources } from '../../core/train/sources.ts';
import { s3TestUrl } from '../store/s3-env.ts';

export const repoPath = (p: string): string => new URL(`../../${p}`, import.meta.url).pathname;

/** A 4-block llama over the bundled 512-token tokenizer: small enough for the cpu backend. */
export const smallLlama: ModelSpec = {
  arch: 'llama',
  vocabSize: 512,
  dim: 16,
  nLayers: 4,
  nHeads: 4,
  nKvHeads: 2,
  headDim: 4,
  hiddenDim: 32,
  maxSeqLen: 64,
  normEps: 1e-5,
  ropeTheta: 10000,
  tiedEmbeddings: true,
  bosId: 1,
  eosId: 2,
};

export async function tempDir(label: string): Promise<string> {
  return mkdtemp(join(tmpdir(), `lisa-${label}-`));
}

/** Writes a base model directory for `spec` with random weights and the bundled tokenizer. */
export async function writeBase(spec: ModelSpec, seed = 1): Promise<string> {
  const dir = join(await tempDir('base'), 'model');
  const tokenizer = await readFile(repoPath('models/stories260K/tokenizer.bin'));
  await saveModelDir(dir, spec, randomWeights(spec, seed), { files: { 'tokenizer.bin': tokenizer } });
  return dir;
}

export async function writeData(lines: string[]): Promise<string> {
  const file = join(await tempDir('data'), 'data.jsonl');
  await writeFile(file, lines.map((l) => `${l}\n`).join(''));
  return file;
}

/** A few GSM8K-style lines: enough examples for several epochs of tiny batches. */
export function qaLines(n: number): string[] {
  return Array.from({ length: n }, (_, i) =>
    JSON.stringify({ question: `Tom has ${i} cats and ${i + 2} dogs. How many pets?`, answer: `He has ${2 * i + 2} pets. #### ${2 * i + 2}` }),
  );
}

export interface StoreKind {
  name: string;
  open: () => Promise<ObjectStore>;
}

export async function fsStore(label: string): Promise<ObjectStore> {
  return openStore(await tempDir(label));
}

/** The local directory store always; S3 when LISA_TEST_S3 is set (and required under CI). */
export function storeKinds(label: string): StoreKind[] {
  const kinds: StoreKind[] = [{ name: 'fs', open: () => fsStore(label) }];
  const s3 = s3TestUrl(label);
  if (s3) {
    let n = 0;
    kinds.push({ name: 's3', open: async () => openStore(`${s3}/${n++}`, { env: process.env }) });
  }
  return kinds;
}

export function newSources(): { sources: Sources; cache: ResourceCache } {
  return { sources: createSources((url) => openStore(url, { env: process.env })), cache: new ResourceCache() };
}

export const bytesOf = (a: Float32Array): Buffer => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

/**
 * The same LISA schedule as one uninterrupted process: one model, all AdamW state kept in memory,
 * no store. Returns the final weights and every trained unit's state.
 */
export async function referenceLoop(run: RunSpec, steps: number) {
  const { sources, cache } = newSources();
  const { base, dataset } = await openRunInputs(run, sources, cache);
  const model = createModel(base.spec, base.weights);
  const states = new Map<string, GroupState>();
  const cfg = adamwConfig(run);
  let cursor = { epoch: 0, index: 0 };
  for (let step = 0; step < steps; step++) {
    const active = periodUnits(run, base.spec.nLayers, Math.floor(step / run.config.period));
    const groups = active.map((u) =>
      createParamGroup(
        u,
        [...model.params].filter(([n]) => unitOf(base.spec, n) === u),
        run.config.optimizerState === 'restore' ? states.get(u) : step % run.config.period === 0 ? undefined : states.get(u),
      ),
    );
    const batch = nextBatch(dataset, cursor, run.config.batchSize);
    cursor = batch.cursor;
    const vars = groups.flatMap((g) => g.slots.map((s) => s.param));
    const hf = new Map(groups.flatMap((g) => g.slots.map((s) => [s.param.name, s.name] as const)));
    const { value, grads } = tf.variableGrads(
      () => model.loss(tf.tensor2d(batch.tokens, undefined, 'int32'), tf.tensor2d(batch.targets, undefined, 'int32'), tf.tensor2d(batch.mask)),
      vars,
    );
    adamwStep(cfg, groups, new Map(Object.entries(grads).map(([k, g]) => [hf.get(k)!, g])), step);
    tf.dispose([value, ...Object.values(grads)]);
    for (const g of groups) {
      states.set(g.unit, await readGroupState(g));
      disposeParamGroup(g);
    }
  }
  const weights = new Map([...model.params].map(([n, v]) => [n, v.dataSync() as Float32Array]));
  model.dispose();
  return { weights, states, base };
}
