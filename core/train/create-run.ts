import { randomInt } from 'node:crypto';
import type { ObjectStore } from '../store/object-store.ts';
import { checkRunId, newRunId, parseRunConfig, putRunSpec, InvalidRunConfigError, RUN_SPEC_VERSION, type RunConfigInput, type RunSpec } from '../store/run-spec.ts';
import { drawPeriod } from '../lisa/samplers.ts';
import { calibrateOutliers } from './calibrate.ts';
import type { ResourceCache } from './resources.ts';
import { samplerOf, scheduleOf } from './sampling.ts';
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
 * mapping, the schedule and its sampler — before claiming the run id, so a bad run fails here and
 * not on a GPU. Sampler 'outlier' calibrates here, once, and run.json keeps its ratios.
 */
export async function createRun(opts: CreateRunOptions): Promise<RunSpec> {
  const config = parseRunConfig(opts.input);
  const id = opts.runId ?? newRunId(opts.now ?? new Date(), () => randomInt(0, 2 ** 32) / 2 ** 32);
  checkRunId(id);
  const base = await opts.cache.base(config.base, () => opts.sources.loadBase(config.base));
  if (config.activeLayers > base.spec.nLayers) {
    throw new InvalidRunConfigError([{ path: 'activeLayers', message: `γ=${config.activeLayers} exceeds the base's ${base.spec.nLayers} layers` }]);
  }
  const data = await opts.sources.prepareData(config, base);
  const spec: RunSpec = {
    version: RUN_SPEC_VERSION,
    id,
    createdAt: (opts.now ?? new Date()).toISOString(),
    config,
    base: { sha256: base.sha256, arch: base.spec.arch, nLayers: base.spec.nLayers, files: base.files },
    data: { sha256: data.sha256, examples: data.dataset.train.length, heldOut: data.dataset.heldOut.length },
  };
  if (config.sampler === 'outlier') {
    const threshold = config.outlierThreshold!;
    spec.outlier = calibrateOutliers(base, data.dataset, { batches: config.calibrationBatches!, batchSize: config.batchSize, threshold });
    const positive = spec.outlier.ratios.filter((r) => r > 0).length;
    if (positive < config.activeLayers) {
      throw new InvalidRunConfigError([
        {
          path: 'outlierThreshold',
          message: `at M=${threshold} only ${positive} of ${base.spec.nLayers} blocks have outlier entries (ratios ${spec.outlier.ratios.join(', ')}); γ=${config.activeLayers} needs ${config.activeLayers}: lower M`,
        },
      ]);
    }
  }
  drawPeriod(scheduleOf(spec), samplerOf(spec), 0);
  await putRunSpec(opts.store, spec);
  return spec;
}
