import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { beforeAll, describe, expect, it } from 'vitest';
import { createParamGroup, disposeParamGroup, readGroupState } from '../../core/optim/state.ts';
import { GradAccumulator } from '../../core/optim/accumulate.ts';
import { GradientMismatchError, OptimStateError } from '../../core/optim/errors.ts';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe('createParamGroup / readGroupState', () => {
  it('starts at zero moments and step 0, and round-trips state exactly', async () => {
    const w = tf.variable(tf.tensor([[1, 2]]));
    const fresh = createParamGroup('layers.1', [['w', w]]);
    expect(fresh.step).toBe(0);
    expect(Array.from(fresh.slots[0].m.dataSync())).toEqual([0, 0]);
    expect(fresh.slots[0].m.trainable).toBe(false);
    const m = new Float32Array([0.1, -0.2]);
    const v = new Float32Array([1e-30, 3]);
    const restored = createParamGroup('layers.1', [['w', w]], { step: 7, slots: new Map([['w', { m, v }]]) });
    const state = await readGroupState(restored);
    expect(state.step).toBe(7);
    expect(state.slots.get('w')).toEqual({ m, v });
    const before = tf.memory().numTensors;
    disposeParamGroup(fresh);
    disposeParamGroup(restored);
    expect(tf.memory().numTensors).toBe(before - 4);
    expect(w.isDisposed).toBe(false);
    w.dispose();
  });

  it('rejects state that does not fit the parameters', () => {
    const w = tf.variable(tf.tensor([[1, 2]]));
    const ok = { m: new Float32Array(2), v: new Float32Array(2) };
    const bad = (step: number, slots: [string, { m: Float32Array; v: Float32Array }][], message: string) => {
      const run = () => createParamGroup('layers.1', [['w', w]], { step, slots: new Map(slots) });
      expect(run).toThrow(OptimStateError);
      expect(run).toThrow(message);
    };
    bad(0, [], 'optimizer state of layers.1 has no moments for w');
    bad(0, [['w', { ...ok, v: new Float32Array(3) }]], 'optimizer state of layers.1: w.v has 3 values, the parameter [1,2] has 2');
    bad(0, [['w', ok], ['x', ok]], 'optimizer state of layers.1 has moments for unknown parameters: x');
    bad(-1, [['w', ok]], 'optimizer state of layers.1: step must be a non-negative integer, got -1');
    w.dispose();
  });
});

describe('GradAccumulator', () => {
  it('sums weighted micro-batch gradients without owning or leaking them', () => {
    const acc = new GradAccumulator();
    const g1 = { a: tf.tensor([1, 2]), b: tf.tensor([[4]]) };
    const g2 = new Map([['a', tf.tensor([3, 5])], ['b', tf.tensor([[8]])]]);
    const before = tf.memory().numTensors;
    acc.add(g1, 0.25);
    acc.add(g2, 0.75);
    expect(tf.memory().numTensors).toBe(before + 2);
    const sum = acc.take();
    expect(Array.from(sum.get('a')!.dataSync())).toEqual([2.5, 4.25]);
    expect(Array.from(sum.get('b')!.dataSync())).toEqual([7]);
    expect(g1.a.isDisposed).toBe(false);
    acc.add(g1);
    const again = acc.take();
    expect(again.get('a')).not.toBe(g1.a);
    expect(Array.from(again.get('a')!.dataSync())).toEqual([1, 2]);
    for (const t of [...sum.values(), ...again.values(), g1.a, g1.b, ...g2.values()]) t.dispose();
    expect(tf.memory().numTensors).toBe(before - 4);
  });

  it('rejects micro-batches over different parameters', () => {
    const acc = new GradAccumulator();
    const a = tf.tensor([1]);
    acc.add({ a });
    expect(() => acc.add({ b: a })).toThrow(GradientMismatchError);
    expect(() => acc.add({ b: a })).toThrow("micro-batch gradients differ from the first micro-batch's: missing [a], extra [b]");
    expect(() => acc.add({ a: tf.tensor([1, 2]) })).toThrow('gradient of a has shape [2], earlier micro-batches [1]');
    acc.dispose();
    a.dispose();
  });
});
