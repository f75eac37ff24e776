/* The per-row passes of the layer-normalised LSTM (lnlstm.pyx), in float32 (compiled per
 * vector extension, cpu.h) and float64 (portable, libm activations: gradient checks).
 *
 * Layer normalisation of n values v: mean m, variance s2 = mean((v - m)^2) (two passes),
 * rstd = 1 / sqrt(s2 + eps), v_hat = (v - m) * rstd. The passes run on v - v[0] (m is
 * then the mean of those and v_hat = ((v - v[0]) - m) * rstd): a block of equal values
 * gives m = 0, s2 = 0 and v_hat = 0 exactly, and a large mean over a small spread loses
 * no more than the spread's own rounding (the mean of v itself rounds to an ulp of the
 * mean, which rstd would scale up). A variance whose squares overflow (|v - m| above
 * ~1.8e19 in float32) is recomputed on (v - m) / max|v - m|: LN is scale invariant, so
 * v_hat stays what it is for v / max|v - m|. Its backward, for d v_hat = dn:
 *     d v = rstd * (dn - mean(dn) - v_hat * mean(dn * v_hat))
 * The sums run in RC_LN_LANES partial sums (lane k takes elements k, k + LANES, ...),
 * folded in a fixed tree at the end: a fixed order, so results depend on the row only
 * (never on the thread that computes it), and the lanes vectorise without reassociation.
 *
 * The rows' arrays never overlap (restrict): gate blocks of a row are addressed through one
 * pointer each (see gates.h on RC_IVDEP).
 */
#ifndef RECURRENT_LNLSTM_H
#define RECURRENT_LNLSTM_H

#include <math.h>

#include "cpu.h"
#include "fastmath.h"

#define RC_IVDEP _Pragma("GCC ivdep")
#define RC_LN_LANES 16

/* OUT = sum over k in 0..N-1 of EXPR (an expression of k), in the fixed lane order above
 * (float64, portable). */
#define RC_LANE_SUM_GENERIC(TYPE, N, EXPR, VEXPR, OUT)                                    \
    do {                                                                                  \
        TYPE acc_[RC_LN_LANES] = {0};                                                     \
        int n_ = (N), k0_ = 0;                                                            \
        for (; k0_ + RC_LN_LANES <= n_; k0_ += RC_LN_LANES)                               \
            for (int l_ = 0; l_ < RC_LN_LANES; l_++) {                                    \
                int k = k0_ + l_;                                                         \
                acc_[l_] += (EXPR);                                                       \
            }                                                                             \
        for (int l_ = 0; k0_ + l_ < n_; l_++) {                                           \
            int k = k0_ + l_;                                                             \
            acc_[l_] += (EXPR);                                                           \
        }                                                                                 \
        for (int w_ = RC_LN_LANES / 2; w_ >= 1; w_ /= 2)                                  \
            for (int l_ = 0; l_ < w_; l_++)                                               \
                acc_[l_] += acc_[l_ + w_];                                                \
        (OUT) = acc_[0];                                                                  \
    } while (0)

/* float32: the same 16 lanes as two 8-lane vectors (lanes 0-7, 8-15), VEXPR the vector
 * form of EXPR over 8 consecutive k (RC_LD8 loads), so the fold is a few vector adds. */
typedef float rc_ln_v8 __attribute__((vector_size(32)));
#define RC_LD8(P) ({ rc_ln_v8 v8_; memcpy(&v8_, (P), sizeof(rc_ln_v8)); v8_; })
#define RC_LANE_SUM_V8(TYPE, N, EXPR, VEXPR, OUT)                                         \
    do {                                                                                  \
        rc_ln_v8 a0_ = {0}, a1_ = {0};                                                    \
        int n_ = (N), k0_ = 0;                                                            \
        for (; k0_ + RC_LN_LANES <= n_; k0_ += RC_LN_LANES) {                             \
            { const int k = k0_; a0_ += (VEXPR); }                                        \
            { const int k = k0_ + 8; a1_ += (VEXPR); }                                    \
        }                                                                                 \
        if (k0_ < n_) {                                                                   \
            float t_[RC_LN_LANES] = {0};                                                  \
            for (int l_ = 0; k0_ + l_ < n_; l_++) {                                       \
                int k = k0_ + l_;                                                         \
                t_[l_] = (EXPR);                                                          \
            }                                                                             \
            a0_ += RC_LD8(t_);                                                            \
            a1_ += RC_LD8(t_ + 8);                                                        \
        }                                                                                 \
        float f_[8];                                                                      \
        rc_ln_v8 sv_ = a0_ + a1_;                                                         \
        memcpy(f_, &sv_, sizeof(f_));                                                     \
        (OUT) = ((f_[0] + f_[4]) + (f_[2] + f_[6])) + ((f_[1] + f_[5]) + (f_[3] + f_[7])); \
    } while (0)

