import { randomInt } from 'node:crypto';
import type { ObjectStore } from '../store/object-store.ts';
import { checkRunId, newRunId, parseRunConfig, putRunSpec, InvalidRunConfigError, RUN_SPEC_VERSION, type RunConfig, type RunConfigInput, type RunSpec } from '../store/run-spec.ts';
import { drawPeriod } from '../lisa/samplers.ts';
import type { ModelSpec } from '../models/config.ts';
import { LORA_TARGETS, loraModules } from '../models/lora.ts';
import { calibrateOutliers } from './calibrate.ts';
import { isLisa, loraConfig } from './method.ts';
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
 * mapping, the method's options against the base, a LISA run's sampler — before claiming the run
 * id, so a bad run fails here and not on a GPU. Sampler 'outlier' calibrates here, once, and
 * run.json keeps its ratios.
 */
export async function createRun(opts: CreateRunOptions): Promise<RunSpec> {
  const parsed = parseRunConfig(opts.input);
  const id = opts.runId ?? newRunId(opts.now ?? new Date(), () => randomInt(0, 2 ** 32) / 2 ** 32);
  checkRunId(id);
  const base = await opts.cache.base(parsed.base, () => opts.sources.loadBase(parsed.base));
  const config = checkMethod(parsed, base.spec);
  const data = await opts.sources.prepareData(config, base);
  const spec: RunSpec = {
    version: RUN_SPEC_VERSION,
    id,
    createdAt: (opts.now ?? new Date()).toISOString(),
    config,
    base: { sha256: base.sha256, arch: base.spec.arch, nLayers: base.spec.nLayers, files: base.files },
    data: { sha256: data.sha256, examples: data.dataset.train.length, heldOut: data.dataset.heldOut.length },
  };
  if (isLisa(spec)) {
    const c = spec.config;
    if (c.sampler === 'outlier') {
      const threshold = c.outlierThreshold!;
      spec.outlier = calibrateOutliers(base, data.dataset, { batches: c.calibrationBatches!, batchSize: c.batchSize, threshold });
      const positive = spec.outlier.ratios.filter((r) => r > 0).length;
      if (positive < c.activeLayers) {
        throw new InvalidRunConfigError([
          {
            path: 'outlierThreshold',
            message: `at M=${threshold} only ${positive} of ${base.spec.nLayers} blocks have outlier entries (ratios ${spec.outlier.ratios.join(', ')}); γ=${c.activeLayers} needs ${c.activeLayers}: lower M`,
          },
        ]);
      }
    }
    drawPeriod(scheduleOf(spec), samplerOf(spec), 0);
  }
  await putRunSpec(opts.store, spec);
  return spec;
}

/** The method's options checked against the base; a LoRA run's targets are written out in full. */
function checkMethod(config: RunConfig, spec: ModelSpec): RunConfig {
  if (config.method === 'lisa' && config.activeLayers > spec.nLayers) {
    throw new InvalidRunConfigError([{ path: 'activeLayers', message: `γ=${config.activeLayers} exceeds the base's ${spec.nLayers} layers` }]);
  }
  const lora = loraConfig(config, spec);
  if (!lora) return config;
  const allowed = LORA_TARGETS[spec.arch];
  const unknown = lora.targets.filter((t) => !allowed.includes(t));
  if (unknown.length > 0) {
    throw new InvalidRunConfigError([
      { path: 'loraTargets', message: `${unknown.map((t) => `"${t}"`).join(', ')} is not a linear layer of a ${spec.arch} block; expected some of ${allowed.join(', ')}` },
    ]);
  }
  const smallest = loraModules(spec, lora.targets).reduce((a, m) => (Math.min(m.inFeatures, m.outFeatures) < Math.min(a.inFeatures, a.outFeatures) ? m : a));
  const limit = Math.min(smallest.inFeatures, smallest.outFeatures);
  if (lora.rank > limit) {
    throw new InvalidRunConfigError([
      { path: 'loraRank', message: `rank ${lora.rank} exceeds ${smallest.module} (${smallest.inFeatures} -> ${smallest.outFeatures} features); expected 1 to ${limit}` },
    ]);
  }
  return { ...config, loraTargets: allowed.filter((t) => lora.targets.includes(t)) };
}
