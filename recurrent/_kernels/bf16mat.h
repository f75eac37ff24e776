/* bf16 products: C (m, N) (+)= A (m, K) @ B (K, N), A float32 rounded to bf16 as it is
 * read, B rounded to bf16 once when packed, sums in float32 (vdpbf16ps).
 *
 * Every output element is the same sequence of operations whatever tile it falls in and
 * whatever m is: acc = 0; for each pair kk = 0, 1, ... of k (2kk, 2kk + 1; a zero pair
 * element past an odd K): acc = dp(acc, A pair, B pair); then C = acc or C = C + acc (a
 * float32 add). So splitting rows between threads gives bitwise-identical results, as in
 * recmat.h.
 *
 * dp is vdpbf16ps on one lane (how this was established: benchmarks/README.md, "The bf16
 * matrix product"): products of the bf16 values exact (no overflow or underflow of their
 * own), bf16 denormal inputs and
 * a denormal accumulator read as zero, then acc = round(acc + odd product), flushed to
 * zero if denormal, then acc = round(acc + even product), flushed likewise; each round is
 * to nearest even, overflowing to infinity. rc_bf16_dp below is that, in portable C,
 * equal bit for bit except for the payload of a NaN result (which NaN the instruction
 * propagates is not modelled: a NaN stays a NaN). The rounding of float32 to bf16
 * (vcvtneps2bf16) is to nearest even with denormals flushed to signed zero and a NaN kept
 * a (quiet) NaN; rc_bf16_round is that.
 *
 * Packed layout of B: panels of 16 columns; panel p holds K2 = ceil(K / 2) rows of 16
 * pairs: P[((p * K2 + kk) * 16 + j) * 2 + e] = bf16(B[2kk + e][16p + j]), zero past K and
 * past N: one 64-byte vector per pair row, the operand layout of vdpbf16ps. A's rows are
 * rounded per block of rows into a scratch of bf16 pairs, whose 32-bit pair is broadcast.
 * Register tiles of MR rows x NP panels (MR * NP accumulators); the rows left after the
 * full tiles (all of them for m < 8: the recurrent step at a small batch) take wider
 * tiles, so that a few rows still keep enough independent accumulators in flight.
 * Variants: AVX512_BF16 (chosen at run time, rc_cpu_bf16 in cpu.h) and portable C.
 */
#ifndef RECURRENT_BF16MAT_H
#define RECURRENT_BF16MAT_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cpu.h"

#ifdef RC_HAVE_BF16
#include <immintrin.h>
#endif

#define RC_BF16_NR 16

/* ---- scalar bf16 arithmetic: the portable variant, and the packing of B ---- */

static inline uint32_t rc_bf16_bits_f32(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof(u));
    return u;
}

static inline float rc_bf16_f32_bits(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof(f));
    return f;
}

/* float32 -> bf16 as vcvtneps2bf16: NaN stays NaN (quieted), denormals become signed
 * zero, else round to nearest even (overflowing to infinity). */