/* Of V (N values): SHIFT = V[0], MEAN = the mean of V - SHIFT, RSTD = 1 / sqrt(variance
 * + eps); V's normalised values are ((V - SHIFT) - MEAN) * RSTD. */
#define RC_LN_STATS(TYPE, SQRT, V, N, EPS, SHIFT, MEAN, RSTD)                             \
    do {                                                                                  \
        const TYPE* v_ = (V);                                                             \
        const TYPE sh_ = v_[0];                                                           \
        TYPE s_, q_;                                                                      \
        RC_LANE_SUM(TYPE, N, v_[k] - sh_, RC_LD8(v_ + k) - sh_, s_);                      \
        TYPE m_ = s_ / (TYPE)(N);                                                         \
        RC_LANE_SUM(TYPE, N, (v_[k] - sh_ - m_) * (v_[k] - sh_ - m_),                     \
                    (RC_LD8(v_ + k) - sh_ - m_) * (RC_LD8(v_ + k) - sh_ - m_), q_);       \
        if (q_ - q_ == 0) {                                 /* finite: the usual case */  \
            (RSTD) = (TYPE)1 / SQRT(q_ / (TYPE)(N) + (EPS));                              \
        } else {                              /* squares overflowed: scale by the max */  \
            TYPE a_ = 0;                                                                  \
            for (int k = 0; k < (N); k++) {                                               \
                TYPE d_ = v_[k] - sh_ - m_;                                               \
                d_ = d_ < 0 ? -d_ : d_;                                                   \
                a_ = d_ > a_ ? d_ : a_;                                                   \
            }                                                                             \
            TYPE u_ = (TYPE)1 / a_;                                                       \
            RC_LANE_SUM(TYPE, N, (v_[k] - sh_ - m_) * u_ * ((v_[k] - sh_ - m_) * u_),     \
                        (RC_LD8(v_ + k) - sh_ - m_) * u_ * ((RC_LD8(v_ + k) - sh_ - m_) * u_), \
                        q_);                                                              \
            (RSTD) = u_ / SQRT(q_ / (TYPE)(N) + (EPS) * u_ * u_);                         \
        }                                                                                 \
        (SHIFT) = sh_;                                                                    \
        (MEAN) = m_;                                                                      \
    } while (0)

/* V (N values) normalised in place; RSTD receives 1 / sqrt(variance + eps). */
#define RC_LN_NORMALIZE(TYPE, SQRT, V, N, EPS, RSTD)                                      \
    do {                                                                                  \
        TYPE* w_ = (V);                                                                   \
        TYPE shift_, mean_, r_;                                                           \
        RC_LN_STATS(TYPE, SQRT, w_, N, EPS, shift_, mean_, r_);                           \
        RC_IVDEP for (int k = 0; k < (N); k++)                                            \
            w_[k] = (w_[k] - shift_ - mean_) * r_;                                        \
        (RSTD) = r_;                                                                      \
    } while (0)

/* Backward of y = G * n_hat (+ bias) for one normalised block of N values: D holds d y,
 * NH holds n_hat on entry and d v (the un-normalised input's gradient) on return.
 * A block of one value normalises to the constant 0, so its d v is 0: set exactly, since
 * the general formula's d * g - mean(d * g) may be contracted into a fused multiply-add
 * that leaves the product's rounding error, which rstd (up to 1 / sqrt(eps)) scales up. */
