import { readFile } from 'node:fs/promises';
import { extname } from 'node:path';
import type { ObjectStore } from '../store/object-store.ts';
import { sha256Hex } from '../store/manifest.ts';
import type { RunConfig, RunSpec } from '../store/run-spec.ts';
import { loadBase, loadBaseDir } from '../models/load.ts';
import { loadTokenizerDir, loadTokenizerFiles } from '../tokenizers/index.ts';
import { storeSource } from '../store/object-store.ts';
import { prepareDataset, type PreparedDataset } from '../data/index.ts';
import { BaseChangedError, DataChangedError, type LoadedBase, type ResourceCache } from './resources.ts';

export interface PreparedData {
  sha256: string;
  dataset: PreparedDataset;
}

/** How a process opens the bases and datasets runs refer to: local paths or s3:// URLs. */
export interface Sources {
  loadBase(ref: string): Promise<LoadedBase>;
  prepareData(config: RunConfig, base: LoadedBase): Promise<PreparedData>;
}

const isS3 = (ref: string): boolean => ref.startsWith('s3://');

/** Splits s3://bucket/some/key into the store URL of its folder and the object's name. */
function splitS3(ref: string): { folder: string; name: string } {
  const slash = ref.lastIndexOf('/');
  return { folder: ref.slice(0, slash), name: ref.slice(slash + 1) };
}

export function createSources(openStore: (url: string) => ObjectStore): Sources {
  const readRef = async (ref: string): Promise<Uint8Array> => {
    if (!isS3(ref)) return new Uint8Array(await readFile(ref));
    const { folder, name } = splitS3(ref);
    return openStore(folder).get(name);
  };
  return {
    async loadBase(ref) {
      if (!isS3(ref)) return { ...(await loadBaseDir(ref)), tokenizer: await loadTokenizerDir(ref) };
      // An S3 prefix laid out like a model directory: ranged reads of the safetensors, in parallel.
      const folder = openStore(ref);
      const exists = async (name: string) => (await folder.head(name)) !== null;
      const base = await loadBase(async (name) => ((await exists(name)) ? storeSource(folder, name) : undefined), ref);
      const tokenizer = await loadTokenizerFiles(
        async (name) => ((await exists(name)) ? folder.get(name) : undefined),
        (name) => `${ref.replace(/\/$/, '')}/${name}`,
      );
      return { ...base, dir: ref, tokenizer };
    },
    async prepareData(config, base) {
      const bytes = await readRef(config.data);
      const format = config.format ?? (['.txt', '.text', '.md'].includes(extname(config.data)) ? 'text' : 'jsonl');
      const dataset = prepareDataset(new TextDecoder().decode(bytes), {
        source: config.data,
        format,
        fields: config.fields,
        template: config.template,
        maxSeqLen: base.spec.maxSeqLen,
        seqLen: config.seqLen,
        heldOut: config.heldOut,
        seed: config.seed,
        tokenizer: base.tokenizer,
      });
      return { sha256: sha256Hex(bytes), dataset };
    },
  };
}

/** The base and the tokenized data of a run, from the process cache, checked against run.json. */
export async function openRunInputs(
  run: RunSpec,
  sources: Sources,
  cache: ResourceCache,
): Promise<{ base: LoadedBase; dataset: PreparedDataset }> {
  const c = run.config;
  const base = await cache.base(c.base, () => sources.loadBase(c.base));
  if (base.sha256 !== run.base.sha256) throw new BaseChangedError(c.base, run.base.sha256, base.sha256);
  const data = await cache.dataset(`${run.id}:${run.data.sha256}`, () => sources.prepareData(c, base));
  if (data.sha256 !== run.data.sha256) throw new DataChangedError(c.data, run.data.sha256, data.sha256);
  return { base, dataset: data.dataset };
}