static inline uint16_t rc_bf16_round(float f)
{
    uint32_t u = rc_bf16_bits_f32(f);
    if ((u & 0x7fffffffu) > 0x7f800000u)
        return (uint16_t)((u >> 16) | 0x40u);
    if ((u & 0x7f800000u) == 0)
        return (uint16_t)((u >> 16) & 0x8000u);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

/* bf16 (or float32) -> float32 with a denormal read as signed zero */
static inline float rc_bf16_daz(uint32_t u)
{
    if ((u & 0x7f800000u) == 0)
        u &= 0x80000000u;
    return rc_bf16_f32_bits(u);
}

/* round(acc + p) to float32, to nearest even, p exact in double. The double sum is made
 * round-to-odd (an inexact sum with an even last bit moves one step toward the exact
 * value), so its rounding to float32 is the correctly rounded sum, not a double rounding;
 * then a denormal result is flushed to signed zero. */
static inline float rc_bf16_add(float acc, double p)
{
    double x = acc, s = x + p;
    if (s - s == 0) {  /* finite: infinities and NaN need no correction */
        double bb = s - x;
        double err = (x - (s - bb)) + (p - bb);  /* s + err == x + p exactly */
        uint64_t u;
        memcpy(&u, &s, sizeof(u));
        if (err != 0 && !(u & 1)) {
            /* s != 0 here; toward the exact value: away from zero when err has s's sign */
            u += ((err > 0) == (s > 0)) ? 1 : (uint64_t)-1;
            memcpy(&s, &u, sizeof(s));
        }
    }
    return rc_bf16_daz(rc_bf16_bits_f32((float)s));
}

/* one vdpbf16ps lane: acc + a.odd * b.odd, then + a.even * b.even (pair = even element in
 * the low 16 bits) */
static inline float rc_bf16_dp(float acc, uint32_t a, uint32_t b)
{
    acc = rc_bf16_daz(rc_bf16_bits_f32(acc));
    acc = rc_bf16_add(acc, (double)rc_bf16_daz(a & 0xffff0000u)
                               * (double)rc_bf16_daz(b & 0xffff0000u));
    return rc_bf16_add(acc, (double)rc_bf16_daz(a << 16) * (double)rc_bf16_daz(b << 16));
}

/* ---- packing ---- */

/* uint16 elements of the packed copy of a (K, N) matrix */
static inline long rc_bf16_packed_len(int K, int N)
{
    return (long)((N + RC_BF16_NR - 1) / RC_BF16_NR) * ((K + 1) / 2) * RC_BF16_NR * 2;
}

/* rc_bf16_pack's portable variant: one value at a time */
static inline void rc_bf16_pack_portable(const float* b, long ld_k, long ld_n, int K, int N,
                                         uint16_t* P)
{
    int np = (N + RC_BF16_NR - 1) / RC_BF16_NR, K2 = (K + 1) / 2;
    for (int p = 0; p < np; p++)
        for (int j = 0; j < RC_BF16_NR; j++) {
            int n = p * RC_BF16_NR + j;
            uint16_t* dst = P + (long)p * K2 * 2 * RC_BF16_NR + 2 * j;
            for (int k = 0; k < 2 * K2; k++)
                dst[(long)(k / 2) * 2 * RC_BF16_NR + (k & 1)] =
                    n < N && k < K ? rc_bf16_round(b[k * ld_k + n * ld_n]) : 0;
        }
}

#ifdef RC_HAVE_BF16
/* 16 values of a row of B (columns n0 .. n0 + 15, the lanes of in; zero elsewhere), at
 * src[j * ld_n] for lane j (gathered unless ld_n is 1), rounded to bf16 in the low 16 bits
 * of each 32-bit lane */
RC_TARGET_BF16
static inline __m512i rc_bf16_pack_row16(const float* src, long ld_n, __mmask16 in,
                                         __m512i idx)
{
    __m512 v = ld_n == 1 ? _mm512_maskz_loadu_ps(in, src)
                         : _mm512_mask_i32gather_ps(_mm512_setzero_ps(), in, idx, src, 4);
    return _mm512_cvtepu16_epi32((__m256i)_mm512_cvtneps_pbh(v));
}

/* rc_bf16_pack's AVX512_BF16 variant: a pair row of a panel (one 64-byte vector) from two
 * rows of B, 16 values each through vcvtneps2bf16, which rounds as rc_bf16_round does.
 * Lane offsets j * ld_n must fit in int32 (rc_bf16_pack checks). */
RC_TARGET_BF16
static void rc_bf16_pack_avx512(const float* b, long ld_k, long ld_n, int K, int N,
                                uint16_t* P)
{
    int np = (N + RC_BF16_NR - 1) / RC_BF16_NR, K2 = (K + 1) / 2;
    __m512i idx = _mm512_mullo_epi32(
        _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
        _mm512_set1_epi32((int)ld_n));
    for (int p = 0; p < np; p++) {
        int n0 = p * RC_BF16_NR, nv = N - n0 < RC_BF16_NR ? N - n0 : RC_BF16_NR;
        __mmask16 in = (__mmask16)((1u << nv) - 1);
        const float* col = b + n0 * ld_n;
        uint16_t* dst = P + (long)p * K2 * 2 * RC_BF16_NR;
        for (int kk = 0; kk < K2; kk++) {
            __m512i lo = rc_bf16_pack_row16(col + 2L * kk * ld_k, ld_n, in, idx);
            __m512i hi = 2 * kk + 1 < K
                ? rc_bf16_pack_row16(col + (2L * kk + 1) * ld_k, ld_n, in, idx)
                : _mm512_setzero_si512();
            _mm512_store_si512((void*)(dst + (long)kk * 2 * RC_BF16_NR),
                               _mm512_or_si512(lo, _mm512_slli_epi32(hi, 16)));
        }
    }
}
#endif

/* Pack B (K, N), B[k][n] = b[k * ld_k + n * ld_n] (B or B^T layouts), into P (64-byte
 * aligned, rc_bf16_packed_len(K, N) elements). Both variants give the same bits. */
static inline void rc_bf16_pack(const float* b, long ld_k, long ld_n, int K, int N,
                                uint16_t* P)
{
#ifdef RC_HAVE_BF16
    if (rc_cpu_bf16() && ld_n >= 1 && ld_n <= INT32_MAX / RC_BF16_NR) {
        rc_bf16_pack_avx512(b, ld_k, ld_n, K, N, P);
        return;
    }
#endif
    rc_bf16_pack_portable(b, ld_k, ld_n, K, N, P);
}

/* Rows of bf16 pairs for the product: dst[i * K2 + kk] = (bf16(a[i][2kk + 1]) << 16) |
 * bf16(a[i][2kk]), zero past K. */
static inline void rc_bf16_rows_portable(int rows, int K, const float* a, long lda,
                                         uint32_t* dst)
{
    int K2 = (K + 1) / 2;
    for (int i = 0; i < rows; i++)
        for (int kk = 0; kk < K2; kk++) {
            uint32_t lo = rc_bf16_round(a[i * lda + 2 * kk]);
            uint32_t hi = 2 * kk + 1 < K ? rc_bf16_round(a[i * lda + 2 * kk + 1]) : 0;
            dst[(long)i * K2 + kk] = lo | hi << 16;
        }
}

/* Rows of A per scratch block: about 32 KB of pairs (L1), a multiple of 8, 8 to 256 */
static inline int rc_bf16_block_rows(int m, int K)
{
    long per_row = (long)((K + 1) / 2) * 4;
    long rb = (32768 / (per_row ? per_row : 1)) & ~7L;
    rb = rb < 8 ? 8 : rb > 256 ? 256 : rb;
    return (int)(rb < m ? rb : m);
}

/* ---- the portable product ---- */

static void rc_bf16_mat_portable(int m, int N, int K, const float* A, long lda,
                                 const uint16_t* P, float* C, long ldc, int accumulate,
                                 uint32_t* a)
{
    int K2 = (K + 1) / 2;
    const uint32_t* p32 = (const uint32_t*)P;
    for (int r = 0; r < m; r++) {
        rc_bf16_rows_portable(1, K, A + r * lda, lda, a);
        for (int n = 0; n < N; n++) {
            const uint32_t* b = p32 + (long)(n / RC_BF16_NR) * K2 * RC_BF16_NR
                                + n % RC_BF16_NR;
            float acc = 0.0f;
            for (int kk = 0; kk < K2; kk++)
                acc = rc_bf16_dp(acc, a[kk], b[(long)kk * RC_BF16_NR]);
            C[r * ldc + n] = accumulate ? C[r * ldc + n] + acc : acc;
        }
    }
}

/* ---- the AVX512_BF16 product ---- */

#ifdef RC_HAVE_BF16

/* rows of A into pairs of bf16 (rc_bf16_rows_portable's layout), 16 floats at a time */
RC_TARGET_BF16
static void rc_bf16_rows_avx512(int rows, int K, const float* a, long lda, uint32_t* dst)
{
    int K2 = (K + 1) / 2;
    for (int i = 0; i < rows; i++) {
        const float* src = a + i * lda;
        uint16_t* out = (uint16_t*)(dst + (long)i * K2);
        int k = 0;
        for (; k + 16 <= K; k += 16) {
            __m256bh h = _mm512_cvtneps_pbh(_mm512_loadu_ps(src + k));
            _mm256_storeu_si256((__m256i*)(out + k), (__m256i)h);
        }
        if (k < 2 * K2) {  /* the tail, zero-padded to the even length */
            __mmask16 in = (__mmask16)((1u << (K - k)) - 1);
            __mmask16 wr = (__mmask16)((1u << (2 * K2 - k)) - 1);
            __m256bh h = _mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(in, src + k));
            _mm256_mask_storeu_epi16(out + k, wr, (__m256i)h);
        }
    }
}

