/*
 * lisa_native: Node-API glue of the native kernels core/engine/native.ts runs on the tfjs wasm
 * backend's heap. Every kernel takes the heap (an ArrayBuffer; taken at each call, because a wasm
 * memory that grew has a new buffer) and byte addresses into it, so operands are read and results
 * written in place, without copies. Each operand's extent is checked against the heap first.
 * Arguments, after the heap (sizes in elements; kernels.h says what each kernel computes):
 *
 * gemm(transA, transB, m, n, k, a, lda, b, ldb, beta, c, ldc, batch, strideA, strideB, strideC)
 *   for i < batch: C_i = op(A_i) op(B_i) + beta C_i; a batch stride of 0 broadcasts an operand
 * adamw(p, m, v, g, pOut, mOut, vOut, n, clip, b1, 1-b1, b2, 1-b2, bc2, eps, decay, step)
 * attention(q, k, v, out, B, H, KV, T, S, hd, scale)
 * attentionGrad(q, k, v, dout, dq, dk, dv, B, H, KV, T, S, hd, scale)
 * rmsNorm(x, w, y, N, D, eps) and rmsNormGrad(x, w, dy, dx, dw, N, D, eps)
 * layerNorm(x, w, b, y, N, D, eps) and layerNormGrad(x, w, dy, dx, dw, db, N, D, eps)
 * sumSquares(x, n) -> the sum of squares
 * conv1d(x, w, b, out, N, in, out) and columnSum(x, out, rows, cols)
 * mulBroadcast(a, b, out, d0..d3, strideA0..3, strideB0..3) and permute(x, out, d0..d3, perm0..2)
 * silu(x, y, n) and siluGrad(x, dy, dx, n); gelu(x, y, n) and geluGrad(x, dy, dx, n)
 * crossEntropy(logits, targets, weights, N, V) -> the loss, and
 * crossEntropyGrad(logits, targets, weights, dy, dlogits, N, V)
 * setThreads(n), threads(), config(): OpenBLAS's thread count and build/core description.
 *
 * Built by native/build.sh against Debian's libopenblas0 (any variant: pthread, openmp, serial).
 */
#define NAPI_VERSION 8
#include <node_api.h>
#include <stdint.h>
#include <stdio.h>

#include "kernels.h"

void openblas_set_num_threads(int n);
int openblas_get_num_threads(void);
char *openblas_get_config(void);
char *openblas_get_corename(void);

#define MAX_ARGS 20

/* A call's heap and numeric arguments. */
typedef struct {
  char *heap;
  int64_t bytes;
  double v[MAX_ARGS];
} call_t;

static int fail(napi_env env, const char *code, const char *what, const char *msg) {
  char text[160];
  snprintf(text, sizeof text, "%s: %s", what, msg);
  napi_throw_range_error(env, code, text);
  return 0;
}

/* Reads (heap, n numbers) into c; 0 with a JS exception pending when they are not that. */
static int args(napi_env env, napi_callback_info info, const char *what, size_t n, call_t *c) {
  size_t argc = MAX_ARGS + 1;
  napi_value argv[MAX_ARGS + 1];
  size_t bytes;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != n + 1) {
    char msg[48];
    snprintf(msg, sizeof msg, "takes %zu arguments", n + 1);
    return fail(env, "LISA_NATIVE_ARGS", what, msg);
  }
  if (napi_get_arraybuffer_info(env, argv[0], (void **)&c->heap, &bytes) != napi_ok) {
    return fail(env, "LISA_NATIVE_ARGS", what, "the first argument must be an ArrayBuffer");
  }
  c->bytes = (int64_t)bytes;
  for (size_t i = 0; i < n; i++) {
    if (napi_get_value_double(env, argv[i + 1], &c->v[i]) != napi_ok) return fail(env, "LISA_NATIVE_ARGS", what, "arguments after the heap must be numbers");
  }
  return 1;
}

