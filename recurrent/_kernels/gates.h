/* float32 fused gate passes for one batch row (H units), compiled per vector extension
 * (cpu.h) so that the loops run 16 (AVX-512) or 8 (AVX2) lanes wide. The arithmetic is
 * exactly that of the float64 Cython loops in lstm.pyx / gru.pyx / rnn.pyx (the reference
 * for these lines); each line's comment names the forward equation it computes or
 * differentiates. Vectorising the exp/tanh clamps needs -fno-trapping-math (setup.py),
 * which changes no value, only whether FP exception flags may be raised speculatively.
 */
#ifndef RECURRENT_GATES_H
#define RECURRENT_GATES_H

#include "cpu.h"
#include "fastmath.h"

/* The gate blocks of a row are addressed through one pointer each (a + k * H), indexed
 * by the loop counter: with Python's -fwrapv, a[H + j] might wrap for all gcc knows, and
 * it would emit gathers/scatters. gcc cannot prove the blocks never overlap across
 * iterations for a run-time H either; they never do: RC_IVDEP tells it so. */
#define RC_IVDEP _Pragma("GCC ivdep")

/* (The float32 LSTM forward pass is fused into its recurrent product: lstmstep.h.) */

/* LSTM forward gate pass of the bf16 path, which runs it after its recurrent product
 * (lstm.pyx _cell_forward). a (4H): pre-activations in, activated gates out; c (H) may be
 * c_prev: each element is read before it is written, at the same index, so the vector
 * loop stays correct (c and c_prev are not restrict). */
RC_MULTIVERSION(rc_lstm_forward_f32,
    (float* restrict a, const float* c_prev, float* c, float* restrict h, int H),
    (a, c_prev, c, h, H),
    float* ai = a; float* af = a + H; float* ag = a + 2 * H; float* ao = a + 3 * H;
    RC_IVDEP for (int j = 0; j < H; j++) {
        float i = rc_sigmoidf(ai[j]), f = rc_sigmoidf(af[j]);
        float g = rc_tanhf(ag[j]), o = rc_sigmoidf(ao[j]);
        float cj = f * c_prev[j] + i * g;              /* c_t = f * c_{t-1} + i * g */
        ai[j] = i;
        af[j] = f;
        ag[j] = g;
        ao[j] = o;
        h[j] = o * rc_tanhf(cj);                       /* h_t = o * tanh(c_t) */
        c[j] = cj;
    })

/* rc_lstm_forward_f32 with zoneout: kh, kc (H) the zoneout values of h and c at this step,
 * h_prev (H) the previous h. */
RC_MULTIVERSION(rc_lstm_forward_zone_f32,
    (float* restrict a, const float* c_prev, float* c, float* restrict h,
     const float* restrict h_prev, const float* restrict kh, const float* restrict kc, int H),
    (a, c_prev, c, h, h_prev, kh, kc, H),
    float* ai = a; float* af = a + H; float* ag = a + 2 * H; float* ao = a + 3 * H;
    RC_IVDEP for (int j = 0; j < H; j++) {
        float i = rc_sigmoidf(ai[j]), f = rc_sigmoidf(af[j]);
        float g = rc_tanhf(ag[j]), o = rc_sigmoidf(ao[j]);
        float cj = f * c_prev[j] + i * g;              /* c~ = f * c_{t-1} + i * g */
        ai[j] = i;
        af[j] = f;
        ag[j] = g;
        ao[j] = o;
        float hj = o * rc_tanhf(cj);
        /* h_t = kh h_{t-1} + (1 - kh) o tanh(c~) */
        h[j] = kh[j] * h_prev[j] + (1 - kh[j]) * hj;
        c[j] = kc[j] * c_prev[j] + (1 - kc[j]) * cj;   /* c_t = kc c_{t-1} + (1 - kc) c~ */
    })

/* LSTM backward. a (4H): activated gates in, dA out; dh: carried d h_t in, zero out;
 * dc: d c_t in, d c_{t-1} out. */