/* One tile: mr rows (pairs a, row stride K2) x npn panels (P, panel stride ps uint16),
 * over all K2 pairs, then stored into C (ncols valid columns from the tile's first).
 * always_inline with constant mr, npn: the accumulators become registers. */
RC_TARGET_BF16
static inline __attribute__((always_inline)) void
rc_bf16_tile(const int mr, const int npn, int K2, const uint32_t* a, const uint16_t* P,
             long ps, float* C, long ldc, int ncols, int accumulate)
{
    __m512 acc[8][8];
    for (int i = 0; i < mr; i++)
        for (int q = 0; q < npn; q++)
            acc[i][q] = _mm512_setzero_ps();
    for (int kk = 0; kk < K2; kk++) {
        __m512i b[8];
        for (int q = 0; q < npn; q++)
            b[q] = _mm512_load_si512((const void*)(P + q * ps + (long)kk * 2 * RC_BF16_NR));
        for (int i = 0; i < mr; i++) {
            __m512bh ai = (__m512bh)_mm512_set1_epi32((int)a[(long)i * K2 + kk]);
            for (int q = 0; q < npn; q++)
                acc[i][q] = _mm512_dpbf16_ps(acc[i][q], ai, (__m512bh)b[q]);
        }
    }
    for (int i = 0; i < mr; i++)
        for (int q = 0; q < npn; q++) {
            int c0 = q * RC_BF16_NR;
            float* dst = C + i * ldc + c0;
            if (ncols - c0 >= RC_BF16_NR) {
                __m512 v = acc[i][q];
                if (accumulate)
                    v = _mm512_add_ps(_mm512_loadu_ps(dst), v);
                _mm512_storeu_ps(dst, v);
            } else if (ncols > c0) {
                __mmask16 mk = (__mmask16)((1u << (ncols - c0)) - 1);
                __m512 v = acc[i][q];
                if (accumulate)
                    v = _mm512_add_ps(_mm512_maskz_loadu_ps(mk, dst), v);
                _mm512_mask_storeu_ps(dst, mk, v);
            }
        }
}