/* The integer arguments [from, to) are whole numbers in [0, 2^31). */
static int counts(napi_env env, const call_t *c, const char *what, int from, int to) {
  for (int i = from; i < to; i++) {
    if (!(c->v[i] >= 0 && c->v[i] <= INT32_MAX && c->v[i] == (double)(int64_t)c->v[i])) {
      return fail(env, "LISA_NATIVE_ARGS", what, "sizes, addresses and strides must be whole numbers in [0, 2^31)");
    }
  }
  return 1;
}

/* A float32 operand at byte `at`: 4-byte aligned, and its last element (exclusive) at `end` elements. */
static int inside(napi_env env, const call_t *c, const char *what, int64_t at, int64_t end) {
  if (at & 3) return fail(env, "LISA_NATIVE_ARGS", what, "operands must be 4-byte aligned");
  if (at + 4 * end > c->bytes) return fail(env, "LISA_NATIVE_BOUNDS", what, "an operand reaches past the end of the heap");
  return 1;
}

static float *at(const call_t *c, int i) {
  return (float *)(c->heap + (int64_t)c->v[i]);
}

/* Elements spanned by `rows` x `cols` with leading dimension ld, `batch` times at `stride`. */
static int64_t span(int64_t rows, int64_t cols, int64_t ld, int64_t batch, int64_t stride) {
  if (rows == 0 || cols == 0 || batch == 0) return 0;
  return (batch - 1) * stride + (rows - 1) * ld + cols;
}

static int64_t max1(int64_t x) {
  return x > 1 ? x : 1;
}

static napi_value gemm(napi_env env, napi_callback_info info) {
  call_t c;
  if (!args(env, info, "gemm", 16, &c) || !counts(env, &c, "gemm", 0, 16)) return NULL;
  const int64_t ta = (int64_t)c.v[0], tb = (int64_t)c.v[1], m = (int64_t)c.v[2], n = (int64_t)c.v[3], k = (int64_t)c.v[4];
  const int64_t lda = (int64_t)c.v[6], ldb = (int64_t)c.v[8], ldc = (int64_t)c.v[11];
  const int64_t batch = (int64_t)c.v[12], sa = (int64_t)c.v[13], sb = (int64_t)c.v[14], sc = (int64_t)c.v[15];
  if (lda < max1(ta ? m : k) || ldb < max1(tb ? k : n) || ldc < max1(n)) {
    fail(env, "LISA_NATIVE_ARGS", "gemm", "a leading dimension is shorter than its rows");
    return NULL;
  }
  if (!inside(env, &c, "gemm", (int64_t)c.v[5], span(ta ? k : m, ta ? m : k, lda, batch, sa)) ||
      !inside(env, &c, "gemm", (int64_t)c.v[7], span(tb ? n : k, tb ? k : n, ldb, batch, sb)) ||
      !inside(env, &c, "gemm", (int64_t)c.v[10], span(m, n, ldc, batch, sc))) {
    return NULL;
  }
  const float *a = at(&c, 5), *b = at(&c, 7);
  float *out = at(&c, 10);
  for (int64_t i = 0; i < batch; i++) {
    lisa_sgemm((int)ta, (int)tb, (int)m, (int)n, (int)k, 1.0f, a + i * sa, (int)lda, b + i * sb, (int)ldb, c.v[9] ? 1.0f : 0.0f,
               out + i * sc, (int)ldc);
  }
  return NULL;
}

/* Operands: argument i is the address of `count` elements. */
static int operands(napi_env env, const call_t *c, const char *what, int first, int last, int64_t count) {
  for (int i = first; i <= last; i++) {
    if (!inside(env, c, what, (int64_t)c->v[i], count)) return 0;
  }
  return 1;
}

static int64_t I(const call_t *c, int i) {
  return (int64_t)c->v[i];
}

static napi_value adamw(napi_env env, napi_callback_info info) {
  call_t c;
  if (!args(env, info, "adamw", 17, &c) || !counts(env, &c, "adamw", 0, 8) || !operands(env, &c, "adamw", 0, 6, I(&c, 7))) return NULL;
  lisa_adamw(at(&c, 0), at(&c, 1), at(&c, 2), at(&c, 3), at(&c, 4), at(&c, 5), at(&c, 6), (size_t)I(&c, 7), (float)c.v[8], (float)c.v[9],
             (float)c.v[10], (float)c.v[11], (float)c.v[12], (float)c.v[13], (float)c.v[14], (float)c.v[15], (float)c.v[16]);
  return NULL;
}

