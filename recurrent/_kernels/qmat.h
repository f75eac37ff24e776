/* int8 inference products: rows quantised to int8 values, weights quantised per output
 * row, exact int32 sums, dequantised to float32.
 *
 * Quantisation (symmetric, no zero point), the same for weights (per output row, once) and
 * activations (per batch row, every step):
 *     m = max_k |a[k]|;  inv = 127.0f / m
 *     if the row holds infinity or NaN: q = 0, scale = NaN
 *     else if inv is not finite (m == 0, or m below ~3.7e-37): q = 0, scale = 0
 *     else: q[k] = rint(a[k] * inv)  (|q| <= 127);  scale = m / 127.0f
 * each operation one IEEE float32 operation, rounding to nearest even, so numpy reproduces
 * it bit for bit (recurrent/reference.py).
 *
 * The product of rows A (m, K) and weights W (N, K), both quantised:
 *     S[r, n] = sum_k qa[r, k] * qw[n, k]                       int32, exact (|S| < 2^31
 *                                                                for K < 133,000)
 *     C[r, n] = fma((float) S[r, n], sa[r] * sw[n], base)       base: C[r, n] (accumulate),
 *                                                                bias[n], or 0
 *     C[r, n] = base where S[r, n] == 0: sa[r] * sw[n] overflows to infinity for rows of
 *     huge values (max|a| * max|w| above ~5.5e42), and a zero sum times it would be NaN;
 *     a nonzero sum is then at least sa * sw, which overflows anyway. Not where sa[r] is
 *     NaN (a row holding infinity or NaN): its products are NaN, so that a non-finite
 *     state (an Elman relu RNN's h overflowing) stays non-finite, as in float32, instead
 *     of being read as zeros.
 * The sums are exact, so they do not depend on the order of the k loop, the tile a row
 * falls in, the thread split or the vector variant; the dequantisation is the same float
 * operations (one rounded product, one fused multiply-add) in every variant, so results
 * are bitwise equal across thread counts and variants.
 *
 * AVX2 and portable: why int16 lanes (vpmaddwd) and not u8 x s8 (vpmaddubsw): vpmaddubsw
 * adds two u8 x s8 products into a saturating int16, which overflows for full-range int8
 * values (2 x 255 x 127 > 32767) unless weights or activations lose a bit, and needs a
 * zero point for the unsigned side; it then needs a vpmaddwd by ones to widen, so both
 * forms issue two multiplies per 32 products. vpmaddwd on int8 values held in int16 lanes
 * gives exact int32 pair sums with full 8-bit precision on both sides; the packed weights
 * take twice the bytes of int8 ones (half of float32). Layout: activations are int16 rows
 * of Kp = K rounded up to even (zero padded); weights are packed in panels of 8 output
 * rows: P[p][k2][n][e] = qw[8p + n][2 k2 + e] (zero padded), one 32-byte vector per
 * (panel, k pair). A tile of up to 4 rows x 2 panels broadcasts a pair of a row's values
 * (32 bits) and multiplies it with a panel vector.
 *
 * AVX-512 with VNNI: vpdpbusd adds four u8 x s8 products into each int32 lane without
 * saturating, so the activations take the unsigned side shifted by 128 and a per-output
 * correction removes the shift exactly (rc_qmat_vnni below); its packed weights are int8,
 * in panels of 16 output rows. AVX-VNNI (CPUs with it but without AVX-512): the same
 * layout and arithmetic on 256-bit vectors (rc_qmat_vnni, not wide); cpu.h's rc_cpu_int8
 * picks.
 *
 * In every variant the rows go in blocks of about 32 KB of activations (rc_q_row_block),
 * and within a block the column tiles are the outer loop: a tile's weights (K x 16 or 32
 * values) serve every row tile of the block before the next tile's are read, and the
 * block's rows, read again for each column tile, are still in L1 or L2. The products are
 * exact in all of them, so they agree bit for bit. pack() writes the layout of the
 * variant its process runs (the variant never changes within a process).
 */
#ifndef RECURRENT_QMAT_H
#define RECURRENT_QMAT_H

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "cpu.h"

#ifdef RC_HAVE_X86_VARIANTS
#include <immintrin.h>
#endif

#define RC_Q_NR 8   /* output rows per panel: one vector of 8 int32 sums */
#define RC_Q_MR 4   /* activation rows per tile */

static inline int rc_q_kpad(int K) { return (K + 1) & ~1; }

/* Whether this build has the AVX-VNNI variant (its compiler knows the instructions). */
#ifdef RC_HAVE_AVXVNNI
static const int rc_q_avxvnni_built = 1;
#else
static const int rc_q_avxvnni_built = 0;
#endif
static inline int rc_q_kquad(int K) { return (K + 3) & ~3; }  /* the VNNI variant's */

/* Rows per block of a product (a multiple of ``tile_rows``, at least one tile): the
 * block's activation rows (``row_bytes`` each) take about 32 KB, an L1 data cache's size,
 * so they stay in L1 or L2 while the weights' column tiles pass over them, instead of
 * many rows (a pool stepping thousands of streams) being read again from L3 for every
 * column tile. */
