/**
 * Fused training kernels on the native addon (native.ts), registered for the wasm backend: one
 * pass over memory and one tfjs kernel (forward, and one for the gradient) where the reference
 * composition takes several. Each op here answers undefined when it cannot run (another backend,
 * overrides off, no native addon); its caller then runs the reference composition (nn.ts,
 * core/optim/adamw.ts), which the tests hold it to, with finite differences for the gradients.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { address, heap, size } from './heap.ts';
import { nativeKernels, type NativeKernels } from './native.ts';
import { nativeActive } from './wasm.ts';

type KernelArgs = { inputs: tf.NamedTensorInfoMap; backend: tf.KernelBackend; attrs?: tf.NamedAttrMap };
type Info = tf.TensorInfo;

/**
 * Runs `body` with the native kernels, the heap and a tensor's address (taken after every
 * makeOutput: an allocation may grow, so replace, the heap's buffer).
 */
function onHeap<T>(backend: tf.KernelBackend, body: (k: NativeKernels, heap: ArrayBuffer, at: (t: Info) => number) => T): T {
  const wasm = backend as BackendWasm;
  return body(nativeKernels()!, heap(wasm)!.buffer as ArrayBuffer, (t) => address(wasm, t));
}

function outputs(backend: tf.KernelBackend, ...like: Info[]): Info[] {
  return like.map((t) => (backend as BackendWasm).makeOutput(t.shape, 'float32'));
}

/** The float32 constants of one AdamW update (core/optim/adamw.ts). */
export interface AdamWScalars {
  clip: number;
  beta1: number;
  oneMinusBeta1: number;
  beta2: number;
  oneMinusBeta2: number;
  bc2Sqrt: number;
  eps: number;
  decay: number;
  stepSize: number;
}

const ADAMW = 'LisaAdamW';

function adamw({ inputs, backend, attrs }: KernelArgs): Info[] {
  const { p, m, v, g } = inputs as Record<'p' | 'm' | 'v' | 'g', Info>;
  const s = attrs as unknown as AdamWScalars;
  const outs = outputs(backend, p, m, v);
  onHeap(backend, (k, heap, at) =>
    k.adamw(heap, at(p), at(m), at(v), at(g), ...(outs.map(at) as [number, number, number]), size(p.shape), s.clip, s.beta1, s.oneMinusBeta1, s.beta2, s.oneMinusBeta2, s.bc2Sqrt, s.eps, s.decay, s.stepSize),
  );
  return outs;
}

/** [p', m', v'] of one AdamW update in one pass, or undefined where the fused kernel cannot run. */
export function fusedAdamW(p: tf.Tensor, m: tf.Tensor, v: tf.Tensor, g: tf.Tensor, s: AdamWScalars): [tf.Tensor, tf.Tensor, tf.Tensor] | undefined {
  if (!nativeActive()) return undefined;
  return tf.engine().runKernel(ADAMW, { p, m, v, g }, s as unknown as tf.NamedAttrMap) as unknown as [tf.Tensor, tf.Tensor, tf.Tensor];
}

const ATTENTION = 'LisaCausalAttention';
const ATTENTION_GRAD = 'LisaCausalAttentionGrad';

/** B, H, KV, T, S, hd of q [B, H, T, hd] against k [B, KV, S, hd]. */
function attentionDims(q: Info, k: Info): [number, number, number, number, number, number] {
  const [b, h, t, hd] = q.shape;
  return [b, h, k.shape[1], t, k.shape[2], hd];
}

function attention({ inputs, backend }: KernelArgs): Info {
  const { q, k, v } = inputs as Record<'q' | 'k' | 'v', Info>;
  const [b, h, kv, t, s, hd] = attentionDims(q, k);
  const out = (backend as BackendWasm).makeOutput([b * t, h * hd], 'float32');
  onHeap(backend, (n, heap, at) => n.attention(heap, at(q), at(k), at(v), at(out), b, h, kv, t, s, hd, 1 / Math.sqrt(hd)));
  return out;
}

function attentionGrad({ inputs, backend }: KernelArgs): Info[] {
  const { q, k, v, dy } = inputs as Record<'q' | 'k' | 'v' | 'dy', Info>;
  const [b, h, kv, t, s, hd] = attentionDims(q, k);
  const outs = outputs(backend, q, k, v);
  onHeap(backend, (n, heap, at) => n.attentionGrad(heap, at(q), at(k), at(v), at(dy), ...(outs.map(at) as [number, number, number]), b, h, kv, t, s, hd, 1 / Math.sqrt(hd)));
  return outs;
}

