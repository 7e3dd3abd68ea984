/**
 * A LISA run's sampler in core/lisa's terms, and the draw of the period a chunk trains.
 *
 * A chunk that starts a period draws it: uniform, weighted and outlier from run.json alone;
 * grad-norm from the gradient-norm state the parent manifest carries (grad-norm.ts). A chunk that
 * continues a period cut short by a deadline keeps that period's draw: the static samplers draw it
 * again (the same units), grad-norm takes it from the parent, whose state already holds the
 * period's own steps and must not change the draw.
 */
import { LisaError } from '../errors.ts';
import { drawPeriod, type PeriodDraw, type SamplerSpec } from '../lisa/samplers.ts';
import type { ScheduleConfig } from '../lisa/schedule.ts';
import type { ChunkManifest } from '../store/manifest.ts';
import type { LisaConfig, RunSpec } from '../store/run-spec.ts';

type LisaRun = RunSpec<LisaConfig>;

export class SamplerHistoryError extends LisaError {
  constructor(runId: string, seq: number) {
    super(
      'SAMPLER_HISTORY_MISSING',
      `run '${runId}' samples by gradient norm, but its chunk ${seq} records no gradNormEma/probabilities (written by a version without samplers?): ` +
        'the next draw cannot be derived from the committed chunks, so no chunk starts. Export the run and start a new one from it',
      { runId, seq },
    );
  }
}

export class RunSpecSamplerError extends LisaError {
  constructor(runId: string) {
    super('RUN_CALIBRATION_MISSING', `run '${runId}' uses sampler 'outlier' but its run.json holds no outlier calibration`, { runId });
  }
}

export function scheduleOf(run: LisaRun): Omit<ScheduleConfig, 'probabilities'> {
  const c = run.config;
  return { nLayers: run.base.nLayers, activeLayers: c.activeLayers, embedHead: c.embedHead, seed: c.seed };
}

export function samplerOf(run: LisaRun): SamplerSpec {
  const c = run.config;
  switch (c.sampler) {
    case 'uniform':
      return { kind: 'uniform' };
    case 'weighted':
      return { kind: 'weighted', weights: c.layerProbabilities! };
    case 'outlier':
      if (!run.outlier) throw new RunSpecSamplerError(run.id);
      return { kind: 'weighted', weights: run.outlier.ratios };
    case 'grad-norm':
      return { kind: 'grad-norm', decay: c.gradNormDecay!, floor: c.gradNormFloor! };
  }
}

/** The units and probabilities of `period` for a chunk whose parent is `parent` (null: the first). */
export function chunkDraw(run: LisaRun, period: number, parent: ChunkManifest | null): PeriodDraw {
  const sampler = samplerOf(run);
  if (sampler.kind !== 'grad-norm') return drawPeriod(scheduleOf(run), sampler, period);
  if (parent && (parent.gradNormEma === undefined || parent.probabilities === undefined)) throw new SamplerHistoryError(run.id, parent.seq);
  if (parent?.period === period) return { units: parent.activeUnits, probabilities: parent.probabilities! };
  return drawPeriod(scheduleOf(run), sampler, period, parent?.gradNormEma);
}
