/* Vectorisable float32 exp, sigmoid and tanh for the gate kernels.
 *
 * libm's expf/tanhf are opaque calls, so a loop over H gate values that uses them runs one
 * element at a time. These are plain branch-free arithmetic (selects, not jumps), so gcc -O3
 * turns a gate loop into SIMD code without -ffast-math. Accuracy: relative error against
 * the exact value below 1e-6 (a few float32 ulps), checked in tests/test_kernels.py.
 * NaN inputs give NaN (the clamps are written so that a comparison with NaN keeps NaN).
 * float64 kernels use libm: they exist for gradient checks, not speed.
 */
#ifndef RECURRENT_FASTMATH_H
#define RECURRENT_FASTMATH_H

#include <stdint.h>
#include <string.h>

static inline float rc_bits_to_float(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }
static inline uint32_t rc_float_to_bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }

/* expm1(r) for x = k ln2 + r, k = round(x / ln2), |r| <= ln2 / 2, with 2^k in *scale:
 * exp(x) = scale * (1 + q) and expm1(x) = scale * q + (scale - 1), q the return value.
 * The caller keeps x within [-87, 88] so that 2^k stays a normal float. */
static inline float rc_expm1_reduced(float x, float* scale)
{
    const float magic = 12582912.0f;          /* 1.5 * 2^23: adding it rounds to an integer */
    float t = x * 1.44269504088896341f + magic;
    float k = t - magic;                      /* round(x / ln2) */
    /* Cody-Waite: ln2 split so that k * ln2_hi is exact */
    float r = x - k * 0.693359375f;
    r = r + k * 2.12194440e-4f;
    /* expm1(r) = r * P(r), P of degree 5 fitted for minimax relative error on |r| <= ln2/2
     * (1.1e-8 in exact arithmetic); Estrin's scheme: a shorter dependency chain than
     * Horner's, which the single-row (B = 1) steps are bound by */
    float r2 = r * r;
    float p01 = 0.4999999701976776f * r + 1.0f;
    float p23 = 0.041667137295007706f * r + 0.16666506230831146f;
    float p45 = 0.0013888872927054763f * r + 0.00836906861513853f;
    float p = p45 * (r2 * r2) + (p23 * r2 + p01);
    /* the low mantissa bits of t hold k; build 2^k from them with unsigned arithmetic */
    uint32_t kbits = rc_float_to_bits(t) - rc_float_to_bits(magic);
    *scale = rc_bits_to_float((kbits + 127u) << 23);
    return p * r;
}

/* x is clamped to [-87, 88]: exp saturates at 1.65e38 (callers only feed it to sigmoid,
 * where that equals infinity) and at 1.6e-38 below. */
static inline float rc_expf(float x)
{
    x = x > 88.0f ? 88.0f : x;
    x = x < -87.0f ? -87.0f : x;
    float scale;
    float q = rc_expm1_reduced(x, &scale);
    return scale * q + scale;
}

static inline float rc_sigmoidf(float x)
{
    return 1.0f / (1.0f + rc_expf(-x));
}

/* tanh|x| = -e / (2 + e) with e = expm1(-2|x|) in (-1, 0]: no cancellation near 0 (expm1
 * is accurate relative to its small result), no overflow, one branch-free formula.
 * |x| >= 10 gives 1 (tanh 10 = 1 - 4e-9, which rounds to 1). */
static inline float rc_tanhf(float x)
{
    float y = -2.0f * (x < 0.0f ? -x : x);
    y = y < -20.0f ? -20.0f : y;
    float scale;
    float q = rc_expm1_reduced(y, &scale);
    float e = scale * q + (scale - 1.0f);
    return __builtin_copysignf(-e / (2.0f + e), x);
}

#endif
