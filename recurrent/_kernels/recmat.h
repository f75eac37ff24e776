/* The recurrent product of one time step: C (m, N) (+)= A (m, K) @ Bmat (K, N), with Bmat
 * packed ONCE per sequence call into panels of NR columns (forward: Bmat = W_hh^T,
 * backward: Bmat = W_hh).
 *
 * Why not BLAS: a BLAS GEMM call re-packs W_hh at every step and, for the few rows a
 * thread owns, runs far below peak; for B = 1 the call overhead alone exceeds the work. And OpenBLAS rounds a row differently
 * depending on how many rows share the call, so 1 and 2 threads would disagree in the
 * last bit. Here every output element is the same sequence of operations whatever the
 * tile it falls in: acc = 0; for k in 0..K-1: acc += A[r,k] * Bmat[k,n]; then
 * C = acc or C = C + acc. So results do not depend on the thread split.
 *
 * Packed layout: P[p][k][j] = Bmat[k][p * NR + j], zero past column N; NR * sizeof(T) =
 * 64 bytes (one AVX-512 register, two AVX2 ones). A tile of MR rows x NP panels keeps
 * MR * NP * NV vector accumulators in registers, NV vectors per panel row: the AVX2
 * variant works on 32-byte vectors (NV = 2), because gcc lowers a 64-byte generic vector
 * for AVX2 through the stack (lane-by-lane broadcasts, spilled accumulators). Variants: AVX-512 and AVX2+FMA (chosen at run
 * time from the CPU, gcc/clang on x86-64) and portable C (everything else; float64).
 */
#ifndef RECURRENT_RECMAT_H
#define RECURRENT_RECMAT_H

#include <string.h>

#include "cpu.h"

#define RC_NR_F32 16
#define RC_NR_F64 8
#define RC_MAXMR 8
#define RC_MAXNP 4

typedef float rc_v16sf __attribute__((vector_size(64)));
typedef double rc_v8df __attribute__((vector_size(64)));
typedef float rc_v8sf __attribute__((vector_size(32)));  /* one AVX2 register */
typedef float rc_v8sf_u __attribute__((vector_size(32), aligned(4), may_alias));

/* V = *SRC, SRC aligned to 4 bytes only. The 32-byte load goes through a vector type
 * (a memcpy into an array of vectors may go through the stack), and the empty asm pins
 * the loaded value in a register: otherwise gcc folds it into every FMA that uses it,
 * loading a panel row once per tile row instead of once. */
#define RC_LOAD_V16SF(V, SRC) memcpy(&(V), (SRC), sizeof(rc_v16sf))
#define RC_LOAD_V8SF(V, SRC)                                                              \
    do {                                                                                  \
        (V) = *(const rc_v8sf_u*)(SRC);                                                   \
        __asm__("" : "+x"(V));                                                            \
    } while (0)

/* P[k][j] = w[j * ld + k] for k < K, j < nrows (<= 16), zero for j >= nrows: 16 rows of
 * w (row stride ld) transposed into one panel. Packing W^T for the kernels is made of
 * these; at B = 1 a call's packing is a real part of its time, hence the vector version
 * below. sa, sb (K,), unless NULL: += the column sums of those rows, added row after row
 * (j = 0, 1, ...), so each is the same float32 sum as a loop down the rows gives; the
 * bf16 weight gradients take their bias gradients from the tiles they transpose. */
static void rc_transpose16_f32_scalar(const float* w, long ld, int nrows, int K, float* P,
                                      int k0, float* sa, float* sb)
{
    for (int k = k0; k < K; k++)
        for (int j = 0; j < 16; j++)
            P[(long)k * 16 + j] = j < nrows ? w[j * ld + k] : 0.0f;
    for (int j = 0; j < nrows; j++)
        for (int k = k0; k < K; k++) {
            if (sa)
                sa[k] += w[j * ld + k];
            if (sb)
                sb[k] += w[j * ld + k];
        }
}

/* __builtin_shuffle is gcc's (clang spells it differently): other compilers keep the loop */
#if defined(RC_HAVE_X86_VARIANTS) && !defined(__clang__)
#define RC_HAVE_TRANSPOSE16_AVX512 1
typedef int rc_v16si __attribute__((vector_size(64)));

/* One stage of a 16 x 16 in-register transpose swaps bit B of the row index with bit B of
 * the column index between rows j and j + 2^B: lane c of the new row j takes row j's lane
 * c (bit B clear) or row j+2^B's lane c - 2^B; the new row j + 2^B likewise. Four stages
 * transpose the block, each a two-register shuffle (vpermt2ps); written out pair by pair so
 * that r[] stays in registers. */
