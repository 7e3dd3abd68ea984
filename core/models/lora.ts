/**
 * LoRA (Hu et al. 2021) on the block projections, as Hugging Face PEFT computes it
 * (peft/tuners/lora/layer.py, read for this): for a targeted module with input x [N, in],
 *   y = base(x) + ((dropout(x) · Aᵀ) · Bᵀ) · (alpha / r)        A [r, in], B [out, r]
 *   (core/models/model.ts applies alpha/r to the [N, r] product instead: the same map, less memory)
 * - init (PEFT's init_lora_weights=True): A ~ kaiming_uniform_(a=√5) = U(−1/√in, 1/√in), B = 0, so
 *   a fresh adapter leaves the model's outputs unchanged;
 * - dropout (nn.Dropout on the adapter's input only): each element kept with probability 1 − p and
 *   scaled by 1/(1 − p); the mask is a pure function of (seed, module, global step, micro-batch),
 *   so a resumed run draws the same masks;
 * - GPT-2's Conv1D stores W as [in, out] (PEFT's fan_in_fan_out): A and B keep the nn.Linear
 *   layout above and the merged weight is W + (alpha/r)·(B·A)ᵀ; for nn.Linear, W + (alpha/r)·B·A.
 * Adapter tensors are named `{module}.lora_A.weight` / `{module}.lora_B.weight` (PEFT's state-dict
 * names without the `base_model.model.` prefix) and belong to the unit of their module.
 */
import { rngFor } from '../lisa/rng.ts';
import type { Arch, ModelSpec } from './config.ts';
import { tensorShapes, unitOf } from './units.ts';

/** What `loraTargets` may name, per architecture: every linear layer of a block, in block order. */
const LLAMA_TARGETS = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'];
export const LORA_TARGETS: Readonly<Record<Arch, readonly string[]>> = {
  llama: LLAMA_TARGETS,
  mistral: LLAMA_TARGETS,
  qwen2: LLAMA_TARGETS,
  // Phi-3 fuses q, k, v and gate, up: PEFT adapts the fused projections by these names.
  phi3: ['qkv_proj', 'o_proj', 'gate_up_proj', 'down_proj'],
  // c_proj names both attn.c_proj and mlp.c_proj, as PEFT's suffix match does.
  gpt2: ['c_attn', 'c_proj', 'c_fc'],
};

export interface LoraConfig {
  rank: number;
  alpha: number;
  dropout: number;
  /** module names (last name component), a subset of LORA_TARGETS[arch] */
  targets: readonly string[];
  seed: number;
}

/** One adapted projection. */
export interface LoraModule {
  /** HF module name without `.weight`, e.g. model.layers.0.self_attn.q_proj */
  module: string;
  unit: string;
  inFeatures: number;
  outFeatures: number;
  /** GPT-2 Conv1D: the base weight is [in, out] */
  conv1d: boolean;
}

const SUFFIX = /\.lora_[AB]\.weight$/;
export const loraA = (module: string): string => `${module}.lora_A.weight`;
export const loraB = (module: string): string => `${module}.lora_B.weight`;

/** The module an adapter tensor belongs to, or null for a name that is not an adapter's. */
export function adapterModule(name: string): string | null {
  return SUFFIX.test(name) ? name.replace(SUFFIX, '') : null;
}

/** The unit that owns an adapter tensor: its module's unit. */
export function adapterUnit(spec: ModelSpec, name: string): string {
  return unitOf(spec, `${adapterModule(name) ?? name}.weight`);
}

/** The block projections `targets` selects, in checkpoint order. */
export function loraModules(spec: ModelSpec, targets: readonly string[]): LoraModule[] {
  const out: LoraModule[] = [];
  for (const [name, shape] of tensorShapes(spec)) {
    const m = /^(.+\.([a-z_]+))\.weight$/.exec(name);
    const unit = unitOf(spec, name);
    if (!m || shape.length !== 2 || !unit.startsWith('layers.') || !targets.includes(m[2])) continue;
    const conv1d = spec.arch === 'gpt2';
    out.push({ module: m[1], unit, inFeatures: conv1d ? shape[0] : shape[1], outFeatures: conv1d ? shape[1] : shape[0], conv1d });
  }
  return out;
}

/** Every adapter tensor of the configuration with its shape. */
export function adapterShapes(spec: ModelSpec, lora: LoraConfig): Map<string, number[]> {
  const shapes = new Map<string, number[]>();
  for (const m of loraModules(spec, lora.targets)) {
    shapes.set(loraA(m.module), [lora.rank, m.inFeatures]);
    shapes.set(loraB(m.module), [m.outFeatures, lora.rank]);
  }
  return shapes;
}

/** Fresh adapters: A ~ U(−1/√in, 1/√in) from (seed, 'lisa.lora.init:{module}'), B = 0. */
export function initAdapters(spec: ModelSpec, lora: LoraConfig): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  for (const m of loraModules(spec, lora.targets)) {
    const rng = rngFor(lora.seed, `lisa.lora.init:${m.module}`, 0);
    const bound = 1 / Math.sqrt(m.inFeatures);
    out.set(loraA(m.module), Float32Array.from({ length: lora.rank * m.inFeatures }, () => (2 * rng.next() - 1) * bound));
    out.set(loraB(m.module), new Float32Array(m.outFeatures * lora.rank));
  }
  return out;
}

/** Where a training forward is: dropout masks depend on it, evaluation passes none. */
export interface TrainingPass {
  /** global step being taken */
  step: number;
  /** micro-batch within the step (gradient accumulation) */
  microBatch: number;
}

/**
 * The dropout multiplier [rows, cols] (0 or 1/(1 − p), row-major) of `module` in `pass`: a pure
 * function of (seed, module, step, micro-batch).
 */
export function dropoutMask(lora: LoraConfig, module: string, pass: TrainingPass, rows: number, cols: number): Float32Array {
  const rng = rngFor(lora.seed, `lisa.lora.dropout:${module}#${pass.microBatch}`, pass.step);
  const keep = 1 / (1 - lora.dropout);
  return Float32Array.from({ length: rows * cols }, () => (rng.next() < lora.dropout ? 0 : keep));
}

/**
 * The merged weight W + (alpha/r)·B·A of one module (transposed into Conv1D's [in, out] layout),
 * each element's sum over the rank in float64 and rounded to float32 once, as it is added to W.
 */
export function foldAdapter(weight: Float32Array, a: Float32Array, b: Float32Array, m: LoraModule, lora: Pick<LoraConfig, 'rank' | 'alpha'>): Float32Array {
  const { rank: r } = lora;
  const scale = lora.alpha / r;
  const { inFeatures: nIn, outFeatures: nOut } = m;
  const out = new Float32Array(weight.length);
  const row = new Float64Array(nIn);
  for (let o = 0; o < nOut; o++) {
    row.fill(0);
    for (let k = 0; k < r; k++) {
      const bk = b[o * r + k];
      if (bk === 0) continue;
      for (let i = 0; i < nIn; i++) row[i] += bk * a[k * nIn + i];
    }
    for (let i = 0; i < nIn; i++) {
      const at = m.conv1d ? i * nOut + o : o * nIn + i;
      out[at] = weight[at] + scale * row[i];
    }
  }
  return out;
}
