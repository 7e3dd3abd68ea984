import { describe, expect, it } from 'vitest';
import { dare, dropMask, linear, MergeParameterError, taskArithmetic, ties, trimMask } from '../../core/merge/kernels.ts';
import { mulberry32, type Rng } from '../../core/lisa/rng.ts';

const f32 = (xs: number[]) => Float32Array.from(xs);
const arr = (x: Float32Array | Uint8Array) => Array.from(x);

/** An Rng that replays fixed uniforms, so DARE's drops can be computed by hand. */
function replay(values: number[]): Rng {
  let i = 0;
  const next = () => {
    if (i >= values.length) throw new Error('replay rng exhausted');
    return values[i++];
  };
  return { next, nextUint32: () => Math.floor(next() * 2 ** 32), int: (n) => Math.floor(next() * n) };
}

// base b and two fine-tunes with task vectors δA = [1, -2, 3, 0.5], δB = [-3, 1, -1, -0.5]
const b = f32([1, 1, 1, 1]);
const A = f32([2, -1, 4, 1.5]);
const B = f32([-2, 2, 0, 0.5]);

describe('linear', () => {
  it('is the normalized weighted average of the models', () => {
    // (1·1 + 3·3)/4, (1·2 + 3·6)/4
    expect(arr(linear([f32([1, 2]), f32([3, 6])], [1, 3]))).toEqual([2.5, 5]);
  });
  it('refuses weights that sum to zero', () => {
    expect(() => linear([f32([1]), f32([2])], [1, -1])).toThrow(MergeParameterError);
  });
});

describe('task arithmetic', () => {
  it('adds λ times the weighted sum of task vectors to the base', () => {
    // 1 + 2·(1·0 + 0.5·2) = 3;  1 + 2·(1·1 + 0.5·5) = 8
    expect(arr(taskArithmetic(f32([1, 1]), [f32([1, 2]), f32([3, 6])], [1, 0.5], 2))).toEqual([3, 8]);
  });

  it('gives back the model bitwise for one model at weight 1 and λ 1', () => {
    const rng = mulberry32(7);
    const n = 10_000;
    const base = new Float32Array(n);
    const model = new Float32Array(n);
    for (let j = 0; j < n; j++) {
      base[j] = (rng.next() - 0.5) * 0.2;
      model[j] = base[j] + (rng.next() - 0.5) * 1e-3;
    }
    expect(taskArithmetic(base, [model], [1], 1)).toEqual(model);
    expect(ties(base, [model], [1], { density: 1, lambda: 1 })).toEqual(model);
    expect(linear([model], [1])).toEqual(model);
  });
});

describe('trimMask', () => {
  it('keeps the ⌊d·n⌋ largest magnitudes, ties going to lower indices', () => {
    expect(arr(trimMask(f32([0, 0, 0, 0]), f32([1, -1, 1, 0]), 0.5))).toEqual([1, 1, 0, 0]);
    expect(arr(trimMask(b, A, 0.5))).toEqual([0, 1, 1, 0]); // |δA| = 1, 2, 3, 0.5
    expect(arr(trimMask(b, A, 0.2))).toEqual([0, 0, 0, 0]); // ⌊0.8⌋ = 0
    expect(arr(trimMask(b, A, 1))).toEqual([1, 1, 1, 1]);
  });
  it('refuses a density outside (0, 1]', () => {
    expect(() => trimMask(b, A, 0)).toThrow(MergeParameterError);
    expect(() => trimMask(b, A, 1.5)).toThrow(MergeParameterError);
  });
});

describe('ties', () => {
  it('trims, elects signs from the weighted sum and averages the agreeing deltas', () => {
    // trimmed (d = 0.5, k = 2): tA = [0, -2, 3, 0], tB = [-3, 1, 0, 0]   (|δB| = 3, 1, 1, 0.5)
    // weighted (w = 2, 1):      [0, -4, 6, 0],   [-3, 1, 0, 0]; sums [-3, -3, 6, 0] -> signs [-, -, +, +]
    // agreeing: j0 B -> -3/1; j1 A -> -4/2; j2 A -> 6/2; j3 none -> 0
    // out = 1 + 0.5·[-3, -2, 3, 0]
    expect(arr(ties(b, [A, B], [2, 1], { density: 0.5, lambda: 0.5 }))).toEqual([-0.5, 0, 2.5, 1]);
  });

  it('averages deltas that agree and drops the ones that do not at full density', () => {
    // δ = [1, 2, -1], [3, -1, -3]; sums [4, 1, -4]; j0 (1+3)/2, j1 2/1, j2 (-1-3)/2
    const z = f32([0, 0, 0]);
    expect(arr(ties(z, [f32([1, 2, -1]), f32([3, -1, -3])], [1, 1], { density: 1, lambda: 1 }))).toEqual([2, 2, -2]);
  });
});

describe('dare', () => {
  // uniforms: A [0.1, 0.9, 0.3, 0.6] -> keep [1, 0, 1, 0];  B [0.7, 0.2, 0.4, 0.5] -> keep [0, 1, 1, 0]
  // rescaled by 1/0.5: rA = [2, 0, 6, 0], rB = [0, 2, -2, 0]; weighted (w = 1, 0.5): [2, 0, 6, 0], [0, 1, -1, 0]
  const uA = [0.1, 0.9, 0.3, 0.6];
  const uB = [0.7, 0.2, 0.4, 0.5];

  it('drops with probability 1 − d and rescales by 1/d, then sums (dare_linear)', () => {
    // 1 + [2, 1, 5, 0]
    const out = dare(b, [A, B], [1, 0.5], { density: 0.5, lambda: 1, consensus: false }, [replay(uA), replay(uB)]);
    expect(arr(out)).toEqual([3, 2, 6, 1]);
  });

  it('with consensus keeps only deltas agreeing with the elected sign, not divided (dare_ties)', () => {
    // sums [2, 1, 5, 0] all elect +; j2 drops B's -1: 1 + [2, 1, 6, 0]
    const out = dare(b, [A, B], [1, 0.5], { density: 0.5, lambda: 1, consensus: true }, [replay(uA), replay(uB)]);
    expect(arr(out)).toEqual([3, 2, 7, 1]);
  });

  it('scales the mixed vector by λ', () => {
    const out = dare(b, [A, B], [1, 0.5], { density: 0.5, lambda: 0.5, consensus: false }, [replay(uA), replay(uB)]);
    expect(arr(out)).toEqual([2, 1.5, 3.5, 1]);
  });

  it('draws one uniform per entry, deterministic from the stream seed', () => {
    expect(arr(dropMask(4, 0.5, replay([0.5, 0.49, 0.99, 0])))).toEqual([0, 1, 0, 1]);
    expect(dropMask(1000, 0.3, mulberry32(1))).toEqual(dropMask(1000, 0.3, mulberry32(1)));
    expect(dropMask(1000, 0.3, mulberry32(1))).not.toEqual(dropMask(1000, 0.3, mulberry32(2)));
  });
});