static inline int rc_q_row_block(long row_bytes, int tile_rows)
{
    long rows = (32768 / (row_bytes > 0 ? row_bytes : 1)) / tile_rows * tile_rows;
    return rows > tile_rows ? (int)rows : tile_rows;
}

/* Panels of the packed copy of an (N, K) weight matrix: an even number (zero padded), so
 * that every tile has two. */
static inline int rc_q_panels(int N) { return ((N + 2 * RC_Q_NR - 1) / (2 * RC_Q_NR)) * 2; }

/* The pairs layout's packed copy P of quantised weights w (N, K) (AVX2 and portable). */
static void rc_q_pack_pairs(const int8_t* w, int N, int K, int16_t* P)
{
    int K2 = rc_q_kpad(K) / 2, np = rc_q_panels(N);
    for (int p = 0; p < np; p++)
        for (int k2 = 0; k2 < K2; k2++)
            for (int n = 0; n < RC_Q_NR; n++)
                for (int e = 0; e < 2; e++) {
                    int row = p * RC_Q_NR + n, k = 2 * k2 + e;
                    P[(((long)p * K2 + k2) * RC_Q_NR + n) * 2 + e] =
                        (row < N && k < K) ? w[(long)row * K + k] : 0;
                }
}

/* ---- quantising one row --------------------------------------------------------------- */

static float rc_q_row_portable(const float* a, int K, int16_t* q)
{
    float m = 0.0f;
    int bad = 0;  /* the row holds infinity or NaN */
    for (int k = 0; k < K; k++) {
        m = fmaxf(m, fabsf(a[k]));
        bad |= !(fabsf(a[k]) <= FLT_MAX);
    }
    int Kp = rc_q_kpad(K);
    if (bad) {
        memset(q, 0, (size_t)Kp * sizeof(int16_t));
        return NAN;
    }
    float inv = 127.0f / m;
    if (!isfinite(inv)) {  /* a zero row, or one so small that 127 / m overflows */
        memset(q, 0, (size_t)Kp * sizeof(int16_t));
        return 0.0f;
    }
    for (int k = 0; k < K; k++)
        q[k] = (int16_t)rintf(a[k] * inv);
    for (int k = K; k < Kp; k++)
        q[k] = 0;
    return m / 127.0f;
}

#ifdef RC_HAVE_X86_VARIANTS
RC_TARGET_AVX2 static float rc_q_row_avx2(const float* a, int K, int16_t* q)
{
    const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    const __m256 largest = _mm256_set1_ps(FLT_MAX);
    __m256 mv = _mm256_setzero_ps(), badv = _mm256_setzero_ps();
    int k = 0;
    for (; k + 8 <= K; k += 8) {
        __m256 v = _mm256_and_ps(_mm256_loadu_ps(a + k), abs_mask);
        mv = _mm256_max_ps(mv, v);
        badv = _mm256_or_ps(badv, _mm256_cmp_ps(v, largest, _CMP_NLE_UQ));  /* inf, NaN */
    }
    int bad = _mm256_movemask_ps(badv) != 0;
    __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(mv), _mm256_extractf128_ps(mv, 1));
    m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    m4 = _mm_max_ss(m4, _mm_shuffle_ps(m4, m4, 1));
    float m = _mm_cvtss_f32(m4);
    for (; k < K; k++) {
        m = fmaxf(m, fabsf(a[k]));
        bad |= !(fabsf(a[k]) <= FLT_MAX);
    }
    int Kp = rc_q_kpad(K);
    if (bad) {
        memset(q, 0, (size_t)Kp * sizeof(int16_t));
        return NAN;
    }
    float inv = 127.0f / m;
    if (!isfinite(inv)) {  /* a zero row, or one so small that 127 / m overflows */
        memset(q, 0, (size_t)Kp * sizeof(int16_t));
        return 0.0f;
    }
    __m256 iv = _mm256_set1_ps(inv);
    for (k = 0; k + 8 <= K; k += 8) {
        __m256 v = _mm256_round_ps(_mm256_mul_ps(_mm256_loadu_ps(a + k), iv),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        __m256i i32 = _mm256_cvtps_epi32(v);
        __m128i i16 = _mm_packs_epi32(_mm256_castsi256_si128(i32),
                                      _mm256_extracti128_si256(i32, 1));
        _mm_storeu_si128((__m128i*)(q + k), i16);
    }
    for (; k < K; k++)
        q[k] = (int16_t)rintf(a[k] * inv);
    for (k = K; k < Kp; k++)
        q[k] = 0;
    return m / 127.0f;
}
#endif

/* q (Kp,) = the quantised row a (K,); returns its scale. */
static inline float rc_q_row(const float* a, int K, int16_t* q)
{
#ifdef RC_HAVE_X86_VARIANTS
    if (rc_cpu_level() >= 2)
        return rc_q_row_avx2(a, K, q);
#endif
    return rc_q_row_portable(a, K, q);
}

