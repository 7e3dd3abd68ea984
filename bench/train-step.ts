/**
 * Training-step throughput: forward + backward + AdamW update of the trained units
 * (bench/step.ts) on the engine's backend (wasm here), in three variants measured in one process:
 * "stock" (tfjs's own kernels and gradient formulas; the wasm UnsortedSegmentSum/OneHot fixes
 * stay, stock cannot train without them), "simd" (the engine's overrides on its wasm SIMD GEMM)
 * and "native" (the same with the native OpenBLAS GEMM, when built: npm run build:native).
 *
 *   npx tsx bench/train-step.ts [--backend wasm|cpu|tensorflow] [--steps N] [--only stock|simd|native]
 *
 * Reports tokens/s and achieved GFLOP/s, counting 6 x params x tokens + 12 x layers x heads x
 * headDim x seq x tokens for attention (nanoGPT's estimate_mfu; a LISA row, which trains only
 * embed, head and two blocks, counts weight gradients for those only), against the same
 * backend's raw 1024x1024x1024 matmul rate. Goal: on the 5M config, ours reaches >= 50% of it.
 * Prints a table and writes bench/results/train-step.json. Timings are never asserted.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import { initEngine, nativeKernelsStatus, setNativeKernels, setWasmOverrides, wasmOverridesEnabled, type BackendName } from '../core/engine/index.ts';
import { CONFIGS, flopsPerStep, paramCount, type StepConfig } from './configs.ts';
import { trainingStep } from './step.ts';

const { values: args } = parseArgs({
  options: {
    backend: { type: 'string' },
    steps: { type: 'string', default: '5' },
    only: { type: 'string' },
  },
});
const STEPS = Number(args.steps);

/** Median wall time of `reps` calls after `warmup` calls, in ms. */
function time(f: () => void, warmup: number, reps: number): number {
  for (let i = 0; i < warmup; i++) f();
  const ms: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    f();
    ms.push(performance.now() - t0);
  }
  return ms.sort((a, b) => a - b)[Math.floor(ms.length / 2)];
}

function matmulGflops(): number {
  const a = tf.randomNormal([1024, 1024]);
  const b = tf.randomNormal([1024, 1024]);
  const ms = time(() => tf.tidy(() => void tf.matMul(a, b).dataSync()), 1, 5);
  tf.dispose([a, b]);
  return (2 * 1024 ** 3) / ms / 1e6;
}

function trainedLabel(c: StepConfig): string {
  return c.layers ? `embed+head+layers ${c.layers.join(',')}` : 'all';
}

function trainStepMs(c: StepConfig): { ms: number; loss: number; trained: number } {
  const t = trainingStep(c);
  let loss = 0;
  const ms = time(() => void (loss = t.step()), 2, STEPS);
  t.dispose();
  return { ms, loss, trained: t.trained };
}

const backend = await initEngine({ backend: args.backend as BackendName | undefined, log: (m) => console.log(m) });
const variants = (['stock', 'simd', 'native'] as const).filter((v) => !args.only || args.only === v);

/**
 * The yardstick is the backend's own best case (on wasm: XNNPACK, 2-D, untransposed), so it is
 * taken with the overrides off. Machines here are shared: it is re-measured around every
 * measurement and each row is set against the mean of the two around it.
 */
function yardstick(): number {
  const was = wasmOverridesEnabled();
  setWasmOverrides(false);
  const g = matmulGflops();
  setWasmOverrides(was);
  return g;
}

const rows: Record<string, unknown>[] = [];
for (const c of CONFIGS) {
  for (const variant of variants) {
    setWasmOverrides(variant !== 'stock');
    setNativeKernels(variant === 'native');
    const before = yardstick();
    const { ms, loss, trained } = trainStepMs(c);
    const mm = (before + yardstick()) / 2;
    const tokens = c.batch * c.seq;
    const gflops = flopsPerStep(c, trained) / ms / 1e6;
    rows.push({
      variant,
      config: c.name,
      params: paramCount(c.spec),
      trained: trainedLabel(c),
      batch: c.batch,
      seq: c.seq,
      stepMs: Number(ms.toFixed(1)),
      tokensPerSec: Math.round((tokens / ms) * 1000),
      gflops: Number(gflops.toFixed(2)),
      matmulGflops: Number(mm.toFixed(2)),
      ofMatmul: Number((gflops / mm).toFixed(3)),
      loss: Number(loss.toFixed(4)),
    });
  }
}
setWasmOverrides(true);
const gemms: Record<string, number> = {};
for (const native of [false, true]) {
  setNativeKernels(native);
  gemms[native ? 'native' : 'simd'] = matmulGflops();
}

console.log(`\ntrain step on ${backend} (tfjs ${tf.version_core}), median of ${STEPS} steps after 2 warmup; kernels: ${nativeKernelsStatus()}`);
console.log(`raw 1024^3 matmul with the engine's override: ${Object.entries(gemms).map(([k, v]) => `${k} ${v.toFixed(2)}`).join(', ')} GFLOP/s`);
console.table(rows);
await mkdir(new URL('./results/', import.meta.url), { recursive: true });
await writeFile(
  new URL('./results/train-step.json', import.meta.url),
  JSON.stringify({ backend, tfjs: tf.version_core, steps: STEPS, date: new Date().toISOString(), overrideMatmulGflops: gemms, rows }, null, 2),
);
