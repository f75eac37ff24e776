/* One float32 LSTM time step for a block of rows, with the gate pass fused into the
 * recurrent product: the pre-activations of a tile never leave registers / L1 before
 * their nonlinearities are applied.
 *
 * Per row r of the block and hidden unit j:
 *     a_q = pre[r, q*H + j] + sum_q[r, j]                              q = i, f, g, o
 *     sum_q[r, j] = (x_t[r] W_ih^T)[q*H + j] + (h_prev[r] W_hh^T)[q*H + j]
 *     i, f, g, o = sigmoid(a_i), sigmoid(a_f), tanh(a_g), sigmoid(a_o)
 *     c[r, j] = f * c_prev[r, j] + i * g;   h[r, j] = o * tanh(c[r, j])
 * and, when `gates` is not NULL (training: backward reads them), the activated i, f, g, o
 * are stored there. Two ways to get the input part, one entry point each (at the end):
 *   - rc_lstm_step_hoisted_f32: pre (m, 4H) holds x_t W_ih^T + biases, computed for all
 *     steps before the loop by one big product; the tile sums h_prev's H products only;
 *   - rc_lstm_step_in_tile_f32: the tile's sum runs over x_t's I inputs, then h_prev's H,
 *     and adds the bias (4H,). No (T, B, 4H) projection is written and read back, and the
 *     gate pass is spread over I + H products instead of H; with very few rows the
 *     hoisted product is the better GEMM and the per-step weights are the bottleneck, so
 *     lstm.pyx picks this one from B (lstm_in_tile_min_rows, tuning.pxd).
 *
 * Why fused: a separate gate pass would write the G = 4H pre-activations of every row,
 * then read them back (and write the activated gates again). Here the weights are
 * packed so that one group of 4 panels holds the 4 gates of the same GW hidden units (16,
 * or 8 on the AVX2 path): a tile of MR rows x 4 panels ends with complete sums for MR rows
 * x GW units.
 *
 * Each sum is accumulated in a fixed k order from zero, the same in every tile, so results
 * do not depend on the tile a row falls in, hence not on the thread split. c_prev may
 * equal c (inference keeps one running c): each element is read before it is written.
 */
#ifndef RECURRENT_LSTMSTEP_H
#define RECURRENT_LSTMSTEP_H

#include <string.h>

#include "cpu.h"
#include "fastmath.h"
#include "recmat.h"

#define RC_LSTM_NR 16  /* hidden units per panel: one 64-byte vector of float32 */

/* Units per group of panels: 16 (one 64-byte vector), or 8 for the AVX2 variant, whose
 * tiles work on 8-lane vectors: a tile's panels are then contiguous, (I + H) * 128 bytes,
 * not every other half of 64-byte panel rows spread over twice that. */
static inline int rc_lstm_group_width(void)
{
#ifdef RC_HAVE_X86_VARIANTS
    if (rc_cpu_level() == 2)
        return 8;
#endif
    return RC_LSTM_NR;
}

/* Elements of a packed W^T for W (4H, K): ceil(H / 16) groups x 4 panels x K x 16 (enough
 * for groups of 8 too). */
static inline long rc_lstm_packed_len(int H, int K)
{
    return (long)((H + RC_LSTM_NR - 1) / RC_LSTM_NR) * 4 * K * RC_LSTM_NR;
}

/* P[p][q][k][j] = w[q*H + p*GW + j][k] (zero past unit H-1), GW = rc_lstm_group_width();
 * w (4H, K) row-major: W_hh (K = H) or W_ih (K = I). */
static inline void rc_lstm_pack_f32(const float* w, int H, int K, float* P)
{
    if (rc_lstm_group_width() == 8) {
        for (int u0 = 0; u0 < H; u0 += 8)
            for (int q = 0; q < 4; q++) {  /* panel (group u0 / 8, gate q): 8 rows of w */
                const float* wq = w + ((long)q * H + u0) * K;
                float* Pq = P + ((long)u0 * 4 + (long)q * 8) * K;
                for (int k = 0; k < K; k++)
                    for (int j = 0; j < 8; j++)
                        Pq[(long)k * 8 + j] = u0 + j < H ? wq[(long)j * K + k] : 0.0f;
            }
        return;
    }
    for (int u0 = 0; u0 < H; u0 += RC_LSTM_NR)
        for (int q = 0; q < 4; q++)  /* panel (group u0 / 16, gate q): 16 rows of w */
            rc_transpose16_f32(w + ((long)q * H + u0) * K, K,
                               H - u0 < RC_LSTM_NR ? H - u0 : RC_LSTM_NR, K,
                               P + ((long)u0 * 4 + (long)q * RC_LSTM_NR) * K);
}