/* m rows of a (row stride lda) quantised into q (row stride Kp) and scales s (m,). */
static void rc_q_rows(int m, int K, const float* a, long lda, int16_t* q, float* s)
{
    int Kp = rc_q_kpad(K);
    for (int r = 0; r < m; r++)
        s[r] = rc_q_row(a + (long)r * lda, K, q + (long)r * Kp);
}

/* ---- the product ------------------------------------------------------------------------
 * mode RC_Q_DEQUANT: C (float) as above. mode RC_Q_RAW: the int32 sums into S (for tests). */
enum { RC_Q_DEQUANT = 0, RC_Q_RAW = 1 };

typedef struct {
    int mode;
    int N;
    const float* sa;     /* (m,) row scales */
    const float* sw;     /* (N,) weight row scales */
    const float* bias;   /* (N,) or NULL */
    float* C;            /* (m, N) row stride ldc */
    long ldc;
    int accumulate;
    int32_t* S;          /* RC_Q_RAW: (m, N) row stride ldc */
} rc_q_out;

/* One output element from its int32 sum: the same operations in every variant. */
static inline void rc_q_store1(const rc_q_out* o, int r, int n, int32_t sum)
{
    if (o->mode == RC_Q_RAW) {
        o->S[r * o->ldc + n] = sum;
        return;
    }
    float* c = o->C + r * o->ldc + n;
    float base = o->accumulate ? *c : (o->bias ? o->bias[n] : 0.0f);
    float s = o->sa[r] * o->sw[n];
    *c = sum == 0 && !isnan(s) ? base : fmaf((float)sum, s, base);
}

static void rc_q_tile_portable(int mr, int K2, const int16_t* A, long lda,
                               const int16_t* P, long pstride, const rc_q_out* o, int r0,
                               int n0)
{
    for (int r = 0; r < mr; r++)
        for (int v = 0; v < 2; v++)
            for (int n = 0; n < RC_Q_NR; n++) {
                int col = n0 + v * RC_Q_NR + n;
                if (col >= o->N)
                    break;
                const int16_t* a = A + (long)r * lda;
                const int16_t* p = P + v * pstride + n * 2;
                int32_t sum = 0;
                for (int k2 = 0; k2 < K2; k2++)
                    sum += (int32_t)a[2 * k2] * p[k2 * 2 * RC_Q_NR]
                           + (int32_t)a[2 * k2 + 1] * p[k2 * 2 * RC_Q_NR + 1];
                rc_q_store1(o, r0 + r, col, sum);
            }
}

#ifdef RC_HAVE_X86_VARIANTS
/* The dequantising (or raw) store of a tile's sums acc[r][v], the same operations as
 * rc_q_store1 for full vectors. */
RC_TARGET_AVX2 static inline void rc_q_store_avx2(int mr, __m256i acc[][2],
                                                  const rc_q_out* o, int r0, int n0)
{
    for (int r = 0; r < mr; r++)
        for (int v = 0; v < 2; v++) {
            int col = n0 + v * RC_Q_NR;
            if (col >= o->N)
                break;
            if (o->mode == RC_Q_DEQUANT && col + RC_Q_NR <= o->N) {
                float* c = o->C + (r0 + r) * o->ldc + col;
                __m256 base = o->accumulate ? _mm256_loadu_ps(c)
                              : o->bias ? _mm256_loadu_ps(o->bias + col)
                                        : _mm256_setzero_ps();
                __m256 s = _mm256_mul_ps(_mm256_set1_ps(o->sa[r0 + r]),
                                         _mm256_loadu_ps(o->sw + col));
                __m256 zero = _mm256_and_ps(   /* a zero sum, and scales not NaN */
                    _mm256_castsi256_ps(_mm256_cmpeq_epi32(acc[r][v], _mm256_setzero_si256())),
                    _mm256_cmp_ps(s, s, _CMP_ORD_Q));
                _mm256_storeu_ps(c, _mm256_blendv_ps(
                    _mm256_fmadd_ps(_mm256_cvtepi32_ps(acc[r][v]), s, base), base, zero));
            } else {
                int32_t sums[RC_Q_NR];
                _mm256_storeu_si256((__m256i*)sums, acc[r][v]);
                for (int n = 0; n < RC_Q_NR && col + n < o->N; n++)
                    rc_q_store1(o, r0 + r, col + n, sums[n]);
            }
        }
}

