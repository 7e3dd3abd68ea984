/**
 * The native kernels (core/engine/native.ts, native/): OpenBLAS's GEMM behind BatchMatMul and the
 * fused AdamW, against the cpu backend, the wasm SIMD path and the reference composition.
 */
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { initEngine, setNativeKernels } from '../../core/engine/index.ts';
import { adamwStep, type AdamWConfig } from '../../core/optim/adamw.ts';
import { createParamGroup, disposeParamGroup } from '../../core/optim/state.ts';
import { nativeForTests } from './native-env.ts';

const native = nativeForTests('native.test');

let seed = 5;
function rand(shape: number[]): Float32Array {
  return Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => {
    seed = (seed * 48271) % 2147483647;
    return seed / 2147483647 - 0.5;
  });
}

async function product(backend: 'cpu' | 'wasm', nativeOn: boolean, a: Float32Array, sa: number[], b: Float32Array, sb: number[], ta: boolean, tb: boolean) {
  await tf.setBackend(backend);
  setNativeKernels(nativeOn);
  const y = tf.tidy(() => tf.matMul(tf.tensor(a, sa), tf.tensor(b, sb), ta, tb));
  const out = { shape: y.shape, data: y.dataSync().slice() as Float32Array };
  y.dispose();
  setNativeKernels(true);
  return out;
}

describe.runIf(native)('native GEMM behind BatchMatMul (engine.test.ts checks its products against cpu)', () => {
  beforeAll(async () => {
    await initEngine({ backend: 'wasm' });
  });

  it('repeats itself bitwise at a thread count; 1 and 2 threads differ by a few ulp (OpenBLAS sums differently)', async () => {
    const was = native!.threads();
    const [sa, sb] = [[2, 300, 257], [257, 190]];
    const [a, b] = [rand(sa), rand(sb)];
    const runs: Float32Array[][] = [];
    for (const threads of [1, 1, 2, 2]) {
      native!.setThreads(threads);
      runs.push([(await product('wasm', true, a, sa, b, sb, false, false)).data, (await product('wasm', true, a, [2, 257, 300], b, [190, 257], true, true)).data]);
    }
    native!.setThreads(was);
    const same = (x: Float32Array, y: Float32Array) => Buffer.from(x.buffer).equals(Buffer.from(y.buffer));
    for (const i of [0, 1]) {
      expect(same(runs[0][i], runs[1][i])).toBe(true);
      expect(same(runs[2][i], runs[3][i])).toBe(true);
      // Sums of |a b| ~16 here (k = 257, |a|, |b| < 0.5); 1e-5 is ~5 float32 ulp of them.
      runs[0][i].forEach((v, j) => expect(Math.abs(v - runs[2][i][j])).toBeLessThanOrEqual(1e-5));
    }
  });

  it('refuses operands outside the heap, misaligned ones and wrong arguments, with a code', () => {
    const heap = new ArrayBuffer(64);
    const call = (...v: number[]) => () => (native!.gemm as (...args: unknown[]) => void)(heap, ...v);
    // 2x2 by 2x2: A at 0, B at 16, C at 32..48 fits; C at 52 reaches byte 68.
    expect(call(0, 0, 2, 2, 2, 0, 2, 16, 2, 0, 32, 2, 1, 0, 0, 0)).not.toThrow();
    expect(call(0, 0, 2, 2, 2, 0, 2, 16, 2, 0, 52, 2, 1, 0, 0, 0)).toThrow(
      expect.objectContaining({ code: 'LISA_NATIVE_BOUNDS', message: 'gemm: an operand reaches past the end of the heap' }),
    );
    expect(call(0, 0, 2, 2, 2, 0, 2, 16, 2, 0, 32, 2, 2, 0, 0, 5)).toThrow(expect.objectContaining({ code: 'LISA_NATIVE_BOUNDS' }));
    expect(call(0, 0, 2, 2, 2, 2, 2, 16, 2, 0, 32, 2, 1, 0, 0, 0)).toThrow(
      expect.objectContaining({ code: 'LISA_NATIVE_ARGS', message: 'gemm: operands must be 4-byte aligned' }),
    );
    expect(call(0, 0, 2, 2, 2, 0, 1, 16, 2, 0, 32, 2, 1, 0, 0, 0)).toThrow('gemm: a leading dimension is shorter than its rows');
    expect(call(0, 0, -2, 2, 2, 0, 2, 16, 2, 0, 32, 2, 1, 0, 0, 0)).toThrow('gemm: sizes, addresses and strides must be whole numbers in [0, 2^31)');
    expect(call(0, 0, 2)).toThrow(expect.objectContaining({ code: 'LISA_NATIVE_ARGS', message: 'gemm: takes 17 arguments' }));
    expect(() => native!.permute(heap, 0, 32, 1, 2, 2, 2, 0, 0, 1)).toThrow('permute: perm must order axes 0, 1, 2');
    expect(() => native!.permute(heap, 0, 40, 1, 2, 2, 2, 0, 2, 1)).toThrow('permute: an operand reaches past the end of the heap');
    expect(() => native!.mulBroadcast(heap, 0, 0, 0, 1, 1, 2, 2, 0, 0, 2, 2, 0, 0, 0, 1)).toThrow('mulBroadcast: the last dimension must be contiguous or broadcast');
    expect(() => (native!.gemm as (...args: unknown[]) => void)(new Float32Array(4), 0, 0, 1, 1, 1, 0, 1, 0, 1, 0, 0, 1, 1, 0, 0, 0)).toThrow(
      'gemm: the first argument must be an ArrayBuffer',
    );
  });
});