/**
 * Causal attention (nn.ts's causalAttention) in one kernel -> [B*T, H*hd]: per head, the scores of
 * a block of queries against the keys it can see, softmax, times v, written straight into the
 * heads-concatenated layout; the gradient recomputes the probabilities instead of keeping them.
 */
export function fusedCausalAttention(q: tf.Tensor4D, k: tf.Tensor4D, v: tf.Tensor4D): tf.Tensor2D | undefined {
  if (!nativeActive() || [q, k, v].some((x) => x.dtype !== 'float32')) return undefined;
  return tf.engine().runKernel(ATTENTION, { q, k, v }) as tf.Tensor2D;
}

const RMS_NORM = 'LisaRmsNorm';
const RMS_NORM_GRAD = 'LisaRmsNormGrad';

function rmsNormKernel({ inputs, backend, attrs }: KernelArgs): Info {
  const { x, w } = inputs as Record<'x' | 'w', Info>;
  const [out] = outputs(backend, x);
  const [n, d] = x.shape;
  onHeap(backend, (k, heap, at) => k.rmsNorm(heap, at(x), at(w), at(out), n, d, (attrs as { eps: number }).eps));
  return out;
}

function rmsNormGradKernel({ inputs, backend, attrs }: KernelArgs): Info[] {
  const { x, w, dy } = inputs as Record<'x' | 'w' | 'dy', Info>;
  const outs = outputs(backend, x, w);
  const [n, d] = x.shape;
  onHeap(backend, (k, heap, at) => k.rmsNormGrad(heap, at(x), at(w), at(dy), at(outs[0]), at(outs[1]), n, d, (attrs as { eps: number }).eps));
  return outs;
}

/** RMSNorm of x [N, D] by w [D] in one kernel (its gradient in one more). */
export function fusedRmsNorm(x: tf.Tensor2D, w: tf.Tensor, eps: number): tf.Tensor2D | undefined {
  if (!nativeActive() || x.dtype !== 'float32' || w.rank !== 1) return undefined;
  return tf.engine().runKernel(RMS_NORM, { x, w }, { eps }) as tf.Tensor2D;
}

const LAYER_NORM = 'LisaLayerNorm';
const LAYER_NORM_GRAD = 'LisaLayerNormGrad';

function layerNormKernel({ inputs, backend, attrs }: KernelArgs): Info {
  const { x, w, b } = inputs as Record<'x' | 'w' | 'b', Info>;
  const [out] = outputs(backend, x);
  const [n, d] = x.shape;
  onHeap(backend, (k, heap, at) => k.layerNorm(heap, at(x), at(w), at(b), at(out), n, d, (attrs as { eps: number }).eps));
  return out;
}

function layerNormGradKernel({ inputs, backend, attrs }: KernelArgs): Info[] {
  const { x, w, b, dy } = inputs as Record<'x' | 'w' | 'b' | 'dy', Info>;
  const outs = outputs(backend, x, w, b);
  const [n, d] = x.shape;
  onHeap(backend, (k, heap, at) => k.layerNormGrad(heap, at(x), at(w), at(dy), ...(outs.map(at) as [number, number, number]), n, d, (attrs as { eps: number }).eps));
  return outs;
}

/** LayerNorm of x [N, D] by w, b [D] in one kernel (its gradient in one more). */
export function fusedLayerNorm(x: tf.Tensor2D, w: tf.Tensor, b: tf.Tensor, eps: number): tf.Tensor2D | undefined {
  if (!nativeActive() || x.dtype !== 'float32' || w.rank !== 1 || b.rank !== 1) return undefined;
  return tf.engine().runKernel(LAYER_NORM, { x, w, b }, { eps }) as tf.Tensor2D;
}

const CONV1D = 'LisaConv1d';
const COLUMN_SUM = 'LisaColumnSum';

function conv1dKernel({ inputs, backend }: KernelArgs): Info {
  const { x, w, b } = inputs as Record<'x' | 'w' | 'b', Info>;
  const [n, ins] = x.shape;
  const outs = w.shape[1];
  const out = (backend as BackendWasm).makeOutput([n, outs], 'float32');
  onHeap(backend, (k, heap, at) => k.conv1d(heap, at(x), at(w), at(b), at(out), n, ins, outs));
  return out;
}

