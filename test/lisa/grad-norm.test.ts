import { describe, expect, it } from 'vitest';
import { gradNormWeights, observeGradNorms } from '../../core/lisa/grad-norm.ts';

const blocks = ['layers.0', 'layers.1', 'layers.2', 'layers.3'];

describe('observeGradNorms', () => {
  it('starts a unit at its first norm, then moves it by (1 - β) toward each new one, leaving the input alone', () => {
    const first = observeGradNorms({}, { 'layers.1': 2, embed: 8 }, 0.75);
    expect(first).toEqual({ 'layers.1': 2, embed: 8 });
    const second = observeGradNorms(first, { 'layers.1': 6 }, 0.75);
    expect(second).toEqual({ 'layers.1': 0.75 * 2 + 0.25 * 6, embed: 8 });
    expect(first).toEqual({ 'layers.1': 2, embed: 8 });
  });
});

describe('gradNormWeights', () => {
  it('equals the hand computation: seen blocks by their average, unseen at the largest seen, plus the floor', () => {
    // scores [1, 3 (prior), 3, 3], total 10; p = 0.8 * s / 10 + 0.2 / 4
    const p = gradNormWeights({ 'layers.0': 1, 'layers.2': 3, embed: 100 }, blocks, 0.2);
    [0.13, 0.29, 0.29, 0.29].forEach((x, i) => expect(p[i]).toBeCloseTo(x, 15));
    expect(p.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 15);
  });

  it('is uniform before any block has trained, and when every average is zero', () => {
    expect(gradNormWeights({}, blocks, 0.2)).toEqual([0.25, 0.25, 0.25, 0.25]);
    expect(gradNormWeights({ 'layers.0': 0, 'layers.1': 0, 'layers.2': 0, 'layers.3': 0 }, blocks, 0.3)).toEqual([0.25, 0.25, 0.25, 0.25]);
  });

  it('keeps every block at ε/N or more, however small its gradients', () => {
    const p = gradNormWeights({ 'layers.0': 0, 'layers.1': 1e9, 'layers.2': 1e9, 'layers.3': 1e9 }, blocks, 0.1);
    expect(p[0]).toBe(0.1 / 4);
    expect(Math.min(...p)).toBeGreaterThanOrEqual(0.1 / 4);
    expect(gradNormWeights({ 'layers.0': 5, 'layers.1': 1 }, blocks, 1)).toEqual([0.25, 0.25, 0.25, 0.25]);
  });
});