describe.runIf(native)('native fused AdamW', () => {
  beforeAll(async () => {
    await initEngine({ backend: 'wasm' });
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

  /** Three steps of a group with a matrix (decayed) and a vector (not). */
  function steps(nativeOn: boolean, maxGradNorm: number): Float32Array[] {
    setNativeKernels(nativeOn);
    seed = 3;
    const w = tf.variable(tf.tensor(rand([37, 29]), [37, 29]));
    const b = tf.variable(tf.tensor(rand([1001]), [1001]));
    const group = createParamGroup('layers.0', [
      ['w', w],
      ['b', b],
    ]);
    for (let s = 0; s < 3; s++) {
      const grads = new Map([
        ['w', tf.tensor(rand([37, 29]), [37, 29])],
        ['b', tf.tensor(rand([1001]), [1001])],
      ]);
      const stats = adamwStep({ ...cfg, maxGradNorm }, [group], grads, s);
      if (maxGradNorm > 0) expect(stats.gradNorm).toBeGreaterThan(maxGradNorm);
      tf.dispose([...grads.values()]);
    }
    const out = [w, b, ...group.slots.flatMap((x) => [x.m, x.v])].map((t) => t.dataSync().slice() as Float32Array);
    disposeParamGroup(group);
    tf.dispose([w, b]);
    setNativeKernels(true);
    return out;
  }

  it('equals the tfjs composition bitwise (weights, m and v), with decay and bias correction', () => {
    const fused = steps(true, 0);
    const composed = steps(false, 0);
    fused.forEach((x, i) => expect(Buffer.from(x.buffer).equals(Buffer.from(composed[i].buffer)), `tensor ${i}`).toBe(true));
  });

  it('clips as the composition does, within 1e-6 (the fused norm sums in another order)', () => {
    const fused = steps(true, 1);
    const composed = steps(false, 1);
    fused.forEach((x, i) => x.forEach((v, j) => expect(Math.abs(v - composed[i][j]), `tensor ${i} [${j}]`).toBeLessThanOrEqual(1e-6 * Math.max(1, Math.abs(v)))));
  });

  it('leaves the tensor and buffer counts flat', () => {
    const w = tf.variable(tf.tensor(rand([8, 8]), [8, 8]));
    const group = createParamGroup('embed', [['w', w]]);
    const g = new Map([['w', tf.tensor(rand([8, 8]), [8, 8])]]);
    adamwStep(cfg, [group], g, 0);
    const [tensors, buffers] = [tf.memory().numTensors, tf.backend().numDataIds()];
    for (let s = 1; s < 4; s++) adamwStep(cfg, [group], g, s);
    expect([tf.memory().numTensors, tf.backend().numDataIds()]).toEqual([tensors, buffers]);
    tf.dispose([...g.values(), w]);
    disposeParamGroup(group);
  });
});
