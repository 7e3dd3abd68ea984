#include <string.h>

#include "kernels.h"

/* Inner runs, specialised by operand stride (1, or 0 for a broadcast value) so each vectorises. */
__attribute__((target_clones("avx2", "default"))) static void mul_run(const float *restrict a, const float *restrict b,
                                                                      float *restrict out, int n, int sa, int sb) {
  if (sa && sb) {
    for (int i = 0; i < n; i++) out[i] = a[i] * b[i];
  } else if (sa) {
    for (int i = 0; i < n; i++) out[i] = a[i] * b[0];
  } else if (sb) {
    for (int i = 0; i < n; i++) out[i] = a[0] * b[i];
  } else {
    for (int i = 0; i < n; i++) out[i] = a[0] * b[0];
  }
}

void lisa_mul_broadcast(const float *a, const float *b, float *out, const int64_t shape[4], const int64_t sa[4], const int64_t sb[4]) {
  for (int64_t i0 = 0; i0 < shape[0]; i0++) {
    for (int64_t i1 = 0; i1 < shape[1]; i1++) {
      for (int64_t i2 = 0; i2 < shape[2]; i2++) {
        const int64_t oa = i0 * sa[0] + i1 * sa[1] + i2 * sa[2], ob = i0 * sb[0] + i1 * sb[1] + i2 * sb[2];
        mul_run(a + oa, b + ob, out, (int)shape[3], (int)sa[3], (int)sb[3]);
        out += shape[3];
      }
    }
  }
}

void lisa_permute(const float *x, float *out, const int64_t shape[4], const int64_t perm[3]) {
  const int64_t stride[3] = {shape[1] * shape[2] * shape[3], shape[2] * shape[3], shape[3]};
  const int64_t dims[3] = {shape[perm[0]], shape[perm[1]], shape[perm[2]]};
  const size_t run = sizeof(float) * (size_t)shape[3];
  for (int64_t o0 = 0; o0 < dims[0]; o0++) {
    for (int64_t o1 = 0; o1 < dims[1]; o1++) {
      const float *src = x + o0 * stride[perm[0]] + o1 * stride[perm[1]];
      for (int64_t o2 = 0; o2 < dims[2]; o2++) {
        memcpy(out, src + o2 * stride[perm[2]], run);
        out += shape[3];
      }
    }
  }
}
