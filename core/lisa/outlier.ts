/**
 * The `outlier` sampler's block score, after OWL (Yin et al. 2023) as OwLore (Li et al. 2024,
 * arXiv 2405.18380) uses it for layer sampling: a block whose weights carry more outliers is taken
 * to hold more of what pre-training learned, and is sampled more often, p_ℓ ∝ D_ℓ.
 *
 * For every projection of block ℓ (each weight matrix its forward multiplies activations by), with
 * ‖X_j‖ the L2 norm of input feature j over the calibration tokens, the score of entry W_ij is
 *   A_ij = |W_ij| · ‖X_j‖                  (Wanda's weight-times-activation importance),
 * and the block's outlier ratio is the share of entries above M times the mean over the block:
 *   D_ℓ = #{ A_ij > M · Ā_ℓ } / #A,        Ā_ℓ = the mean of A over all projections of block ℓ.
 * Scaling every ‖X_j‖ of a block by one constant (e.g. a token count) leaves D_ℓ unchanged.
 * Sums run in float64 in the order given, so the ratio is reproducible.
 */

/** One projection of a block: its weight as stored and the input feature norms ‖X_j‖. */
export interface Projection {
  /** row-major weight */
  weight: Float32Array;
  /** [out, in] for nn.Linear (`linear`), [in, out] for GPT-2's Conv1D (`conv1d`) */
  shape: readonly [number, number];
  layout: 'linear' | 'conv1d';
  /** ‖X_j‖ per input feature j (length `in`) */
  featureNorms: ArrayLike<number>;
}

/** D_ℓ of a block from its projections and the threshold M. */
export function outlierRatio(projections: readonly Projection[], threshold: number): number {
  const score = (p: Projection, visit: (a: number) => void) => {
    const [rows, cols] = p.shape;
    for (let r = 0; r < rows; r++) {
      for (let c = 0; c < cols; c++) visit(Math.abs(p.weight[r * cols + c]) * p.featureNorms[p.layout === 'linear' ? c : r]);
    }
  };
  let sum = 0;
  let count = 0;
  for (const p of projections) {
    score(p, (a) => (sum += a));
    count += p.weight.length;
  }
  if (count === 0) return 0;
  const cut = threshold * (sum / count);
  let above = 0;
  for (const p of projections) score(p, (a) => (above += a > cut ? 1 : 0));
  return above / count;
}