#define RC_LN_BACKWARD(TYPE, D, G, NH, N, RSTD)                                           \
    do {                                                                                  \
        const TYPE* d_ = (D);                                                             \
        const TYPE* g_ = (G);                                                             \
        TYPE* n_hat_ = (NH);                                                              \
        if ((N) == 1) {                                                                   \
            n_hat_[0] = 0;                                                                \
            break;                                                                        \
        }                                                                                 \
        TYPE s1_, s2_;                                                                    \
        RC_LANE_SUM(TYPE, N, d_[k] * g_[k], RC_LD8(d_ + k) * RC_LD8(g_ + k), s1_);        \
        RC_LANE_SUM(TYPE, N, d_[k] * g_[k] * n_hat_[k],                                   \
                    RC_LD8(d_ + k) * RC_LD8(g_ + k) * RC_LD8(n_hat_ + k), s2_);           \
        TYPE m1_ = s1_ / (TYPE)(N), m2_ = s2_ / (TYPE)(N), r_ = (RSTD);                   \
        RC_IVDEP for (int k = 0; k < (N); k++)                                            \
            n_hat_[k] = r_ * (d_[k] * g_[k] - m1_ - n_hat_[k] * m2_);                     \
    } while (0)

/* ---- one forward step of one row ----------------------------------------------------
 * xn (4H): the normalised input part x_t W_ih^T (per gate block); nh (4H): h_{t-1} W_hh^T
 * in, normalised per gate block out, rs_h (4) its rstd; then
 *     a = g_ih * xn + g_hh * nh + bias          (bias = b_ih + b_hh)
 *     i, f, g, o = sigmoid(a_i), sigmoid(a_f), tanh(a_g), sigmoid(a_o)  -> gates (4H)
 *     c = f * c_prev + i * g                                              -> c (H)
 *     nc = LN(c) (rs_c its rstd);  h = o * tanh(g_c * nc + b_c)           -> nc, h (H) */
#define RC_LNLSTM_FORWARD_BODY(TYPE, SIG, TANH, SQRT)                                     \
    TYPE s4[4], m4[4], r4[4];                     /* the recurrent part's block stats */  \
    for (int q = 0; q < 4; q++) {                                                         \
        RC_LN_STATS(TYPE, SQRT, nh + (long)q * H, H, eps, s4[q], m4[q], r4[q]);           \
        rs_h[q] = r4[q];                                                                  \
    }                                                                                     \
    const TYPE *xi = xn, *xf = xn + H, *xg = xn + 2L * H, *xo = xn + 3L * H;               \
    TYPE *hi = nh, *hf = nh + H, *hg = nh + 2L * H, *ho = nh + 3L * H;                     \
    const TYPE *gxi = g_ih, *gxf = g_ih + H, *gxg = g_ih + 2L * H, *gxo = g_ih + 3L * H;   \
    const TYPE *ghi = g_hh, *ghf = g_hh + H, *ghg = g_hh + 2L * H, *gho = g_hh + 3L * H;   \
    const TYPE *bi = bias, *bf = bias + H, *bg = bias + 2L * H, *bo = bias + 3L * H;       \
    TYPE *ai = gates, *af = gates + H, *ag = gates + 2L * H, *ao = gates + 3L * H;         \
    RC_IVDEP for (int j = 0; j < H; j++) {                                                \
        TYPE ni = (hi[j] - s4[0] - m4[0]) * r4[0], nf = (hf[j] - s4[1] - m4[1]) * r4[1];  \
        TYPE ng = (hg[j] - s4[2] - m4[2]) * r4[2], no = (ho[j] - s4[3] - m4[3]) * r4[3];  \
        hi[j] = ni; hf[j] = nf; hg[j] = ng; ho[j] = no;                                   \
        TYPE i = SIG(gxi[j] * xi[j] + ghi[j] * ni + bi[j]);                               \
        TYPE f = SIG(gxf[j] * xf[j] + ghf[j] * nf + bf[j]);                               \
        TYPE g = TANH(gxg[j] * xg[j] + ghg[j] * ng + bg[j]);                              \
        TYPE o = SIG(gxo[j] * xo[j] + gho[j] * no + bo[j]);                               \
        TYPE cj = f * c_prev[j] + i * g;            /* c_t = f * c_{t-1} + i * g */        \
        c[j] = cj;                                                                        \
        ai[j] = i; af[j] = f; ag[j] = g; ao[j] = o;                                       \
    }                                                                                     \
    TYPE sc, mc, rc;                                                                      \
    RC_LN_STATS(TYPE, SQRT, c, H, eps, sc, mc, rc);                                       \
    *rs_c = rc;                                                                           \
    RC_IVDEP for (int j = 0; j < H; j++) {                                                \
        TYPE ncj = (c[j] - sc - mc) * rc;                                                 \
        nc[j] = ncj;                                                                      \
        h[j] = ao[j] * TANH(g_c[j] * ncj + b_c[j]);  /* h_t = o * tanh(LN(c_t)) */        \
    }

