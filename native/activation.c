#include "kernels.h"
#include "vmath.h"

__attribute__((target_clones("avx2", "default"))) void lisa_silu(const float *restrict x, float *restrict y, size_t n) {
  for (size_t i = 0; i < n; i++) y[i] = x[i] * lisa_sigmoidf(x[i]);
}

__attribute__((target_clones("avx2", "default"))) void lisa_silu_grad(const float *restrict x, const float *restrict dy, float *restrict dx, size_t n) {
  for (size_t i = 0; i < n; i++) {
    const float s = lisa_sigmoidf(x[i]);
    dx[i] = dy[i] * s * (1.0f + x[i] * (1.0f - s));
  }
}

/* GPT-2's gelu_new: y = x sigmoid(2z), z = sqrt(2/pi) (x + 0.044715 x^3) (0.5 (1 + tanh z) = sigmoid(2z)). */
static const float GELU_C = 0.7978845608028654f, GELU_A = 0.044715f;

__attribute__((target_clones("avx2", "default"))) void lisa_gelu(const float *restrict x, float *restrict y, size_t n) {
  for (size_t i = 0; i < n; i++) {
    const float xi = x[i];
    y[i] = xi * lisa_sigmoidf(2.0f * GELU_C * (xi + GELU_A * xi * xi * xi));
  }
}

/* dy/dx = s + x s (1 - s) 2c (1 + 3a x^2), s = sigmoid(2z). */
__attribute__((target_clones("avx2", "default"))) void lisa_gelu_grad(const float *restrict x, const float *restrict dy,
                                                                      float *restrict dx, size_t n) {
  for (size_t i = 0; i < n; i++) {
    const float xi = x[i];
    const float s = lisa_sigmoidf(2.0f * GELU_C * (xi + GELU_A * xi * xi * xi));
    dx[i] = dy[i] * (s + xi * s * (1.0f - s) * 2.0f * GELU_C * (1.0f + 3.0f * GELU_A * xi * xi));
  }
}
