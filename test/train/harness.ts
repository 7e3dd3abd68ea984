import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ModelSpec } from '../../core/models/config.ts';
import type { RunConfigInput } from '../../core/store/run-spec.ts';
import { randomWeights } from '../../core/models/model.ts';
import { saveModelDir } from '../../core/models/load.ts';
import { openStore } from '../../core/store/open.ts';
import type { ObjectStore } from '../../core/store/object-store.ts';
import { ResourceCache } from '../../core/train/resources.ts';
import { createSources, type Sources } from '../../core/train/sources.ts';
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

/** A base of `smallLlama` and 40 lines of data, the inputs of `tinyRun`. */
export async function writeTinyRunInputs(): Promise<{ baseDir: string; dataFile: string }> {
  return { baseDir: await writeBase(smallLlama), dataFile: await writeData(qaLines(40)) };
}

/** The run the chunk suites train: 4 blocks, γ=2, K=3, 12 steps of 3 examples. */
export function tinyRun(base: string, data: string, over: Partial<RunConfigInput> = {}): RunConfigInput {
  return {
    base,
    data,
    fields: ['question', 'answer'],
    seqLen: 48,
    activeLayers: 2,
    period: 3,
    steps: 12,
    batchSize: 3,
    lr: 1e-2,
    warmupSteps: 2,
    seed: 5,
    ...over,
  };
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
