/**
 * Merge kernels: pure functions over one tensor of a base model and of N fine-tunes of it.
 *
 * Notation, per tensor: b = base, θ_i = model i, δ_i = θ_i − b (its task vector), w_i = its weight.
 * Arithmetic is per element in float64 (JS numbers) with one rounding to float32 at the end, so
 * b + 1·(θ − b) gives back θ exactly for ordinary weights. Definitions follow mergekit
 * (mergekit/merge_methods/{linear,generalized_task_arithmetic}.py, mergekit/sparsify.py):
 *
 * - linear:           out = Σ w_i θ_i / Σ w_i                        (mergekit `linear`, normalize on)
 * - task-arithmetic:  out = b + λ Σ w_i δ_i                          (mergekit `task_arithmetic`)
 * - ties:             t_i = trim(δ_i, d) keeps the k = ⌊d·n⌋ entries of largest |δ_i| (ties in
 *                     magnitude go to the lower index; k = 0 keeps nothing, where mergekit refuses);
 *                     s = sign(Σ w_i t_i) per entry (+1 when the sum is 0);
 *                     a_i = [sign(w_i t_i) = s] (a zero entry never agrees);
 *                     out = b + λ · Σ a_i w_i t_i / Σ a_i w_i, the divisor taken as 1 where it is 0
 *                     (mergekit `ties`: magnitude sparsification, sum consensus, normalize on)
 * - dare (linear):    r_i = drop(δ_i, d): each entry is kept when u < d for a uniform u ∈ [0, 1)
 *                     from the model's own seeded stream, and kept entries are scaled by 1/d, as in
 *                     the DARE paper (mergekit instead rescales to the L1 norm of δ_i);
 *                     out = b + λ Σ w_i r_i                          (mergekit `dare_linear`)
 * - dare + consensus: s = sign(Σ w_i r_i), a_i = [sign(w_i r_i) = s];
 *                     out = b + λ Σ a_i w_i r_i, not divided          (mergekit `dare_ties`)
 *
 * Every output is a fresh Float32Array; inputs are never written.
 */
import { LisaError } from '../errors.ts';
import type { Rng } from '../lisa/rng.ts';

export const MERGE_METHODS = ['linear', 'task-arithmetic', 'ties', 'dare'] as const;
export type MergeMethod = (typeof MERGE_METHODS)[number];

export class MergeParameterError extends LisaError {
  constructor(message: string, details?: Record<string, unknown>) {
    super('MERGE_PARAMETERS_INVALID', message, details);
  }
}

export interface MergeParams {
  /** scale of the mixed task vector (not used by linear) */
  lambda: number;
  /** fraction of each task vector kept by ties and dare, in (0, 1] */
  density: number;
  /** dare only: TIES sign consensus on the dropped-and-rescaled task vectors */
  consensus: boolean;
}

function checkInputs(base: Float32Array, models: readonly Float32Array[], weights: readonly number[]): void {
  if (models.length === 0) throw new MergeParameterError('merge needs at least one model');
  if (weights.length !== models.length) {
    throw new MergeParameterError(`merge got ${models.length} models but ${weights.length} weights`);
  }
  for (const [i, m] of models.entries()) {
    if (m.length !== base.length) {
      throw new MergeParameterError(`model ${i} has ${m.length} elements, the base ${base.length}`);
    }
  }
  for (const w of weights) if (!Number.isFinite(w)) throw new MergeParameterError(`weight ${w} is not a finite number`);
}

function checkDensity(density: number): void {
  if (!(density > 0 && density <= 1)) throw new MergeParameterError(`density must be in (0, 1], got ${density}`);
}

export function linear(models: readonly Float32Array[], weights: readonly number[]): Float32Array {
  checkInputs(models[0] ?? new Float32Array(0), models, weights);
  const total = weights.reduce((a, b) => a + b, 0);
  if (Math.abs(total) < 1e-8) throw new MergeParameterError(`linear merge weights sum to ${total}; they must not sum to 0`);
  const n = models[0].length;
  const out = new Float32Array(n);
  for (let j = 0; j < n; j++) {
    let s = 0;
    for (let i = 0; i < models.length; i++) s += weights[i] * models[i][j];
    out[j] = s / total;
  }
  return out;
}

export function taskArithmetic(base: Float32Array, models: readonly Float32Array[], weights: readonly number[], lambda: number): Float32Array {
  checkInputs(base, models, weights);
  const out = new Float32Array(base.length);
  for (let j = 0; j < base.length; j++) {
    const b = base[j];
    let s = 0;
    for (let i = 0; i < models.length; i++) s += weights[i] * (models[i][j] - b);
    out[j] = b + lambda * s;
  }
  return out;
}

