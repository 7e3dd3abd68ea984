/**
 * The adaptive `grad-norm` sampler's rule: blocks whose gradients have lately been larger are drawn
 * more often (a larger gradient is more first-order loss decrease per step), with a floor so that
 * no block starves and an optimistic prior so that every block gets looked at.
 *
 * State: for each unit that has trained, an exponential moving average of the L2 norm of its
 * gradient (before clipping), updated once per optimizer step in which the unit was active:
 *   e_u ← g_u                         on the unit's first step,
 *   e_u ← β·e_u + (1 − β)·g_u         after that (β = gradNormDecay).
 * The state after a chunk is stored in its manifest (`gradNormEma`), so it is a fold over every
 * committed step; where chunks were cut does not change it.
 *
 * Weights for a period, over its candidates ℓ (the blocks, or embed + blocks + head under
 * embedHead 'sampled'), from the state at the period's start:
 *   s_ℓ = e_ℓ                         if ℓ has trained,
 *   s_ℓ = max of e over the candidates that have trained    otherwise (optimistic prior),
 *   s_ℓ = 1 for every ℓ               when none has trained (period 0: a uniform draw),
 *   p_ℓ = (1 − ε)·s_ℓ / Σ s + ε / N   (ε = gradNormFloor, N candidates), so p_ℓ ≥ ε / N.
 * When every s_ℓ is 0 (all gradients vanished) the first term is spread evenly. The p_ℓ sum to 1
 * and are the weights of the successive draw in schedule.ts.
 */

/** unit → EMA of its per-step gradient norm; units that never trained are absent. */
export type GradNormEma = Record<string, number>;

/** The state after one more optimizer step whose active units had gradient norms `norms`. */
export function observeGradNorms(ema: GradNormEma, norms: Readonly<Record<string, number>>, decay: number): GradNormEma {
  const next = { ...ema };
  for (const [unit, g] of Object.entries(norms)) {
    const e = ema[unit];
    next[unit] = e === undefined ? g : decay * e + (1 - decay) * g;
  }
  return next;
}

/** The period's draw weights p_ℓ, one per candidate in the candidates' order. */
export function gradNormWeights(ema: GradNormEma, candidates: readonly string[], floor: number): number[] {
  const seen = candidates.map((u) => ema[u]).filter((e): e is number => e !== undefined);
  const prior = seen.length === 0 ? 1 : Math.max(...seen);
  const scores = candidates.map((u) => ema[u] ?? prior);
  const total = scores.reduce((a, b) => a + b, 0);
  const n = candidates.length;
  return scores.map((s) => (1 - floor) * (total > 0 ? s / total : 1 / n) + floor / n);
}
