import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { beforeAll, describe, expect, it } from 'vitest';
import { adamwStep, type AdamWConfig, type ParamGroup } from '../../core/optim/adamw.ts';
import { createParamGroup, disposeParamGroup, readGroupState } from '../../core/optim/state.ts';
import { GradientMismatchError, NonFiniteGradientError, OptimConfigError } from '../../core/optim/errors.ts';
import { mulberry32 } from '../../core/lisa/rng.ts';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

const cfg: AdamWConfig = {
  lr: 1e-2,
  beta1: 0.9,
  beta2: 0.999,
  eps: 1e-8,
  weightDecay: 0.1,
  maxGradNorm: 0,
  decayNormsAndBiases: false,
  schedule: { kind: 'constant', warmupSteps: 0, totalSteps: 0, minLrRatio: 0 },
};

/** Plain float64 AdamW (PyTorch order) on float32-rounded inputs. */
function reference(p: number[], m: number[], v: number[], g: number[], t: number, c: AdamWConfig, decay: boolean, lr = c.lr) {
  const f = Math.fround;
  const out = { p: [] as number[], m: [] as number[], v: [] as number[] };
  for (let i = 0; i < p.length; i++) {
    const gi = f(g[i]);
    const mi = c.beta1 * f(m[i]) + (1 - c.beta1) * gi;
    const vi = c.beta2 * f(v[i]) + (1 - c.beta2) * gi * gi;
    const mHat = mi / (1 - c.beta1 ** t);
    const vHat = vi / (1 - c.beta2 ** t);
    const pi = decay ? f(p[i]) * (1 - lr * c.weightDecay) : f(p[i]);
    out.p.push(pi - (lr * mHat) / (Math.sqrt(vHat) + c.eps));
    out.m.push(mi);
    out.v.push(vi);
  }
  return out;
}

const values = (t: tf.Tensor) => Array.from(t.dataSync());

function expectClose(actual: number[], expected: number[], tol: number) {
  expect(actual).toHaveLength(expected.length);
  actual.forEach((a, i) => expect(Math.abs(a - expected[i]), `index ${i}: ${a} vs ${expected[i]}`).toBeLessThanOrEqual(tol));
}

function group(unit: string, params: Record<string, { data: number[]; shape: number[] }>, step = 0): ParamGroup {
  const g = createParamGroup(
    unit,
    Object.entries(params).map(([name, p]) => [name, tf.variable(tf.tensor(p.data, p.shape), true)] as const),
  );
  g.step = step;
  return g;
}

function dispose(...groups: ParamGroup[]) {
  for (const g of groups) {
    for (const s of g.slots) s.param.dispose();
    disposeParamGroup(g);
  }
}