/**
 * Which entries of δ = θ − b trimming to `density` keeps: the k = ⌊density·n⌋ largest |δ|, ties
 * in magnitude resolved towards lower indices so the choice is deterministic.
 */
export function trimMask(base: Float32Array, model: Float32Array, density: number): Uint8Array {
  checkDensity(density);
  const n = base.length;
  const keep = new Uint8Array(n);
  const k = Math.floor(density * n);
  if (k >= n) return keep.fill(1);
  if (k === 0) return keep;
  const mags = new Float64Array(n);
  for (let j = 0; j < n; j++) mags[j] = Math.abs(model[j] - base[j]);
  const threshold = mags.slice().sort()[n - k];
  let atThreshold = k;
  for (let j = 0; j < n; j++) if (mags[j] > threshold) atThreshold--;
  for (let j = 0; j < n; j++) {
    if (mags[j] > threshold) keep[j] = 1;
    else if (mags[j] === threshold && atThreshold > 0) {
      keep[j] = 1;
      atThreshold--;
    }
  }
  return keep;
}

/** The draw for every entry is taken whether or not δ is 0, so the stream lines up with indices. */
export function dropMask(n: number, density: number, rng: Rng): Uint8Array {
  checkDensity(density);
  const keep = new Uint8Array(n);
  for (let j = 0; j < n; j++) keep[j] = rng.next() < density ? 1 : 0;
  return keep;
}

/**
 * Sign consensus over sparsified, weighted task vectors: `delta(i, j)` is model i's (already
 * trimmed or dropped and rescaled) δ at entry j. `normalize` divides by the agreeing weights.
 */
function consensusMerge(
  base: Float32Array,
  weights: readonly number[],
  delta: (i: number, j: number) => number,
  lambda: number,
  normalize: boolean,
): Float32Array {
  const out = new Float32Array(base.length);
  const m = weights.length;
  const wd = new Float64Array(m);
  for (let j = 0; j < base.length; j++) {
    let sum = 0;
    for (let i = 0; i < m; i++) {
      wd[i] = weights[i] * delta(i, j);
      sum += wd[i];
    }
    const elected = sum >= 0 ? 1 : -1;
    let mixed = 0;
    let divisor = 0;
    for (let i = 0; i < m; i++) {
      if (Math.sign(wd[i]) === elected) {
        mixed += wd[i];
        divisor += weights[i];
      }
    }
    if (normalize && divisor !== 0) mixed /= divisor;
    out[j] = base[j] + lambda * mixed;
  }
  return out;
}

export function ties(
  base: Float32Array,
  models: readonly Float32Array[],
  weights: readonly number[],
  opts: { density: number; lambda: number },
): Float32Array {
  checkInputs(base, models, weights);
  const masks = models.map((m) => trimMask(base, m, opts.density));
  return consensusMerge(base, weights, (i, j) => (masks[i][j] ? models[i][j] - base[j] : 0), opts.lambda, true);
}

/** `rngs[i]` is model i's stream for this tensor (see compose.ts's module doc for how it is derived). */
export function dare(
  base: Float32Array,
  models: readonly Float32Array[],
  weights: readonly number[],
  opts: { density: number; lambda: number; consensus: boolean },
  rngs: readonly Rng[],
): Float32Array {
  checkInputs(base, models, weights);
  if (rngs.length !== models.length) throw new MergeParameterError(`dare got ${models.length} models but ${rngs.length} random streams`);
  const masks = models.map((_, i) => dropMask(base.length, opts.density, rngs[i]));
  const d = opts.density;
  const delta = (i: number, j: number) => (masks[i][j] ? (models[i][j] - base[j]) / d : 0);
  if (opts.consensus) return consensusMerge(base, weights, delta, opts.lambda, false);
  const out = new Float32Array(base.length);
  for (let j = 0; j < base.length; j++) {
    let s = 0;
    for (let i = 0; i < models.length; i++) s += weights[i] * delta(i, j);
    out[j] = base[j] + opts.lambda * s;
  }
  return out;
}

/** One tensor merged by `method`; `rngs` is needed by dare only. */
export function mergeTensor(
  method: MergeMethod,
  base: Float32Array,
  models: readonly Float32Array[],
  weights: readonly number[],
  params: MergeParams,
  rngs: readonly Rng[] = [],
): Float32Array {
  switch (method) {
    case 'linear':
      return linear(models, weights);
    case 'task-arithmetic':
      return taskArithmetic(base, models, weights, params.lambda);
    case 'ties':
      return ties(base, models, weights, params);
    case 'dare':
      return dare(base, models, weights, params, rngs);
  }
}
