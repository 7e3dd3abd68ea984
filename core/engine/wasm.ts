/**
 * What makes training fast (or possible) on the tfjs wasm backend. Measured with tfjs 4.22 under
 * Node 20 (SIMD, one thread); `npx tsx bench/train-step.ts` compares with stock in one run
 * (setWasmOverrides(false) turns the speed-ups off; the correctness fixes stay).
 *
 * Correctness:
 * - wasm has no UnsortedSegmentSum kernel, so tf.gather (the embedding) has no gradient there.
 *   We register one written in JS: a scatter-add of rows is memory-bound, so JS loses nothing
 *   (measured: gather + this gradient 4.0 ms against 6.5 ms for a one-hot matmul at V=512, and
 *   one-hot is O(N V D), out of the question for real vocabularies).
 * - wasm's OneHot writes int32 bit patterns whatever the requested dtype (a float32 one-hot
 *   reads as denormals ~1e-45); we build the int32 one-hot and cast.
 * Speed:
 * - wasm's BatchMatMul reaches XNNPACK only with single (batch 1), untransposed operands; every
 *   other case, attention included, runs a scalar loop at ~2 GFLOP/s, and XNNPACK repacks its
 *   right operand on each new tensor. Every BatchMatMul here runs on OpenBLAS (native.ts) where
 *   the native kernels are built, else on our SIMD GEMM (simd.ts): A^T by stride, B^T copied
 *   once, batched or broadcast operands in place.
 * - On the SIMD GEMM the BatchMatMul gradient is re-registered so its products take those fast
 *   forms (explicit B^T, A^T as a flag); the Softmax gradient is one SIMD kernel instead of four.
 * - wasm's SplitV copies its whole input once per piece, and its GatherV2 copies element by
 *   element; ours copy blocks of heap views (GPT-2's q/k/v split, the embedding lookup). With the
 *   native kernels, a broadcasting Multiply and a Transpose that keeps the last axis (RoPE, the
 *   attention heads) run there too.
 * - wasm's Identity copies; tfjs clones every tensor a gradient saves, so a training step spent
 *   ~3% of its time copying. Tensors are immutable, so sharing the buffer (refcounted, as the cpu
 *   backend does) is equivalent. Same for a Cast to the tensor's own dtype.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
// Upstream gradients first: the overrides below replace two of them.
import './gradients.ts';
import { address, heap, size } from './heap.ts';
import { nativeKernels, type NativeKernels } from './native.ts';
import { createSimdKernels, type SimdKernels } from './simd.ts';

type TensorInfo = tf.TensorInfo;
type KernelFunc = (args: { inputs: tf.NamedTensorInfoMap; backend: tf.KernelBackend; attrs?: tf.NamedAttrMap }) =>
  | TensorInfo
  | TensorInfo[];

let enabled = true;
let installed = false;
let stockMatMul: tf.KernelConfig | undefined;
let stockMatMulGrad: tf.GradConfig | undefined;
let stockOneHot: tf.KernelConfig | undefined;
let stockIdentity: tf.KernelConfig | undefined;
let stockCast: tf.KernelConfig | undefined;
let stockSplitV: tf.KernelConfig | undefined;
let stockMultiply: tf.KernelConfig | undefined;
let stockTranspose: tf.KernelConfig | undefined;
let stockGather: tf.KernelConfig | undefined;
let stockSoftmaxGrad: tf.GradConfig | undefined;

/** Turns the overrides on or off (benchmarks compare both in one process). */
export function setWasmOverrides(on: boolean): void {
  enabled = on;
}

export function wasmOverridesEnabled(): boolean {
  return enabled;
}

/** Whether the wasm overrides run on the native kernels now. */
export function nativeActive(): boolean {
  return active() && nativeKernels() !== undefined;
}