/* Shapes of attention calls (arguments from `first`): B, H, KV, T, S, hd. */
static int attention_shapes(napi_env env, const call_t *c, const char *what, int first) {
  const int64_t h = I(c, first + 1), kv = I(c, first + 2), t = I(c, first + 3), s = I(c, first + 4);
  if (kv == 0 || h % kv != 0) return fail(env, "LISA_NATIVE_ARGS", what, "query heads must be a positive multiple of kv heads");
  if (t > s) return fail(env, "LISA_NATIVE_ARGS", what, "more queries than keys");
  return 1;
}

static napi_value attention(napi_env env, napi_callback_info info) {
  call_t c;
  if (!args(env, info, "attention", 11, &c) || !counts(env, &c, "attention", 0, 10) || !attention_shapes(env, &c, "attention", 4)) return NULL;
  const int64_t b = I(&c, 4), h = I(&c, 5), kv = I(&c, 6), t = I(&c, 7), s = I(&c, 8), hd = I(&c, 9);
  if (!operands(env, &c, "attention", 0, 0, b * h * t * hd) || !operands(env, &c, "attention", 1, 2, b * kv * s * hd) ||
      !operands(env, &c, "attention", 3, 3, b * t * h * hd)) {
    return NULL;
  }
  if (!lisa_attention(at(&c, 0), at(&c, 1), at(&c, 2), at(&c, 3), (int)b, (int)h, (int)kv, (int)t, (int)s, (int)hd, (float)c.v[10])) {
    fail(env, "LISA_NATIVE_MEMORY", "attention", "out of memory for the scores");
  }
  return NULL;
}

static napi_value attention_grad(napi_env env, napi_callback_info info) {
  call_t c;
  const char *what = "attentionGrad";
  if (!args(env, info, what, 14, &c) || !counts(env, &c, what, 0, 13) || !attention_shapes(env, &c, what, 7)) return NULL;
  const int64_t b = I(&c, 7), h = I(&c, 8), kv = I(&c, 9), t = I(&c, 10), s = I(&c, 11), hd = I(&c, 12);
  if (!operands(env, &c, what, 0, 0, b * h * t * hd) || !operands(env, &c, what, 1, 2, b * kv * s * hd) ||
      !operands(env, &c, what, 3, 4, b * t * h * hd) || !operands(env, &c, what, 5, 6, b * kv * s * hd)) {
    return NULL;
  }
  if (!lisa_attention_grad(at(&c, 0), at(&c, 1), at(&c, 2), at(&c, 3), at(&c, 4), at(&c, 5), at(&c, 6), (int)b, (int)h, (int)kv, (int)t,
                           (int)s, (int)hd, (float)c.v[13])) {
    fail(env, "LISA_NATIVE_MEMORY", what, "out of memory for the scores");
  }
  return NULL;
}

static napi_value rms_norm(napi_env env, napi_callback_info info) {
  call_t c;
  const char *what = "rmsNorm";
  if (!args(env, info, what, 6, &c) || !counts(env, &c, what, 0, 5)) return NULL;
  const int64_t n = I(&c, 3), d = I(&c, 4);
  if (!operands(env, &c, what, 0, 0, n * d) || !operands(env, &c, what, 1, 1, d) || !operands(env, &c, what, 2, 2, n * d)) return NULL;
  lisa_rms_norm(at(&c, 0), at(&c, 1), at(&c, 2), (int)n, (int)d, (float)c.v[5]);
  return NULL;
}