#define RC_LNLSTM_FORWARD_PARAMS(TYPE)                                                    \
    (int H, TYPE eps, const TYPE* restrict xn, TYPE* restrict nh, TYPE* restrict rs_h,    \
     const TYPE* restrict g_ih, const TYPE* restrict g_hh, const TYPE* restrict bias,     \
     const TYPE* restrict c_prev, TYPE* restrict c, TYPE* restrict nc,                    \
     TYPE* restrict rs_c, const TYPE* restrict g_c, const TYPE* restrict b_c,             \
     TYPE* restrict h, TYPE* restrict gates)
#define RC_LNLSTM_FORWARD_ARGS                                                            \
    (H, eps, xn, nh, rs_h, g_ih, g_hh, bias, c_prev, c, nc, rs_c, g_c, b_c, h, gates)

/* ---- one backward step of one row ---------------------------------------------------
 * gates (4H): activated gates in, dA = d loss / d a out. nh (4H): the normalised
 * recurrent part in, d (h_{t-1} W_hh^T) out. dh: carried d h_t in, zero out (the caller
 * adds the W_hh path); dc: d c_t in, d c_{t-1} out. acc_ghh (4H), acc_gc, acc_bc (H): this
 * row's gradients of g_hh, g_c, b_c, added to (the caller sums the rows in a fixed order).
 * The input side (g_ih, b_ih, b_hh, W_ih) is done after the time loop from dA. */
#define RC_LNLSTM_BACKWARD_BODY(TYPE, TANH)                                               \
    TYPE *ai = gates, *af = gates + H, *ag = gates + 2L * H, *ao = gates + 3L * H;         \
    RC_IVDEP for (int j = 0; j < H; j++) {                                                \
        TYPE o = ao[j];                                                                   \
        TYPE tc = TANH(g_c[j] * nc[j] + b_c[j]);                                          \
        TYPE dhj = d_out[j] + dh[j];                                                      \
        TYPE dcn = dhj * o * (1 - tc * tc);        /* h_t = o * tanh(g_c * nc + b_c) */   \
        ao[j] = dhj * tc * o * (1 - o);                                                   \
        acc_gc[j] += dcn * nc[j];                                                         \
        acc_bc[j] += dcn;                                                                 \
        dh[j] = dcn;                               /* d (g_c * nc + b_c), for a moment */ \
    }                                                                                     \
    RC_LN_BACKWARD(TYPE, dh, g_c, nc_work, H, rs_c); /* nc = LN(c_t) */                   \
    RC_IVDEP for (int j = 0; j < H; j++) {                                                \
        TYPE i = ai[j], f = af[j], g = ag[j];                                             \
        TYPE dcj = dc[j] + nc_work[j];                                                    \
        ai[j] = dcj * g * i * (1 - i);             /* c_t = f * c_{t-1} + i * g */        \
        af[j] = dcj * c_prev[j] * f * (1 - f);                                            \
        ag[j] = dcj * i * (1 - g * g);                                                    \
        dc[j] = dcj * f;                                                                  \
        dh[j] = 0;                                                                        \
    }                                                                                     \
    for (int q = 0; q < 4; q++) {                  /* a = ... + g_hh * LN(h W_hh^T) */    \
        const TYPE* d = gates + (long)q * H;                                              \
        TYPE* n = nh + (long)q * H;                                                       \
        TYPE* acc = acc_ghh + (long)q * H;                                                \
        RC_IVDEP for (int j = 0; j < H; j++)                                              \
            acc[j] += d[j] * n[j];                                                        \
        RC_LN_BACKWARD(TYPE, d, g_hh + (long)q * H, n, H, rs_h[q]);                       \
    }

#define RC_LNLSTM_BACKWARD_PARAMS(TYPE)                                                   \
    (int H, TYPE* restrict gates, TYPE* restrict nh, const TYPE* restrict rs_h,           \
     const TYPE* restrict g_hh, const TYPE* restrict c_prev, const TYPE* restrict nc,     \
     TYPE rs_c, const TYPE* restrict g_c, const TYPE* restrict b_c,                       \
     const TYPE* restrict d_out, TYPE* restrict dh, TYPE* restrict dc,                    \
     TYPE* restrict acc_ghh, TYPE* restrict acc_gc, TYPE* restrict acc_bc,                \
     TYPE* restrict nc_work)
