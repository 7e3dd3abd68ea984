import { createRequire } from 'node:module';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { initEngine, nativeKernelsStatus, setNativeKernels, setWasmOverrides, type BackendName } from '../../core/engine/index.ts';

async function onBoth<T>(f: () => T): Promise<{ cpu: T; wasm: T }> {
  await tf.setBackend('cpu');
  const cpu = f();
  await tf.setBackend('wasm');
  return { cpu, wasm: f() };
}

let seed = 3;
function rand(shape: number[]): number[] {
  return Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => {
    seed = (seed * 48271) % 2147483647;
    return seed / 2147483647 - 0.5;
  });
}

// The GPU image installs @tensorflow/tfjs-node-gpu; these machines cannot.
const nativeInstalled = ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node'].some((pkg) => {
  try {
    createRequire(import.meta.url).resolve(pkg);
    return true;
  } catch {
    return false;
  }
});

describe('initEngine', () => {
  it.runIf(nativeInstalled)('picks the native tensorflow backend when it is installed', async () => {
    expect(await initEngine()).toBe('tensorflow');
  });

  it.skipIf(nativeInstalled)('picks wasm when the native tensorflow packages are absent, and logs the choice once', async () => {
    const logs: string[] = [];
    expect(await initEngine({ log: (m) => logs.push(m) })).toBe('wasm');
    expect(tf.getBackend()).toBe('wasm');
    expect(logs).toHaveLength(1);
    expect(logs[0]).toBe(
      `engine: tfjs 4.22.0 backend wasm (${nativeKernelsStatus()}); tensorflow unavailable (@tensorflow/tfjs-node-gpu not installed; @tensorflow/tfjs-node not installed)`,
    );
    expect(await initEngine({ log: (m) => logs.push(m) })).toBe('wasm');
    expect(logs).toHaveLength(1);
  });

  it.skipIf(nativeInstalled)('falls through from a requested tensorflow backend and says so', async () => {
    const logs: string[] = [];
    await initEngine({ backend: 'cpu' });
    expect(await initEngine({ backend: 'tensorflow', log: (m) => logs.push(m) })).toBe('wasm');
    expect(logs[0]).toContain('backend wasm instead of requested tensorflow');
  });

  it('starts cpu on request and rejects unknown names', async () => {
    expect(await initEngine({ backend: 'cpu' })).toBe('cpu');
    expect(tf.getBackend()).toBe('cpu');
    await expect(initEngine({ backend: 'webgpu' as BackendName })).rejects.toMatchObject({ code: 'ENGINE_BACKEND_INVALID', message: 'backend=webgpu: expected one of tensorflow, wasm, cpu' });
    expect(await initEngine({ backend: 'wasm' })).toBe('wasm');
  });
});