#define RC_TR_LO(B, c) (((c) >> (B) & 1) ? 16 + ((c) ^ (1 << (B))) : (c))
#define RC_TR_HI(B, c) (((c) >> (B) & 1) ? 16 + (c) : ((c) | (1 << (B))))
#define RC_TR_MASK(F, B) { F(B, 0), F(B, 1), F(B, 2), F(B, 3), F(B, 4), F(B, 5), F(B, 6),   \
                           F(B, 7), F(B, 8), F(B, 9), F(B, 10), F(B, 11), F(B, 12),         \
                           F(B, 13), F(B, 14), F(B, 15) }
/* rows J0 and J0 + 2^B = J1 through stage B */
#define RC_TR2(B, J0, J1)                                                                 \
    do {                                                                                  \
        const rc_v16si lo = RC_TR_MASK(RC_TR_LO, B), hi = RC_TR_MASK(RC_TR_HI, B);        \
        rc_v16sf a = r[J0], b = r[J1];                                                    \
        r[J0] = __builtin_shuffle(a, b, lo);                                              \
        r[J1] = __builtin_shuffle(a, b, hi);                                              \
    } while (0)

/* AVX-512 only: on AVX2 gcc splits the 64-byte shuffles and the result is slower than the
 * scalar loop, so that variant keeps the loop. */
RC_TARGET_AVX512
static void rc_transpose16_f32_avx512(const float* w, long ld, int nrows, int K, float* P,
                                      float* sa, float* sb)
{
    int k0 = 0;
    if (nrows == 16)
        for (; k0 + 16 <= K; k0 += 16) {
            rc_v16sf r[16];
            for (int j = 0; j < 16; j++)
                memcpy(&r[j], w + j * ld + k0, sizeof(rc_v16sf));
            float* sums[2] = {sa, sb};
            for (int q = 0; q < 2; q++)
                if (sums[q]) {
                    rc_v16sf acc;
                    memcpy(&acc, sums[q] + k0, sizeof(acc));
                    for (int j = 0; j < 16; j++)
                        acc += r[j];
                    memcpy(sums[q] + k0, &acc, sizeof(acc));
                }
            RC_TR2(0, 0, 1); RC_TR2(0, 2, 3); RC_TR2(0, 4, 5); RC_TR2(0, 6, 7);
            RC_TR2(0, 8, 9); RC_TR2(0, 10, 11); RC_TR2(0, 12, 13); RC_TR2(0, 14, 15);
            RC_TR2(1, 0, 2); RC_TR2(1, 1, 3); RC_TR2(1, 4, 6); RC_TR2(1, 5, 7);
            RC_TR2(1, 8, 10); RC_TR2(1, 9, 11); RC_TR2(1, 12, 14); RC_TR2(1, 13, 15);
            RC_TR2(2, 0, 4); RC_TR2(2, 1, 5); RC_TR2(2, 2, 6); RC_TR2(2, 3, 7);
            RC_TR2(2, 8, 12); RC_TR2(2, 9, 13); RC_TR2(2, 10, 14); RC_TR2(2, 11, 15);
            RC_TR2(3, 0, 8); RC_TR2(3, 1, 9); RC_TR2(3, 2, 10); RC_TR2(3, 3, 11);
            RC_TR2(3, 4, 12); RC_TR2(3, 5, 13); RC_TR2(3, 6, 14); RC_TR2(3, 7, 15);
            memcpy(P + (long)k0 * 16, r, sizeof(r));
        }
    rc_transpose16_f32_scalar(w, ld, nrows, K, P, k0, sa, sb);
}
#endif

static inline void rc_transpose16_sums_f32(const float* w, long ld, int nrows, int K,
                                           float* P, float* sa, float* sb)
{
#ifdef RC_HAVE_TRANSPOSE16_AVX512
    if (rc_cpu_level() == 3) {
        rc_transpose16_f32_avx512(w, ld, nrows, K, P, sa, sb);
        return;
    }
#endif
    rc_transpose16_f32_scalar(w, ld, nrows, K, P, 0, sa, sb);
}

static inline void rc_transpose16_f32(const float* w, long ld, int nrows, int K, float* P)
{
    rc_transpose16_sums_f32(w, ld, nrows, K, P, NULL, NULL);
}

/* Pack: P[p][k][j] = b[k * sk + n * sn] for n = p * NR + j < N, else 0. */
#define RC_DEFINE_PACK(NAME, T, NR)                                                      \
static inline void NAME##_generic(const T* b, int K, int N, long sk, long sn, T* P)    \
{                                                                                        \
    int np = (N + NR - 1) / NR;                                                          \
    for (int p = 0; p < np; p++)                                                         \
        for (int k = 0; k < K; k++)                                                      \
            for (int j = 0; j < NR; j++) {                                               \
                int n = p * NR + j;                                                      \
                P[((long)p * K + k) * NR + j] = n < N ? b[k * sk + n * sn] : (T)0;      \
            }                                                                            \
}
RC_DEFINE_PACK(rc_pack_f32, float, RC_NR_F32)
RC_DEFINE_PACK(rc_pack_f64, double, RC_NR_F64)