function active(): boolean {
  return enabled && tf.getBackend() === 'wasm';
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

/**
 * x [..., C, ...] split along `axis` into pieces of the given sizes: block copies of heap views.
 * The stock kernel slices each piece from a full copy of x (readSync), ~15x slower here.
 */
function splitV(args: Parameters<KernelFunc>[0]): TensorInfo[] {
  const backend = args.backend as BackendWasm;
  const { x } = args.inputs as { x: TensorInfo };
  const { numOrSizeSplits, axis } = args.attrs as { numOrSizeSplits: number | number[]; axis: number };
  if (!enabled || x.dtype === 'string') return (stockSplitV!.kernelFunc as KernelFunc)(args) as TensorInfo[];
  const a = tf.util.parseAxisParam(axis, x.shape)[0];
  const sizes = tf.backend_util.prepareSplitSize(x as tf.Tensor, numOrSizeSplits, a);
  const outer = size(x.shape.slice(0, a));
  const inner = size(x.shape.slice(a + 1));
  const row = x.shape[a] * inner;
  const outs = sizes.map((s) => backend.makeOutput(x.shape.map((d, i) => (i === a ? s : d)), x.dtype));
  // Views after every makeOutput: an allocation may grow (and so detach) the heap.
  const src = backend.typedArrayFromHeap(x);
  let offset = 0;
  outs.forEach((out, k) => {
    const piece = sizes[k] * inner;
    const dst = backend.typedArrayFromHeap(out);
    for (let r = 0; r < outer; r++) dst.set(src.subarray(r * row + offset, r * row + offset + piece), r * piece);
    offset += piece;
  });
  return outs;
}

/**
 * Rows of x gathered by index (axis 0, the embedding lookup): one block copy per row. The stock
 * kernel copies element by element (~150 ns each here: 10 ms for a 256 x 256 lookup).
 */
function gatherV2(args: Parameters<KernelFunc>[0]): TensorInfo {
  const stock = stockGather!.kernelFunc as KernelFunc;
  const backend = args.backend as BackendWasm;
  const { x, indices } = args.inputs as { x: TensorInfo; indices: TensorInfo };
  const { axis, batchDims } = args.attrs as { axis: number; batchDims: number };
  if (!enabled || x.dtype === 'string' || indices.dtype !== 'int32' || tf.util.parseAxisParam(axis, x.shape)[0] !== 0 || batchDims !== 0) {
    return stock(args) as TensorInfo;
  }
  const rows = x.shape[0];
  const ids = backend.typedArrayFromHeap(indices);
  // The stock kernel words the error for an index out of range.
  if (ids.some((i) => i < 0 || i >= rows)) return stock(args) as TensorInfo;
  const width = size(x.shape.slice(1));
  const out = backend.makeOutput([...indices.shape, ...x.shape.slice(1)], x.dtype);
  const [src, dst, at] = [backend.typedArrayFromHeap(x), backend.typedArrayFromHeap(out), backend.typedArrayFromHeap(indices)];
  for (let r = 0; r < at.length; r++) dst.set(src.subarray(at[r] * width, (at[r] + 1) * width), r * width);
  return out;
}

function oneHot(args: Parameters<KernelFunc>[0]): TensorInfo {
  const stock = stockOneHot!.kernelFunc as KernelFunc;
  const attrs = args.attrs as { dtype: tf.DataType };
  if (attrs.dtype === 'int32') return stock(args) as TensorInfo;
  const ints = stock({ ...args, attrs: { ...attrs, dtype: 'int32' } }) as TensorInfo;
  const out = (stockCast!.kernelFunc as KernelFunc)({ inputs: { x: ints }, backend: args.backend, attrs: { dtype: attrs.dtype } }) as TensorInfo;
  args.backend.disposeData(ints.dataId);
  return out;
}

/** The input itself, one more reference to its buffer (tensors are immutable). */
function share(args: Parameters<KernelFunc>[0]): TensorInfo {
  const { x } = args.inputs as { x: TensorInfo };
  args.backend.incRef(x.dataId);
  return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
}

function identity(args: Parameters<KernelFunc>[0]): TensorInfo {
  const { x } = args.inputs as { x: TensorInfo };
  if (!enabled || x.dtype === 'string') return (stockIdentity!.kernelFunc as KernelFunc)(args) as TensorInfo;
  return share(args);
}

/** A cast to the tensor's own dtype (every Multiply gradient casts its other operand) shares it. */
function cast(args: Parameters<KernelFunc>[0]): TensorInfo {
  const { x } = args.inputs as { x: TensorInfo };
  if (!enabled || x.dtype === 'string' || x.dtype !== (args.attrs as { dtype: tf.DataType }).dtype) {
    return (stockCast!.kernelFunc as KernelFunc)(args) as TensorInfo;
  }
  return share(args);
}

/** x [..., r, c] -> [..., c, r] with the SIMD transpose (~5x tfjs's Transpose kernel here). */
function transposeLast(backend: BackendWasm, kernels: SimdKernels, x: TensorInfo): TensorInfo {
  const n = x.shape.length;
  const [r, c] = [x.shape[n - 2], x.shape[n - 1]];
  const out = backend.makeOutput([...x.shape.slice(0, -2), c, r], x.dtype);
  const [src, dst] = [address(backend, x), address(backend, out)];
  const batch = size(x.shape.slice(0, -2));
  for (let i = 0; i < batch; i++) kernels.transpose(src + 4 * i * r * c, dst + 4 * i * r * c, r, c);
  return out;
}

const simdByMemory = new WeakMap<WebAssembly.Memory, SimdKernels | null>();

function simd(backend: BackendWasm): SimdKernels | undefined {
  const memory = heap(backend);
  if (!memory) return undefined;
  let kernels = simdByMemory.get(memory);
  if (kernels === undefined) {
    kernels = createSimdKernels(memory) ?? null;
    simdByMemory.set(memory, kernels);
  }
  return kernels ?? undefined;
}

interface Product {
  a: TensorInfo;
  b: TensorInfo;
  transposeA: boolean;
  transposeB: boolean;
  m: number;
  n: number;
  k: number;
  /** Matrices in a and b: equal, or 1 for an operand broadcast against the other's batch. */
  batchA: number;
  batchB: number;
  out: TensorInfo;
}

/**
 * On OpenBLAS (native.ts): transposes are flags, batches a loop in C; a left operand batched
 * against a single right one is one tall product.
 */
function nativeProduct(backend: BackendWasm, blas: NativeKernels, p: Product): void {
  const { m, n, k, batchA, batchB } = p;
  // The buffer now: an allocation may have grown the memory (a new buffer) since the last call.
  const memory = heap(backend)!.buffer as ArrayBuffer;
  const [pa, pb, pc] = [address(backend, p.a), address(backend, p.b), address(backend, p.out)];
  const [ta, tb] = [Number(p.transposeA), Number(p.transposeB)];
  // BLAS wants leading dimensions >= 1 even for empty operands.
  const lda = Math.max(1, p.transposeA ? m : k);
  const ldb = Math.max(1, p.transposeB ? k : n);
  const ldc = Math.max(1, n);
  if (batchB === 1 && !p.transposeA) {
    blas.gemm(memory, 0, tb, batchA * m, n, k, pa, lda, pb, ldb, 0, pc, ldc, 1, 0, 0, 0);
    return;
  }
  const batch = Math.max(batchA, batchB);
  blas.gemm(memory, ta, tb, m, n, k, pa, lda, pb, ldb, 0, pc, ldc, batch, batchA === 1 ? 0 : m * k, batchB === 1 ? 0 : k * n, m * n);
}

/**
 * On the SIMD GEMM (simd.ts): A^T is only a different stride; B^T is copied once (O(n^2) against
 * the product's O(n^3)); a left operand batched against a single right one is one tall product.
 */
function simdProduct(backend: BackendWasm, kernels: SimdKernels, p: Product): void {
  const { m, n, k, batchA, batchB, transposeA } = p;
  const bRows = p.transposeB ? transposeLast(backend, kernels, p.b) : p.b;
  const { gemm } = kernels;
  const [pa, pb, pc] = [address(backend, p.a), address(backend, bRows), address(backend, p.out)];
  // A(i, k): rows of a, or columns of a when transposed.
  const [ais, aks] = transposeA ? [1, m] : [k, 1];
  // Long inner dimensions go in slices accumulated into C, so the lines of A and B a register
  // tile walks stay in L1 (1024^3: 11 -> 27 GFLOP/s). A^T walks a new line of A per k, hence
  // shorter slices (measured: 64 vs 128).
  const kBlock = transposeA ? 64 : 128;
  const product = (ap: number, bp: number, cp: number, rows: number) => {
    for (let k0 = 0; k0 < k; k0 += kBlock) {
      const kc = Math.min(kBlock, k - k0);
      gemm(ap + 4 * k0 * aks, bp + 4 * k0 * n, cp, rows, n, kc, ais, aks, n, n, k0 === 0 ? 0 : 1);
    }
    if (k === 0) gemm(ap, bp, cp, rows, n, 0, ais, aks, n, n, 0);
  };
  if (batchB === 1 && !transposeA) {
    product(pa, pb, pc, batchA * m);
  } else {
    const batch = Math.max(batchA, batchB);
    for (let i = 0; i < batch; i++) {
      const ao = batchA === 1 ? 0 : i * m * k;
      const bo = batchB === 1 ? 0 : i * k * n;
      product(pa + 4 * ao, pb + 4 * bo, pc + 4 * i * m * n, m);
    }
  }
  if (bRows !== p.b) backend.disposeData(bRows.dataId);
}

/** The GEMM BatchMatMul runs on: native OpenBLAS when built and on, else the SIMD kernel. */
function gemmEngine(backend: BackendWasm): { blas: NativeKernels } | { kernels: SimdKernels } | undefined {
  if (!enabled) return undefined;
  const blas = heap(backend) ? nativeKernels() : undefined;
  if (blas) return { blas };
  const kernels = simd(backend);
  return kernels && { kernels };
}

/**
 * Every float32 BatchMatMul whose operands share a batch, or broadcast a single matrix, runs on
 * our GEMM; the stock kernel takes the rest (and words shape errors).
 */
function batchMatMul(args: Parameters<KernelFunc>[0]): TensorInfo {
  const stock = stockMatMul!.kernelFunc as KernelFunc;
  const backend = args.backend as BackendWasm;
  const engine = gemmEngine(backend);
  const { a, b } = args.inputs as { a: TensorInfo; b: TensorInfo };
  const { transposeA, transposeB } = args.attrs as { transposeA: boolean; transposeB: boolean };
  const batchA = size(a.shape.slice(0, -2));
  const batchB = size(b.shape.slice(0, -2));
  const sameBatch = batchA === batchB && a.shape.length === b.shape.length && a.shape.slice(0, -2).every((d, i) => d === b.shape[i]);
  if (!engine || a.dtype !== 'float32' || b.dtype !== 'float32' || !(sameBatch || batchA === 1 || batchB === 1)) {
    return stock(args) as TensorInfo;
  }
  const ar = a.shape.length;
  const br = b.shape.length;
  const m = transposeA ? a.shape[ar - 1] : a.shape[ar - 2];
  const k = transposeA ? a.shape[ar - 2] : a.shape[ar - 1];
  const n = transposeB ? b.shape[br - 2] : b.shape[br - 1];
  const kb = transposeB ? b.shape[br - 1] : b.shape[br - 2];
  if (k !== kb) return stock(args) as TensorInfo;
  const outShape = [...tf.broadcast_util.assertAndGetBroadcastShape(a.shape.slice(0, -2), b.shape.slice(0, -2)), m, n];
  const out = backend.makeOutput(outShape, 'float32');
  const product: Product = { a, b, transposeA, transposeB, m, n, k, batchA, batchB, out };
  if ('blas' in engine) nativeProduct(backend, engine.blas, product);
  else simdProduct(backend, engine.kernels, product);
  return out;
}

/** shape padded with leading 1s to rank 4. */
function rank4(shape: readonly number[]): number[] {
  return [...new Array(4 - shape.length).fill(1), ...shape];
}

/** Element strides of a contiguous tensor of `shape` read at the broadcast shape `out`: 0 where it broadcasts. */
function broadcastStrides(shape: number[], out: number[]): number[] {
  const strides = new Array(4).fill(0);
  let s = 1;
  for (let i = 3; i >= 0; i--) {
    strides[i] = shape[i] === 1 && out[i] !== 1 ? 0 : s;
    s *= shape[i];
  }
  return strides;
}

/**
 * A broadcasting float32 Multiply (RoPE's x * cos over heads, and its gradient) on the native
 * kernels: stock wasm walks a broadcast element by element, several times slower than its
 * same-shape product, which it keeps.
 */
function multiply(args: Parameters<KernelFunc>[0]): TensorInfo {
  const backend = args.backend as BackendWasm;
  const { a, b } = args.inputs as { a: TensorInfo; b: TensorInfo };
  const native = enabled && heap(backend) ? nativeKernels() : undefined;
  const same = tf.util.arraysEqual(a.shape, b.shape);
  if (!native || same || a.dtype !== 'float32' || b.dtype !== 'float32' || a.shape.length > 4 || b.shape.length > 4) {
    return (stockMultiply!.kernelFunc as KernelFunc)(args) as TensorInfo;
  }
  const outShape = tf.broadcast_util.assertAndGetBroadcastShape(a.shape, b.shape);
  const out = backend.makeOutput(outShape, 'float32');
  const shape = rank4(outShape);
  const memory = heap(backend)!.buffer as ArrayBuffer;
  native.mulBroadcast(memory, address(backend, a), address(backend, b), address(backend, out), ...shape, ...broadcastStrides(rank4(a.shape), shape), ...broadcastStrides(rank4(b.shape), shape));
  return out;
}

/**
 * A float32 Transpose that keeps the last axis (moving attention heads: [B, T, H, hd] <->
 * [B, H, T, hd]) as row copies on the native kernels; stock wasm moves elements one by one.
 */
function transpose(args: Parameters<KernelFunc>[0]): TensorInfo {
  const backend = args.backend as BackendWasm;
  const { x } = args.inputs as { x: TensorInfo };
  const { perm } = args.attrs as { perm: number[] };
  const rank = x.shape.length;
  const native = enabled && heap(backend) ? nativeKernels() : undefined;
  if (!native || x.dtype !== 'float32' || rank < 2 || rank > 4 || perm[rank - 1] !== rank - 1) {
    return (stockTranspose!.kernelFunc as KernelFunc)(args) as TensorInfo;
  }
  const out = backend.makeOutput(perm.map((p) => x.shape[p]), 'float32');
  // Padded to rank 4, axes shift by the padding; the last stays last.
  const pad = 4 - rank;
  const p3 = [...Array.from({ length: pad }, (_, i) => i), ...perm.slice(0, -1).map((p) => p + pad)];
  const [d0, d1, d2, d3] = rank4(x.shape);
  native.permute(heap(backend)!.buffer as ArrayBuffer, address(backend, x), address(backend, out), d0, d1, d2, d3, p3[0], p3[1], p3[2]);
  return out;
}

/** dx = y * (dy - sum(dy * y)) along the last axis, in one SIMD kernel. */
function softmaxGrad(args: Parameters<KernelFunc>[0]): TensorInfo {
  const backend = args.backend as BackendWasm;
  const { dy, y } = args.inputs as { dy: TensorInfo; y: TensorInfo };
  const cols = y.shape[y.shape.length - 1];
  const out = backend.makeOutput(y.shape, 'float32');
  simd(backend)!.softmaxGrad(address(backend, dy), address(backend, y), address(backend, out), size(y.shape) / cols, cols);
  return out;
}

const SOFTMAX_GRAD = 'LisaSoftmaxGrad';

const softmaxGradConfig: tf.GradConfig = {
  kernelName: 'Softmax',
  outputsToSave: [true],
  gradFunc: (dy, saved, attrs) => {
    const [y] = saved;
    const lastAxis = (attrs.dim as number) === -1 || (attrs.dim as number) === y.rank - 1;
    if (!active() || !lastAxis || !simd(tf.backend() as BackendWasm)) return stockSoftmaxGrad!.gradFunc(dy, saved, attrs);
    return { logits: () => tf.engine().runKernel(SOFTMAX_GRAD, { dy: dy as tf.Tensor, y }) as tf.Tensor };
  },
};

function swapLast(x: tf.Tensor): tf.Tensor {
  const perm = x.shape.map((_, i) => i);
  [perm[x.rank - 2], perm[x.rank - 1]] = [perm[x.rank - 1], perm[x.rank - 2]];
  return tf.transpose(x, perm);
}

/**
 * The products of the gradient in the forms the SIMD kernel runs best: a transposed left operand
 * is free (a stride), a transposed right operand is made an explicit copy here. OpenBLAS takes
 * both transposes as flags, as upstream's gradient writes them.
 */
const batchMatMulGrad: tf.GradConfig = {
  kernelName: 'BatchMatMul',
  inputsToSave: ['a', 'b'],
  gradFunc: (dy, saved, attrs) => {
    if (!active() || nativeActive()) return stockMatMulGrad!.gradFunc(dy, saved, attrs);
    const [a, b] = saved;
    const g = dy as tf.Tensor;
    const { transposeA, transposeB } = attrs as unknown as { transposeA: boolean; transposeB: boolean };
    if (!transposeA && !transposeB) {
      return { a: () => tf.matMul(g, swapLast(b)), b: () => tf.matMul(a, g, true, false) };
    }
    if (!transposeA && transposeB) {
      return { a: () => tf.matMul(g, b), b: () => tf.matMul(g, a, true, false) };
    }
    if (transposeA && !transposeB) {
      return { a: () => tf.matMul(b, swapLast(g)), b: () => tf.matMul(a, g) };
    }
    return { a: () => tf.matMul(b, swapLast(g), true, false), b: () => tf.matMul(g, swapLast(a), true, false) };
  },
};

/** Registers `kernelFunc` in place of wasm's kernel `name`, returning the stock one it wraps. */
function replaceKernel(name: string, kernelFunc: unknown): tf.KernelConfig {
  const stock = tf.getKernel(name, 'wasm');
  if (!stock) throw new Error(`tfjs-backend-wasm registered no ${name} kernel`);
  tf.unregisterKernel(name, 'wasm');
  tf.registerKernel({ ...stock, kernelFunc: kernelFunc as tf.KernelFunc });
  return stock;
}

/** Idempotent; call after the wasm backend is registered (initEngine does). */
export function installWasmOverrides(): void {
  if (installed) return;
  installed = true;
  if (!tf.getKernel('UnsortedSegmentSum', 'wasm')) {
    tf.registerKernel({ kernelName: 'UnsortedSegmentSum', backendName: 'wasm', kernelFunc: unsortedSegmentSum as tf.KernelFunc });
  }
  stockIdentity = replaceKernel('Identity', identity);
  stockCast = replaceKernel('Cast', cast);
  stockMultiply = replaceKernel('Multiply', multiply);
  stockTranspose = replaceKernel('Transpose', transpose);
  stockSplitV = replaceKernel('SplitV', splitV);
  stockGather = replaceKernel('GatherV2', gatherV2);
  stockOneHot = replaceKernel('OneHot', oneHot);
  stockMatMul = replaceKernel('BatchMatMul', batchMatMul);
  stockMatMulGrad = tf.getGradient('BatchMatMul')!;
  tf.unregisterGradient('BatchMatMul');
  tf.registerGradient(batchMatMulGrad);
  tf.registerKernel({ kernelName: SOFTMAX_GRAD, backendName: 'wasm', kernelFunc: softmaxGrad as tf.KernelFunc });
  stockSoftmaxGrad = tf.getGradient('Softmax')!;
  tf.unregisterGradient('Softmax');
  tf.registerGradient(softmaxGradConfig);
}
