/**
 * AdamW over named parameter groups (LISA units; later LoRA adapters or the full model).
 *
 * Per parameter, with t = the group's own step after increment (bias correction per unit, so a
 * unit resampled after a pause continues its own count), η = learningRate(cfg, globalStep),
 * g = the gradient scaled by the global clip factor, operations in PyTorch AdamW's order:
 *   p ← p · (1 − η·λ)                      decoupled decay; skipped for rank-1 tensors (norms,
 *                                           biases) unless decayNormsAndBiases, and when λ = 0
 *   m ← β1·m + (1 − β1)·g
 *   v ← β2·v + (1 − β2)·g²
 *   p ← p − (η / (1 − β1^t)) · m / (√v / √(1 − β2^t) + ε)
 * Scalars are computed in float64 and applied as float32. The result depends only on
 * (p, m, v, g, group.step, globalStep, cfg) and the clip factor, which is a float64 sum of the
 * per-tensor squared norms (float32 sums; on the engine's native kernels, float32 partial sums
 * added in float64) in parameter-name order — so it is bitwise reproducible whatever order the
 * groups arrive in, and a run split into chunks with state saved as F32 in between matches one
 * uninterrupted loop exactly. The engine's fused AdamW kernel rounds exactly as the ops below.
 *
 * Gradient accumulation is the caller's: pass the gradient of the loss the step should minimise
 * (e.g. GradAccumulator in ./accumulate.ts, weighting micro-batches by their share of tokens).
 */
import * as tf from '@tensorflow/tfjs-core';
import { fusedAdamW, fusedSumSquares, type AdamWScalars } from '../engine/fused.ts';
import { GradientMismatchError, NonFiniteGradientError, OptimConfigError } from './errors.ts';
import { checkLrSchedule, learningRate, type LrSchedule } from './lr.ts';

export interface AdamWConfig {
  /** Peak learning rate (after warmup). */
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  /** λ, decoupled: the decay per step is η·λ. */
  weightDecay: number;
  /** Clip the global L2 norm of all active gradients to this; 0 disables clipping. */
  maxGradNorm: number;
  decayNormsAndBiases: boolean;
  schedule: LrSchedule;
}

export interface ParamSlot {
  /** Key of this parameter's gradient in the grads map (the HF tensor name). */
  name: string;
  param: tf.Variable;
  m: tf.Variable;
  v: tf.Variable;
}

export interface ParamGroup {
  unit: string;
  slots: ParamSlot[];
  /** Updates this group has taken; adamwStep increments it. */
  step: number;
}

export interface StepStats {
  /** Global L2 norm of the gradients before clipping. */
  gradNorm: number;
  /** L2 norm of each group's gradients before clipping, in the order of `groups`. */
  groupNorms: number[];
  /** Learning rate this update used. */
  lr: number;
}

/** PyTorch's clip_grad_norm_ guard against dividing by a zero norm. */
const CLIP_EPS = 1e-6;

export function checkAdamWConfig(cfg: AdamWConfig): void {
  if (!(cfg.lr > 0 && Number.isFinite(cfg.lr))) throw new OptimConfigError(`lr must be a positive finite number, got ${cfg.lr}`);
  for (const k of ['beta1', 'beta2'] as const) {
    if (!(cfg[k] >= 0 && cfg[k] < 1)) throw new OptimConfigError(`${k} must be in [0, 1), got ${cfg[k]}`);
  }
  if (!(cfg.eps > 0 && Number.isFinite(cfg.eps))) throw new OptimConfigError(`eps must be a positive finite number, got ${cfg.eps}`);
  if (!(cfg.weightDecay >= 0 && Number.isFinite(cfg.weightDecay))) {
    throw new OptimConfigError(`weightDecay must be a non-negative finite number, got ${cfg.weightDecay}`);
  }
  if (!(cfg.maxGradNorm >= 0 && Number.isFinite(cfg.maxGradNorm))) {
    throw new OptimConfigError(`maxGradNorm must be a non-negative finite number (0 disables clipping), got ${cfg.maxGradNorm}`);
  }
  checkLrSchedule(cfg.schedule);
}

/**
 * One AdamW update of every slot in `groups` from `grads` (keyed by slot name; the caller keeps
 * ownership and disposes them). Increments each group's step. Throws, touching nothing, when the
 * grads do not match the slots one to one or any gradient is not finite.
 */
