#include "kernels.h"

/* Vectorised for AVX2 where the CPU has it; without FMA contraction (build.sh passes
 * -ffp-contract=off) every operation rounds as the scalar and tfjs versions do. */
__attribute__((target_clones("avx2", "default"))) void lisa_adamw(const float *restrict p, const float *restrict m,
                                                                  const float *restrict v, const float *restrict g,
                                                                  float *restrict po, float *restrict mo, float *restrict vo,
                                                                  size_t n, float clip, float b1, float one_minus_b1, float b2,
                                                                  float one_minus_b2, float bc2, float eps, float decay,
                                                                  float step) {
  for (size_t i = 0; i < n; i++) {
    const float gi = g[i] * clip;
    const float mi = m[i] * b1 + gi * one_minus_b1;
    const float vi = v[i] * b2 + (gi * gi) * one_minus_b2;
    mo[i] = mi;
    vo[i] = vi;
    po[i] = p[i] * decay - (mi / (__builtin_sqrtf(vi) / bc2 + eps)) * step;
  }
}