/* float32: a transposing pack (sk = 1: each panel is 16 rows of b's transpose) goes
 * through rc_transpose16_f32. */
static inline void rc_pack_f32(const float* b, int K, int N, long sk, long sn, float* P)
{
    if (sk != 1) {
        rc_pack_f32_generic(b, K, N, sk, sn, P);
        return;
    }
    for (int n0 = 0; n0 < N; n0 += RC_NR_F32)
        rc_transpose16_f32(b + n0 * sn, sn, N - n0 < RC_NR_F32 ? N - n0 : RC_NR_F32, K,
                           P + (long)n0 * K);
}

static inline void rc_pack_f64(const double* b, int K, int N, long sk, long sn, double* P)
{
    rc_pack_f64_generic(b, K, N, sk, sn, P);
}

/* One tile: mr rows x npn panels, accumulated over all K, then stored (ncols valid
 * columns from the tile's first column). A panel row is NV vectors V of NR / NV elements.
 * always_inline with constant mr/npn: the accumulator array becomes registers in each
 * variant. */
#define RC_DEFINE_TILE(NAME, T, V, NR, NV, LOAD)                                          \
static inline __attribute__((always_inline)) void                                        \
NAME(const int mr, const int npn, int K, const T* A, long lda, const T* P, long ps,     \
     T* C, long ldc, int ncols, int accumulate)                                          \
{                                                                                        \
    enum { VW = NR / NV };                                                               \
    V acc[RC_MAXMR][RC_MAXNP * NV];                                                      \
    for (int i = 0; i < mr; i++)                                                         \
        for (int q = 0; q < npn * NV; q++)                                               \
            acc[i][q] = (V){0};                                                          \
    for (int k = 0; k < K; k++) {                                                        \
        V b[RC_MAXNP * NV];                                                              \
        for (int q = 0; q < npn; q++)                                                    \
            for (int v = 0; v < NV; v++)                                                 \
                LOAD(b[q * NV + v], P + q * ps + (long)k * NR + v * VW);                 \
        for (int i = 0; i < mr; i++) {                                                   \
            T a = A[i * lda + k];                                                        \
            for (int q = 0; q < npn * NV; q++)                                           \
                acc[i][q] += a * b[q];                                                   \
        }                                                                                \
    }                                                                                    \
    for (int i = 0; i < mr; i++)                                                         \
        for (int q = 0; q < npn * NV; q++) {                                             \
            int c0 = q * VW;                                                             \
            T* dst = C + i * ldc + c0;                                                   \
            if (ncols - c0 >= VW) {                                                      \
                V v = acc[i][q];                                                         \
                if (accumulate) {                                                        \
                    V old;                                                               \
                    memcpy(&old, dst, sizeof(V));                                        \
                    v = old + v;                                                         \
                }                                                                        \
                memcpy(dst, &v, sizeof(V));                                              \
            } else if (ncols > c0) {                                                     \
                T tmp[VW];                                                               \
                memcpy(tmp, &acc[i][q], sizeof(V));                                      \
                for (int j = 0; j < ncols - c0; j++)                                     \
                    dst[j] = accumulate ? dst[j] + tmp[j] : tmp[j];                      \
            }                                                                            \
        }                                                                                \
}
#define RC_LOAD_V8DF(V, SRC) memcpy(&(V), (SRC), sizeof(rc_v8df))
RC_DEFINE_TILE(rc_tile_f32, float, rc_v16sf, RC_NR_F32, 1, RC_LOAD_V16SF)
RC_DEFINE_TILE(rc_tile_f32_v8, float, rc_v8sf, RC_NR_F32, 2, RC_LOAD_V8SF)
RC_DEFINE_TILE(rc_tile_f64, double, rc_v8df, RC_NR_F64, 1, RC_LOAD_V8DF)

/* Rows r0..m-1 against panels p0..p0+npn-1 (npn <= NP): tiles of MR rows, then of 4, then
 * (PAIRS below) pairs of rows, then single rows, which take NP1 panels at a time (more
 * independent accumulator chains for the latency-bound B = 1 case). Tile shapes never
 * change an element's arithmetic. */
