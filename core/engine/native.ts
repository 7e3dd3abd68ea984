/**
 * The optional native kernels (native/, built by `npm run build:native`): OpenBLAS's sgemm and
 * fused training kernels, run on the wasm heap in place. One core of this kind of machine does
 * ~5x the wasm SIMD GEMM's rate with OpenBLAS (FMA, 256-bit vectors, packed panels), and
 * OpenBLAS uses every core. Absent (no compiler, no OpenBLAS, another platform), the wasm
 * kernels run and the engine says why.
 */
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

/** Addresses are bytes into `heap`; sizes, leading dimensions and strides are in elements. */
export interface NativeKernels {
  /** For i < batch: C_i = op(A_i) op(B_i) + beta C_i, row-major; a batch stride of 0 broadcasts. */
  gemm(
    heap: ArrayBuffer,
    transA: number,
    transB: number,
    m: number,
    n: number,
    k: number,
    a: number,
    lda: number,
    b: number,
    ldb: number,
    beta: number,
    c: number,
    ldc: number,
    batch: number,
    strideA: number,
    strideB: number,
    strideC: number,
  ): void;
  /** AdamW on n values into pOut, mOut, vOut; the formula of core/optim/adamw.ts, bitwise. */
  adamw(
    heap: ArrayBuffer,
    p: number,
    m: number,
    v: number,
    g: number,
    pOut: number,
    mOut: number,
    vOut: number,
    n: number,
    clip: number,
    beta1: number,
    oneMinusBeta1: number,
    beta2: number,
    oneMinusBeta2: number,
    bc2Sqrt: number,
    eps: number,
    decay: number,
    stepSize: number,
  ): void;
  /** nn.ts's causalAttention: q [B, H, T, hd], k and v [B, KV, S, hd] -> out [B, T, H, hd]. */
  attention(heap: ArrayBuffer, q: number, k: number, v: number, out: number, b: number, h: number, kv: number, t: number, s: number, hd: number, scale: number): void;
  /** Its gradient: dout [B, T, H, hd] -> dq [B, H, T, hd], dk and dv [B, KV, S, hd]. */
  attentionGrad(
    heap: ArrayBuffer,
    q: number,
    k: number,
    v: number,
    dout: number,
    dq: number,
    dk: number,
    dv: number,
    b: number,
    h: number,
    kv: number,
    t: number,
    s: number,
    hd: number,
    scale: number,
  ): void;
  /** RMSNorm of x [N, D] by w [D] into y, and its gradient into dx [N, D] and dw [D]. */
  rmsNorm(heap: ArrayBuffer, x: number, w: number, y: number, n: number, d: number, eps: number): void;
  rmsNormGrad(heap: ArrayBuffer, x: number, w: number, dy: number, dx: number, dw: number, n: number, d: number, eps: number): void;
  /** LayerNorm of x [N, D] by w, b [D] into y, and its gradient into dx [N, D], dw and db [D]. */
  layerNorm(heap: ArrayBuffer, x: number, w: number, b: number, y: number, n: number, d: number, eps: number): void;
  layerNormGrad(heap: ArrayBuffer, x: number, w: number, dy: number, dx: number, dw: number, db: number, n: number, d: number, eps: number): void;
  /** GPT-2's Conv1D: out [N, out] = x [N, in] w [in, out] + b; and the column sums of x [rows, cols]. */
  conv1d(heap: ArrayBuffer, x: number, w: number, b: number, out: number, n: number, inputs: number, outputs: number): void;
  columnSum(heap: ArrayBuffer, x: number, out: number, rows: number, cols: number): void;
  /**
   * out = a * b over a 4-D shape, each operand at its own strides (0 where it broadcasts; the
   * last 1 or 0); and x [d0, d1, d2, d3] with its first three axes permuted (the last stays).
   */
  mulBroadcast(heap: ArrayBuffer, a: number, b: number, out: number, ...shapeThenStridesAThenStridesB: number[]): void;
  permute(heap: ArrayBuffer, x: number, out: number, d0: number, d1: number, d2: number, d3: number, p0: number, p1: number, p2: number): void;
  /** Sum of squares of n values. */
  sumSquares(heap: ArrayBuffer, x: number, n: number): number;
  /** GPT-2's gelu_new on n values, and its gradient. */
  gelu(heap: ArrayBuffer, x: number, y: number, n: number): void;
  geluGrad(heap: ArrayBuffer, x: number, dy: number, dx: number, n: number): void;
  /** y = x sigmoid(x) on n values, and its gradient. */
  silu(heap: ArrayBuffer, x: number, y: number, n: number): void;
  siluGrad(heap: ArrayBuffer, x: number, dy: number, dx: number, n: number): void;
  /** sum over rows of weight (logsumexp(row) - row[target]) for logits [N, V], int32 targets [N]. */
  crossEntropy(heap: ArrayBuffer, logits: number, targets: number, weights: number, n: number, v: number): number;
  /** dlogits = dy weight (softmax(row) - onehot(target)). */
  crossEntropyGrad(heap: ArrayBuffer, logits: number, targets: number, weights: number, dy: number, dlogits: number, n: number, v: number): void;
  setThreads(n: number): void;
  threads(): number;
  /** OpenBLAS's build configuration and the core it detected. */
  config(): string;
}

const ADDON = fileURLToPath(new URL('../../native/build/lisa_native.node', import.meta.url));

let loaded: { kernels: NativeKernels } | { reason: string } | undefined;
let on = true;

function load(): { kernels: NativeKernels } | { reason: string } {
  try {
    return { kernels: createRequire(import.meta.url)(ADDON) as NativeKernels };
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'MODULE_NOT_FOUND') return { reason: `${ADDON} not built (npm run build:native)` };
    return { reason: `${ADDON} did not load: ${e.message.split('\n')[0]}` };
  }
}

/** Uses the native kernels when they are built (the default), or never (benchmarks, tests). */
export function setNativeKernels(use: boolean): void {
  on = use;
}

/** The addon, loaded once; undefined when it is turned off, not built or cannot load. */
export function nativeKernels(): NativeKernels | undefined {
  if (!on) return undefined;
  loaded ??= load();
  return 'kernels' in loaded ? loaded.kernels : undefined;
}

/** Which kernels the wasm backend runs, in words: OpenBLAS's description, or why not native. */
export function nativeKernelsStatus(): string {
  loaded ??= load();
  if (!('kernels' in loaded)) return `wasm SIMD kernels; no native kernels: ${loaded.reason}`;
  const k = loaded.kernels;
  return `native kernels${on ? '' : ' (turned off)'} on OpenBLAS (${k.config()}, ${k.threads()} threads)`;
}