static napi_value rms_norm_grad(napi_env env, napi_callback_info info) {
  call_t c;
  const char *what = "rmsNormGrad";
  if (!args(env, info, what, 8, &c) || !counts(env, &c, what, 0, 7)) return NULL;
  const int64_t n = I(&c, 5), d = I(&c, 6);
  if (!operands(env, &c, what, 0, 0, n * d) || !operands(env, &c, what, 1, 1, d) || !operands(env, &c, what, 2, 3, n * d) ||
      !operands(env, &c, what, 4, 4, d)) {
    return NULL;
  }
  lisa_rms_norm_grad(at(&c, 0), at(&c, 1), at(&c, 2), at(&c, 3), at(&c, 4), (int)n, (int)d, (float)c.v[7]);
  return NULL;
}

static napi_value layer_norm(napi_env env, napi_callback_info info) {
  call_t c;
  const char *what = "layerNorm";
  if (!args(env, info, what, 7, &c) || !counts(env, &c, what, 0, 6)) return NULL;
  const int64_t n = I(&c, 4), d = I(&c, 5);
  if (!operands(env, &c, what, 0, 0, n * d) || !operands(env, &c, what, 1, 2, d) || !operands(env, &c, what, 3, 3, n * d)) return NULL;
  lisa_layer_norm(at(&c, 0), at(&c, 1), at(&c, 2), at(&c, 3), (int)n, (int)d, (float)c.v[6]);
  return NULL;
}

static napi_value layer_norm_grad(napi_env env, napi_callback_info info) {
  call_t c;
  const char *what = "layerNormGrad";
  if (!args(env, info, what, 9, &c) || !counts(env, &c, what, 0, 8)) return NULL;
  const int64_t n = I(&c, 6), d = I(&c, 7);
  if (!operands(env, &c, what, 0, 0, n * d) || !operands(env, &c, what, 1, 1, d) || !operands(env, &c, what, 2, 3, n * d) ||
      !operands(env, &c, what, 4, 5, d)) {
    return NULL;
  }
  lisa_layer_norm_grad(at(&c, 0), at(&c, 1), at(&c, 2), at(&c, 3), at(&c, 4), at(&c, 5), (int)n, (int)d, (float)c.v[8]);
  return NULL;
}

static napi_value sum_squares(napi_env env, napi_callback_info info) {
  call_t c;
  const char *what = "sumSquares";
  if (!args(env, info, what, 2, &c) || !counts(env, &c, what, 0, 2) || !operands(env, &c, what, 0, 0, I(&c, 1))) return NULL;
  double sum;
  lisa_sum_squares(at(&c, 0), (size_t)I(&c, 1), &sum);
  napi_value out;
  napi_create_double(env, sum, &out);
  return out;
}

static napi_value conv1d(napi_env env, napi_callback_info info) {
  call_t c;
  const char *what = "conv1d";
  if (!args(env, info, what, 7, &c) || !counts(env, &c, what, 0, 7)) return NULL;
  const int64_t n = I(&c, 4), in = I(&c, 5), outs = I(&c, 6);
  if (!operands(env, &c, what, 0, 0, n * in) || !operands(env, &c, what, 1, 1, in * outs) || !operands(env, &c, what, 2, 2, outs) ||
      !operands(env, &c, what, 3, 3, n * outs)) {
    return NULL;
  }
  lisa_conv1d(at(&c, 0), at(&c, 1), at(&c, 2), at(&c, 3), (int)n, (int)in, (int)outs);
  return NULL;
}

static napi_value column_sum(napi_env env, napi_callback_info info) {
  call_t c;
  const char *what = "columnSum";
  if (!args(env, info, what, 4, &c) || !counts(env, &c, what, 0, 4)) return NULL;
  const int64_t rows = I(&c, 2), cols = I(&c, 3);
  if (!operands(env, &c, what, 0, 0, rows * cols) || !operands(env, &c, what, 1, 1, cols)) return NULL;
  lisa_column_sum(at(&c, 0), at(&c, 1), (int)rows, (int)cols);
  return NULL;
}

