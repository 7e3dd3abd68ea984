/**
 * What makes training fast (or possible) on the tfjs wasm backend. Measured with tfjs 4.22 under
 * Node 20 (SIMD, one thread); bench/train-step.ts compares against stock with `--stock`.
 *
 * - wasm has no UnsortedSegmentSum kernel, so tf.gather (the embedding) has no gradient there.
 *   We register one written in JS: a scatter-add of rows is memory-bound, so JS loses nothing.
 * - wasm's OneHot writes int32 bit patterns whatever the requested dtype (a float32 one-hot
 *   reads as denormals ~1e-45); we build the int32 one-hot and cast.
 * - wasm's BatchMatMul runs on XNNPACK only when both operands are single (batch 1) matrices
 *   and neither is transposed; every other case falls to a scalar loop ~12x slower. The kernel
 *   wrapper below transposes explicitly and folds a batched left operand into rows so that the
 *   common cases reach XNNPACK, and the BatchMatMul gradient is re-registered so that it asks
 *   for explicit transposes instead of transposed products.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { ensureGradients } from './gradients.ts';

type TensorInfo = tf.TensorInfo;
type KernelFunc = (args: { inputs: tf.NamedTensorInfoMap; backend: tf.KernelBackend; attrs?: tf.NamedAttrMap }) =>
  | TensorInfo
  | TensorInfo[];

let enabled = true;
let installed = false;
let stockMatMul: tf.KernelConfig | undefined;
let stockMatMulGrad: tf.GradConfig | undefined;
let stockOneHot: tf.KernelConfig | undefined;

/** Turns the overrides on or off (benchmarks compare both in one process). */
export function setWasmOverrides(on: boolean): void {
  enabled = on;
}

export function wasmOverridesEnabled(): boolean {
  return enabled;
}

function active(): boolean {
  return enabled && tf.getBackend() === 'wasm';
}