function columnSumKernel({ inputs, backend }: KernelArgs): Info {
  const { x } = inputs as { x: Info };
  const [rows, cols] = x.shape;
  const out = (backend as BackendWasm).makeOutput([cols], 'float32');
  onHeap(backend, (k, heap, at) => k.columnSum(heap, at(x), at(out), rows, cols));
  return out;
}

/** x [N, in] w [in, out] + b [out] in one kernel (bias rows, then the GEMM accumulating onto them). */
export function fusedConv1d(x: tf.Tensor2D, w: tf.Tensor, b: tf.Tensor): tf.Tensor2D | undefined {
  if (!nativeActive() || [x, w, b].some((t) => t.dtype !== 'float32') || w.rank !== 2 || b.rank !== 1) return undefined;
  return tf.engine().runKernel(CONV1D, { x, w, b }) as tf.Tensor2D;
}

/** Elementwise activations: forward f(x) and gradient dy f'(x), each one pass. */
const ACTIVATIONS = {
  silu: { forward: 'LisaSilu', gradient: 'LisaSiluGrad', f: 'silu', df: 'siluGrad' },
  gelu: { forward: 'LisaGelu', gradient: 'LisaGeluGrad', f: 'gelu', df: 'geluGrad' },
} as const;

type Activation = keyof typeof ACTIVATIONS;

function activationKernel(a: Activation) {
  return ({ inputs, backend }: KernelArgs): Info => {
    const { x } = inputs as { x: Info };
    const [out] = outputs(backend, x);
    onHeap(backend, (k, heap, at) => k[ACTIVATIONS[a].f](heap, at(x), at(out), size(x.shape)));
    return out;
  };
}

function activationGradKernel(a: Activation) {
  return ({ inputs, backend }: KernelArgs): Info => {
    const { x, dy } = inputs as Record<'x' | 'dy', Info>;
    const [out] = outputs(backend, x);
    onHeap(backend, (k, heap, at) => k[ACTIVATIONS[a].df](heap, at(x), at(dy), at(out), size(x.shape)));
    return out;
  };
}

/** An activation (x sigmoid(x), or GPT-2's gelu_new) in one kernel. */
export function fusedActivation(a: Activation, x: tf.Tensor): tf.Tensor | undefined {
  if (!nativeActive() || x.dtype !== 'float32') return undefined;
  return tf.engine().runKernel(ACTIVATIONS[a].forward, { x }) as tf.Tensor;
}

/** sum(x^2) in one pass (a fixed order of float32 partial sums, then float64). */
export function fusedSumSquares(x: tf.Tensor): number | undefined {
  if (!nativeActive() || x.dtype !== 'float32') return undefined;
  return onHeap(tf.backend(), (k, heap, at) => k.sumSquares(heap, at(x), x.size));
}

const CROSS_ENTROPY = 'LisaCrossEntropy';
const CROSS_ENTROPY_GRAD = 'LisaCrossEntropyGrad';

function crossEntropyKernel({ inputs, backend }: KernelArgs): Info {
  const { logits, targets, weights } = inputs as Record<'logits' | 'targets' | 'weights', Info>;
  const wasm = backend as BackendWasm;
  const out = wasm.makeOutput([], 'float32');
  const [n, v] = logits.shape;
  const loss = onHeap(backend, (k, heap, at) => k.crossEntropy(heap, at(logits), at(targets), at(weights), n, v));
  wasm.typedArrayFromHeap(out)[0] = loss;
  return out;
}

function crossEntropyGradKernel({ inputs, backend }: KernelArgs): Info {
  const { logits, targets, weights, dy } = inputs as Record<'logits' | 'targets' | 'weights' | 'dy', Info>;
  const wasm = backend as BackendWasm;
  const [out] = outputs(backend, logits);
  const [n, v] = logits.shape;
  const scale = wasm.typedArrayFromHeap(dy)[0];
  onHeap(backend, (k, heap, at) => k.crossEntropyGrad(heap, at(logits), at(targets), at(weights), scale, at(out), n, v));
  return out;
}

/**
 * sum over rows of weights[i] * (logsumexp(logits[i]) - logits[i, targets[i]]) in one kernel, and
 * its gradient (softmax minus the one-hot, weighted) in one more; logits [N, V], int32 targets.
 */
