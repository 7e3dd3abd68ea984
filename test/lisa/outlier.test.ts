import { describe, expect, it } from 'vitest';
import { outlierRatio, type Projection } from '../../core/lisa/outlier.ts';

// W [out 2, in 3] and ‖X_j‖ = [1, 0.5, 2]: A = |W_ij|·‖X_j‖ = [[1, 1, 1], [0, 2, 2]], mean 7/6.
const linear: Projection = { weight: Float32Array.from([1, -2, 0.5, 0, 4, -1]), shape: [2, 3], layout: 'linear', featureNorms: [1, 0.5, 2] };
// The same matrix stored as GPT-2's Conv1D, [in 3, out 2]: the input index is the row.
const conv1d: Projection = { weight: Float32Array.from([1, 0, -2, 4, 0.5, -1]), shape: [3, 2], layout: 'conv1d', featureNorms: [1, 0.5, 2] };

describe('outlierRatio', () => {
  it('equals the hand computation on a hand-built block', () => {
    expect(outlierRatio([linear], 1.5)).toBe(2 / 6); // cut 1.75: the two 2s
    expect(outlierRatio([linear], 1)).toBe(2 / 6); // cut 7/6: the 1s are not above it
    expect(outlierRatio([linear], 0.5)).toBe(5 / 6); // cut 7/12: all but the 0
    expect(outlierRatio([linear], 2)).toBe(0); // cut 7/3
  });

  it('reads Conv1D weights with the input on the rows, and pools a block over all its projections', () => {
    expect(outlierRatio([conv1d], 1.5)).toBe(2 / 6);
    expect(outlierRatio([linear, conv1d], 1.5)).toBe(4 / 12);
    // A second projection with small scores lowers the block mean: 1.5 · (7 + 0.6) / 12 = 0.95, so the 1s count too.
    const quiet: Projection = { weight: Float32Array.from([0.1, 0.1, 0.1, 0.1, 0.1, 0.1]), shape: [2, 3], layout: 'linear', featureNorms: [1, 1, 1] };
    expect(outlierRatio([linear, quiet], 1.5)).toBe(5 / 12);
  });

  it('is 0 for a block of zero weights and unchanged when all ‖X‖ scale together', () => {
    const zero: Projection = { ...linear, weight: new Float32Array(6) };
    expect(outlierRatio([zero], 1)).toBe(0);
    expect(outlierRatio([{ ...linear, featureNorms: [1000, 500, 2000] }], 1.5)).toBe(2 / 6);
  });
});