/* The tile code for one vector type V of VW float lanes and groups of VW units (VW = 16:
 * AVX-512 and portable; VW = 8: AVX2, where gcc lowers 64-byte vectors through the
 * stack). SFX names the set. */
#define RC_DEFINE_LSTM_TILE(SFX, V, VW, LOAD)                                                \
/* The gate pass for one row and nu <= VW units from the tile's sums s[q][j]; pointers    \
 * are at the row's first unit. The lines are lstm.pyx's float64 _cell_forward. All VW    \
 * lanes are computed on local copies (lanes past nu on zeros), so the loop has a         \
 * constant trip count and no aliasing question: gcc makes it one vector per line. */     \
static inline __attribute__((always_inline)) void                                        \
rc_lstm_units##SFX(const int nu, float (*s)[VW], const float* proj, int H,              \
                   const float* c_prev, float* c, float* h, float* gates,               \
                   const float* hp, const float* kh, const float* kc)                   \
{                                                                                        \
    float p[4][VW], cp[VW], cl[VW], hl[VW];                                              \
    float g4[4][VW];                                                                     \
    if (nu < VW) {                                                                       \
        memset(p, 0, sizeof(p));                                                         \
        memset(cp, 0, sizeof(cp));                                                       \
    }                                                                                    \
    for (int q = 0; q < 4; q++)                                                          \
        memcpy(p[q], proj + (long)q * H, nu * sizeof(float));                            \
    memcpy(cp, c_prev, nu * sizeof(float));                                              \
    for (int j = 0; j < VW; j++) {                                                       \
        float i = rc_sigmoidf(p[0][j] + s[0][j]);                                        \
        float f = rc_sigmoidf(p[1][j] + s[1][j]);                                        \
        float g = rc_tanhf(p[2][j] + s[2][j]);                                           \
        float o = rc_sigmoidf(p[3][j] + s[3][j]);                                        \
        float cj = f * cp[j] + i * g;              /* c_t = f * c_{t-1} + i * g */        \
        cl[j] = cj;                                                                      \
        hl[j] = o * rc_tanhf(cj);                  /* h_t = o * tanh(c_t) */              \
        g4[0][j] = i; g4[1][j] = f; g4[2][j] = g; g4[3][j] = o;                          \
    }                                                                                    \
    if (kh) {  /* zoneout: s_t = k * s_{t-1} + (1 - k) * candidate, for h and c */     \
        float khl[VW], kcl[VW], hpl[VW];                                                 \
        if (nu < VW) {                                                                   \
            memset(khl, 0, sizeof(khl));                                                 \
            memset(kcl, 0, sizeof(kcl));                                                 \
            memset(hpl, 0, sizeof(hpl));                                                 \
        }                                                                                \
        memcpy(khl, kh, nu * sizeof(float));                                             \
        memcpy(kcl, kc, nu * sizeof(float));                                             \
        memcpy(hpl, hp, nu * sizeof(float));                                             \
        /* the fused multiply-add spelled out: left to the compiler, either product may  \
         * be fused, differently in each tile shape this is inlined into, and a row's    \
         * result would depend on its tile, hence on the thread split. k = 0 or 1 still  \
         * gives the candidate or the previous value exactly. */                         \
        for (int j = 0; j < VW; j++) {                                                   \
            cl[j] = __builtin_fmaf(kcl[j], cp[j], (1 - kcl[j]) * cl[j]);                 \
            hl[j] = __builtin_fmaf(khl[j], hpl[j], (1 - khl[j]) * hl[j]);                \
        }                                                                                \
    }                                                                                    \
    memcpy(c, cl, nu * sizeof(float));                                                   \
    memcpy(h, hl, nu * sizeof(float));                                                   \
    if (gates)                                                                           \
        for (int q = 0; q < 4; q++)                                                      \
            memcpy(gates + (long)q * H, g4[q], nu * sizeof(float));                      \
}                                                                                        \
                                                                                         \