/* Panels per tile of mr rows: MR * NP accumulators plus NP panel vectors and a broadcast
 * within the 32 vector registers */
#define RC_BF16_MR 8
#define RC_BF16_NP(mr) ((mr) >= 7 ? 3 : (mr) >= 5 ? 4 : (mr) >= 3 ? 5 : 8)

#define RC_BF16_TILE_CASE(MR_, NPN_)                                                     \
    case (MR_) * 16 + (NPN_):                                                             \
        rc_bf16_tile(MR_, NPN_, K2, a, P, ps, C, ldc, ncols, accumulate);                 \
        break;
#define RC_BF16_TILE_ROW(MR_)                                                            \
    RC_BF16_TILE_CASE(MR_, 1) RC_BF16_TILE_CASE(MR_, 2) RC_BF16_TILE_CASE(MR_, 3)

/* a tile of mr (1..8) rows x npn (1..RC_BF16_NP(mr)) panels */
RC_TARGET_BF16
static void rc_bf16_tile_any(int mr, int npn, int K2, const uint32_t* a, const uint16_t* P,
                             long ps, float* C, long ldc, int ncols, int accumulate)
{
    switch (mr * 16 + npn) {
        RC_BF16_TILE_ROW(8) RC_BF16_TILE_ROW(7)
        RC_BF16_TILE_ROW(6) RC_BF16_TILE_CASE(6, 4)
        RC_BF16_TILE_ROW(5) RC_BF16_TILE_CASE(5, 4)
        RC_BF16_TILE_ROW(4) RC_BF16_TILE_CASE(4, 4) RC_BF16_TILE_CASE(4, 5)
        RC_BF16_TILE_ROW(3) RC_BF16_TILE_CASE(3, 4) RC_BF16_TILE_CASE(3, 5)
        RC_BF16_TILE_ROW(2) RC_BF16_TILE_CASE(2, 4) RC_BF16_TILE_CASE(2, 5)
        RC_BF16_TILE_CASE(2, 6) RC_BF16_TILE_CASE(2, 7) RC_BF16_TILE_CASE(2, 8)
        RC_BF16_TILE_ROW(1) RC_BF16_TILE_CASE(1, 4) RC_BF16_TILE_CASE(1, 5)
        RC_BF16_TILE_CASE(1, 6) RC_BF16_TILE_CASE(1, 7) RC_BF16_TILE_CASE(1, 8)
    }
}

