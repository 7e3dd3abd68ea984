import { describe, expect, it } from 'vitest';
import { createSampler, sampleUnits, ScheduleConfigError, type ScheduleConfig } from '../../core/lisa/schedule.ts';
import { inclusion, tolerance } from './inclusion.ts';

const base: ScheduleConfig = { nLayers: 8, activeLayers: 2, embedHead: 'always', seed: 42 };
const PERIODS = 10_000;
const tol = (p: number) => tolerance(p, PERIODS);

/** Per-unit counts over periods 0..PERIODS-1. */
function frequencies(cfg: ScheduleConfig): Map<string, number> {
  const s = createSampler(cfg);
  const counts = new Map<string, number>();
  for (let p = 0; p < PERIODS; p++) for (const u of s.sample(p)) counts.set(u, (counts.get(u) ?? 0) + 1);
  return counts;
}

describe('sampleUnits', () => {
  it('pins the draws of a fixed seed (regression check of the PRNG and the draw)', () => {
    expect([0, 1, 2, 3, 4].map((p) => sampleUnits(base, p))).toEqual([
      ['embed', 'layers.1', 'layers.7', 'head'],
      ['embed', 'layers.0', 'layers.6', 'head'],
      ['embed', 'layers.2', 'layers.6', 'head'],
      ['embed', 'layers.4', 'layers.6', 'head'],
      ['embed', 'layers.1', 'layers.7', 'head'],
    ]);
    const weighted: ScheduleConfig = { nLayers: 6, activeLayers: 3, embedHead: 'sampled', seed: 7, probabilities: [1, 0, 2, 3, 4, 5, 6, 0.5] };
    expect([0, 1, 2].map((p) => sampleUnits(weighted, p))).toEqual([
      ['layers.2', 'layers.3', 'layers.4'],
      ['layers.2', 'layers.4', 'layers.5'],
      ['layers.1', 'layers.3', 'layers.5'],
    ]);
  });

  it('is deterministic in (seed, period) and varies across periods and seeds', () => {
    expect(sampleUnits(base, 123)).toEqual(sampleUnits({ ...base }, 123));
    const sets = new Set(Array.from({ length: 100 }, (_, p) => sampleUnits(base, p).join(',')));
    // 28 possible pairs; 100 uniform draws miss more than 10 of them with negligible probability.
    expect(sets.size).toBeGreaterThan(18);
    const other = Array.from({ length: 20 }, (_, p) => sampleUnits({ ...base, seed: 43 }, p).join(','));
    expect(other).not.toEqual(Array.from({ length: 20 }, (_, p) => sampleUnits(base, p).join(',')));
  });

  it("returns γ distinct blocks in unit order, with embed and head per mode", () => {
    for (let p = 0; p < 200; p++) {
      const always = sampleUnits({ ...base, activeLayers: 3 }, p);
      expect(always).toHaveLength(5);
      expect(always[0]).toBe('embed');
      expect(always[4]).toBe('head');
      const blocks = always.slice(1, 4).map((u) => Number(u.split('.')[1]));
      expect(blocks).toEqual([...new Set(blocks)].sort((a, b) => a - b));
      const never = sampleUnits({ ...base, embedHead: 'never' }, p);
      expect(never).toHaveLength(2);
      expect(never.every((u) => u.startsWith('layers.'))).toBe(true);
    }
    expect(sampleUnits({ ...base, activeLayers: 0 }, 0)).toEqual(['embed', 'head']);
    expect(sampleUnits({ ...base, activeLayers: 8 }, 0)).toEqual(['embed', ...Array.from({ length: 8 }, (_, i) => `layers.${i}`), 'head']);
  });

  it('draws every block with frequency γ/N over 10,000 periods (uniform)', () => {
    const counts = frequencies(base);
    expect(counts.get('embed')).toBe(PERIODS);
    expect(counts.get('head')).toBe(PERIODS);
    const p = 2 / 8;
    for (let i = 0; i < 8; i++) expect(Math.abs(counts.get(`layers.${i}`)! / PERIODS - p)).toBeLessThan(tol(p));
  });

  it('draws every pair of blocks equally often (uniform over subsets, not just marginals)', () => {
    const s = createSampler({ ...base, nLayers: 5 });
    const pairs = new Map<string, number>();
    for (let p = 0; p < PERIODS; p++) {
      const k = s.sample(p).slice(1, 3).join('+');
      pairs.set(k, (pairs.get(k) ?? 0) + 1);
    }
    expect(pairs.size).toBe(10);
    for (const c of pairs.values()) expect(Math.abs(c / PERIODS - 0.1)).toBeLessThan(tol(0.1));
  });

  it("treats embed and head as candidates in 'sampled' mode", () => {
    const counts = frequencies({ ...base, nLayers: 4, embedHead: 'sampled', activeLayers: 3 });
    const p = 3 / 6;
    for (const u of ['embed', 'layers.0', 'layers.1', 'layers.2', 'layers.3', 'head']) {
      expect(Math.abs(counts.get(u)! / PERIODS - p)).toBeLessThan(tol(p));
    }
  });

  it('follows the inclusion probabilities of weighted sampling without replacement', () => {
    const weights = [0, 1, 2, 3, 4];
    const expected = inclusion(weights, 2);
    expect(expected.reduce((a, b) => a + b, 0)).toBeCloseTo(2, 12);
    const counts = frequencies({ ...base, nLayers: 5, probabilities: weights });
    expect(counts.has('layers.0')).toBe(false);
    const freq = [1, 2, 3, 4].map((i) => counts.get(`layers.${i}`)! / PERIODS);
    expect(freq).toEqual([...freq].sort((a, b) => a - b));
    for (let i = 1; i < 5; i++) expect(Math.abs(counts.get(`layers.${i}`)! / PERIODS - expected[i])).toBeLessThan(tol(expected[i]));
  });

  it('with exactly γ positive weights always picks those', () => {
    for (let p = 0; p < 100; p++) {
      expect(sampleUnits({ ...base, nLayers: 4, probabilities: [0, 1e-9, 0, 5] }, p)).toEqual(['embed', 'layers.1', 'layers.3', 'head']);
    }
  });

  it('rejects invalid configs with a message naming the limit', () => {
    const bad = (cfg: Partial<ScheduleConfig>, message: string) => {
      const run = () => sampleUnits({ ...base, ...cfg }, 0);
      expect(run).toThrow(ScheduleConfigError);
      expect(run).toThrow(message);
    };
    bad({ activeLayers: 9 }, 'activeLayers must be an integer between 0 and 8 (the 8 layers), got 9');
    bad({ activeLayers: -1 }, 'activeLayers must be an integer between 0 and 8 (the 8 layers), got -1');
    bad({ activeLayers: 1.5 }, 'got 1.5');
    bad({ activeLayers: 11, embedHead: 'sampled' }, 'activeLayers must be an integer between 0 and 10 (the 10 candidates (embed, 8 layers, head)), got 11');
    bad({ activeLayers: 0, embedHead: 'never' }, "activeLayers is 0 with embedHead 'never': no unit would ever train");
    bad({ nLayers: 0 }, 'nLayers must be a positive integer, got 0');
    bad({ embedHead: 'sometimes' as never }, 'embedHead must be one of always, never, sampled, got "sometimes"');
    bad({ seed: -3 }, 'seed must be an integer in [0, 2^32), got -3');
    bad({ probabilities: [1, 1, 1] }, 'probabilities must have 8 entries (layers.0 …), got 3');
    bad({ embedHead: 'sampled', probabilities: [1, 1, 1, 1, 1, 1, 1, 1] }, 'probabilities must have 10 entries (embed, layers.0 …, head), got 8');
    bad({ probabilities: [1, 1, -1, 1, 1, 1, 1, 1] }, 'probabilities[2] must be a finite non-negative number, got -1');
    bad({ probabilities: [1, 1, NaN, 1, 1, 1, 1, 1] }, 'probabilities[2] must be a finite non-negative number, got NaN');
    bad({ probabilities: [1, 0, 0, 0, 0, 0, 0, 0] }, 'probabilities has 1 positive entries but activeLayers is 2');
    expect(() => sampleUnits(base, -1)).toThrow('period must be an integer in [0, 2^32), got -1');
    expect(() => sampleUnits(base, 0.5)).toThrow(ScheduleConfigError);
  });
});