RC_MULTIVERSION(rc_lstm_backward_f32,
    (float* restrict a, const float* restrict c_prev, const float* restrict c,
     const float* restrict d_out, float* restrict dh, float* restrict dc, int H),
    (a, c_prev, c, d_out, dh, dc, H),
    float* ai = a; float* af = a + H; float* ag = a + 2 * H; float* ao = a + 3 * H;
    RC_IVDEP for (int j = 0; j < H; j++) {
        float i = ai[j], f = af[j], g = ag[j], o = ao[j];
        float tc = rc_tanhf(c[j]);
        float dhj = d_out[j] + dh[j];
        float dcj = dc[j] + dhj * o * (1 - tc * tc);   /* h_t = o * tanh(c_t) */
        ai[j] = dcj * g * i * (1 - i);                 /* c_t = f * c_{t-1} + i * g */
        af[j] = dcj * c_prev[j] * f * (1 - f);
        ag[j] = dcj * i * (1 - g * g);
        ao[j] = dhj * tc * o * (1 - o);
        dc[j] = dcj * f;
        dh[j] = 0;
    })

/* LSTM backward with zoneout (_rows.pxd): kh, kc (H) the zoneout values of h and c at
 * this step. The candidate c~ = f * c_{t-1} + i * g is recomputed from the gates (the cell
 * cache holds the zoned c_t). a (4H): activated gates in, dA out; dh: carried d h_t in,
 * kh * (d_out + d h_t) out (the caller adds the W_hh path); dc: d c_t in, d c_{t-1} out. */
RC_MULTIVERSION(rc_lstm_backward_zone_f32,
    (float* restrict a, const float* restrict c_prev, const float* restrict d_out,
     float* restrict dh, float* restrict dc, const float* restrict kh,
     const float* restrict kc, int H),
    (a, c_prev, d_out, dh, dc, kh, kc, H),
    float* ai = a; float* af = a + H; float* ag = a + 2 * H; float* ao = a + 3 * H;
    RC_IVDEP for (int j = 0; j < H; j++) {
        float i = ai[j], f = af[j], g = ag[j], o = ao[j];
        float cc = f * c_prev[j] + i * g;              /* c~ = f * c_{t-1} + i * g */
        float tc = rc_tanhf(cc);
        float gt = d_out[j] + dh[j];
        float dhc = (1 - kh[j]) * gt;        /* h_t = kh h_{t-1} + (1 - kh) o tanh(c~) */
        float dcc = (1 - kc[j]) * dc[j] + dhc * o * (1 - tc * tc);  /* c_t = kc c_{t-1} + (1 - kc) c~ */
        ai[j] = dcc * g * i * (1 - i);
        af[j] = dcc * c_prev[j] * f * (1 - f);
        ag[j] = dcc * i * (1 - g * g);
        ao[j] = dhc * tc * o * (1 - o);
        dc[j] = kc[j] * dc[j] + dcc * f;
        dh[j] = kh[j] * gt;
    })

/* GRU forward. a (4H): [ax_r, ax_z, ax_n, -] in, [r, z, hn, n] out; ah (3H). */
RC_MULTIVERSION(rc_gru_forward_f32,
    (float* restrict a, const float* restrict ah, const float* restrict b_hn,
     const float* restrict h_prev, float* restrict h, int H),
    (a, ah, b_hn, h_prev, h, H),
    float* ar = a; float* az = a + H; float* an = a + 2 * H; float* a3 = a + 3 * H;
    const float* hr = ah; const float* hz = ah + H; const float* hh = ah + 2 * H;
    RC_IVDEP for (int j = 0; j < H; j++) {
        float r = rc_sigmoidf(ar[j] + hr[j]);
        float z = rc_sigmoidf(az[j] + hz[j]);
        float hn = hh[j] + b_hn[j];
        float n = rc_tanhf(an[j] + r * hn);            /* n = tanh(ax_n + r * hn) */
        ar[j] = r;
        az[j] = z;
        an[j] = hn;
        a3[j] = n;
        h[j] = (1 - z) * n + z * h_prev[j];            /* h_t = (1 - z) n + z h_{t-1} */
    })