RC_TARGET_BF16
static void rc_bf16_mat_avx512(int m, int N, int K, const float* A, long lda,
                               const uint16_t* P, float* C, long ldc, int accumulate,
                               uint32_t* a)
{
    int K2 = (K + 1) / 2, np = (N + RC_BF16_NR - 1) / RC_BF16_NR;
    long ps = (long)K2 * 2 * RC_BF16_NR;
    int rb = rc_bf16_block_rows(m, K);
    for (int r0 = 0; r0 < m; r0 += rb) {
        int rows = m - r0 < rb ? m - r0 : rb;
        int full = rows / RC_BF16_MR * RC_BF16_MR, rest = rows - full;
        rc_bf16_rows_avx512(rows, K, A + r0 * lda, lda, a);
        /* full tiles: each group of panels is reused from cache by every row tile */
        int npf = RC_BF16_NP(RC_BF16_MR);
        for (int p0 = 0; p0 < np && full; p0 += npf) {
            int npn = np - p0 < npf ? np - p0 : npf;
            for (int r = 0; r < full; r += RC_BF16_MR)
                rc_bf16_tile_any(RC_BF16_MR, npn, K2, a + (long)r * K2, P + p0 * ps, ps,
                                 C + (r0 + r) * ldc + p0 * RC_BF16_NR, ldc,
                                 N - p0 * RC_BF16_NR, accumulate);
        }
        /* the rest of the block's rows: one tile high, wider */
        if (rest) {
            int npr = RC_BF16_NP(rest);
            for (int p0 = 0; p0 < np; p0 += npr) {
                int npn = np - p0 < npr ? np - p0 : npr;
                rc_bf16_tile_any(rest, npn, K2, a + (long)full * K2, P + p0 * ps, ps,
                                 C + (r0 + full) * ldc + p0 * RC_BF16_NR, ldc,
                                 N - p0 * RC_BF16_NR, accumulate);
            }
        }
    }
}
#endif

/* uint32 elements of the scratch for A's rounded rows that rc_bf16_mat_scratch takes for
 * products of up to m rows of K (a block of rows of pairs; the portable variant uses one
 * row); 64 bytes of slack past the last pair */
static inline long rc_bf16_scratch_len(int m, int K)
{
    return (long)rc_bf16_block_rows(m > 0 ? m : 1, K) * ((K + 1) / 2) + 16;
}

/* C (m, N) = [C +] A (m, K) @ B (K, N), B packed by rc_bf16_pack; row strides lda, ldc;
 * a (rc_bf16_scratch_len(m', K) elements for some m' >= m) holds A's rounded rows, so
 * that a caller looping over products (the steps of a time loop) allocates it once. */
static inline void rc_bf16_mat_scratch(int m, int N, int K, const float* A, long lda,
                                       const uint16_t* P, float* C, long ldc,
                                       int accumulate, uint32_t* a)
{
    if (m <= 0 || N <= 0)
        return;
#ifdef RC_HAVE_BF16
    if (rc_cpu_bf16()) {
        rc_bf16_mat_avx512(m, N, K, A, lda, P, C, ldc, accumulate, a);
        return;
    }
#endif
    rc_bf16_mat_portable(m, N, K, A, lda, P, C, ldc, accumulate, a);
}

/* rc_bf16_mat_scratch with a scratch of its own: 0, or -1 when it could not be allocated
 * (C untouched). */
static inline int rc_bf16_mat(int m, int N, int K, const float* A, long lda,
                              const uint16_t* P, float* C, long ldc, int accumulate)
{
    if (m <= 0 || N <= 0)
        return 0;
    uint32_t* a = (uint32_t*)rc_malloc64((size_t)rc_bf16_scratch_len(m, K) * 4);
    if (a == NULL)
        return -1;
    rc_bf16_mat_scratch(m, N, K, A, lda, P, C, ldc, accumulate, a);
    free(a);
    return 0;
}

#endif