/* One row's pair k2 broadcast, times the two panel vectors w0, w1, into acc r. */
#define RC_Q_MADD(r)                                                                      \
    {                                                                                     \
        int32_t pair;                                                                     \
        memcpy(&pair, a##r, 4);                                                           \
        a##r += 2;                                                                        \
        __m256i b = _mm256_set1_epi32(pair);                                              \
        c##r##0 = _mm256_add_epi32(c##r##0, _mm256_madd_epi16(b, w0));                   \
        c##r##1 = _mm256_add_epi32(c##r##1, _mm256_madd_epi16(b, w1));                   \
    }

/* mr = 4 or 1 rows x 2 panels (16 outputs), accumulators in registers. */
RC_TARGET_AVX2 static void rc_q_tile_avx2(int mr, int K2, const int16_t* A, long lda,
                                          const int16_t* P, long pstride,
                                          const rc_q_out* o, int r0, int n0)
{
    __m256i acc[RC_Q_MR][2];
    __m256i c00 = _mm256_setzero_si256(), c01 = c00;
    const int16_t* P1 = P + pstride;
    const int16_t* a0 = A;
    if (mr == RC_Q_MR) {
        __m256i c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00;
        const int16_t *a1 = A + lda, *a2 = A + 2 * lda, *a3 = A + 3 * lda;
        for (int k2 = 0; k2 < K2; k2++, P += 2 * RC_Q_NR, P1 += 2 * RC_Q_NR) {
            __m256i w0 = _mm256_loadu_si256((const __m256i*)P);
            __m256i w1 = _mm256_loadu_si256((const __m256i*)P1);
            RC_Q_MADD(0) RC_Q_MADD(1) RC_Q_MADD(2) RC_Q_MADD(3)
        }
        acc[1][0] = c10; acc[1][1] = c11; acc[2][0] = c20; acc[2][1] = c21;
        acc[3][0] = c30; acc[3][1] = c31;
    } else {
        for (int k2 = 0; k2 < K2; k2++, P += 2 * RC_Q_NR, P1 += 2 * RC_Q_NR) {
            __m256i w0 = _mm256_loadu_si256((const __m256i*)P);
            __m256i w1 = _mm256_loadu_si256((const __m256i*)P1);
            RC_Q_MADD(0)
        }
    }
    acc[0][0] = c00; acc[0][1] = c01;
    rc_q_store_avx2(mr, acc, o, r0, n0);
}


/* ---- the AVX-512 VNNI variant: u8 x s8 products (vpdpbusd) ------------------------------
 * Its own layout of the packed weights, chosen by pack() in the same process: panels of 16
 * output rows, P[p][k4][n][e] = qw[16p + n][4 k4 + e] (int8, zero padded), one 64-byte
 * vector per (panel, k quad), followed by corr[n] = 128 * sum_k qw[n][k] (int32, one per
 * padded output row). An activation row's values are added 128 (u8: 1..255; 128 in the
 * padding) so that vpdpbusd, which takes one unsigned side, multiplies them:
 *     sum_k (qa[k] + 128) qw[k] - corr = sum_k qa[k] qw[k] = S
 * in int32 arithmetic that wraps (vpdpbusd and the subtraction both do), so the result is
 * S exactly whenever S itself fits (the bound above), even where the shifted partial
 * sums pass 2^31. Four products per instruction and lane, against two for vpdpwssd. */
#define RC_Q_VNR 16  /* VNNI: output rows per panel, one 512-bit vector of int32 sums */
#define RC_Q_VMR 8   /* VNNI: activation rows per tile */

static inline long rc_q_vnni_panels(int N) { return (N + RC_Q_VNR - 1) / RC_Q_VNR; }

/* Bytes of the VNNI variant's packed weights of an (N, K) matrix: the panels, then corr. */
static inline long rc_q_vnni_bytes(int N, int K)
{
    long np = rc_q_vnni_panels(N);
    return np * rc_q_kquad(K) * RC_Q_VNR + np * RC_Q_VNR * (long)sizeof(int32_t);
}

static void rc_q_pack_vnni(const int8_t* w, int N, int K, void* packed)
{
    int K4 = rc_q_kquad(K), Q = K4 / 4;
    long np = rc_q_vnni_panels(N);
    int8_t* P = (int8_t*)packed;
    /* np * K4 * 16 bytes on: 64-byte aligned where packed is, written with memcpy and read
     * with unaligned loads, so any alignment works */
    char* corr = (char*)packed + np * K4 * RC_Q_VNR;
    for (long p = 0; p < np; p++)
        for (int q = 0; q < Q; q++)
            for (int n = 0; n < RC_Q_VNR; n++)
                for (int e = 0; e < 4; e++) {
                    long row = p * RC_Q_VNR + n;
                    int k = 4 * q + e;
                    P[((p * Q + q) * RC_Q_VNR + n) * 4 + e] =
                        (row < N && k < K) ? w[row * K + k] : 0;
                }
    for (long row = 0; row < np * RC_Q_VNR; row++) {
        uint32_t sum = 0;  /* modulo 2^32, as the sums it corrects (no signed overflow) */
        for (int k = 0; row < N && k < K; k++)
            sum += (uint32_t)(int32_t)w[row * K + k];
        sum *= 128u;
        memcpy(corr + row * sizeof(int32_t), &sum, sizeof(int32_t));
    }
}

/* U (m, K4) = A (m, Kp, row stride lda) + 128 as u8, 128 past column K. */
RC_TARGET_VNNI512 static void rc_q_unsigned_rows(int m, int K, const int16_t* A, long lda,
                                                 uint8_t* U)
{
    int K4 = rc_q_kquad(K);
    const __m512i shift = _mm512_set1_epi16(128);
    for (int r = 0; r < m; r++) {
        const int16_t* a = A + (long)r * lda;
        uint8_t* u = U + (long)r * K4;
        int k = 0;
        for (; k + 32 <= K; k += 32)  /* |qa| <= 127: qa + 128 fits a byte, no saturation */
            _mm256_storeu_si256((__m256i*)(u + k), _mm512_cvtepi16_epi8(
                _mm512_add_epi16(_mm512_loadu_si512((const void*)(a + k)), shift)));
        for (; k < K; k++)
            u[k] = (uint8_t)(a[k] + 128);
        for (; k < K4; k++)
            u[k] = 128;
    }
}

/* The dequantising (or raw) store of one row's 16 sums from column n0: the operations of
 * rc_q_store1 on 16 lanes, the columns past N masked off (neither read nor written). */
RC_TARGET_VNNI512 static inline void rc_q_store_512(__m512i sums, const rc_q_out* o, int r,
                                                    int n0)
{
    int left = o->N - n0;
    if (left <= 0)
        return;
    __mmask16 m = left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1);
    if (o->mode == RC_Q_RAW) {
        _mm512_mask_storeu_epi32(o->S + (long)r * o->ldc + n0, m, sums);
        return;
    }
    float* c = o->C + (long)r * o->ldc + n0;
    __m512 base = o->accumulate ? _mm512_maskz_loadu_ps(m, c)
                  : o->bias ? _mm512_maskz_loadu_ps(m, o->bias + n0)
                            : _mm512_setzero_ps();
    __m512 s = _mm512_mul_ps(_mm512_set1_ps(o->sa[r]), _mm512_maskz_loadu_ps(m, o->sw + n0));
    __mmask16 zero = _mm512_cmpeq_epi32_mask(sums, _mm512_setzero_si512())  /* scales */
                     & _mm512_cmp_ps_mask(s, s, _CMP_ORD_Q);                   /* not NaN */
    __m512 v = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sums), s, base);
    _mm512_mask_storeu_ps(c, m, _mm512_mask_blend_ps(zero, v, base));
}

