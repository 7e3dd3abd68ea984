#include <math.h>

#include "kernels.h"
#include "vmath.h"

/* max and sum(exp(x - max)) of one row. */
__attribute__((target_clones("avx2", "default"))) static float exp_sum(const float *row, int v, float *max_out) {
  float max = row[0];
  for (int j = 1; j < v; j++) max = row[j] > max ? row[j] : max;
  float acc[8] = {0};
  int j = 0;
  for (; j + 8 <= v; j += 8) {
    for (int l = 0; l < 8; l++) acc[l] += lisa_expf(row[j + l] - max);
  }
  float sum = 0.0f;
  for (; j < v; j++) sum += lisa_expf(row[j] - max);
  for (int l = 0; l < 8; l++) sum += acc[l];
  *max_out = max;
  return sum;
}

double lisa_cross_entropy(const float *logits, const int32_t *targets, const float *weights, int n, int v) {
  double loss = 0.0;
  for (int i = 0; i < n; i++) {
    if (weights[i] == 0.0f) continue;
    const float *row = logits + (size_t)i * v;
    float max;
    const float sum = exp_sum(row, v, &max);
    const int32_t t = targets[i];
    const double lse = (double)max + log((double)sum);
    loss += (double)weights[i] * (lse - (t >= 0 && t < v ? (double)row[t] : 0.0));
  }
  return loss;
}

__attribute__((target_clones("avx2", "default"))) void lisa_cross_entropy_grad(const float *logits, const int32_t *targets,
                                                                               const float *weights, float dy, float *dlogits, int n,
                                                                               int v) {
  for (int i = 0; i < n; i++) {
    const float *row = logits + (size_t)i * v;
    float *out = dlogits + (size_t)i * v;
    const float scale = dy * weights[i];
    if (scale == 0.0f) {
      for (int j = 0; j < v; j++) out[j] = 0.0f;
      continue;
    }
    float max;
    const float c = scale / exp_sum(row, v, &max);
    for (int j = 0; j < v; j++) out[j] = lisa_expf(row[j] - max) * c;
    const int32_t t = targets[i];
    if (t >= 0 && t < v) out[t] -= scale;
  }
}
