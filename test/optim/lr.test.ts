import { describe, expect, it } from 'vitest';
import { learningRate, type LrSchedule } from '../../core/optim/lr.ts';
import { OptimConfigError } from '../../core/optim/errors.ts';

const at = (schedule: LrSchedule, step: number) => learningRate({ lr: 1e-3, schedule }, step);
const cosine: LrSchedule = { kind: 'cosine', warmupSteps: 10, totalSteps: 110, minLrRatio: 0.1 };

describe('learningRate', () => {
  it('warms up linearly from lr/W, reaching lr on the last warmup step', () => {
    expect(at(cosine, 0)).toBeCloseTo(1e-4, 16);
    expect(at(cosine, 4)).toBeCloseTo(5e-4, 16);
    expect(at(cosine, 9)).toBeCloseTo(1e-3, 16);
  });

  it('decays by cosine from lr after warmup to minLrRatio·lr at totalSteps', () => {
    expect(at(cosine, 10)).toBe(1e-3);
    expect(at(cosine, 35)).toBeCloseTo(1e-4 + 9e-4 * (1 + Math.SQRT1_2) / 2, 16);
    expect(at(cosine, 60)).toBeCloseTo(5.5e-4, 16);
    expect(at(cosine, 109)).toBeCloseTo(1e-4 + 9e-4 * (1 + Math.cos(Math.PI * 0.99)) / 2, 16);
    expect(at(cosine, 110)).toBeCloseTo(1e-4, 16);
    expect(at(cosine, 500)).toBeCloseTo(1e-4, 16);
  });

  it('decays linearly', () => {
    const linear: LrSchedule = { ...cosine, kind: 'linear' };
    expect(at(linear, 10)).toBe(1e-3);
    expect(at(linear, 35)).toBeCloseTo(7.75e-4, 16);
    expect(at(linear, 60)).toBeCloseTo(5.5e-4, 16);
    expect(at(linear, 110)).toBeCloseTo(1e-4, 16);
  });

  it('holds constant after warmup, and without warmup starts at lr', () => {
    const constant: LrSchedule = { kind: 'constant', warmupSteps: 4, totalSteps: 0, minLrRatio: 0 };
    expect([0, 1, 2, 3, 4, 1000].map((s) => at(constant, s))).toEqual([2.5e-4, 5e-4, 7.5e-4, 1e-3, 1e-3, 1e-3]);
    expect(at({ ...cosine, warmupSteps: 0 }, 0)).toBe(1e-3);
  });

  it('rejects schedules and steps outside their domain', () => {
    const bad = (s: Partial<LrSchedule>, step: number, message: string) => {
      expect(() => at({ ...cosine, ...s }, step)).toThrow(OptimConfigError);
      expect(() => at({ ...cosine, ...s }, step)).toThrow(message);
    };
    bad({}, -1, 'globalStep must be a non-negative integer, got -1');
    bad({}, 1.5, 'globalStep must be a non-negative integer, got 1.5');
    bad({ kind: 'linear', warmupSteps: 5, totalSteps: 3 }, 0, 'schedule.totalSteps (3) must exceed warmupSteps (5) for a linear decay');
    bad({ totalSteps: -1 }, 0, 'schedule.totalSteps must be a non-negative integer, got -1');
  });
});
