#include <math.h>

#include "kernels.h"

/* Sums go through 8 partial accumulators (a fixed order, so results are deterministic) that
 * gcc keeps in one vector register; a single accumulator could not be vectorised. */
__attribute__((target_clones("avx2", "default"))) static float dot(const float *a, const float *b, int d) {
  float acc[8] = {0};
  int j = 0;
  for (; j + 8 <= d; j += 8) {
    for (int l = 0; l < 8; l++) acc[l] += a[j + l] * b[j + l];
  }
  float sum = 0.0f;
  for (; j < d; j++) sum += a[j] * b[j];
  for (int l = 0; l < 8; l++) sum += acc[l];
  return sum;
}

static float rstd(const float *x, int d, float eps) {
  return 1.0f / sqrtf(dot(x, x, d) / (float)d + eps);
}

__attribute__((target_clones("avx2", "default"))) void lisa_rms_norm(const float *restrict x, const float *restrict w, float *restrict y,
                                                                     int n, int d, float eps) {
  for (int i = 0; i < n; i++) {
    const float *xr = x + (size_t)i * d;
    float *yr = y + (size_t)i * d;
    const float ri = rstd(xr, d, eps);
    for (int j = 0; j < d; j++) yr[j] = xr[j] * ri * w[j];
  }
}

__attribute__((target_clones("avx2", "default"))) void lisa_rms_norm_grad(const float *restrict x, const float *restrict w,
                                                                          const float *restrict dy, float *restrict dx,
                                                                          float *restrict dw, int n, int d, float eps) {
  for (int j = 0; j < d; j++) dw[j] = 0.0f;
  for (int i = 0; i < n; i++) {
    const float *xr = x + (size_t)i * d, *gr = dy + (size_t)i * d;
    float *dxr = dx + (size_t)i * d;
    const float ri = rstd(xr, d, eps);
    float acc[8] = {0};
    int j = 0;
    for (; j + 8 <= d; j += 8) {
      for (int l = 0; l < 8; l++) acc[l] += gr[j + l] * w[j + l] * xr[j + l];
    }
    float s = 0.0f;
    for (; j < d; j++) s += gr[j] * w[j] * xr[j];
    for (int l = 0; l < 8; l++) s += acc[l];
    const float c = ri * ri * ri * s / (float)d;
    for (j = 0; j < d; j++) {
      dxr[j] = ri * gr[j] * w[j] - xr[j] * c;
      dw[j] += gr[j] * xr[j] * ri;
    }
  }
}

/* Mean and 1 / sqrt(variance + eps) of one row (variance biased, as tf.moments). */
static void moments(const float *x, int d, float eps, float *mean, float *rstd_out) {
  float acc[8] = {0};
  int j = 0;
  for (; j + 8 <= d; j += 8) {
    for (int l = 0; l < 8; l++) acc[l] += x[j + l];
  }
  float sum = 0.0f;
  for (; j < d; j++) sum += x[j];
  for (int l = 0; l < 8; l++) sum += acc[l];
  const float mu = sum / (float)d;
  float vacc[8] = {0};
  for (j = 0; j + 8 <= d; j += 8) {
    for (int l = 0; l < 8; l++) vacc[l] += (x[j + l] - mu) * (x[j + l] - mu);
  }
  float var = 0.0f;
  for (; j < d; j++) var += (x[j] - mu) * (x[j] - mu);
  for (int l = 0; l < 8; l++) var += vacc[l];
  *mean = mu;
  *rstd_out = 1.0f / sqrtf(var / (float)d + eps);
}

__attribute__((target_clones("avx2", "default"))) void lisa_layer_norm(const float *restrict x, const float *restrict w,
                                                                       const float *restrict b, float *restrict y, int n, int d,
                                                                       float eps) {
  for (int i = 0; i < n; i++) {
    const float *xr = x + (size_t)i * d;
    float *yr = y + (size_t)i * d;
    float mu, r;
    moments(xr, d, eps, &mu, &r);
    for (int j = 0; j < d; j++) yr[j] = (xr[j] - mu) * r * w[j] + b[j];
  }
}

__attribute__((target_clones("avx2", "default"))) void lisa_layer_norm_grad(const float *restrict x, const float *restrict w,
                                                                            const float *restrict dy, float *restrict dx,
                                                                            float *restrict dw, float *restrict db, int n, int d,
                                                                            float eps) {
  for (int j = 0; j < d; j++) dw[j] = db[j] = 0.0f;
  for (int i = 0; i < n; i++) {
    const float *xr = x + (size_t)i * d, *gr = dy + (size_t)i * d;
    float *dxr = dx + (size_t)i * d;
    float mu, r;
    moments(xr, d, eps, &mu, &r);
    /* With xh = (x - mu) r and g = dy w: dx = r (g - mean(g) - xh mean(g xh)). */
    float acc_g[8] = {0}, acc_gx[8] = {0};
    int j = 0;
    for (; j + 8 <= d; j += 8) {
      for (int l = 0; l < 8; l++) {
        const float g = gr[j + l] * w[j + l];
        acc_g[l] += g;
        acc_gx[l] += g * (xr[j + l] - mu) * r;
      }
    }
    float sg = 0.0f, sgx = 0.0f;
    for (; j < d; j++) {
      const float g = gr[j] * w[j];
      sg += g;
      sgx += g * (xr[j] - mu) * r;
    }
    for (int l = 0; l < 8; l++) {
      sg += acc_g[l];
      sgx += acc_gx[l];
    }
    const float mg = sg / (float)d, mgx = sgx / (float)d;
    for (j = 0; j < d; j++) {
      const float xh = (xr[j] - mu) * r;
      dxr[j] = r * (gr[j] * w[j] - mg - xh * mgx);
      dw[j] += gr[j] * xh;
      db[j] += gr[j];
    }
  }
}

__attribute__((target_clones("avx2", "default"))) void lisa_sum_squares(const float *restrict x, size_t n, double *out) {
  float acc[16] = {0};
  size_t j = 0;
  for (; j + 16 <= n; j += 16) {
    for (int l = 0; l < 16; l++) acc[l] += x[j + l] * x[j + l];
  }
  double sum = 0.0;
  for (; j < n; j++) sum += (double)x[j] * x[j];
  for (int l = 0; l < 16; l++) sum += acc[l];
  *out = sum;
}