export function fusedCrossEntropy(logits: tf.Tensor2D, targets: tf.Tensor1D, weights: tf.Tensor1D): tf.Scalar | undefined {
  if (!nativeActive() || logits.dtype !== 'float32' || targets.dtype !== 'int32') return undefined;
  return tf.engine().runKernel(CROSS_ENTROPY, { logits, targets, weights }) as tf.Scalar;
}

const run = (name: string, inputs: tf.NamedTensorMap, attrs?: tf.NamedAttrMap) => tf.engine().runKernel(name, inputs, attrs);

/**
 * Gradients of the fused kernels. Each computes every input's gradient in one kernel when called
 * (the tape then asks for them one by one, and they must exist outside its per-input scopes).
 */
const GRADIENTS: tf.GradConfig[] = [
  {
    kernelName: ATTENTION,
    inputsToSave: ['q', 'k', 'v'],
    gradFunc: (dy, [q, k, v]) => {
      const [dq, dk, dv] = run(ATTENTION_GRAD, { q, k, v, dy: dy as tf.Tensor }) as tf.Tensor[];
      return { q: () => dq, k: () => dk, v: () => dv };
    },
  },
  {
    kernelName: RMS_NORM,
    inputsToSave: ['x', 'w'],
    gradFunc: (dy, [x, w], attrs) => {
      const [dx, dw] = run(RMS_NORM_GRAD, { x, w, dy: dy as tf.Tensor }, attrs) as tf.Tensor[];
      return { x: () => dx, w: () => dw };
    },
  },
  {
    // Each product only when the tape asks for it: a frozen layer's weights get no gradient.
    kernelName: CONV1D,
    inputsToSave: ['x', 'w'],
    gradFunc: (dy, [x, w]) => ({
      x: () => tf.matMul(dy as tf.Tensor, w, false, true),
      w: () => tf.matMul(x, dy as tf.Tensor, true, false),
      b: () => run(COLUMN_SUM, { x: dy as tf.Tensor }) as tf.Tensor,
    }),
  },
  {
    kernelName: LAYER_NORM,
    inputsToSave: ['x', 'w', 'b'],
    gradFunc: (dy, [x, w, b], attrs) => {
      const [dx, dw, db] = run(LAYER_NORM_GRAD, { x, w, b, dy: dy as tf.Tensor }, attrs) as tf.Tensor[];
      return { x: () => dx, w: () => dw, b: () => db };
    },
  },
  ...Object.values(ACTIVATIONS).map(
    (a): tf.GradConfig => ({
      kernelName: a.forward,
      inputsToSave: ['x'],
      gradFunc: (dy, [x]) => ({ x: () => run(a.gradient, { x, dy: dy as tf.Tensor }) as tf.Tensor }),
    }),
  ),
  {
    kernelName: CROSS_ENTROPY,
    inputsToSave: ['logits', 'targets', 'weights'],
    gradFunc: (dy, [logits, targets, weights]) => ({
      logits: () => run(CROSS_ENTROPY_GRAD, { logits, targets, weights, dy: dy as tf.Tensor }) as tf.Tensor,
    }),
  },
];

const KERNELS: Record<string, (args: KernelArgs) => Info | Info[]> = {
  [ADAMW]: adamw,
  [ATTENTION]: attention,
  [ATTENTION_GRAD]: attentionGrad,
  [RMS_NORM]: rmsNormKernel,
  [RMS_NORM_GRAD]: rmsNormGradKernel,
  [CONV1D]: conv1dKernel,
  [COLUMN_SUM]: columnSumKernel,
  [LAYER_NORM]: layerNormKernel,
  [LAYER_NORM_GRAD]: layerNormGradKernel,
  ...Object.fromEntries(
    (Object.keys(ACTIVATIONS) as Activation[]).flatMap((a) => [
      [ACTIVATIONS[a].forward, activationKernel(a)],
      [ACTIVATIONS[a].gradient, activationGradKernel(a)],
    ]),
  ),
  [CROSS_ENTROPY]: crossEntropyKernel,
  [CROSS_ENTROPY_GRAD]: crossEntropyGradKernel,
};

/** Idempotent; initEngine calls it once the wasm backend is registered. */
export function installFusedKernels(): void {
  if (tf.getKernel(ADAMW, 'wasm')) return;
  for (const [kernelName, kernelFunc] of Object.entries(KERNELS)) {
    tf.registerKernel({ kernelName, backendName: 'wasm', kernelFunc: kernelFunc as unknown as tf.KernelFunc });
  }
  for (const g of GRADIENTS) tf.registerGradient(g);
}