/* GRU backward. a (4H): [r, z, hn, n] in, [dA_r, dA_z, r * dA_n, dA_n] out; dh: d h_t in,
 * z * d h_t out (the caller adds the W_hh path). */
RC_MULTIVERSION(rc_gru_backward_f32,
    (float* restrict a, const float* restrict h_prev, const float* restrict d_out,
     float* restrict dh, int H),
    (a, h_prev, d_out, dh, H),
    float* ar = a; float* az = a + H; float* an = a + 2 * H; float* a3 = a + 3 * H;
    RC_IVDEP for (int j = 0; j < H; j++) {
        float r = ar[j], z = az[j], hn = an[j], n = a3[j];
        float dhj = d_out[j] + dh[j];
        float dn = dhj * (1 - z) * (1 - n * n);        /* through h_t, then tanh */
        ar[j] = dn * hn * r * (1 - r);
        az[j] = dhj * (h_prev[j] - n) * z * (1 - z);
        an[j] = dn * r;
        a3[j] = dn;
        dh[j] = dhj * z;
    })

/* GRU backward with zoneout: k (H) the zoneout values of h at this step; as
 * rc_gru_backward_f32, dh out being z * d h~ + k * (d_out + d h_t). */
RC_MULTIVERSION(rc_gru_backward_zone_f32,
    (float* restrict a, const float* restrict h_prev, const float* restrict d_out,
     float* restrict dh, const float* restrict k, int H),
    (a, h_prev, d_out, dh, k, H),
    float* ar = a; float* az = a + H; float* an = a + 2 * H; float* a3 = a + 3 * H;
    RC_IVDEP for (int j = 0; j < H; j++) {
        float r = ar[j], z = az[j], hn = an[j], n = a3[j];
        float gt = d_out[j] + dh[j];
        float dhj = (1 - k[j]) * gt;                   /* h_t = k h_{t-1} + (1 - k) h~ */
        float dn = dhj * (1 - z) * (1 - n * n);
        ar[j] = dn * hn * r * (1 - r);
        az[j] = dhj * (h_prev[j] - n) * z * (1 - z);
        an[j] = dn * r;
        a3[j] = dn;
        dh[j] = dhj * z + k[j] * gt;
    })

/* Elman RNN activation in place over H units: relu (0 if a < 0 else a, NaN passing, as
 * torch.relu) or tanh. One definition for the passes below. */
#define RC_RNN_ACT(h, H, relu)                                                          \
    if (relu) {                                                                         \
        RC_IVDEP for (int j = 0; j < (H); j++)                                          \
            (h)[j] = (h)[j] < 0 ? 0 : (h)[j];                                           \
    } else {                                                                            \
        RC_IVDEP for (int j = 0; j < (H); j++)                                          \
            (h)[j] = rc_tanhf((h)[j]);                                                  \
    }

/* Elman RNN forward: h holds a = x_t W_ih^T + b + h_{t-1} W_hh^T on entry and act(a) on
 * return. With zoneout (k not NULL, _rows.pxd): the candidate act(a) also goes to cand
 * when cand is not NULL, and h = k * h_prev + (1 - k) * act(a). */
RC_MULTIVERSION(rc_rnn_forward_f32,
    (float* restrict h, float* restrict cand, const float* restrict h_prev,
     const float* restrict k, int H, int relu),
    (h, cand, h_prev, k, H, relu),
    RC_RNN_ACT(h, H, relu)
    if (k == NULL)
        return;
    if (cand != NULL)
        memcpy(cand, h, (size_t) H * sizeof(float));
    RC_IVDEP for (int j = 0; j < H; j++)
        h[j] = k[j] * h_prev[j] + (1 - k[j]) * h[j];)

