/* Kernels of the lisa_native addon (addon.c is their Node-API glue). Row-major float32; shapes
 * use the forward passes' letters: B batch, H query heads, KV kv heads, T queries, S keys,
 * hd head dim, N = B*T rows, D features, V vocabulary. */
#ifndef LISA_KERNELS_H
#define LISA_KERNELS_H
#include <stddef.h>
#include <stdint.h>

/* AdamW on n values, PyTorch's order of operations, each rounded to float32 as tfjs's ops round
 * them (core/optim/adamw.ts is the reference): g' = g clip; m' = m b1 + g' (1 - b1);
 * v' = v b2 + g'^2 (1 - b2); p' = p decay - (m' / (sqrt(v') / bc2 + eps)) step. */
void lisa_adamw(const float *p, const float *m, const float *v, const float *g, float *po, float *mo, float *vo, size_t n,
                float clip, float b1, float one_minus_b1, float b2, float one_minus_b2, float bc2, float eps, float decay,
                float step);

/* C = alpha op(A) op(B) + beta C on OpenBLAS, row-major. */
void lisa_sgemm(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a, int lda, const float *b, int ldb,
                float beta, float *c, int ldc);

/* GPT-2's Conv1D: out [N, out] = x [N, in] w [in, out] + b [out]. */
void lisa_conv1d(const float *x, const float *w, const float *b, float *out, int n, int in, int outs);

/* out [cols] = sum over the rows of x [rows, cols] (a bias's gradient). */
void lisa_column_sum(const float *x, float *out, int rows, int cols);

/* out = a * b over a 4-D shape (lower ranks padded with leading 1s), operands read at their own
 * strides in elements, 0 along the dimensions where one broadcasts; out is contiguous. */
void lisa_mul_broadcast(const float *a, const float *b, float *out, const int64_t shape[4], const int64_t sa[4], const int64_t sb[4]);

/* out = x [d0, d1, d2, d3] with its first three axes permuted by perm (the last stays last, so
 * rows of d3 move whole): out [d_perm0, d_perm1, d_perm2, d3]. */
void lisa_permute(const float *x, float *out, const int64_t shape[4], const int64_t perm[3]);

/* Causal softmax attention, nn.ts's causalAttention: q [B, H, T, hd], k and v [B, KV, S, hd],
 * query t at position S - T + t sees keys 0..S-T+t; query head h reads kv head h / (H / KV).
 * out [B, T, H, hd] = softmax(scale q k^T) v. Returns 0 when scratch memory is short. */
int lisa_attention(const float *q, const float *k, const float *v, float *out, int b, int h, int kv, int t, int s, int hd, float scale);

/* Its gradient: dout [B, T, H, hd] -> dq [B, H, T, hd], dk and dv [B, KV, S, hd] (probabilities
 * recomputed, not stored). Returns 0 when scratch memory is short. */
int lisa_attention_grad(const float *q, const float *k, const float *v, const float *dout, float *dq, float *dk, float *dv, int b,
                        int h, int kv, int t, int s, int hd, float scale);

/* RMSNorm over rows of x [N, D]: y = x r w with r = 1 / sqrt(mean(x^2) + eps). */
void lisa_rms_norm(const float *x, const float *w, float *y, int n, int d, float eps);

/* Its gradient (r recomputed): dx = r (dy w) - x r^3 mean(dy w x), dw = sum over rows of dy x r. */
void lisa_rms_norm_grad(const float *x, const float *w, const float *dy, float *dx, float *dw, int n, int d, float eps);

/* LayerNorm over rows of x [N, D]: y = (x - mean) / sqrt(var + eps) w + b (variance biased), and
 * its gradient into dx [N, D], dw and db [D] (statistics recomputed). */
void lisa_layer_norm(const float *x, const float *w, const float *b, float *y, int n, int d, float eps);
void lisa_layer_norm_grad(const float *x, const float *w, const float *dy, float *dx, float *dw, float *db, int n, int d, float eps);

/* Sum of squares of n values (float partial sums in a fixed order, then double). */
void lisa_sum_squares(const float *x, size_t n, double *out);

/* y = x sigmoid(x) on n values, and its gradient dx = dy s (1 + x (1 - s)), s = sigmoid(x). */
void lisa_silu(const float *x, float *y, size_t n);
void lisa_silu_grad(const float *x, const float *dy, float *dx, size_t n);

/* GPT-2's gelu_new (tanh approximation) on n values, and its gradient. */
void lisa_gelu(const float *x, float *y, size_t n);
void lisa_gelu_grad(const float *x, const float *dy, float *dx, size_t n);

/* Weighted cross-entropy of logits [N, V] against targets [N]: sum over rows of
 * weight (logsumexp(row) - row[target]); a target outside [0, V) counts no logit. */
double lisa_cross_entropy(const float *logits, const int32_t *targets, const float *weights, int n, int v);

/* Its gradient: dlogits = dy weight (softmax(row) - onehot(target)). */
void lisa_cross_entropy_grad(const float *logits, const int32_t *targets, const float *weights, float dy, float *dlogits, int n,
                             int v);

#endif
