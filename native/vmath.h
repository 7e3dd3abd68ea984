/* Vectorisable float32 helpers for the kernels (static inline: each loop gets its own copy and
 * gcc vectorises it with the loop). */
#ifndef LISA_VMATH_H
#define LISA_VMATH_H
#include <stdint.h>
#include <string.h>

/* e^x to ~2 float32 ulp (Cephes expf: x = n ln2 + r with a two-part ln2, a degree-6 polynomial
 * in r, then 2^n by exponent bits); 0 below -87.3, where e^x leaves the normal range. n is
 * rounded by adding and subtracting 1.5 * 2^23 (exact for |n| < 2^22), which vectorises on
 * every x86-64 where floorf does not. */
static inline float lisa_expf(float x) {
  const float lo = -87.33f, hi = 88.37f, round = 12582912.0f;
  const float xc = x < lo ? lo : (x > hi ? hi : x);
  const float n = (xc * 1.44269504088896341f + round) - round;
  float r = xc - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * (r * r) + r + 1.0f;
  const int32_t bits = ((int32_t)n + 127) << 23;
  float scale;
  memcpy(&scale, &bits, sizeof scale);
  return x < lo ? 0.0f : p * scale;
}

static inline float lisa_sigmoidf(float x) {
  return 1.0f / (1.0f + lisa_expf(-x));
}

#endif