#define RC_RECMAT_PANELS(TILE, NR, MR, NPN)                                               \
    for (r = 0; r + MR <= m; r += MR)                                                     \
        TILE(MR, NPN, K, A + r * lda, lda, P + p0 * ps, ps, C + r * ldc + p0 * NR, ldc,  \
             N - p0 * NR, accumulate);                                                    \
    for (; MR > 4 && r + 4 <= m; r += 4)                                                  \
        TILE(4, NPN, K, A + r * lda, lda, P + p0 * ps, ps, C + r * ldc + p0 * NR, ldc,   \
             N - p0 * NR, accumulate);

/* The product over all rows and panels. Panels are the outer loop, so one group of panels
 * (K * NP * 64 bytes) is reused from cache by every row tile. */
#define RC_RECMAT_BODY(TILE, NR, MR, NP, NP1, PAIRS)                                     \
    int np = (N + NR - 1) / NR;                                                          \
    long ps = (long)K * NR;                                                              \
    int r = 0, r1, p0;                                                                    \
    /* rows in tiles of MR, then 4; every panel group leaves r at the same first row */   \
    for (p0 = 0; p0 + NP <= np; p0 += NP) { RC_RECMAT_PANELS(TILE, NR, MR, NP) }          \
    for (; p0 < np; p0++) { RC_RECMAT_PANELS(TILE, NR, MR, 1) }                           \
    PAIRS(TILE, NR)                                                                       \
    /* the remaining single rows */                                                       \
    r1 = r;                                                                               \
    for (r = r1; r < m; r++) {                                                            \
        for (p0 = 0; p0 + NP1 <= np; p0 += NP1)                                          \
            TILE(1, NP1, K, A + r * lda, lda, P + p0 * ps, ps, C + r * ldc + p0 * NR,   \
                 ldc, N - p0 * NR, accumulate);                                          \
        for (; p0 < np; p0++)                                                             \
            TILE(1, 1, K, A + r * lda, lda, P + p0 * ps, ps, C + r * ldc + p0 * NR,     \
                 ldc, N - p0 * NR, accumulate);                                          \
    }

/* PAIRS: what happens to the rows left after the tiles before they go one by one. */
#define RC_RECMAT_NO_PAIRS(TILE, NR)
/* pairs of rows against 2 panels at a time: 8 accumulators of 8 lanes, where a single
 * row x 4 panels loads 8 vectors per 8 FMAs */
#define RC_RECMAT_PAIRS_X2(TILE, NR)                                                      \
    for (; r + 2 <= m; r += 2) {                                                          \
        for (p0 = 0; p0 + 2 <= np; p0 += 2)                                               \
            TILE(2, 2, K, A + r * lda, lda, P + p0 * ps, ps, C + r * ldc + p0 * NR,     \
                 ldc, N - p0 * NR, accumulate);                                          \
        for (; p0 < np; p0++)                                                             \
            TILE(2, 1, K, A + r * lda, lda, P + p0 * ps, ps, C + r * ldc + p0 * NR,     \
                 ldc, N - p0 * NR, accumulate);                                          \
    }

#define RC_RECMAT_ARGS int m, int N, int K, const float* A, long lda, const float* P,     \
                       float* C, long ldc, int accumulate

static void rc_recmat_f32_portable(RC_RECMAT_ARGS) { RC_RECMAT_BODY(rc_tile_f32, RC_NR_F32, 2, 1, 2, RC_RECMAT_NO_PAIRS) }

#ifdef RC_HAVE_X86_VARIANTS
RC_TARGET_AVX512
static void rc_recmat_f32_avx512(RC_RECMAT_ARGS) { RC_RECMAT_BODY(rc_tile_f32, RC_NR_F32, 8, 2, 4, RC_RECMAT_NO_PAIRS) }

RC_TARGET_AVX2
static void rc_recmat_f32_avx2(RC_RECMAT_ARGS) { RC_RECMAT_BODY(rc_tile_f32_v8, RC_NR_F32, 6, 1, 4, RC_RECMAT_PAIRS_X2) }
#endif

static inline void rc_recmat_f32(RC_RECMAT_ARGS)
{
#ifdef RC_HAVE_X86_VARIANTS
    int level = rc_cpu_level();
    if (level == 3) { rc_recmat_f32_avx512(m, N, K, A, lda, P, C, ldc, accumulate); return; }
    if (level == 2) { rc_recmat_f32_avx2(m, N, K, A, lda, P, C, ldc, accumulate); return; }
#endif
    rc_recmat_f32_portable(m, N, K, A, lda, P, C, ldc, accumulate);
}

/* float64 (gradient checks): portable only. */
static inline void rc_recmat_f64(int m, int N, int K, const double* A, long lda,
                                 const double* P, double* C, long ldc, int accumulate)
{
    RC_RECMAT_BODY(rc_tile_f64, RC_NR_F64, 2, 1, 2, RC_RECMAT_NO_PAIRS)
}

#endif
