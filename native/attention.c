#include <stdlib.h>

#include "kernels.h"
#include "vmath.h"

/* Queries go in blocks of ROWS; a block needs the keys up to its last query's position only, so
 * the products skip most of the masked upper triangle. */
enum { ROWS = 32 };

/* Keys a query block [i0, i1) sees: 0 .. pos0 + i1 - 1. */
static int keys_for(int pos0, int i1, int s) {
  return pos0 + i1 < s ? pos0 + i1 : s;
}

/* p [rows, keys] with row stride ld: scores -> causal softmax in place; query i0 + i sees keys
 * 0..pos0+i0+i, the rest of its row becomes 0. */
__attribute__((target_clones("avx2", "default"))) static void causal_softmax(float *p, int rows, int keys, int ld, int first) {
  for (int i = 0; i < rows; i++) {
    float *row = p + (size_t)i * ld;
    const int seen = first + i + 1 < keys ? first + i + 1 : keys;
    float max = row[0];
    for (int j = 1; j < seen; j++) max = row[j] > max ? row[j] : max;
    float sum = 0.0f;
    for (int j = 0; j < seen; j++) {
      row[j] = lisa_expf(row[j] - max);
      sum += row[j];
    }
    const float inv = 1.0f / sum;
    for (int j = 0; j < seen; j++) row[j] *= inv;
    for (int j = seen; j < keys; j++) row[j] = 0.0f;
  }
}

/* ds = p (dp - sum(p dp)) per row, in place of dp. */
__attribute__((target_clones("avx2", "default"))) static void softmax_grad(const float *p, float *dp, int rows, int keys, int ld) {
  for (int i = 0; i < rows; i++) {
    const float *pr = p + (size_t)i * ld;
    float *dr = dp + (size_t)i * ld;
    float dot = 0.0f;
    for (int j = 0; j < keys; j++) dot += pr[j] * dr[j];
    for (int j = 0; j < keys; j++) dr[j] = pr[j] * (dr[j] - dot);
  }
}

int lisa_attention(const float *q, const float *k, const float *v, float *out, int b, int h, int kv, int t, int s, int hd, float scale) {
  float *p = malloc(sizeof(float) * (size_t)t * s);
  if (!p && t * s > 0) return 0;
  const int group = h / kv, pos0 = s - t, ldo = h * hd;
  for (int bi = 0; bi < b; bi++) {
    for (int hi = 0; hi < h; hi++) {
      const float *qh = q + ((size_t)bi * h + hi) * t * hd;
      const float *kh = k + ((size_t)bi * kv + hi / group) * s * hd;
      const float *vh = v + ((size_t)bi * kv + hi / group) * s * hd;
      float *oh = out + (size_t)bi * t * ldo + (size_t)hi * hd;
      for (int i0 = 0; i0 < t; i0 += ROWS) {
        const int rows = t - i0 < ROWS ? t - i0 : ROWS, keys = keys_for(pos0, i0 + rows, s);
        float *pb = p + (size_t)i0 * s;
        lisa_sgemm(0, 1, rows, keys, hd, scale, qh + (size_t)i0 * hd, hd, kh, hd, 0.0f, pb, s);
        causal_softmax(pb, rows, keys, s, pos0 + i0);
        lisa_sgemm(0, 0, rows, hd, keys, 1.0f, pb, s, vh, hd, 0.0f, oh + (size_t)i0 * ldo, ldo);
      }
    }
  }
  free(p);
  return 1;
}

int lisa_attention_grad(const float *q, const float *k, const float *v, const float *dout, float *dq, float *dk, float *dv, int b,
                        int h, int kv, int t, int s, int hd, float scale) {
  float *p = malloc(sizeof(float) * (size_t)t * s * 2);
  if (!p && t * s > 0) return 0;
  float *dp = p + (size_t)t * s;
  const int group = h / kv, pos0 = s - t, ldo = h * hd;
  memset(dk, 0, sizeof(float) * (size_t)b * kv * s * hd);
  memset(dv, 0, sizeof(float) * (size_t)b * kv * s * hd);
  for (int bi = 0; bi < b; bi++) {
    for (int hi = 0; hi < h; hi++) {
      const size_t kvo = ((size_t)bi * kv + hi / group) * s * hd, qo = ((size_t)bi * h + hi) * t * hd;
      const float *qh = q + qo, *kh = k + kvo, *vh = v + kvo;
      const float *doh = dout + (size_t)bi * t * ldo + (size_t)hi * hd;
      for (int i0 = 0; i0 < t; i0 += ROWS) {
        const int rows = t - i0 < ROWS ? t - i0 : ROWS, keys = keys_for(pos0, i0 + rows, s);
        float *pb = p + (size_t)i0 * s, *dpb = dp + (size_t)i0 * s;
        const float *qb = qh + (size_t)i0 * hd, *dob = doh + (size_t)i0 * ldo;
        lisa_sgemm(0, 1, rows, keys, hd, scale, qb, hd, kh, hd, 0.0f, pb, s);
        causal_softmax(pb, rows, keys, s, pos0 + i0);
        lisa_sgemm(1, 0, keys, hd, rows, 1.0f, pb, s, dob, ldo, 1.0f, dv + kvo, hd);    /* dV += P^T dO */
        lisa_sgemm(0, 1, rows, keys, hd, 1.0f, dob, ldo, vh, hd, 0.0f, dpb, s);        /* dP = dO V^T */
        softmax_grad(pb, dpb, rows, keys, s);                                           /* dS */
        lisa_sgemm(0, 0, rows, hd, keys, scale, dpb, s, kh, hd, 0.0f, dq + qo + (size_t)i0 * hd, hd); /* dQ = scale dS K */
        lisa_sgemm(1, 0, keys, hd, rows, scale, dpb, s, qb, hd, 1.0f, dk + kvo, hd);   /* dK += scale dS^T Q */
      }
    }
  }
  free(p);
  return 1;
}