static napi_value mul_broadcast(napi_env env, napi_callback_info info) {
  call_t c;
  const char *what = "mulBroadcast";
  if (!args(env, info, what, 15, &c) || !counts(env, &c, what, 0, 15)) return NULL;
  int64_t shape[4], sa[4], sb[4], out = 1, ea = 1, eb = 1;
  for (int i = 0; i < 4; i++) {
    shape[i] = I(&c, 3 + i);
    sa[i] = I(&c, 7 + i);
    sb[i] = I(&c, 11 + i);
    out *= shape[i];
    if (shape[i] > 0) {
      ea += (shape[i] - 1) * sa[i];
      eb += (shape[i] - 1) * sb[i];
    }
  }
  if (sa[3] > 1 || sb[3] > 1) {
    fail(env, "LISA_NATIVE_ARGS", what, "the last dimension must be contiguous or broadcast");
    return NULL;
  }
  if (out == 0) return NULL;
  if (!operands(env, &c, what, 0, 0, ea) || !operands(env, &c, what, 1, 1, eb) || !operands(env, &c, what, 2, 2, out)) return NULL;
  lisa_mul_broadcast(at(&c, 0), at(&c, 1), at(&c, 2), shape, sa, sb);
  return NULL;
}

static napi_value permute(napi_env env, napi_callback_info info) {
  call_t c;
  const char *what = "permute";
  if (!args(env, info, what, 9, &c) || !counts(env, &c, what, 0, 9)) return NULL;
  int64_t shape[4], perm[3], n = 1;
  for (int i = 0; i < 4; i++) n *= (shape[i] = I(&c, 2 + i));
  int seen = 0;
  for (int i = 0; i < 3; i++) {
    perm[i] = I(&c, 6 + i);
    if (perm[i] > 2 || (seen & (1 << perm[i]))) {
      fail(env, "LISA_NATIVE_ARGS", what, "perm must order axes 0, 1, 2");
      return NULL;
    }
    seen |= 1 << perm[i];
  }
  if (!operands(env, &c, what, 0, 1, n)) return NULL;
  lisa_permute(at(&c, 0), at(&c, 1), shape, perm);
  return NULL;
}

/* Elementwise activations: f(x, y, n), and df(x, dy, dx, n). */
static napi_value activation(napi_env env, napi_callback_info info, const char *what, void (*f)(const float *, float *, size_t)) {
  call_t c;
  if (!args(env, info, what, 3, &c) || !counts(env, &c, what, 0, 3) || !operands(env, &c, what, 0, 1, I(&c, 2))) return NULL;
  f(at(&c, 0), at(&c, 1), (size_t)I(&c, 2));
  return NULL;
}

static napi_value activation_grad(napi_env env, napi_callback_info info, const char *what,
                                  void (*df)(const float *, const float *, float *, size_t)) {
  call_t c;
  if (!args(env, info, what, 4, &c) || !counts(env, &c, what, 0, 4) || !operands(env, &c, what, 0, 2, I(&c, 3))) return NULL;
  df(at(&c, 0), at(&c, 1), at(&c, 2), (size_t)I(&c, 3));
  return NULL;
}

static napi_value silu(napi_env env, napi_callback_info info) {
  return activation(env, info, "silu", lisa_silu);
}

static napi_value silu_grad(napi_env env, napi_callback_info info) {
  return activation_grad(env, info, "siluGrad", lisa_silu_grad);
}

static napi_value gelu(napi_env env, napi_callback_info info) {
  return activation(env, info, "gelu", lisa_gelu);
}

static napi_value gelu_grad(napi_env env, napi_callback_info info) {
  return activation_grad(env, info, "geluGrad", lisa_gelu_grad);
}

static napi_value cross_entropy(napi_env env, napi_callback_info info) {
  call_t c;
  const char *what = "crossEntropy";
  if (!args(env, info, what, 5, &c) || !counts(env, &c, what, 0, 5)) return NULL;
  const int64_t n = I(&c, 3), v = I(&c, 4);
  if (!operands(env, &c, what, 0, 0, n * v) || !operands(env, &c, what, 1, 2, n)) return NULL;
  napi_value out;
  napi_create_double(env, lisa_cross_entropy(at(&c, 0), (const int32_t *)at(&c, 1), at(&c, 2), (int)n, (int)v), &out);
  return out;
}