describe('adamwStep', () => {
  it('matches a hand-computed AdamW update over two steps (to 1e-7)', () => {
    const p0 = [0.5, -0.25, 0.125, 0.375];
    const g1 = [0.1, -0.2, 0.3, 0.05];
    const g2 = [-0.3, 0.1, 0.2, -0.05];
    const grp = group('layers.0', { w: { data: p0, shape: [2, 2] } });
    const s = grp.slots[0];
    const stats = adamwStep(cfg, [grp], new Map([['w', tf.tensor(g1, [2, 2])]]), 0);
    const r1 = reference(p0, [0, 0, 0, 0], [0, 0, 0, 0], g1, 1, cfg, true);
    expectClose(values(s.param), r1.p, 1e-7);
    expectClose(values(s.m), r1.m, 1e-7);
    expectClose(values(s.v), r1.v, 1e-9);
    expect(stats.lr).toBe(1e-2);
    expect(stats.gradNorm).toBeCloseTo(Math.hypot(...g1.map(Math.fround)), 6);
    expect(grp.step).toBe(1);

    adamwStep(cfg, [grp], new Map([['w', tf.tensor(g2, [2, 2])]]), 1);
    const r2 = reference(r1.p, r1.m, r1.v, g2, 2, cfg, true);
    expectClose(values(s.param), r2.p, 1e-7);
    expect(grp.step).toBe(2);
    dispose(grp);
  });

  it('decays weights even with a zero gradient, but not rank-1 tensors unless decayNormsAndBiases', () => {
    const grp = group('layers.0', { w: { data: [0.5, -0.5], shape: [1, 2] }, norm: { data: [1, 2], shape: [2] } });
    const zeros = () => new Map([['w', tf.zeros([1, 2])], ['norm', tf.zeros([2])]]);
    adamwStep(cfg, [grp], zeros(), 0);
    expect(values(grp.slots[0].param)).toEqual([Math.fround(0.5 * Math.fround(1 - 1e-3)), Math.fround(-0.5 * Math.fround(1 - 1e-3))]);
    expect(values(grp.slots[1].param)).toEqual([1, 2]);
    adamwStep({ ...cfg, decayNormsAndBiases: true }, [grp], zeros(), 1);
    expect(values(grp.slots[1].param)).toEqual([Math.fround(Math.fround(1 - 1e-3)), Math.fround(2 * Math.fround(1 - 1e-3))]);
    adamwStep({ ...cfg, weightDecay: 0 }, [grp], zeros(), 2);
    expect(values(grp.slots[1].param)).toEqual([Math.fround(Math.fround(1 - 1e-3)), Math.fround(2 * Math.fround(1 - 1e-3))]);
    dispose(grp);
  });

  it('clips the global norm over all groups before the moments see the gradient', () => {
    const a = group('layers.0', { a: { data: [0, 0], shape: [1, 2] } });
    const b = group('layers.1', { b: { data: [0], shape: [1, 1] } });
    // Powers of two keep the float32 squares exact: the norm is exactly 5·2^20.
    const grads = new Map([['a', tf.tensor([[3 * 2 ** 20, 0]])], ['b', tf.tensor([[4 * 2 ** 20]])]]);
    const stats = adamwStep({ ...cfg, maxGradNorm: 1 }, [a, b], grads, 0);
    expect(stats.gradNorm).toBe(5 * 2 ** 20);
    // Per-group norms come from the same squared sums, before clipping.
    expect(stats.groupNorms).toEqual([3 * 2 ** 20, 4 * 2 ** 20]);
    const scale = 1 / (5 * 2 ** 20 + 1e-6);
    expectClose(values(a.slots[0].m), [0.1 * 3 * 2 ** 20 * scale, 0], 1e-7);
    expectClose(values(b.slots[0].m), [0.1 * 4 * 2 ** 20 * scale], 1e-7);
    // Unclipped (maxGradNorm 0) the moments take the raw gradient.
    const c = group('layers.2', { c: { data: [0], shape: [1, 1] } });
    adamwStep(cfg, [c], new Map([['c', tf.tensor([[4e6]])]]), 0);
    expect(values(c.slots[0].m)).toEqual([Math.fround(Math.fround(0.1) * 4e6)]);
    // A norm under the limit is left alone.
    const d = group('layers.3', { d: { data: [0], shape: [1, 1] } });
    adamwStep({ ...cfg, maxGradNorm: 10 }, [d], new Map([['d', tf.tensor([[4]])]]), 0);
    expect(values(d.slots[0].m)).toEqual([Math.fround(Math.fround(0.1) * 4)]);
    dispose(a, b, c, d);
  });

  it('computes the same clip norm whatever order the groups come in', () => {
    // Squares chosen so float64 (1 + 1) + c and (c + 1) + 1 differ: the sum must not follow group order.
    const big = [2 ** 26, 2 ** 26, 2 ** 17, 2 ** 16, 2 ** 16];
    const norms = [['a', 'b', 'c'], ['c', 'b', 'a']].map((order) => {
      const groups = order.map((n) => group(`layers.${n}`, { [n]: n === 'c' ? { data: big.map(() => 0), shape: [1, 5] } : { data: [0], shape: [1, 1] } }));
      const grads = new Map([['a', tf.tensor([[1]])], ['b', tf.tensor([[1]])], ['c', tf.tensor([big])]]);
      const { gradNorm } = adamwStep({ ...cfg, maxGradNorm: 1 }, groups, grads, 0);
      dispose(...groups);
      return gradNorm;
    });
    expect(Math.sqrt(2 + (2 ** 53 + 3 * 2 ** 33))).not.toBe(Math.sqrt(2 ** 53 + 3 * 2 ** 33 + 1 + 1));
    expect(norms[1]).toBe(norms[0]);
  });

  it("bias-corrects with each group's own step", () => {
    const fresh = group('layers.0', { x: { data: [0.5], shape: [1, 1] } }, 0);
    const seasoned = group('layers.1', { y: { data: [0.5], shape: [1, 1] } }, 5);
    adamwStep({ ...cfg, weightDecay: 0 }, [fresh, seasoned], new Map([['x', tf.tensor([[0.2]])], ['y', tf.tensor([[0.2]])]]), 7);
    expect([fresh.step, seasoned.step]).toEqual([1, 6]);
    const rFresh = reference([0.5], [0], [0], [0.2], 1, cfg, false);
    const rSeasoned = reference([0.5], [0], [0], [0.2], 6, cfg, false);
    expectClose(values(fresh.slots[0].param), rFresh.p, 1e-7);
    expectClose(values(seasoned.slots[0].param), rSeasoned.p, 1e-7);
    // Same gradient and moments, different step counts: different updates.
    expect(Math.abs(rFresh.p[0] - rSeasoned.p[0])).toBeGreaterThan(1e-3);
    dispose(fresh, seasoned);
  });

  it('uses the learning rate of the global step', () => {
    const grp = group('embed', { e: { data: [0.5], shape: [1, 1] } });
    const warm = { ...cfg, weightDecay: 0, schedule: { kind: 'cosine' as const, warmupSteps: 10, totalSteps: 20, minLrRatio: 0 } };
    const stats = adamwStep(warm, [grp], new Map([['e', tf.tensor([[1]])]]), 4);
    expect(stats.lr).toBeCloseTo(5e-3, 16);
    expectClose(values(grp.slots[0].param), reference([0.5], [0], [0], [1], 1, warm, false, 5e-3).p, 1e-7);
    dispose(grp);
  });

  it('is bitwise deterministic, and resuming from F32 state equals one uninterrupted loop', async () => {
    const shapes = { 'w.a': [3, 4], 'w.b': [4] };
    const rng = mulberry32(3);
    const init = Object.fromEntries(Object.entries(shapes).map(([n, s]) => [n, { data: Array.from({ length: tf.util.sizeFromShape(s) }, () => rng.next() - 0.5), shape: s }]));
    const gradsAt = (step: number) => {
      const r = mulberry32(100 + step);
      return new Map(Object.entries(shapes).map(([n, s]) => [n, tf.tensor(Array.from({ length: tf.util.sizeFromShape(s) }, () => r.next() * 4 - 2), s)]));
    };
    const c: AdamWConfig = { ...cfg, maxGradNorm: 1, schedule: { kind: 'cosine', warmupSteps: 2, totalSteps: 8, minLrRatio: 0.1 } };
    const train = (g: ParamGroup, from: number, to: number) => {
      for (let s = from; s < to; s++) {
        const grads = gradsAt(s);
        adamwStep(c, [g], grads, s);
        for (const t of grads.values()) t.dispose();
      }
    };
    const snapshot = (g: ParamGroup) => g.slots.map((s) => [s.name, values(s.param), values(s.m), values(s.v)]);

    const straight = group('layers.0', init);
    train(straight, 0, 8);
    const again = group('layers.0', init);
    train(again, 0, 8);
    expect(snapshot(again)).toEqual(snapshot(straight));

    const first = group('layers.0', init);
    train(first, 0, 5);
    const weights = first.slots.map((s) => [s.name, new Float32Array(s.param.dataSync())] as const);
    const state = await readGroupState(first);
    dispose(first);
    const resumed = createParamGroup(
      'layers.0',
      weights.map(([n, w]) => [n, tf.variable(tf.tensor(w, shapes[n as keyof typeof shapes]))] as const),
      state,
    );
    expect(resumed.step).toBe(5);
    train(resumed, 5, 8);
    expect(snapshot(resumed)).toEqual(snapshot(straight));
    dispose(straight, again, resumed);
  });

  it('steps a group without parameters as a no-op with gradient norm 0', () => {
    const empty: ParamGroup = { unit: 'head', slots: [], step: 3 };
    expect(adamwStep(cfg, [empty], new Map(), 0)).toEqual({ gradNorm: 0, groupNorms: [0], lr: 1e-2 });
    expect(empty.step).toBe(4);
  });

  it('leaks no tensors over 50 steps', () => {
    const grp = group('layers.0', { w: { data: [0.1, 0.2, 0.3, 0.4], shape: [2, 2] }, b: { data: [0, 0], shape: [2] } });
    const clipped = { ...cfg, maxGradNorm: 0.5 };
    const grads = new Map([['w', tf.tensor([[1, -1], [2, 0]])], ['b', tf.tensor([3, -3])]]);
    const before = tf.memory().numTensors;
    for (let s = 0; s < 50; s++) {
      adamwStep(clipped, [grp], grads, s);
      expect(tf.memory().numTensors).toBe(before);
    }
    for (const g of grads.values()) g.dispose();
    dispose(grp);
  });

  it('rejects mismatched gradients and non-finite ones without touching anything', () => {
    const grp = group('layers.0', { w: { data: [0.5, 0.5], shape: [1, 2] } });
    const attempt = (grads: Map<string, tf.Tensor>) => () => adamwStep(cfg, [grp], grads, 0);
    expect(attempt(new Map())).toThrow(GradientMismatchError);
    expect(attempt(new Map())).toThrow('no gradient for parameter w');
    expect(attempt(new Map([['w', tf.zeros([2])]]))).toThrow('gradient of w has shape [2], the parameter [1,2]');
    expect(attempt(new Map([['w', tf.zeros([1, 2])], ['q', tf.zeros([1])]]))).toThrow('gradients for parameters outside the active groups: q');
    const nan = attempt(new Map([['w', tf.tensor([[NaN, 1]])]]));
    expect(nan).toThrow(NonFiniteGradientError);
    expect(nan).toThrow('gradient norm is NaN at global step 0; non-finite gradients: w');
    expect(values(grp.slots[0].param)).toEqual([0.5, 0.5]);
    expect(values(grp.slots[0].m)).toEqual([0, 0]);
    expect(grp.step).toBe(0);
    dispose(grp);
  });

  it('rejects hyperparameters outside their domain', () => {
    const grp = group('layers.0', { w: { data: [0.5], shape: [1, 1] } });
    const grads = new Map([['w', tf.zeros([1, 1])]]);
    const bad = (patch: Partial<AdamWConfig>, message: string) => {
      const run = () => adamwStep({ ...cfg, ...patch }, [grp], grads, 0);
      expect(run).toThrow(OptimConfigError);
      expect(run).toThrow(message);
    };
    bad({ lr: 0 }, 'lr must be a positive finite number, got 0');
    bad({ beta1: 1 }, 'beta1 must be in [0, 1), got 1');
    bad({ beta2: -0.1 }, 'beta2 must be in [0, 1), got -0.1');
    bad({ eps: 0 }, 'eps must be a positive finite number, got 0');
    bad({ weightDecay: -1 }, 'weightDecay must be a non-negative finite number, got -1');
    bad({ maxGradNorm: NaN }, 'maxGradNorm must be a non-negative finite number (0 disables clipping), got NaN');
    bad({ schedule: { ...cfg.schedule, kind: 'step' as never } }, 'schedule.kind must be one of cosine, linear, constant, got "step"');
    bad({ schedule: { kind: 'cosine', warmupSteps: 10, totalSteps: 10, minLrRatio: 0 } }, 'schedule.totalSteps (10) must exceed warmupSteps (10) for a cosine decay');
    bad({ schedule: { ...cfg.schedule, warmupSteps: -1 } }, 'schedule.warmupSteps must be a non-negative integer, got -1');
    bad({ schedule: { ...cfg.schedule, minLrRatio: 2 } }, 'schedule.minLrRatio must be in [0, 1], got 2');
    expect(grp.step).toBe(0);
    dispose(grp);
  });
});