function size(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** x: [N, ...inner] (N = segmentIds.size), out: [numSegments, ...inner], out[s] = sum of rows with id s. */
function unsortedSegmentSum(args: Parameters<KernelFunc>[0]): TensorInfo {
  const backend = args.backend as BackendWasm;
  const { x, segmentIds } = args.inputs as { x: TensorInfo; segmentIds: TensorInfo };
  const numSegments = (args.attrs as { numSegments: number }).numSegments;
  const rows = size(segmentIds.shape);
  const inner = size(x.shape) / rows;
  const out = backend.makeOutput([numSegments, ...x.shape.slice(segmentIds.shape.length)], x.dtype);
  // Views after makeOutput: an allocation may grow (and so detach) the wasm heap.
  const xs = backend.typedArrayFromHeap(x);
  const ids = backend.typedArrayFromHeap(segmentIds);
  const o = backend.typedArrayFromHeap(out);
  o.fill(0);
  for (let r = 0; r < rows; r++) {
    const s = ids[r];
    // TF drops rows whose id is out of range.
    if (s < 0 || s >= numSegments) continue;
    const src = r * inner;
    const dst = s * inner;
    for (let j = 0; j < inner; j++) o[dst + j] += xs[src + j];
  }
  return out;
}

function oneHot(args: Parameters<KernelFunc>[0]): TensorInfo {
  const stock = stockOneHot!.kernelFunc as KernelFunc;
  const attrs = args.attrs as { dtype: tf.DataType };
  if (attrs.dtype === 'int32') return stock(args) as TensorInfo;
  const ints = stock({ ...args, attrs: { ...attrs, dtype: 'int32' } }) as TensorInfo;
  const cast = tf.getKernel('Cast', 'wasm')!.kernelFunc as KernelFunc;
  const out = cast({ inputs: { x: ints }, backend: args.backend, attrs: { dtype: attrs.dtype } }) as TensorInfo;
  args.backend.disposeData(ints.dataId);
  return out;
}

function transpose2d(backend: BackendWasm, x: TensorInfo, rows: number, cols: number): TensorInfo {
  const kernel = tf.getKernel('Transpose', 'wasm')!.kernelFunc as KernelFunc;
  return kernel({ inputs: { x: { dataId: x.dataId, shape: [rows, cols], dtype: x.dtype } }, backend, attrs: { perm: [1, 0] } }) as TensorInfo;
}

/**
 * BatchMatMul routed to XNNPACK wherever the right operand is one matrix: transposes become
 * explicit copies (O(n^2) against the product's O(n^3)) and a batched left operand becomes rows.
 */
function batchMatMul(args: Parameters<KernelFunc>[0]): TensorInfo {
  const stock = stockMatMul!.kernelFunc as KernelFunc;
  if (!enabled) return stock(args) as TensorInfo;
  const backend = args.backend as BackendWasm;
  const { a, b } = args.inputs as { a: TensorInfo; b: TensorInfo };
  const { transposeA, transposeB } = args.attrs as { transposeA: boolean; transposeB: boolean };
  const ar = a.shape.length;
  const br = b.shape.length;
  const batchA = size(a.shape.slice(0, -2));
  const batchB = size(b.shape.slice(0, -2));
  if (batchB !== 1 || (batchA !== 1 && transposeA)) return stock(args) as TensorInfo;

  const m = transposeA ? a.shape[ar - 1] : a.shape[ar - 2];
  const k = transposeA ? a.shape[ar - 2] : a.shape[ar - 1];
  const n = transposeB ? b.shape[br - 2] : b.shape[br - 1];
  const outShape = [...tf.broadcast_util.assertAndGetBroadcastShape(a.shape.slice(0, -2), b.shape.slice(0, -2)), m, n];
  const temps: TensorInfo[] = [];
  let a2 = a;
  if (transposeA) temps.push((a2 = transpose2d(backend, a, k, m)));
  let b2 = b;
  if (transposeB) temps.push((b2 = transpose2d(backend, b, n, k)));
  const out = stock({
    inputs: {
      a: { dataId: a2.dataId, shape: [1, batchA * m, k], dtype: a.dtype },
      b: { dataId: b2.dataId, shape: [1, k, n], dtype: b.dtype },
    },
    backend,
    attrs: { transposeA: false, transposeB: false },
  }) as TensorInfo;
  for (const t of temps) backend.disposeData(t.dataId);
  return { dataId: out.dataId, shape: outShape, dtype: out.dtype };
}

function swapLast(x: tf.Tensor): tf.Tensor {
  const perm = x.shape.map((_, i) => i);
  [perm[x.rank - 2], perm[x.rank - 1]] = [perm[x.rank - 1], perm[x.rank - 2]];
  return tf.transpose(x, perm);
}

/** The stock gradient asks for transposed products; these are the same products, untransposed. */
const batchMatMulGrad: tf.GradConfig = {
  kernelName: 'BatchMatMul',
  inputsToSave: ['a', 'b'],
  gradFunc: (dy, saved, attrs) => {
    if (!active()) return stockMatMulGrad!.gradFunc(dy, saved, attrs);
    const [a, b] = saved;
    const dy_ = dy as tf.Tensor;
    const { transposeA, transposeB } = attrs as unknown as { transposeA: boolean; transposeB: boolean };
    if (!transposeA && !transposeB) {
      return { a: () => tf.matMul(dy_, swapLast(b)), b: () => tf.matMul(swapLast(a), dy_) };
    }
    if (!transposeA && transposeB) {
      return { a: () => tf.matMul(dy_, b), b: () => tf.matMul(swapLast(dy_), a) };
    }
    if (transposeA && !transposeB) {
      return { a: () => tf.matMul(b, swapLast(dy_)), b: () => tf.matMul(a, dy_) };
    }
    return { a: () => tf.matMul(swapLast(b), swapLast(dy_)), b: () => tf.matMul(swapLast(dy_), swapLast(a)) };
  },
};

/** Idempotent; call after the wasm backend is registered (initEngine does). */
export function installWasmOverrides(): void {
  if (installed) return;
  installed = true;
  if (!tf.getKernel('UnsortedSegmentSum', 'wasm')) {
    tf.registerKernel({ kernelName: 'UnsortedSegmentSum', backendName: 'wasm', kernelFunc: unsortedSegmentSum as tf.KernelFunc });
  }
  stockOneHot = tf.getKernel('OneHot', 'wasm')!;
  tf.unregisterKernel('OneHot', 'wasm');
  tf.registerKernel({ ...stockOneHot, kernelFunc: oneHot as tf.KernelFunc });
  stockMatMul = tf.getKernel('BatchMatMul', 'wasm');
  if (!stockMatMul) throw new Error('tfjs-backend-wasm registered no BatchMatMul kernel');
  tf.unregisterKernel('BatchMatMul', 'wasm');
  tf.registerKernel({ ...stockMatMul, kernelFunc: batchMatMul as tf.KernelFunc });
  ensureGradients();
  stockMatMulGrad = tf.getGradient('BatchMatMul')!;
  tf.unregisterGradient('BatchMatMul');
  tf.registerGradient(batchMatMulGrad);
}
