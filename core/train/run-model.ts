import type { ObjectStore } from '../store/object-store.ts';
import { headManifest, readManifest, type ChunkManifest } from '../store/manifest.ts';
import type { RunSpec } from '../store/run-spec.ts';
import type { Model } from '../models/model.ts';
import { materialize } from './run-state.ts';
import { createRunModel } from './method.ts';
import { openRunInputs, type Sources } from './sources.ts';
import type { LoadedBase, ResourceCache } from './resources.ts';
import type { PreparedDataset } from '../data/index.ts';

export interface RunModel {
  run: RunSpec;
  /** the manifest the weights come from; null = the untouched base */
  manifest: ChunkManifest | null;
  base: LoadedBase;
  dataset: PreparedDataset;
  model: Model;
}

/**
 * A run's model at a committed seq (default: head; -1: the base before any chunk), for
 * generation and evaluation. The caller disposes `model`.
 */
export async function loadRunModel(opts: {
  store: ObjectStore;
  /** the run's spec, as read from its run.json */
  run: RunSpec;
  at?: number;
  sources: Sources;
  cache: ResourceCache;
}): Promise<RunModel> {
  const { run } = opts;
  const { base, dataset } = await openRunInputs(run, opts.sources, opts.cache);
  const manifest =
    opts.at === undefined ? await headManifest(opts.store, run.id) : opts.at < 0 ? null : await readManifest(opts.store, run.id, opts.at);
  const state = await materialize(opts.store, base.spec, base.weights, manifest, new Set());
  return { run, manifest, base, dataset, model: createRunModel(run, base.spec, state) };
}
