import { describe, expect, it } from 'vitest';
import { parseRunConfig, type RunConfigInput } from '../../core/store/run-spec.ts';

const base: RunConfigInput = { base: 'model', data: 'data.jsonl' };

function problems(input: Partial<RunConfigInput>): Array<{ path: string; message: string }> {
  try {
    parseRunConfig({ ...base, ...input });
  } catch (err) {
    expect(err).toMatchObject({ code: 'RUN_CONFIG_INVALID' });
    return (err as { details: { problems: Array<{ path: string; message: string }> } }).details.problems;
  }
  throw new Error('expected RUN_CONFIG_INVALID');
}

describe('parseRunConfig: the sampler', () => {
  it("is 'uniform' by default and 'weighted' when layerProbabilities are given, with its own options' defaults filled", () => {
    expect(parseRunConfig(base).sampler).toBe('uniform');
    expect(parseRunConfig({ ...base, layerProbabilities: [1, 2] })).toMatchObject({ sampler: 'weighted', layerProbabilities: [1, 2] });
    const outlier = parseRunConfig({ ...base, sampler: 'outlier' });
    expect([outlier.outlierThreshold, outlier.calibrationBatches, outlier.gradNormDecay]).toEqual([5, 1, undefined]);
    const adaptive = parseRunConfig({ ...base, sampler: 'grad-norm', gradNormFloor: 0.5 });
    expect([adaptive.gradNormDecay, adaptive.gradNormFloor, adaptive.outlierThreshold]).toEqual([0.9, 0.5, undefined]);
  });

  it('refuses an option of another sampler, naming the option and both samplers', () => {
    expect(problems({ sampler: 'grad-norm', outlierThreshold: 3 })).toEqual([
      { path: 'outlierThreshold', message: "belongs to sampler 'outlier', but this run's sampler is 'grad-norm'" },
    ]);
    expect(problems({ gradNormFloor: 0.1, calibrationBatches: 4 })).toEqual([
      { path: 'calibrationBatches', message: "belongs to sampler 'outlier', but this run's sampler is 'uniform'" },
      { path: 'gradNormFloor', message: "belongs to sampler 'grad-norm', but this run's sampler is 'uniform'" },
    ]);
    expect(problems({ sampler: 'uniform', layerProbabilities: [1, 1] })).toEqual([
      { path: 'layerProbabilities', message: "belongs to sampler 'weighted', but this run's sampler is 'uniform'" },
    ]);
  });

  it("refuses 'weighted' without probabilities and 'outlier' with sampled embed/head", () => {
    expect(problems({ sampler: 'weighted' })).toEqual([{ path: 'layerProbabilities', message: "sampler 'weighted' needs layerProbabilities" }]);
    expect(problems({ sampler: 'outlier', embedHead: 'sampled' })).toEqual([
      { path: 'embedHead', message: "sampler 'outlier' scores blocks only; use embedHead 'always' or 'never'" },
    ]);
  });

  it('refuses out-of-range options, negative and NaN probabilities and unknown samplers by path', () => {
    const paths = (input: Partial<RunConfigInput>) => problems(input).map((p) => p.path);
    expect(paths({ sampler: 'grad-norm', gradNormFloor: 0 })).toEqual(['gradNormFloor']);
    expect(paths({ sampler: 'grad-norm', gradNormDecay: 1 })).toEqual(['gradNormDecay']);
    expect(paths({ sampler: 'outlier', outlierThreshold: -1, calibrationBatches: 0.5 })).toEqual(['outlierThreshold', 'calibrationBatches']);
    expect(paths({ layerProbabilities: [1, -0.5, 1] })).toEqual(['layerProbabilities.1']);
    expect(paths({ layerProbabilities: [1, NaN] })).toEqual(['layerProbabilities.1']);
    expect(paths({ sampler: 'importance' as never })).toEqual(['sampler']);
  });
});

describe('parseRunConfig: the method', () => {
  it("refuses LISA's options, its sampler's included, on lora and full runs, naming each option", () => {
    expect(problems({ method: 'lora', sampler: 'grad-norm', gradNormDecay: 0.5 })).toEqual([
      { path: 'sampler', message: "applies to method lisa only; this run's method is lora" },
      { path: 'gradNormDecay', message: "applies to method lisa only; this run's method is lora" },
    ]);
    expect(problems({ method: 'full', layerProbabilities: [1, 1], outlierThreshold: 2, loraRank: 2 })).toEqual([
      { path: 'layerProbabilities', message: "applies to method lisa only; this run's method is full" },
      { path: 'outlierThreshold', message: "applies to method lisa only; this run's method is full" },
      { path: 'loraRank', message: "applies to method lora only; this run's method is full" },
    ]);
  });

  it('fills only the run\'s own method\'s defaults: lora and full name no sampler', () => {
    const full = parseRunConfig({ ...base, method: 'full' });
    expect([full.method, full.sampler, full.activeLayers, full.embedHead, full.loraRank]).toEqual(['full', undefined, undefined, undefined, undefined]);
    const lora = parseRunConfig({ ...base, method: 'lora' });
    expect([lora.sampler, lora.activeLayers, lora.loraRank, lora.loraAlpha, lora.loraDropout]).toEqual([undefined, undefined, 8, 16, 0]);
    const lisa = parseRunConfig(base);
    expect([lisa.method, lisa.sampler, lisa.activeLayers, lisa.embedHead, lisa.loraRank]).toEqual(['lisa', 'uniform', 2, 'always', undefined]);
  });
});
