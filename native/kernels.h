/* Kernels of the lisa_native addon (addon.c is their Node-API glue). Row-major float32. */
#ifndef LISA_KERNELS_H
#define LISA_KERNELS_H
#include <stddef.h>

/* AdamW on n values, PyTorch's order of operations, each rounded to float32 as tfjs's ops round
 * them (core/optim/adamw.ts is the reference): g' = g clip; m' = m b1 + g' (1 - b1);
 * v' = v b2 + g'^2 (1 - b2); p' = p decay - (m' / (sqrt(v') / bc2 + eps)) step. */
void lisa_adamw(const float *p, const float *m, const float *v, const float *g, float *po, float *mo, float *vo, size_t n,
                float clip, float b1, float one_minus_b1, float b2, float one_minus_b2, float bc2, float eps, float decay,
                float step);

#endif