#define RC_LNLSTM_BACKWARD_ARGS                                                           \
    (H, gates, nh, rs_h, g_hh, c_prev, nc, rs_c, g_c, b_c, d_out, dh, dc, acc_ghh, acc_gc, \
     acc_bc, nc_work)

/* nc_work (H): scratch holding a copy of nc, which the LN backward overwrites. */
#define RC_LNLSTM_BACKWARD_FULL(TYPE, TANH)                                               \
    memcpy(nc_work, nc, (size_t)H * sizeof(TYPE));                                        \
    RC_LNLSTM_BACKWARD_BODY(TYPE, TANH)

/* ---- whole rows of the input part ---------------------------------------------------
 * v (4H): x_t W_ih^T in, normalised per gate block out; rs (4) the blocks' rstd. */
#define RC_LN_ROWS_BODY(TYPE, SQRT)                                                       \
    for (long r = 0; r < rows; r++)                                                       \
        for (int q = 0; q < 4; q++)                                                       \
            RC_LN_NORMALIZE(TYPE, SQRT, v + r * 4L * H + (long)q * H, H, eps,             \
                            rs[r * 4 + q]);

/* d (rows, 4H): dA; n (rows, 4H): normalised input part in, d (x_t W_ih^T) out. Row by
 * row, first db (4H) += d, dg (4H) += d * n (rows in order), then the LN backward. */
#define RC_LN_ROWS_BACKWARD_BODY(TYPE)                                                    \
    for (long r = 0; r < rows; r++) {                                                     \
        const TYPE* dr = d + r * 4L * H;                                                  \
        TYPE* nr = n + r * 4L * H;                                                        \
        RC_IVDEP for (long j = 0; j < 4L * H; j++) {                                      \
            db[j] += dr[j];                                                               \
            dg[j] += dr[j] * nr[j];                                                       \
        }                                                                                 \
        for (int q = 0; q < 4; q++)                                                       \
            RC_LN_BACKWARD(TYPE, dr + (long)q * H, g + (long)q * H, nr + (long)q * H, H,  \
                           rs[r * 4 + q]);                                                \
    }

static inline double rc_sigmoid_f64(double x) { return 1.0 / (1.0 + exp(-x)); }

/* float32: three variants, chosen at run time */
#define RC_LANE_SUM RC_LANE_SUM_V8
RC_MULTIVERSION(rc_lnlstm_forward_f32, RC_LNLSTM_FORWARD_PARAMS(float),
                RC_LNLSTM_FORWARD_ARGS,
                RC_LNLSTM_FORWARD_BODY(float, rc_sigmoidf, rc_tanhf, sqrtf))
RC_MULTIVERSION(rc_lnlstm_backward_f32, RC_LNLSTM_BACKWARD_PARAMS(float),
                RC_LNLSTM_BACKWARD_ARGS,
                RC_LNLSTM_BACKWARD_FULL(float, rc_tanhf))
RC_MULTIVERSION(rc_ln_rows_f32,
                (float* restrict v, float* restrict rs, long rows, int H, float eps),
                (v, rs, rows, H, eps),
                RC_LN_ROWS_BODY(float, sqrtf))
RC_MULTIVERSION(rc_ln_rows_backward_f32,
                (const float* restrict d, const float* restrict g, float* restrict n,
                 const float* restrict rs, long rows, int H, float* restrict db,
                 float* restrict dg),
                (d, g, n, rs, rows, H, db, dg),
                RC_LN_ROWS_BACKWARD_BODY(float))
/* float64: portable */
#undef RC_LANE_SUM
#define RC_LANE_SUM RC_LANE_SUM_GENERIC
static inline void rc_lnlstm_forward_f64 RC_LNLSTM_FORWARD_PARAMS(double)
{
    RC_LNLSTM_FORWARD_BODY(double, rc_sigmoid_f64, tanh, sqrt)
}
static inline void rc_lnlstm_backward_f64 RC_LNLSTM_BACKWARD_PARAMS(double)
{
    RC_LNLSTM_BACKWARD_FULL(double, tanh)
}
static inline void rc_ln_rows_f64(double* restrict v, double* restrict rs, long rows,
                                  int H, double eps)
{
    RC_LN_ROWS_BODY(double, sqrt)
}
static inline void rc_ln_rows_backward_f64(const double* restrict d,
                                           const double* restrict g, double* restrict n,
                                           const double* restrict rs, long rows, int H,
                                           double* restrict db, double* restrict dg)
{
    RC_LN_ROWS_BACKWARD_BODY(double)
}
#endif