static napi_value cross_entropy_grad(napi_env env, napi_callback_info info) {
  call_t c;
  const char *what = "crossEntropyGrad";
  if (!args(env, info, what, 7, &c) || !counts(env, &c, what, 0, 3) || !counts(env, &c, what, 4, 7)) return NULL;
  const int64_t n = I(&c, 5), v = I(&c, 6);
  if (!operands(env, &c, what, 0, 0, n * v) || !operands(env, &c, what, 1, 2, n) || !operands(env, &c, what, 4, 4, n * v)) return NULL;
  lisa_cross_entropy_grad(at(&c, 0), (const int32_t *)at(&c, 1), at(&c, 2), (float)c.v[3], at(&c, 4), (int)n, (int)v);
  return NULL;
}

static napi_value set_threads(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value arg;
  int32_t n;
  if (napi_get_cb_info(env, info, &argc, &arg, NULL, NULL) != napi_ok || argc != 1 || napi_get_value_int32(env, arg, &n) != napi_ok || n < 1) {
    fail(env, "LISA_NATIVE_ARGS", "setThreads", "takes a positive integer");
    return NULL;
  }
  openblas_set_num_threads(n);
  return NULL;
}

static napi_value threads(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value out;
  napi_create_int32(env, openblas_get_num_threads(), &out);
  return out;
}

static napi_value config(napi_env env, napi_callback_info info) {
  (void)info;
  char text[512];
  snprintf(text, sizeof text, "%s; core %s", openblas_get_config(), openblas_get_corename());
  napi_value out;
  napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &out);
  return out;
}

static napi_value init(napi_env env, napi_value exports) {
  const napi_property_descriptor fns[] = {
      {"gemm", NULL, gemm, NULL, NULL, NULL, napi_default, NULL},
      {"adamw", NULL, adamw, NULL, NULL, NULL, napi_default, NULL},
      {"attention", NULL, attention, NULL, NULL, NULL, napi_default, NULL},
      {"attentionGrad", NULL, attention_grad, NULL, NULL, NULL, napi_default, NULL},
      {"rmsNorm", NULL, rms_norm, NULL, NULL, NULL, napi_default, NULL},
      {"rmsNormGrad", NULL, rms_norm_grad, NULL, NULL, NULL, napi_default, NULL},
      {"layerNorm", NULL, layer_norm, NULL, NULL, NULL, napi_default, NULL},
      {"layerNormGrad", NULL, layer_norm_grad, NULL, NULL, NULL, napi_default, NULL},
      {"sumSquares", NULL, sum_squares, NULL, NULL, NULL, napi_default, NULL},
      {"gelu", NULL, gelu, NULL, NULL, NULL, napi_default, NULL},
      {"geluGrad", NULL, gelu_grad, NULL, NULL, NULL, napi_default, NULL},
      {"conv1d", NULL, conv1d, NULL, NULL, NULL, napi_default, NULL},
      {"columnSum", NULL, column_sum, NULL, NULL, NULL, napi_default, NULL},
      {"mulBroadcast", NULL, mul_broadcast, NULL, NULL, NULL, napi_default, NULL},
      {"permute", NULL, permute, NULL, NULL, NULL, napi_default, NULL},
      {"silu", NULL, silu, NULL, NULL, NULL, napi_default, NULL},
      {"siluGrad", NULL, silu_grad, NULL, NULL, NULL, napi_default, NULL},
      {"crossEntropy", NULL, cross_entropy, NULL, NULL, NULL, napi_default, NULL},
      {"crossEntropyGrad", NULL, cross_entropy_grad, NULL, NULL, NULL, napi_default, NULL},
      {"setThreads", NULL, set_threads, NULL, NULL, NULL, napi_default, NULL},
      {"threads", NULL, threads, NULL, NULL, NULL, napi_default, NULL},
      {"config", NULL, config, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof fns / sizeof fns[0], fns);
  return exports;
}

NAPI_MODULE(lisa_native, init)
