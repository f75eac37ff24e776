/* The peephole LSTM's gate passes for one batch row of H units, float32 and float64, on
 * recurrent's kernel toolkit (recurrent_toolkit.h): float32 uses its vectorisable
 * sigmoid/tanh and is compiled per vector extension (RK_MULTIVERSION); float64 (gradient
 * checks) uses libm. Gate rows in torch's order i, f, g, o; the equations are cell.py's.
 */
#ifndef RECURRENT_PEEPHOLE_GATES_H
#define RECURRENT_PEEPHOLE_GATES_H

#include <math.h>

#include "recurrent_toolkit.h"

static inline double peephole_sigmoid(double x) { return 1.0 / (1.0 + exp(-x)); }

/* a (4H): pre-activations in, activated gates i, f, g, o out; c_prev, c, h (H). */
#define PEEPHOLE_FORWARD(T, SIGMOID, TANH)                                               \
    T* ai = a; T* af = a + H; T* ag = a + 2 * H; T* ao = a + 3 * H;                      \
    RK_IVDEP for (int j = 0; j < H; j++) {                                               \
        T cp = c_prev[j];                                                                \
        T i = SIGMOID(ai[j] + p_i[j] * cp);            /* i = sigmoid(a_i + p_i c) */    \
        T f = SIGMOID(af[j] + p_f[j] * cp);            /* f = sigmoid(a_f + p_f c) */    \
        T g = TANH(ag[j]);                                                               \
        T cj = f * cp + i * g;                         /* c' = f c + i g */              \
        T o = SIGMOID(ao[j] + p_o[j] * cj);            /* o = sigmoid(a_o + p_o c') */   \
        ai[j] = i; af[j] = f; ag[j] = g; ao[j] = o;                                      \
        c[j] = cj;                                                                       \
        h[j] = o * TANH(cj);                           /* h' = o tanh(c') */             \
    }

/* a (4H): activated gates in, dA (the gradient of the pre-activations) out; dh: the
 * carried d h_t in, zero out (the caller adds dA W_hh next); dc: d c_t in, d c_{t-1} out. */
#define PEEPHOLE_BACKWARD(T, TANH)                                                       \
    T* ai = a; T* af = a + H; T* ag = a + 2 * H; T* ao = a + 3 * H;                      \
    RK_IVDEP for (int j = 0; j < H; j++) {                                               \
        T i = ai[j], f = af[j], g = ag[j], o = ao[j], cp = c_prev[j];                    \
        T tc = TANH(c[j]);                                                               \
        T dhj = d_out[j] + dh[j];                                                        \
        T dao = dhj * tc * o * (1 - o);                                                  \
        T dct = dc[j] + dhj * o * (1 - tc * tc) + dao * p_o[j];                          \
        T dai = dct * g * i * (1 - i);                                                   \
        T daf = dct * cp * f * (1 - f);                                                  \
        ai[j] = dai;                                                                     \
        af[j] = daf;                                                                     \
        ag[j] = dct * i * (1 - g * g);                                                   \
        ao[j] = dao;                                                                     \
        dc[j] = dct * f + dai * p_i[j] + daf * p_f[j];                                   \
        dh[j] = 0;                                                                       \
    }

/* The peephole gradients of one row: dp_i += dA_i c_prev, dp_f += dA_f c_prev,
 * dp_o += dA_o c; da (4H) is dA. */
#define PEEPHOLE_PARAM_GRADS(T)                                                          \
    RK_IVDEP for (int j = 0; j < H; j++) {                                               \
        dp_i[j] += da[j] * c_prev[j];                                                    \
        dp_f[j] += da[H + j] * c_prev[j];                                                \
        dp_o[j] += da[3 * H + j] * c[j];                                                 \
    }

#define PEEPHOLE_FORWARD_PARAMS(T)                                                       \
    (T* restrict a, const T* restrict c_prev, T* restrict c, T* restrict h,              \
     const T* restrict p_i, const T* restrict p_f, const T* restrict p_o, int H)
#define PEEPHOLE_BACKWARD_PARAMS(T)                                                      \
    (T* restrict a, const T* restrict c_prev, const T* restrict c,                       \
     const T* restrict d_out, T* restrict dh, T* restrict dc, const T* restrict p_i,     \
     const T* restrict p_f, const T* restrict p_o, int H)
#define PEEPHOLE_GRADS_PARAMS(T)                                                         \
    (const T* restrict da, const T* restrict c_prev, const T* restrict c,                \
     T* restrict dp_i, T* restrict dp_f, T* restrict dp_o, int H)

RK_MULTIVERSION(peephole_forward_f32, PEEPHOLE_FORWARD_PARAMS(float),
                (a, c_prev, c, h, p_i, p_f, p_o, H),
                PEEPHOLE_FORWARD(float, rc_sigmoidf, rc_tanhf))
RK_MULTIVERSION(peephole_backward_f32, PEEPHOLE_BACKWARD_PARAMS(float),
                (a, c_prev, c, d_out, dh, dc, p_i, p_f, p_o, H),
                PEEPHOLE_BACKWARD(float, rc_tanhf))
RK_MULTIVERSION(peephole_param_grads_f32, PEEPHOLE_GRADS_PARAMS(float),
                (da, c_prev, c, dp_i, dp_f, dp_o, H),
                PEEPHOLE_PARAM_GRADS(float))

static void peephole_forward_f64 PEEPHOLE_FORWARD_PARAMS(double)
{ PEEPHOLE_FORWARD(double, peephole_sigmoid, tanh) }
static void peephole_backward_f64 PEEPHOLE_BACKWARD_PARAMS(double)
{ PEEPHOLE_BACKWARD(double, tanh) }
static void peephole_param_grads_f64 PEEPHOLE_GRADS_PARAMS(double)
{ PEEPHOLE_PARAM_GRADS(double) }

#endif
