/**
 * Fused training kernels on the native addon (native.ts), registered for the wasm backend: one
 * pass over memory and one tfjs kernel where the reference composition takes several. Each op
 * here answers undefined when it cannot run (another backend, overrides off, no native addon),
 * and its caller then runs the reference composition, which the tests hold it to.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { address, heap, size } from './heap.ts';
import { nativeKernels } from './native.ts';
import { nativeActive } from './wasm.ts';

type KernelArgs = { inputs: tf.NamedTensorInfoMap; backend: tf.KernelBackend; attrs?: tf.NamedAttrMap };

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

function adamw({ inputs, backend, attrs }: KernelArgs): tf.TensorInfo[] {
  const wasm = backend as BackendWasm;
  const { p, m, v, g } = inputs as Record<'p' | 'm' | 'v' | 'g', tf.TensorInfo>;
  const s = attrs as unknown as AdamWScalars;
  const outs = [p, m, v].map((t) => wasm.makeOutput(t.shape, 'float32'));
  const [po, mo, vo] = outs.map((t) => address(wasm, t));
  nativeKernels()!.adamw(
    heap(wasm)!.buffer as ArrayBuffer,
    address(wasm, p),
    address(wasm, m),
    address(wasm, v),
    address(wasm, g),
    po,
    mo,
    vo,
    size(p.shape),
    s.clip,
    s.beta1,
    s.oneMinusBeta1,
    s.beta2,
    s.oneMinusBeta2,
    s.bc2Sqrt,
    s.eps,
    s.decay,
    s.stepSize,
  );
  return outs;
}

/** [p', m', v'] of one AdamW update in one pass, or undefined where the fused kernel cannot run. */
export function fusedAdamW(p: tf.Tensor, m: tf.Tensor, v: tf.Tensor, g: tf.Tensor, s: AdamWScalars): [tf.Tensor, tf.Tensor, tf.Tensor] | undefined {
  if (!nativeActive()) return undefined;
  return tf.engine().runKernel(ADAMW, { p, m, v, g }, s as unknown as tf.NamedAttrMap) as unknown as [tf.Tensor, tf.Tensor, tf.Tensor];
}

/** Idempotent; initEngine calls it once the wasm backend is registered. */
export function installFusedKernels(): void {
  if (tf.getKernel(ADAMW, 'wasm')) return;
  tf.registerKernel({ kernelName: ADAMW, backendName: 'wasm', kernelFunc: adamw as unknown as tf.KernelFunc });
}