/* acc[i][q] += A[i, 0:K] @ (one group's panel q), for MR rows (row stride lda). */        \
static inline __attribute__((always_inline)) void                                        \
rc_lstm_sums##SFX(const int mr, int K, const float* A, long lda, const float* P,        \
                  V (*acc)[4])                                                           \
{                                                                                        \
    const long ps = (long)K * VW;                                                        \
    for (int k = 0; k < K; k++) {                                                        \
        V b[4];                                                                          \
        for (int q = 0; q < 4; q++)                                                      \
            LOAD(b[q], P + q * ps + (long)k * VW);                                       \
        for (int i = 0; i < mr; i++) {                                                   \
            float a = A[i * lda + k];                                                    \
            for (int q = 0; q < 4; q++)                                                  \
                acc[i][q] += a * b[q];                                                   \
        }                                                                                \
    }                                                                                    \
}                                                                                        \
                                                                                         \
/* MR rows x 4 gates x nu <= VW units: the sums in registers (inputs X first when I > 0,  \
 * then h_prev A), then the gate pass. Row r's arrays: X + r*I, A + r*H,                  \
 * pre + r*pre_stride, gates + r*4H, c_prev/c/h + r*H; pointers already offset to the     \
 * group's first unit (X, A excepted). */                                                \
static inline __attribute__((always_inline)) void                                        \
rc_lstm_tile##SFX(const int mr, int I, int H, int nu, const float* X, const float* A,   \
                  const float* Pi, const float* Ph, const float* pre, long pre_stride,  \
                  const float* c_prev, float* c, float* h, float* gates,                \
                  const float* Hp, const float* Kh, const float* Kc)                    \
{                                                                                        \
    V acc[RC_MAXMR][4];                                                                  \
    for (int i = 0; i < mr; i++)                                                         \
        for (int q = 0; q < 4; q++)                                                      \
            acc[i][q] = (V){0};                                                          \
    if (I > 0)                                                                           \
        rc_lstm_sums##SFX(mr, I, X, I, Pi, acc);                                         \
    rc_lstm_sums##SFX(mr, H, A, H, Ph, acc);                                             \
    const long G = 4L * H;                                                               \
    for (int i = 0; i < mr; i++) {                                                       \
        float s[4][VW];                                                                  \
        memcpy(s, acc[i], sizeof(s));                                                    \
        float* gr = gates ? gates + i * G : NULL;                                        \
        const float* hpr = Kh ? Hp + (long)i * H : NULL;                                 \
        const float* khr = Kh ? Kh + (long)i * H : NULL;                                 \
        const float* kcr = Kh ? Kc + (long)i * H : NULL;                                 \
        if (nu == VW)  /* constant trip count: one vector per line */                    \
            rc_lstm_units##SFX(VW, s, pre + i * pre_stride, H, c_prev + (long)i * H,     \
                               c + (long)i * H, h + (long)i * H, gr, hpr, khr, kcr);     \
        else                                                                             \
            rc_lstm_units##SFX(nu, s, pre + i * pre_stride, H, c_prev + (long)i * H,     \
                               c + (long)i * H, h + (long)i * H, gr, hpr, khr, kcr);     \
    }                                                                                    \
}
RC_DEFINE_LSTM_TILE(, rc_v16sf, RC_LSTM_NR, RC_LOAD_V16SF)
RC_DEFINE_LSTM_TILE(_v8, rc_v8sf, 8, RC_LOAD_V8SF)

/* m rows: h (m, H) and c (m, H) written, gates (m, 4H) too unless NULL. X (m, I) is
 * x_t's rows and Pi the packed W_ih^T (neither read when I = 0), A (m, H) h_prev's rows, Ph
 * the packed W_hh^T. Groups outer so that one group of panels ((I + H) * 16 * GW bytes) is
 * reused by every row tile.
 * reverse_groups: visit the groups last to first. Callers alternate it from step to step
 * (rc_lstm_group_order), so a step starts on the panels the previous step used last,
 * still in cache when the weights do not fit in it. Each group's results are independent
 * of the order. */
#define RC_LSTM_STEP_BODY(MR, SFX, GW)                                                   \
    int ngroups = (H + GW - 1) / GW;                                                     \
    for (int pi = 0; pi < ngroups; pi++) {                                               \
        int p = reverse_groups ? ngroups - 1 - pi : pi;                                  \
        int u0 = p * GW;                                                                 \
        int nu = H - u0 < GW ? H - u0 : GW;                                              \
        const float* Pip = I > 0 ? Pi + (long)p * 4 * I * GW : NULL;                     \
        const float* Php = Ph + (long)p * 4 * H * GW;                                    \
        int r = 0;                                                                       \
        for (; r + MR <= m; r += MR)                                                     \
            RC_LSTM_TILE_AT(SFX, MR);                                                    \
        for (; MR > 2 && r + 2 <= m; r += 2)                                             \
            RC_LSTM_TILE_AT(SFX, 2);                                                     \
        for (; r < m; r++)                                                               \
            RC_LSTM_TILE_AT(SFX, 1);                                                     \
    }

