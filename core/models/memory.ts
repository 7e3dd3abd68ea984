/**
 * How much engine memory training a model takes, estimated before any weight enters the engine,
 * and the refusal when that exceeds the backend's heap (wasm: 4 GiB, the limit of 32-bit
 * WebAssembly memory). The estimate counts, in float32: every weight; for each trained tensor its
 * gradient and AdamW m and v; and the activations a step keeps for backprop
 * (per position and layer ~ 10 D + 3 F + 2 H S floats; the logits and their softmax and gradient,
 * 3 V per position). bench/models.ts compares it with measured peaks.
 */
import { LisaError } from '../errors.ts';
import type { ModelSpec } from './config.ts';
import { tensorShapes, unitOf } from './units.ts';

export const WASM_HEAP_BYTES = 4 * 1024 ** 3;
/**
 * What a step may plan to use of it: the rest is headroom for transient buffers and allocator
 * fragmentation the estimate does not count. Measured (bench/models.ts, batch 1x64): SmolLM2-135M
 * full fine-tuning, estimate 2.12 GiB, trains (engine peak 2.0 GiB); a Qwen2.5-0.5B LISA step,
 * estimate 3.95 GiB, faults inside a wasm kernel ("memory access out of bounds").
 */
export const WASM_USABLE_BYTES = 0.85 * WASM_HEAP_BYTES;

export interface TrainingPlan {
  /** units whose base tensors a step trains (LISA: embed, head and γ layers; full: all; LoRA: none) */
  units: readonly string[];
  /** LoRA: the adapters' values, held and trained besides the frozen base */
  adapterValues?: number;
  batchSize: number;
  seqLen: number;
}

export function trainingBytes(spec: ModelSpec, plan: TrainingPlan): number {
  const trained = new Set(plan.units);
  let weights = 0;
  let trainedValues = 0;
  for (const [name, shape] of tensorShapes(spec)) {
    const n = shape.reduce((a, b) => a * b, 1);
    weights += n;
    if (trained.has(unitOf(spec, name))) trainedValues += n;
  }
  weights += plan.adapterValues ?? 0;
  trainedValues += plan.adapterValues ?? 0;
  const positions = plan.batchSize * plan.seqLen;
  const perLayer = 10 * spec.dim + 3 * spec.hiddenDim + 2 * spec.nHeads * plan.seqLen;
  const activations = positions * (spec.nLayers * perLayer + 3 * spec.vocabSize);
  return 4 * (weights + 3 * trainedValues + activations);
}

export class ModelTooBigError extends LisaError {
  constructor(what: string, bytes: number, backend: string, limit: number) {
    const gib = (b: number) => `${(b / 1024 ** 3).toFixed(2)} GiB`;
    super(
      'MODEL_TOO_BIG_FOR_BACKEND',
      `${what}: training needs about ${gib(bytes)} of engine memory, more than the ${gib(limit)} usable of the ${backend} backend's ${gib(WASM_HEAP_BYTES)} heap; ` +
        'run it on the tensorflow backend (LISA_BACKEND=tensorflow, tfjs-node), or train fewer units or shorter batches',
      { bytes, backend, limit },
    );
  }
}

/** Throws ModelTooBigError when `plan` cannot fit the backend's heap; backends without a fixed heap always pass. */
export function checkTrainingFits(spec: ModelSpec, plan: TrainingPlan, backend: string, what: string): void {
  if (backend !== 'wasm') return;
  const bytes = trainingBytes(spec, plan);
  if (bytes > WASM_USABLE_BYTES) throw new ModelTooBigError(what, bytes, backend, WASM_USABLE_BYTES);
}