/* The 4 bytes at p (any alignment) in every 32-bit lane, loaded straight from memory (a
 * broadcast load, not a move between register files, which some cores pay per row). The
 * may_alias one-element vector is how GCC 11's _mm_loadu_si32 reads, spelt out for the
 * compilers before it that lack the intrinsic. */
typedef int rc_q_i32_u __attribute__((__vector_size__(4), __may_alias__, __aligned__(1)));
#define RC_Q_BCAST4(p) \
    _mm512_broadcastd_epi32(_mm_set_epi32(0, 0, 0, (*(const rc_q_i32_u*)(p))[0]))

/* Row r's quad k4 broadcast, times the panel vector w, added into its sums. */
#define RC_Q_DPBUSD(r) c##r = _mm512_dpbusd_epi32(c##r, RC_Q_BCAST4(u##r + 4 * q), w);

/* mr = 8, 4 or 1 rows x one panel (16 outputs). vpdpbusd takes several cycles to give its
 * result and some cores start two per cycle, so eight independent accumulators keep them
 * busy where four would leave the loop waiting on each sum. */
RC_TARGET_VNNI512 static void rc_q_tile_vnni512(int mr, int Q, const uint8_t* U, long ldu,
                                                const int8_t* P, const void* corr,
                                                const rc_q_out* o, int r0, int n0)
{
    __m512i c0 = _mm512_setzero_si512(), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0,
            c6 = c0, c7 = c0;
    const uint8_t* u0 = U;
    if (mr == RC_Q_VMR) {
        const uint8_t *u1 = U + ldu, *u2 = U + 2 * ldu, *u3 = U + 3 * ldu, *u4 = U + 4 * ldu,
                      *u5 = U + 5 * ldu, *u6 = U + 6 * ldu, *u7 = U + 7 * ldu;
        for (int q = 0; q < Q; q++) {
            __m512i w = _mm512_loadu_si512((const void*)(P + 64 * (long)q));
            RC_Q_DPBUSD(0) RC_Q_DPBUSD(1) RC_Q_DPBUSD(2) RC_Q_DPBUSD(3)
            RC_Q_DPBUSD(4) RC_Q_DPBUSD(5) RC_Q_DPBUSD(6) RC_Q_DPBUSD(7)
        }
    } else if (mr == RC_Q_MR) {
        const uint8_t *u1 = U + ldu, *u2 = U + 2 * ldu, *u3 = U + 3 * ldu;
        for (int q = 0; q < Q; q++) {
            __m512i w = _mm512_loadu_si512((const void*)(P + 64 * (long)q));
            RC_Q_DPBUSD(0) RC_Q_DPBUSD(1) RC_Q_DPBUSD(2) RC_Q_DPBUSD(3)
        }
    } else {
        for (int q = 0; q < Q; q++) {
            __m512i w = _mm512_loadu_si512((const void*)(P + 64 * (long)q));
            RC_Q_DPBUSD(0)
        }
    }
    const __m512i cv = _mm512_loadu_si512(corr);
    __m512i c[RC_Q_VMR] = {c0, c1, c2, c3, c4, c5, c6, c7};
    for (int r = 0; r < mr; r++)
        rc_q_store_512(_mm512_sub_epi32(c[r], cv), o, r0 + r, n0);
}

