import { randomInt } from 'node:crypto';
import type { ObjectStore } from '../store/object-store.ts';
import { checkRunId, newRunId, parseRunConfig, putRunSpec, InvalidRunConfigError, type RunConfigInput, type RunSpec } from '../store/run-spec.ts';
import { createSampler } from '../lisa/schedule.ts';
import type { ResourceCache } from './resources.ts';
import type { Sources } from './sources.ts';

export interface CreateRunOptions {
  store: ObjectStore;
  input: RunConfigInput;
  sources: Sources;
  cache: ResourceCache;
  runId?: string;
  now?: Date;
}

/**
 * Validates everything a chunk will need — the config, the base, the data with its field
 * mapping, the schedule — before claiming the run id, so a bad run fails here and not on a GPU.
 */
export async function createRun(opts: CreateRunOptions): Promise<RunSpec> {
  const config = parseRunConfig(opts.input);
  const id = opts.runId ?? newRunId(opts.now ?? new Date(), () => randomInt(0, 2 ** 32) / 2 ** 32);
  checkRunId(id);
  const base = await opts.cache.base(config.base, () => opts.sources.loadBase(config.base));
  if (config.activeLayers > base.spec.nLayers) {
    throw new InvalidRunConfigError([{ path: 'activeLayers', message: `γ=${config.activeLayers} exceeds the base's ${base.spec.nLayers} layers` }]);
  }
  createSampler({ nLayers: base.spec.nLayers, activeLayers: config.activeLayers, embedHead: config.embedHead, probabilities: config.layerProbabilities, seed: config.seed });
  const data = await opts.sources.prepareData(config, base);
  const spec: RunSpec = {
    version: 1,
    id,
    createdAt: (opts.now ?? new Date()).toISOString(),
    config,
    base: { sha256: base.sha256, arch: base.spec.arch, nLayers: base.spec.nLayers },
    data: { sha256: data.sha256, examples: data.dataset.train.length, heldOut: data.dataset.heldOut.length },
  };
  await putRunSpec(opts.store, spec);
  return spec;
}