/* Elman RNN forward with zoneout flags (training draws, a byte each: 1 keeps the unit):
 * h holds a on entry; h = h_prev where the flag is set, else act(a) (what the blend
 * k * h_prev + (1 - k) * act(a) gives for k in {0, 1}). */
RC_MULTIVERSION(rc_rnn_forward_flags_f32,
    (float* restrict h, const float* restrict h_prev, const unsigned char* restrict k8,
     int H, int relu),
    (h, h_prev, k8, H, relu),
    RC_RNN_ACT(h, H, relu)
    RC_IVDEP for (int j = 0; j < H; j++)
        h[j] = k8[j] ? h_prev[j] : h[j];)

/* Elman RNN backward with zoneout flags. h: h_t, which is the candidate act(a_t) where
 * the flag is clear; where it is set the candidate gets no gradient. g: d_out at this
 * step; dh: carried d h_t in, the kept units' (g + d h_t) out (the caller adds the W_hh
 * path); d: dA out. */
RC_MULTIVERSION(rc_rnn_backward_flags_f32,
    (float* restrict d, const float* restrict h, const float* restrict g,
     float* restrict dh, const unsigned char* restrict k8, int H, int relu),
    (d, h, g, dh, k8, H, relu),
    if (relu) {
        RC_IVDEP for (int j = 0; j < H; j++) {
            float gt = g[j] + dh[j];
            d[j] = k8[j] ? 0 : (h[j] > 0 ? gt : 0);
            dh[j] = k8[j] ? gt : 0;
        }
    } else {
        RC_IVDEP for (int j = 0; j < H; j++) {
            float gt = g[j] + dh[j];
            d[j] = k8[j] ? 0 : gt * (1 - h[j] * h[j]);
            dh[j] = k8[j] ? gt : 0;
        }
    })

/* Elman RNN backward, h_t = act(a_t). h: h_t; g: d_out at this step; dh: carried d h_t in,
 * zero out (the caller adds the W_hh path); d: dA out. */
RC_MULTIVERSION(rc_rnn_backward_f32,
    (float* restrict d, const float* restrict h, const float* restrict g,
     float* restrict dh, int H, int relu),
    (d, h, g, dh, H, relu),
    if (relu) {
        RC_IVDEP for (int j = 0; j < H; j++) {
            d[j] = h[j] > 0 ? g[j] + dh[j] : 0;
            dh[j] = 0;
        }
    } else {
        RC_IVDEP for (int j = 0; j < H; j++) {
            d[j] = (g[j] + dh[j]) * (1 - h[j] * h[j]);
            dh[j] = 0;
        }
    })

/* Elman RNN backward with zoneout. a (H): the candidate c = act(a_t) in, dA out (in place:
 * the cell hands forward's candidate buffer as backward's work space); g: d_out at this
 * step; dh: carried d h_t in, k * (g + d h_t) out (the caller adds the W_hh path). */
RC_MULTIVERSION(rc_rnn_backward_zone_f32,
    (float* restrict a, const float* restrict g, float* restrict dh,
     const float* restrict k, int H, int relu),
    (a, g, dh, k, H, relu),
    if (relu) {
        RC_IVDEP for (int j = 0; j < H; j++) {
            float gt = g[j] + dh[j];
            float dc = (1 - k[j]) * gt;          /* h_t = k h_{t-1} + (1 - k) c */
            dh[j] = k[j] * gt;
            a[j] = a[j] > 0 ? dc : 0;            /* c = relu(a_t) */
        }
    } else {
        RC_IVDEP for (int j = 0; j < H; j++) {
            float gt = g[j] + dh[j];
            float dc = (1 - k[j]) * gt;
            dh[j] = k[j] * gt;
            a[j] = dc * (1 - a[j] * a[j]);       /* c = tanh(a_t) */
        }
    })

#endif