#define RC_Q_DPBUSD2(r)                                                                   \
    {                                                                                     \
        __m512i b = RC_Q_BCAST4(u##r + 4 * q);                                            \
        c##r = _mm512_dpbusd_epi32(c##r, b, w);                                           \
        d##r = _mm512_dpbusd_epi32(d##r, b, v);                                           \
    }

/* 8 rows x two panels (32 outputs): 16 accumulators, one broadcast per two products. */
RC_TARGET_VNNI512 static void rc_q_tile2_vnni512(int Q, const uint8_t* U, long ldu,
                                                 const int8_t* P, long pstride,
                                                 const char* corr, const rc_q_out* o,
                                                 int r0, int n0)
{
    __m512i c0 = _mm512_setzero_si512(), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0,
            c6 = c0, c7 = c0, d0 = c0, d1 = c0, d2 = c0, d3 = c0, d4 = c0, d5 = c0, d6 = c0,
            d7 = c0;
    const uint8_t *u0 = U, *u1 = U + ldu, *u2 = U + 2 * ldu, *u3 = U + 3 * ldu,
                  *u4 = U + 4 * ldu, *u5 = U + 5 * ldu, *u6 = U + 6 * ldu, *u7 = U + 7 * ldu;
    const int8_t* P1 = P + pstride;
    for (int q = 0; q < Q; q++) {
        __m512i w = _mm512_loadu_si512((const void*)(P + 64 * (long)q));
        __m512i v = _mm512_loadu_si512((const void*)(P1 + 64 * (long)q));
        RC_Q_DPBUSD2(0) RC_Q_DPBUSD2(1) RC_Q_DPBUSD2(2) RC_Q_DPBUSD2(3)
        RC_Q_DPBUSD2(4) RC_Q_DPBUSD2(5) RC_Q_DPBUSD2(6) RC_Q_DPBUSD2(7)
    }
    __m512i c[2][RC_Q_VMR] = {{c0, c1, c2, c3, c4, c5, c6, c7},
                              {d0, d1, d2, d3, d4, d5, d6, d7}};
    for (int h = 0; h < 2; h++) {
        const __m512i cv = _mm512_loadu_si512(corr + h * RC_Q_VNR * sizeof(int32_t));
        for (int r = 0; r < RC_Q_VMR; r++)
            rc_q_store_512(_mm512_sub_epi32(c[h][r], cv), o, r0 + r, n0 + h * RC_Q_VNR);
    }
}

/* Rows r..m-1 of one panel (16 outputs from n0) in tiles of 8, 4 and 1 rows. */
static void rc_q_panel_vnni(int r, int m, int Q, const uint8_t* U, int K4, const int8_t* Pp,
                            const char* cp, const rc_q_out* o, int n0)
{
    for (; r + RC_Q_VMR <= m; r += RC_Q_VMR)
        rc_q_tile_vnni512(RC_Q_VMR, Q, U + (long)r * K4, K4, Pp, cp, o, r, n0);
    for (; r + RC_Q_MR <= m; r += RC_Q_MR)
        rc_q_tile_vnni512(RC_Q_MR, Q, U + (long)r * K4, K4, Pp, cp, o, r, n0);
    for (; r < m; r++)
        rc_q_tile_vnni512(1, Q, U + (long)r * K4, K4, Pp, cp, o, r, n0);
}

#ifdef RC_HAVE_AVXVNNI
/* ---- the AVX-VNNI variant: the VNNI layout and arithmetic on 256-bit vectors (CPUs with
 * AVX-VNNI but without AVX-512) ------------------------------------------------------------ */

/* rc_q_unsigned_rows with AVX2: 32 values per step, packed to bytes in order. */
RC_TARGET_AVXVNNI static void rc_q_unsigned_rows_avx2(int m, int K, const int16_t* A,
                                                      long lda, uint8_t* U)
{
    int K4 = rc_q_kquad(K);
    const __m256i shift = _mm256_set1_epi16(128);
    for (int r = 0; r < m; r++) {
        const int16_t* a = A + (long)r * lda;
        uint8_t* u = U + (long)r * K4;
        int k = 0;
        for (; k + 32 <= K; k += 32) {  /* qa + 128 in 1..255: packus saturates nothing */
            __m256i lo = _mm256_add_epi16(_mm256_loadu_si256((const __m256i*)(a + k)), shift);
            __m256i hi = _mm256_add_epi16(_mm256_loadu_si256((const __m256i*)(a + k + 16)),
                                          shift);
            _mm256_storeu_si256((__m256i*)(u + k), _mm256_permute4x64_epi64(
                _mm256_packus_epi16(lo, hi), 0xD8));  /* packus interleaves 128-bit lanes */
        }
        for (; k < K; k++)
            u[k] = (uint8_t)(a[k] + 128);
        for (; k < K4; k++)
            u[k] = 128;
    }
}

/* Row r's quad q broadcast (a load), times the panel's two halves, into its sums. */
#define RC_Q_DPBUSD256(r)                                                                 \
    {                                                                                     \
        __m256i b = _mm256_broadcastd_epi32(                                              \
            _mm_set_epi32(0, 0, 0, (*(const rc_q_i32_u*)(u##r + 4 * q))[0]));             \
        c##r##0 = _mm256_dpbusd_avx_epi32(c##r##0, b, w0);                                \
        c##r##1 = _mm256_dpbusd_avx_epi32(c##r##1, b, w1);                                \
    }

/* mr = 4 or 1 rows x one panel (16 outputs as two 256-bit halves): 8 accumulators. */
RC_TARGET_AVXVNNI static void rc_q_tile_avxvnni(int mr, int Q, const uint8_t* U, long ldu,
                                                const int8_t* P, const char* corr,
                                                const rc_q_out* o, int r0, int n0)
{
    __m256i c00 = _mm256_setzero_si256(), c01 = c00, c10 = c00, c11 = c00, c20 = c00,
            c21 = c00, c30 = c00, c31 = c00;
    const uint8_t* u0 = U;
    if (mr == RC_Q_MR) {
        const uint8_t *u1 = U + ldu, *u2 = U + 2 * ldu, *u3 = U + 3 * ldu;
        for (int q = 0; q < Q; q++) {
            __m256i w0 = _mm256_loadu_si256((const __m256i*)(P + 64 * (long)q));
            __m256i w1 = _mm256_loadu_si256((const __m256i*)(P + 64 * (long)q + 32));
            RC_Q_DPBUSD256(0) RC_Q_DPBUSD256(1) RC_Q_DPBUSD256(2) RC_Q_DPBUSD256(3)
        }
    } else {
        for (int q = 0; q < Q; q++) {
            __m256i w0 = _mm256_loadu_si256((const __m256i*)(P + 64 * (long)q));
            __m256i w1 = _mm256_loadu_si256((const __m256i*)(P + 64 * (long)q + 32));
            RC_Q_DPBUSD256(0)
        }
    }
    const __m256i v0 = _mm256_loadu_si256((const __m256i*)corr);
    const __m256i v1 = _mm256_loadu_si256((const __m256i*)(corr + 32));
    __m256i acc[RC_Q_MR][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}};
    for (int r = 0; r < mr; r++) {
        acc[r][0] = _mm256_sub_epi32(acc[r][0], v0);
        acc[r][1] = _mm256_sub_epi32(acc[r][1], v1);
    }
    rc_q_store_avx2(mr, acc, o, r0, n0);
}

#endif

/* The product in the VNNI layout: ``wide`` with AVX-512 (8-row tiles of one and two
 * panels), else with AVX-VNNI (4-row tiles of one panel on 256-bit vectors). */
static void rc_qmat_vnni(int m, int K, const int16_t* A, long lda, const void* packed,
                         const rc_q_out* o, uint8_t* U, int wide)
{
    int K4 = rc_q_kquad(K), Q = K4 / 4;
    long np = rc_q_vnni_panels(o->N);
    const int8_t* P = (const int8_t*)packed;
    const char* corr = (const char*)packed + np * K4 * RC_Q_VNR;
    int block = rc_q_row_block(K4, wide ? RC_Q_VMR : RC_Q_MR);
    for (int r0 = 0; r0 < m; r0 += block) {
        int r1 = m - r0 < block ? m : r0 + block;
        const int16_t* a = A + (long)r0 * lda;
        uint8_t* u = U + (long)r0 * K4;
        if (wide)
            rc_q_unsigned_rows(r1 - r0, K, a, lda, u);
#ifdef RC_HAVE_AVXVNNI
        else
            rc_q_unsigned_rows_avx2(r1 - r0, K, a, lda, u);
#endif
        for (long p = 0; p < np; p++) {
            const int8_t* Pp = P + p * Q * 64;
            const char* cp = corr + p * RC_Q_VNR * sizeof(int32_t);
            int n0 = (int)(p * RC_Q_VNR), r = r0;
#ifdef RC_HAVE_AVXVNNI
            if (!wide) {
                for (; r + RC_Q_MR <= r1; r += RC_Q_MR)
                    rc_q_tile_avxvnni(RC_Q_MR, Q, U + (long)r * K4, K4, Pp, cp, o, r, n0);
                for (; r < r1; r++)
                    rc_q_tile_avxvnni(1, Q, U + (long)r * K4, K4, Pp, cp, o, r, n0);
                continue;
            }
#endif
            if (p + 1 < np) {  /* two panels: 8-row tiles of both, then the second's rest */
                for (; r + RC_Q_VMR <= r1; r += RC_Q_VMR)
                    rc_q_tile2_vnni512(Q, U + (long)r * K4, K4, Pp, (long)Q * 64, cp, o, r,
                                       n0);
                rc_q_panel_vnni(r, r1, Q, U, K4, Pp + Q * 64,
                                cp + RC_Q_VNR * sizeof(int32_t), o, n0 + RC_Q_VNR);
                p++;
            }
            rc_q_panel_vnni(r, r1, Q, U, K4, Pp, cp, o, n0);
        }
    }
}

#endif

/* int16 elements of the packed copy of an (N, K) weight matrix, in this process's
 * variant's layout. */
static inline long rc_q_packed_len(int N, int K)
{
#ifdef RC_HAVE_X86_VARIANTS
    if (rc_cpu_int8() >= RC_Q_AVXVNNI)
        return (rc_q_vnni_bytes(N, K) + 1) / 2;
#endif
    return (long)rc_q_panels(N) * (rc_q_kpad(K) / 2) * RC_Q_NR * 2;
}

/* The packed copy P (rc_q_packed_len(N, K) int16) of quantised weights w (N, K). */
static void rc_q_pack(const int8_t* w, int N, int K, int16_t* P)
{
#ifdef RC_HAVE_X86_VARIANTS
    if (rc_cpu_int8() >= RC_Q_AVXVNNI) {
        rc_q_pack_vnni(w, N, K, P);
        return;
    }
#endif
    rc_q_pack_pairs(w, N, K, P);
}

/* Bytes of rc_qmat's scratch for m rows of length K. */
static inline long rc_q_scratch_len(int m, int K) { return (long)m * rc_q_kquad(K); }

/* The product of m quantised rows A (int16, row stride lda >= Kp) with the packed weights
 * P of an (N, K) matrix, out as described by o (rows 0..m-1 of its arrays). U: scratch of
 * rc_q_scratch_len(m, K) bytes. */
static void rc_qmat(int m, int K, const int16_t* A, long lda, const int16_t* P,
                    const rc_q_out* o, uint8_t* U)
{
    int K2 = rc_q_kpad(K) / 2;
    long pstride = (long)K2 * 2 * RC_Q_NR;     /* int16 per panel */
    int np = rc_q_panels(o->N);
    void (*tile)(int, int, const int16_t*, long, const int16_t*, long, const rc_q_out*,
                 int, int) = rc_q_tile_portable;
#ifdef RC_HAVE_X86_VARIANTS
    int path = rc_cpu_int8();
    if (path == RC_Q_VNNI512) {
        rc_qmat_vnni(m, K, A, lda, P, o, U, 1);
        return;
    }
#ifdef RC_HAVE_AVXVNNI
    if (path == RC_Q_AVXVNNI) {
        rc_qmat_vnni(m, K, A, lda, P, o, U, 0);
        return;
    }
#endif
    if (path == RC_Q_AVX2)
        tile = rc_q_tile_avx2;
#endif
    (void)U;
    int block = rc_q_row_block(2 * (long)K2 * (long)sizeof(int16_t), RC_Q_MR);
    for (int r0 = 0; r0 < m; r0 += block) {
        int r1 = m - r0 < block ? m : r0 + block;
        for (int p = 0; p < np; p += 2) {
            const int16_t* Pp = P + p * pstride;
            int r = r0;
            for (; r + RC_Q_MR <= r1; r += RC_Q_MR)
                tile(RC_Q_MR, K2, A + r * lda, lda, Pp, pstride, o, r, p * RC_Q_NR);
            for (; r < r1; r++)
                tile(1, K2, A + r * lda, lda, Pp, pstride, o, r, p * RC_Q_NR);
        }
    }
}

/* ---- gate passes of the int8 steps (float32, as the float32 kernels') ------------------ */
#include "fastmath.h"

/* LSTM: a (4H) pre-activations i, f, g, o; c_prev may be c. */
RC_MULTIVERSION(rc_q_lstm_gates_f32,
    (const float* restrict a, const float* c_prev, float* c, float* restrict h, int H),
    (a, c_prev, c, h, H),
    const float* ai = a; const float* af = a + H; const float* ag = a + 2 * H;
    const float* ao = a + 3 * H;
    _Pragma("GCC ivdep") for (int j = 0; j < H; j++) {
        float i = rc_sigmoidf(ai[j]), f = rc_sigmoidf(af[j]);
        float g = rc_tanhf(ag[j]), o = rc_sigmoidf(ao[j]);
        float cj = f * c_prev[j] + i * g;             /* c_t = f c_{t-1} + i g */
        c[j] = cj;
        h[j] = o * rc_tanhf(cj);                      /* h_t = o tanh(c_t) */
    })

/* Elman RNN: h = tanh(a) or max(a, 0). */
RC_MULTIVERSION(rc_q_rnn_gates_f32,
    (const float* restrict a, float* restrict h, int H, int relu),
    (a, h, H, relu),
    if (relu) {  /* NaN passing, as the float32 kernels' relu (gates.h) */
        for (int j = 0; j < H; j++)
            h[j] = a[j] < 0.0f ? 0.0f : a[j];
    } else {
        _Pragma("GCC ivdep") for (int j = 0; j < H; j++)
            h[j] = rc_tanhf(a[j]);
    })

#endif