#define RC_LSTM_TILE_AT(SFX, MRC)                                                        \
    rc_lstm_tile##SFX(MRC, I, H, nu, I > 0 ? X + (long)r * I : NULL, A + (long)r * H,   \
                      Pip, Php,                                                         \
                      pre + r * pre_stride + u0, pre_stride, c_prev + (long)r * H + u0, \
                      c + (long)r * H + u0, h + (long)r * H + u0,                       \
                      gates ? gates + r * 4L * H + u0 : NULL,                           \
                      Kh ? Hp + (long)r * H + u0 : NULL,                                \
                      Kh ? Kh + (long)r * H + u0 : NULL,                                \
                      Kh ? Kc + (long)r * H + u0 : NULL)

#define RC_LSTM_STEP_ARGS int m, int I, int H, const float* X, const float* A,            \
                          const float* Pi, const float* Ph, const float* pre,              \
                          long pre_stride, const float* c_prev, float* c, float* h,        \
                          float* gates, const float* Hp, const float* Kh, const float* Kc, \
                          int reverse_groups
#define RC_LSTM_STEP_CALL(NAME) \
    NAME(m, I, H, X, A, Pi, Ph, pre, pre_stride, c_prev, c, h, gates, Hp, Kh, Kc, reverse_groups)

static void rc_lstm_step_f32_portable(RC_LSTM_STEP_ARGS) { RC_LSTM_STEP_BODY(1, , RC_LSTM_NR) }

#ifdef RC_HAVE_X86_VARIANTS
RC_TARGET_AVX512
static void rc_lstm_step_f32_avx512(RC_LSTM_STEP_ARGS) { RC_LSTM_STEP_BODY(4, , RC_LSTM_NR) }

RC_TARGET_AVX2
static void rc_lstm_step_f32_avx2(RC_LSTM_STEP_ARGS) { RC_LSTM_STEP_BODY(2, _v8, 8) }
#endif

static inline void rc_lstm_step_f32(RC_LSTM_STEP_ARGS)
{
#ifdef RC_HAVE_X86_VARIANTS
    int level = rc_cpu_level();
    if (level == 3) { RC_LSTM_STEP_CALL(rc_lstm_step_f32_avx512); return; }
    if (level == 2) { RC_LSTM_STEP_CALL(rc_lstm_step_f32_avx2); return; }
#endif
    RC_LSTM_STEP_CALL(rc_lstm_step_f32_portable);
}

/* Both entry points take, beside h_prev (m, H), the product's input A (m, H): h_prev
 * itself, or h_prev times a recurrent-dropout mask; and zoneout (see lstm.pyx): kh, kc
 * (m, H) rows of the zoneout values of h and c (both NULL: no zoneout), applied after the
 * gate pass, h_t = kh * h_prev + (1 - kh) * o * tanh(c~), c_t = kc * c_prev + (1 - kc) * c~.
 *
 * The input part hoisted: pre (m, 4H) rows hold x_t W_ih^T + biases. gates may be pre
 * itself (training: the pre-activations are replaced by the activated gates). */
static inline void rc_lstm_step_hoisted_f32(int m, int H, const float* h_prev, const float* A,
                                            const float* Ph, const float* pre,
                                            const float* c_prev, float* c, float* h,
                                            float* gates, const float* kh, const float* kc,
                                            int reverse_groups)
{
    rc_lstm_step_f32(m, 0, H, NULL, A, NULL, Ph, pre, 4L * H, c_prev, c, h, gates, h_prev,
                     kh, kc, reverse_groups);
}

/* The input part in the tile: x_t (m, I) rows times Pi (packed W_ih^T), plus bias (4H,). */
static inline void rc_lstm_step_in_tile_f32(int m, int I, int H, const float* x_t,
                                            const float* h_prev, const float* A,
                                            const float* Pi, const float* Ph,
                                            const float* bias, const float* c_prev, float* c,
                                            float* h, float* gates, const float* kh,
                                            const float* kc, int reverse_groups)
{
    rc_lstm_step_f32(m, I, H, x_t, A, Pi, Ph, bias, 0, c_prev, c, h, gates, h_prev, kh, kc,
                     reverse_groups);
}

/* reverse_groups for step t: the group order alternates from step to step (see above). */
static inline int rc_lstm_group_order(long t)
{
    return (int)(t & 1);
}

#endif
