import { describe, expect, it } from 'vitest';
import { gradNormWeights } from '../../core/lisa/grad-norm.ts';
import { drawPeriod, trainingFrequency, type SamplerSpec } from '../../core/lisa/samplers.ts';
import { sampleUnits } from '../../core/lisa/schedule.ts';
import { inclusion, tolerance } from './inclusion.ts';

const schedule = { nLayers: 5, activeLayers: 2, embedHead: 'always' as const, seed: 11 };
const blocks = Array.from({ length: 5 }, (_, i) => `layers.${i}`);
const PERIODS = 10_000;

function blockFrequencies(sampler: SamplerSpec, ema = {}): number[] {
  const counts = new Array(5).fill(0);
  for (let p = 0; p < PERIODS; p++) for (const u of drawPeriod(schedule, sampler, p, ema).units.slice(1, -1)) counts[Number(u.split('.')[1])]++;
  return counts.map((c) => c / PERIODS);
}

describe('drawPeriod', () => {
  it('uniform draws what the schedule always drew and records 1/N per candidate', () => {
    for (let p = 0; p < 50; p++) {
      expect(drawPeriod(schedule, { kind: 'uniform' }, p)).toEqual({ units: sampleUnits(schedule, p), probabilities: [0.2, 0.2, 0.2, 0.2, 0.2] });
    }
    const sampled = drawPeriod({ ...schedule, embedHead: 'sampled' }, { kind: 'uniform' }, 0);
    expect(sampled.probabilities).toEqual(new Array(7).fill(1 / 7));
  });

  it('weighted records its weights normalized and never draws a zero-weight block', () => {
    const weights = [0, 1, 2, 3, 4];
    expect(drawPeriod(schedule, { kind: 'weighted', weights }, 3).probabilities).toEqual([0, 0.1, 0.2, 0.3, 0.4]);
    const freq = blockFrequencies({ kind: 'weighted', weights });
    expect(freq[0]).toBe(0);
  });

  it('grad-norm follows the inclusion probabilities of its weights over 10,000 periods (±5σ, fixed seed)', () => {
    const ema = { 'layers.0': 0.5, 'layers.1': 4, 'layers.3': 1 }; // layers.2 and layers.4 unseen: prior 4
    const sampler: SamplerSpec = { kind: 'grad-norm', decay: 0.9, floor: 0.2 };
    const weights = gradNormWeights(ema, blocks, 0.2);
    expect(drawPeriod(schedule, sampler, 0, ema).probabilities).toEqual(weights.map((w) => w / weights.reduce((a, b) => a + b, 0)));
    const expected = inclusion(weights, 2);
    const freq = blockFrequencies(sampler, ema);
    for (let i = 0; i < 5; i++) expect(Math.abs(freq[i] - expected[i]), blocks[i]).toBeLessThan(tolerance(expected[i], PERIODS));
    // The draw follows the gradients: the quiet block least, the loud and unseen ones most.
    expect(freq[0]).toBeLessThan(freq[3]);
    expect(freq[3]).toBeLessThan(Math.min(freq[1], freq[2], freq[4]));
  });

  it('is a pure function of (schedule, sampler, period, state)', () => {
    const sampler: SamplerSpec = { kind: 'grad-norm', decay: 0.9, floor: 0.5 };
    const ema = { 'layers.2': 3 };
    for (let p = 0; p < 20; p++) expect(drawPeriod(schedule, sampler, p, { ...ema })).toEqual(drawPeriod(schedule, sampler, p, ema));
  });
});

describe('trainingFrequency', () => {
  it('counts a period cut into several chunks once, and every step', () => {
    const f = trainingFrequency([
      { period: 0, activeUnits: ['embed', 'layers.1', 'head'], startStep: 0, globalStep: 2 },
      { period: 0, activeUnits: ['embed', 'layers.1', 'head'], startStep: 2, globalStep: 4 },
      { period: 1, activeUnits: ['embed', 'layers.0', 'head'], startStep: 4, globalStep: 8 },
      { period: 2, activeUnits: ['embed', 'layers.1', 'head'], startStep: 8, globalStep: 9 },
    ]);
    expect(Object.fromEntries(f)).toEqual({
      embed: { periods: 3, steps: 9 },
      head: { periods: 3, steps: 9 },
      'layers.1': { periods: 2, steps: 5 },
      'layers.0': { periods: 1, steps: 4 },
    });
  });
});