export function adamwStep(cfg: AdamWConfig, groups: ParamGroup[], grads: Map<string, tf.Tensor>, globalStep: number): StepStats {
  checkAdamWConfig(cfg);
  const lr = learningRate(cfg, globalStep);
  const slots = groups.flatMap((g) => g.slots);
  checkGrads(slots, grads);

  const byName = [...slots].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const sq = squaredNorms(byName.map((s) => grads.get(s.name)!));
  let total = 0;
  for (const x of sq) total += x;
  const gradNorm = Math.sqrt(total);
  // Each group's sum runs in parameter-name order too, so its norm is as reproducible as the global one.
  const groupOf = new Map(groups.flatMap((g, i) => g.slots.map((s) => [s.name, i] as const)));
  const groupSq = groups.map(() => 0);
  byName.forEach((s, i) => (groupSq[groupOf.get(s.name)!] += sq[i]));
  if (!Number.isFinite(gradNorm)) {
    const bad = byName.filter((_, i) => !Number.isFinite(sq[i])).map((s) => s.name);
    throw new NonFiniteGradientError(`gradient norm is ${gradNorm} at global step ${globalStep}; non-finite gradients: ${bad.join(', ')}`, {
      globalStep,
      tensors: bad,
    });
  }
  const clip = cfg.maxGradNorm > 0 && gradNorm > cfg.maxGradNorm ? cfg.maxGradNorm / (gradNorm + CLIP_EPS) : 1;

  for (const group of groups) {
    const t = group.step + 1;
    for (const s of group.slots) {
      const decay = cfg.weightDecay > 0 && (s.param.rank >= 2 || cfg.decayNormsAndBiases);
      const k: AdamWScalars = {
        clip,
        beta1: cfg.beta1,
        oneMinusBeta1: 1 - cfg.beta1,
        beta2: cfg.beta2,
        oneMinusBeta2: 1 - cfg.beta2,
        bc2Sqrt: Math.sqrt(1 - cfg.beta2 ** t),
        eps: cfg.eps,
        decay: decay ? 1 - lr * cfg.weightDecay : 1,
        stepSize: lr / (1 - cfg.beta1 ** t),
      };
      tf.tidy(() => {
        const raw = grads.get(s.name)!;
        const [p, m, v] = fusedAdamW(s.param, s.m, s.v, raw, k) ?? update(s.param, s.m, s.v, raw, k);
        s.m.assign(m);
        s.v.assign(v);
        s.param.assign(p);
      });
    }
    group.step = t;
  }
  return { gradNorm, groupNorms: groupSq.map(Math.sqrt), lr };
}

/** sum(g^2) of each gradient, one pass each where the engine has a fused kernel. */
function squaredNorms(gs: tf.Tensor[]): number[] | Float32Array {
  const fused = gs.map(fusedSumSquares);
  if (fused.every((x) => x !== undefined)) return fused as number[];
  // One read-back for all tensors: a sync per tensor would stall the backend once per parameter.
  return gs.length === 0 ? new Float32Array(0) : tf.tidy(() => tf.stack(gs.map((g) => tf.sum(tf.square(g)))).dataSync() as Float32Array);
}

/**
 * The update in tfjs ops, each rounded to float32 (the engine's fused kernel matches it bitwise).
 * Multiplying by a factor of 1 (no clipping, no decay) is exact, so it is skipped.
 */
function update(param: tf.Tensor, m0: tf.Tensor, v0: tf.Tensor, raw: tf.Tensor, k: AdamWScalars): [tf.Tensor, tf.Tensor, tf.Tensor] {
  const g = k.clip < 1 ? tf.mul(raw, k.clip) : raw;
  const m = tf.add(tf.mul(m0, k.beta1), tf.mul(g, k.oneMinusBeta1));
  const v = tf.add(tf.mul(v0, k.beta2), tf.mul(tf.square(g), k.oneMinusBeta2));
  const denom = tf.add(tf.div(tf.sqrt(v), k.bc2Sqrt), k.eps);
  const p = k.decay !== 1 ? tf.mul(param, k.decay) : param;
  return [tf.sub(p, tf.mul(tf.div(m, denom), k.stepSize)), m, v];
}

function checkGrads(slots: ParamSlot[], grads: Map<string, tf.Tensor>): void {
  const names = new Set<string>();
  for (const s of slots) {
    if (names.has(s.name)) throw new GradientMismatchError(`parameter ${s.name} appears in more than one slot`, { name: s.name });
    names.add(s.name);
    const g = grads.get(s.name);
    if (!g) throw new GradientMismatchError(`no gradient for parameter ${s.name}`, { name: s.name });
    if (!tf.util.arraysEqual(g.shape, s.param.shape)) {
      throw new GradientMismatchError(`gradient of ${s.name} has shape [${g.shape}], the parameter [${s.param.shape}]`, { name: s.name });
    }
  }
  const unknown = [...grads.keys()].filter((k) => !names.has(k));
  if (unknown.length > 0) {
    throw new GradientMismatchError(`gradients for parameters outside the active groups: ${unknown.join(', ')}`, { names: unknown });
  }
}
