/**
 * Learning rate over the run's global step (not the unit's step: the schedule is the run's clock,
 * the same however the run is cut into chunks and whichever units are active).
 *
 * `globalStep` is the 0-based index of the update being taken (0 for the run's first update).
 * With W = warmupSteps, T = totalSteps, lrMin = minLrRatio · lr:
 *   s < W                : lr · (s + 1) / W       (linear warmup; the first update uses lr / W)
 *   W <= s, progress q   = min(1, (s − W) / (T − W))
 *     'constant'         : lr
 *     'linear'           : lr − (lr − lrMin) · q
 *     'cosine'           : lrMin + (lr − lrMin) · (1 + cos(π q)) / 2
 * so the decay starts at lr right after warmup and reaches lrMin at s = T (steps past T stay at lrMin).
 */
import { OptimConfigError } from './errors.ts';

export type LrScheduleKind = 'cosine' | 'linear' | 'constant';

export interface LrSchedule {
  kind: LrScheduleKind;
  warmupSteps: number;
  /** The step at which the decay reaches minLrRatio · lr; ignored by 'constant'. */
  totalSteps: number;
  minLrRatio: number;
}

const KINDS: readonly LrScheduleKind[] = ['cosine', 'linear', 'constant'];

export function checkLrSchedule(s: LrSchedule): void {
  if (!KINDS.includes(s.kind)) throw new OptimConfigError(`schedule.kind must be one of ${KINDS.join(', ')}, got ${JSON.stringify(s.kind)}`);
  if (!Number.isInteger(s.warmupSteps) || s.warmupSteps < 0) {
    throw new OptimConfigError(`schedule.warmupSteps must be a non-negative integer, got ${s.warmupSteps}`);
  }
  if (!Number.isInteger(s.totalSteps) || s.totalSteps < 0) {
    throw new OptimConfigError(`schedule.totalSteps must be a non-negative integer, got ${s.totalSteps}`);
  }
  if (s.kind !== 'constant' && s.totalSteps <= s.warmupSteps) {
    throw new OptimConfigError(
      `schedule.totalSteps (${s.totalSteps}) must exceed warmupSteps (${s.warmupSteps}) for a ${s.kind} decay`,
    );
  }
  if (!(s.minLrRatio >= 0 && s.minLrRatio <= 1)) throw new OptimConfigError(`schedule.minLrRatio must be in [0, 1], got ${s.minLrRatio}`);
}

/** The learning rate of update `globalStep` for peak rate cfg.lr (see the module comment). */
export function learningRate(cfg: { lr: number; schedule: LrSchedule }, globalStep: number): number {
  const { lr, schedule: s } = cfg;
  checkLrSchedule(s);
  if (!Number.isInteger(globalStep) || globalStep < 0) throw new OptimConfigError(`globalStep must be a non-negative integer, got ${globalStep}`);
  if (globalStep < s.warmupSteps) return (lr * (globalStep + 1)) / s.warmupSteps;
  if (s.kind === 'constant') return lr;
  const q = Math.min(1, (globalStep - s.warmupSteps) / (s.totalSteps - s.warmupSteps));
  const lrMin = lr * s.minLrRatio;
  if (s.kind === 'linear') return lr - (lr - lrMin) * q;
  return lrMin + ((lr - lrMin) * (1 + Math.cos(Math.PI * q))) / 2;
}