describe('wasm kernels installed by the engine', () => {
  it('BatchMatMul equals cpu for every transpose combination, batched and broadcast operands', async () => {
    await initEngine({ backend: 'wasm' });
    const cases: [number[], number[], boolean, boolean][] = [
      [[5, 7], [7, 3], false, false],
      [[7, 5], [7, 3], true, false],
      [[5, 7], [3, 7], false, true],
      [[7, 5], [3, 7], true, true],
      [[2, 5, 7], [7, 3], false, false],
      [[2, 5, 7], [3, 7], false, true],
      [[2, 7, 5], [2, 7, 3], true, false],
      [[2, 5, 7], [2, 3, 7], false, true],
      [[2, 3, 5, 7], [2, 3, 7, 4], false, false],
      [[2, 7, 5], [7, 3], true, false],
      [[5, 7], [2, 7, 3], false, false],
      [[1, 0], [0, 4], false, false],
      // Inner dimension over several K slices (64 / 128): accumulated into C.
      [[3, 600], [600, 5], false, false],
      [[600, 3], [5, 600], true, true],
    ];
    // The stock kernel, our SIMD GEMM and native OpenBLAS (where built).
    for (const [on, native] of [[false, false], [true, false], [true, true]]) {
      setWasmOverrides(on);
      setNativeKernels(native);
      for (const [sa, sb, ta, tb] of cases) {
        const a = rand(sa);
        const b = rand(sb);
        const { cpu, wasm } = await onBoth(() => {
          const y = tf.matMul(tf.tensor(a, sa), tf.tensor(b, sb), ta, tb);
          return { shape: y.shape, data: Array.from(y.dataSync()) };
        });
        expect(wasm.shape).toEqual(cpu.shape);
        wasm.data.forEach((v, i) => expect(Math.abs(v - cpu.data[i])).toBeLessThan(1e-4));
      }
    }
    setWasmOverrides(true);
    setNativeKernels(true);
  });

  it('UnsortedSegmentSum (tf.gather gradient) equals cpu, dropping out-of-range ids', async () => {
    await initEngine({ backend: 'wasm' });
    const x = rand([5, 2, 3]);
    const { cpu, wasm } = await onBoth(() =>
      Array.from(tf.unsortedSegmentSum(tf.tensor(x, [5, 2, 3]), tf.tensor1d([3, 0, 3, 1, 3], 'int32'), 4).dataSync()),
    );
    expect(wasm.length).toBe(24);
    wasm.forEach((v, i) => expect(v).toBeCloseTo(cpu[i], 6));
    await tf.setBackend('wasm');
    expect(Array.from(tf.unsortedSegmentSum(tf.tensor1d([1, 2, 4]), tf.tensor1d([0, 7, 0], 'int32'), 2).dataSync())).toEqual([5, 0]);
  });

  it('SplitV and GatherV2 equal cpu on every axis, and GatherV2 still refuses an index out of range', async () => {
    await initEngine({ backend: 'wasm' });
    const x = rand([4, 6, 6]);
    for (const [sizes, axis] of [[3, -1], [[2, 4], 1], [[1, 3], 0], [[5, 0, 1], 1]] as const) {
      const { cpu, wasm } = await onBoth(() => tf.split(tf.tensor(x, [4, 6, 6]), sizes as number | number[], axis).map((t) => ({ shape: t.shape, data: Array.from(t.dataSync()) })));
      expect(wasm).toEqual(cpu);
    }
    const ids = [3, 0, 3, 1];
    for (const axis of [0, 1]) {
      const { cpu, wasm } = await onBoth(() => {
        const y = tf.gather(tf.tensor(x, [4, 6, 6]), tf.tensor1d(ids, 'int32'), axis);
        return { shape: y.shape, data: Array.from(y.dataSync()) };
      });
      expect(wasm).toEqual(cpu);
    }
    expect(() => tf.gather(tf.tensor(x, [4, 6, 6]), tf.tensor1d([4], 'int32'))).toThrow('GatherV2: the index value 4 is not in [0, 3]');
  });

  it('Multiply with broadcasting and Transpose equal cpu bitwise, native kernels on and off', async () => {
    await initEngine({ backend: 'wasm' });
    const products: [number[], number[]][] = [
      [[2, 3, 4, 5], [1, 3, 1, 5]],
      [[1, 3, 1, 5], [2, 3, 4, 5]],
      [[3, 5], [5]],
      [[3, 5], [3, 1]],
      [[2, 3, 4], []],
      [[4], [4]],
      [[2, 1, 4, 1], [1, 3, 1, 6]],
    ];
    const perms: [number[], number[]][] = [
      [[2, 3, 4, 5], [0, 2, 1, 3]],
      [[2, 3, 4, 5], [2, 0, 1, 3]],
      [[3, 4, 5], [1, 0, 2]],
      [[4, 5], [1, 0]],
      [[2, 3, 4, 5], [0, 1, 3, 2]],
    ];
    for (const native of [true, false]) {
      setNativeKernels(native);
      for (const [sa, sb] of products) {
        const [a, b] = [rand(sa), rand(sb)];
        const { cpu, wasm } = await onBoth(() => {
          const y = tf.mul(tf.tensor(a, sa), tf.tensor(b, sb));
          return { shape: y.shape, data: Array.from(y.dataSync()) };
        });
        expect(wasm, `${sa} * ${sb}`).toEqual(cpu);
      }
      for (const [shape, perm] of perms) {
        const x = rand(shape);
        const { cpu, wasm } = await onBoth(() => {
          const y = tf.transpose(tf.tensor(x, shape), perm);
          return { shape: y.shape, data: Array.from(y.dataSync()) };
        });
        expect(wasm, `${shape} by ${perm}`).toEqual(cpu);
      }
    }
    setNativeKernels(true);
  });

  it('a Cast to the same dtype shares the buffer; to another dtype it converts', async () => {
    await initEngine({ backend: 'wasm' });
    const x = tf.tensor1d([1.7, -1.7, 2.5]);
    const buffers = tf.backend().numDataIds();
    const same = tf.cast(x, 'float32');
    expect(tf.backend().numDataIds()).toBe(buffers);
    expect(Array.from(same.dataSync())).toEqual(Array.from(x.dataSync()));
    same.dispose();
    expect(Array.from(x.dataSync())).toEqual([Math.fround(1.7), Math.fround(-1.7), 2.5]);
    expect(Array.from(tf.cast(x, 'int32').dataSync())).toEqual([1, -1, 2]);
  });

  it('OneHot with a float dtype holds 0/1 floats', async () => {
    await initEngine({ backend: 'wasm' });
    expect(Array.from(tf.oneHot(tf.tensor1d([2, 0], 'int32'), 3, 1, 0, 'float32').dataSync())).toEqual([0, 0, 1, 1, 0, 0]);
  });

  it('the matmul overrides do not leak tensors', async () => {
    await initEngine({ backend: 'wasm' });
    const a = tf.tensor(rand([2, 4, 6]), [2, 4, 6]);
    const b = tf.tensor(rand([5, 6]), [5, 6]);
    const idx = tf.tensor1d([1], 'int32');
    tf.matMul(a, b, false, true).dispose();
    const before = tf.memory().numTensors;
    // Temporaries live below the engine's bookkeeping: count the backend's buffers too.
    const buffers = tf.backend().numDataIds();
    for (let i = 0; i < 5; i++) tf.matMul(a, b, false, true).dispose();
    for (let i = 0; i < 5; i++) tf.oneHot(idx, 3, 1, 0, 'float32').dispose();
    expect(tf.memory().numTensors).toBe(before);
    expect(tf.backend().numDataIds()).toBe(buffers);
  });
});
