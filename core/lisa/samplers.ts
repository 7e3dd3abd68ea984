/**
 * The samplers (README.md "Importance sampling"): how a period's γ units are drawn from its candidates.
 *   uniform    every candidate alike (schedule.ts's uniform draw);
 *   weighted   fixed weights from run.json: the user's layerProbabilities, or the outlier ratios the
 *              `outlier` sampler measured at run creation (outlier.ts);
 *   grad-norm  weights from the gradient norms of the steps before the period (grad-norm.ts).
 * Every draw is a function of (run.json, period, the state the last committed manifest before
 * the period recorded) and of nothing held in a process, so a retried or resumed chunk draws the
 * same units.
 */
import { gradNormWeights, type GradNormEma } from './grad-norm.ts';
import { candidateUnits, createSampler, type ScheduleConfig } from './schedule.ts';

export type SamplerSpec =
  | { kind: 'uniform' }
  | { kind: 'weighted'; weights: readonly number[] }
  /** decay: β of the state's moving average (applied by the trainer); floor: ε of the draw */
  | { kind: 'grad-norm'; decay: number; floor: number };

/** What a period trains and what it drew from. */
export interface PeriodDraw {
  /** in unit order, embed and head included when they train every period */
  units: string[];
  /** the draw's weights normalized to sum 1, one per candidate in unit order */
  probabilities: number[];
}

/** The draw of `period`; `ema` is the grad-norm state at the period's start (ignored by the others). */
export function drawPeriod(schedule: Omit<ScheduleConfig, 'probabilities'>, sampler: SamplerSpec, period: number, ema: GradNormEma = {}): PeriodDraw {
  const candidates = candidateUnits(schedule.nLayers, schedule.embedHead);
  const weights =
    sampler.kind === 'uniform' ? undefined : sampler.kind === 'weighted' ? [...sampler.weights] : gradNormWeights(ema, candidates, sampler.floor);
  const units = createSampler({ ...schedule, probabilities: weights }).sample(period);
  if (weights === undefined) return { units, probabilities: candidates.map(() => 1 / candidates.length) };
  const total = weights.reduce((a, b) => a + b, 0);
  return { units, probabilities: weights.map((w) => w / total) };
}

/** How often each unit has trained: distinct periods and optimizer steps. */
export interface UnitFrequency {
  periods: number;
  steps: number;
}

/**
 * Per unit, from a run's chunks in seq order: the periods it was drawn in (a period cut into
 * several chunks counts once) and the steps it trained.
 */
export function trainingFrequency(
  chunks: ReadonlyArray<{ period: number; activeUnits: readonly string[]; startStep: number; globalStep: number }>,
): Map<string, UnitFrequency> {
  const out = new Map<string, UnitFrequency>();
  let lastPeriod = -1;
  for (const c of chunks) {
    for (const u of c.activeUnits) {
      const f = out.get(u) ?? { periods: 0, steps: 0 };
      if (c.period !== lastPeriod) f.periods++;
      f.steps += c.globalStep - c.startStep;
      out.set(u, f);
    }
    lastPeriod = c.period;
  }
  return out;
}
