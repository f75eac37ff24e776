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

/* exp(x) = 2^k * exp(r), k = round(x / ln2), |r| <= ln2 / 2.
 * x is clamped to [-87, 88] so that 2^k stays a normal float: exp saturates at 1.65e38
 * (callers only feed it to sigmoid/tanh, where that equals infinity) and at 1.6e-38 below. */
static inline float rc_expf(float x)
{
    const float magic = 12582912.0f;          /* 1.5 * 2^23: adding it rounds to an integer */
    x = x > 88.0f ? 88.0f : x;
    x = x < -87.0f ? -87.0f : x;
    float t = x * 1.44269504088896341f + magic;
    float k = t - magic;                      /* round(x / ln2) */
    /* Cody-Waite: ln2 split so that k * ln2_hi is exact */
    float r = x - k * 0.693359375f;
    r = r + k * 2.12194440e-4f;
    /* Taylor series of exp(r) to degree 7: truncation error < 6e-9 for |r| <= 0.347 */
    float p = 1.0f / 5040.0f;
    p = p * r + 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    /* the low mantissa bits of t hold k; build 2^k from them with unsigned arithmetic */
    uint32_t kbits = rc_float_to_bits(t) - rc_float_to_bits(magic);
    float scale = rc_bits_to_float((kbits + 127u) << 23);
    return p * scale;
}

static inline float rc_sigmoidf(float x)
{
    return 1.0f / (1.0f + rc_expf(-x));
}

/* tanh: an odd polynomial near 0 (where 1 - 2/(e^2x + 1) would cancel), the exp form
 * elsewhere. Both are computed and one selected, which vectorises better than a branch. */
static inline float rc_tanhf(float x)
{
    float a = x < 0.0f ? -x : x;
    float u = x * x;
    /* least-squares fit of tanh(x)/x in u = x^2 on |x| <= 0.625 (error 4.5e-9) */
    float q = -5.704042525e-03f;
    q = q * u + 2.063786149e-02f;
    q = q * u - 5.373915650e-02f;
    q = q * u + 1.333143175e-01f;
    q = q * u - 3.333328128e-01f;
    q = q * u + 1.0f;
    float small = x * q;
    float big = 1.0f - 2.0f / (rc_expf(2.0f * a) + 1.0f);
    big = x < 0.0f ? -big : big;
    return a < 0.625f ? small : big;
}

#endif
