/**
 * Each gradient the engine registers, against central finite differences on the cpu backend
 * (finite-differences.ts says how).
 */
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, it } from 'vitest';
import '../../core/engine/gradients.ts';
import '@tensorflow/tfjs-backend-cpu';
import { checkGradients as check, rand } from './finite-differences.ts';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe('registered gradients match finite differences', () => {
  it('Add / Sub / Multiply / RealDiv with broadcasting', () => {
    check((a, b) => tf.add(a, b), [rand([2, 3]), rand([3])]);
    check((a, b) => tf.sub(a, b), [rand([2, 1]), rand([2, 3])]);
    check((a, b) => tf.mul(a, b), [rand([2, 3]), rand([1, 3])]);
    check((a, b) => tf.div(a, b), [rand([2, 3]), rand([2, 1], 0.5, 1.5)]);
  });
  it('AddN, Maximum, Pow', () => {
    check((a, b, c) => tf.addN([a, b, c]), [rand([3]), rand([3]), rand([3])]);
    check((a, b) => tf.maximum(a, b), [rand([4]), tf.tensor1d([0.5, -0.5, 0.1, 0.9])]);
    check((a, b) => tf.pow(a, b), [rand([3], 0.5, 1.5), rand([3], 1, 3)]);
  });
  it('unary: Neg Square Sqrt Rsqrt Exp Log Sigmoid Tanh Relu', () => {
    for (const f of [tf.neg, tf.square, tf.exp, tf.sigmoid, tf.tanh]) check((x) => f(x), [rand([5])]);
    for (const f of [tf.sqrt, tf.rsqrt, tf.log]) check((x) => f(x), [rand([5], 0.5, 2)]);
    check((x) => tf.relu(x), [tf.tensor1d([-0.7, -0.2, 0.3, 0.8])]);
  });
  it('reductions: Sum Mean Max (keepDims or not), Softmax', () => {
    check((x) => tf.sum(x, 1), [rand([2, 3])]);
    check((x) => tf.sum(x, [0, 2], true), [rand([2, 2, 3])]);
    check((x) => tf.mean(x, -1, true), [rand([2, 3])]);
    check((x) => tf.max(x, 1), [tf.tensor2d([[0.1, 0.9, 0.3], [0.7, -0.2, 0.4]])]);
    check((x) => tf.softmax(x), [rand([2, 4])]);
  });
  it('shape ops: Reshape Transpose Cast Concat SplitV Slice PadV2', () => {
    check((x) => tf.reshape(x, [3, 2]), [rand([2, 3])]);
    check((x) => tf.transpose(x, [2, 0, 1]), [rand([2, 3, 2])]);
    check((x) => tf.cast(x, 'float32'), [rand([3])]);
    check((a, b) => tf.concat([a, b], 1), [rand([2, 1]), rand([2, 3])]);
    check((x) => tf.split(x, [1, 3], 1)[1], [rand([2, 4])]);
    check((x) => tf.slice(x, [0, 1], [2, -1]), [rand([2, 4])]);
    check((x) => tf.pad(x, [[1, 0], [0, 2]]), [rand([2, 2])]);
  });
  it('GatherV2 along axis 0 (repeated indices accumulate) and axis 1', () => {
    const idx = tf.tensor1d([2, 0, 2, 3], 'int32');
    check((x) => tf.gather(x, idx), [rand([4, 3])]);
    check((x) => tf.gather(x, tf.tensor1d([1, 1, 0], 'int32'), 1), [rand([2, 3, 2])]);
  });
  it('BatchMatMul for every transpose combination, 2-D and batched', () => {
    for (const [ta, tb] of [[false, false], [false, true], [true, false], [true, true]] as const) {
      check((a, b) => tf.matMul(a, b, ta, tb), [rand(ta ? [3, 2] : [2, 3]), rand(tb ? [4, 3] : [3, 4])]);
      check((a, b) => tf.matMul(a, b, ta, tb), [rand(ta ? [2, 3, 2] : [2, 2, 3]), rand(tb ? [2, 4, 3] : [2, 3, 4])]);
    }
  });
});
