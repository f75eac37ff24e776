"""int8 inference kernels for the built-in cells (lstm, gru, rnn_tanh, rnn_relu, ln_lstm).

The products x_t W_ih^T and h_{t-1} W_hh^T run on int8 values (qmat.h): weights quantised
per output row once (recurrent/quant.py, packed here by pack()), x_t and h_{t-1}
quantised per batch row at every step, exact int32 sums dequantised to float32; biases,
gates, layer normalisation and the cell state stay float32, with the float32 kernels'
gate arithmetic (the LN-LSTM's row passes are lnlstm.h's). Recurrent dropout's mask and
zoneout's blend apply as in the float32 kernels (_rows.pxd).

Legend: T time steps, B batch rows, I input size, H hidden size, G = gates * H rows of
W_ih / W_hh; Ip, Hp = I, H rounded up to even (the quantised rows' length).

Per call: ONE parallel region in which each thread owns a contiguous slice of batch rows
for all T steps; per step, chunk by chunk of its rows (CHUNK_BYTES), it quantises their
x_t and h_{t-1}, computes the input part x_t W_ih^T + bias and adds h_{t-1} W_hh^T (or
keeps it apart: GRU, and the LN-LSTM, whose input part is normalised), then runs the
gate pass. No barrier between steps or chunks of
steps: on a busy machine every barrier waits for the slowest thread's next time slice.
The sums are exact and every float operation is the same whatever the split, so any
thread count gives bitwise equal results.
"""
import numpy as np

from cython.parallel cimport prange
from libc.stdint cimport int8_t, int16_t, int32_t, int64_t, uint8_t, uintptr_t
from libc.stdlib cimport free
from libc.string cimport memcpy, memset

from ._gates cimport rc_cpu_level, rc_gru_forward_f32
from ._lnlstm cimport rc_ln_rows_f32, rc_lnlstm_forward_f32
from ._recmat cimport rc_malloc64
from ._rows cimport (copy_empty_rows, data_of, kernel_threads, masked_rows, split,
                    state_before, zone_at, zone_rows, zoneout_step)


cdef extern from "qmat.h" nogil:
    ctypedef struct rc_q_out:
        int mode
        int N
        const float* sa
        const float* sw
        const float* bias
        float* C
        long ldc
        int accumulate
        int32_t* S
    int RC_Q_DEQUANT
    int RC_Q_RAW
    int rc_q_kpad(int K)
    long rc_q_packed_len(int N, int K)
    void rc_q_pack(const int8_t* w, int N, int K, int16_t* P)
    void rc_q_rows(int m, int K, const float* a, long lda, int16_t* q, float* s)
    long rc_q_scratch_len(int m, int K)
    void rc_qmat(int m, int K, const int16_t* A, long lda, const int16_t* P,
                 const rc_q_out* o, uint8_t* U)
    void rc_q_lstm_gates_f32(const float* a, const float* c_prev, float* c, float* h, int H)
    void rc_q_rnn_gates_f32(const float* a, float* h, int H, int relu)
    int rc_cpu_int8()
    const int rc_q_avxvnni_built
    int RC_Q_AVX2
    int RC_Q_AVXVNNI
    int RC_Q_VNNI512


cpdef enum Kind:   # the cell a call runs
    LSTM = 0
    GRU = 1
    RNN_TANH = 2
    RNN_RELU = 3
    LN_LSTM = 4

def instruction_path():
    """The int8 products' code on this CPU: "avx512_vnni" (vpdpbusd on 512-bit vectors),
    "avx_vnni" (vpdpbusd on 256-bit vectors: AVX-VNNI without AVX512_VNNI, or with
    RECURRENT_VECTOR_LEVEL=avx_vnni), "avx2" (vpmaddwd: no VNNI, or
    RECURRENT_VECTOR_LEVEL=avx2) or "portable" (scalar C)."""
    path = rc_cpu_int8()
    if path == RC_Q_VNNI512:
        return "avx512_vnni"
    if path == RC_Q_AVXVNNI:
        return "avx_vnni"
    return "avx2" if path == RC_Q_AVX2 else "portable"


def avx_vnni_built():
    """Whether this build has the AVX-VNNI variant (compilers from GCC 11 and clang 12)."""
    return bool(rc_q_avxvnni_built)


def _aligned_int16(Py_ssize_t n):
    """A zeroed int16 array of n elements starting on a 64-byte boundary."""
    buf = np.zeros(n + 32, np.int16)
    cdef uintptr_t address = buf.ctypes.data
    cdef Py_ssize_t skip = ((64 - address % 64) % 64) // 2
    return buf[skip:skip + n]


def pack(const int8_t[:, ::1] wq):
    """The packed copy (an int16 array, 64-byte aligned) of quantised weights wq (N, K)
    that infer() and matmul_int32() take, in the layout of this process's variant (qmat.h:
    int16 pairs, or in the VNNI variant int8 quads and int32 corrections in its bytes)."""
    cdef int N = <int> wq.shape[0], K = <int> wq.shape[1]
    packed = _aligned_int16(rc_q_packed_len(N, K))
    cdef int16_t[::1] P = packed
    rc_q_pack(&wq[0, 0], N, K, &P[0])
    return packed


def quantize_rows(const float[:, ::1] a):
    """The kernels' quantisation of rows a (m, K) (qmat.h): (q int16 (m, Kp), scales
    float32 (m,)); q holds int8 values, zero past column K."""
    cdef int m = <int> a.shape[0], K = <int> a.shape[1]
    q = np.zeros((m, rc_q_kpad(K)), np.int16)
    s = np.zeros(m, np.float32)
    cdef int16_t[:, ::1] qv = q
    cdef float[::1] sv = s
    if m > 0:
        rc_q_rows(m, K, &a[0, 0], K, &qv[0, 0], &sv[0])
    return q, s


def matmul_int32(const int16_t[:, ::1] q, const int16_t[::1] packed, int N, int K):
    """The exact int32 sums (m, N) of quantised rows q (m, Kp) with packed weights of an
    (N, K) matrix: what infer() dequantises."""
    cdef int m = <int> q.shape[0]
    out = np.zeros((m, N), np.int32)
    scratch = np.zeros(max(1, rc_q_scratch_len(m, K)), np.uint8)
    cdef int32_t[:, ::1] ov = out
    cdef uint8_t[::1] uv = scratch
    cdef rc_q_out o
    memset(&o, 0, sizeof(o))
    o.mode = RC_Q_RAW
    o.N = N
    o.ldc = N
    if m > 0 and N > 0:
        o.S = &ov[0, 0]
        rc_qmat(m, K, &q[0, 0], q.shape[1], &packed[0], &o, &uv[0])
    return out


# rows of a step's chunk: their pre-activations (rows x ldp floats) about 1 MB, near a
# core's L2 size, so that a chunk's products and gate pass work mostly from L2 (else a
# pool stepping thousands of streams writes and reads the whole batch's pre-activations,
# tens of MB, through L3 three times per step)
cdef int CHUNK_BYTES = 1 << 20


cdef void _rows_loop(int kind, float* out, const float* x, int I, int16_t* xq, float* sx,
                     const int16_t* P_ih, const float* sw_ih, const float* bias, float* pre,
                     int ldp, float* ah, float* c_run, float* h_n, float* c_n, uint8_t* us,
                     const float* h0, int16_t* hq, float* sh, const int16_t* P_hh,
                     const float* sw_hh, const float* b_hn, const int64_t* lengths,
                     Py_ssize_t T, Py_ssize_t B, int H, Py_ssize_t b0, Py_ssize_t b1,
                     Py_ssize_t chunk, const float* rmask, float* hm, const float* kh,
                     const float* kc, Py_ssize_t kstep, float* c_old, const float* ln,
                     float eps, float* rs_x, float* lnw) noexcept nogil:
    """The whole time loop for batch rows b0:b1: per step and chunk of at most ``chunk``
    rows, the input part of their rows into pre (chunk, ldp), the recurrent product, the
    gate pass. This thread's scratch, for the chunk's rows: pre, xq (chunk, Ip), sx
    (chunk,), hq (chunk, Hp), sh (chunk,), ah (GRU, LN-LSTM: (chunk, G)) and us (the
    products', rc_q_scratch_len(1, max(I, H)) bytes per row); c_run (the LSTMs, (B, H)):
    rows b0:b1. Masks as the float32 kernels take them (_rows.pxd), NULL when off: rmask
    (B, H) the recurrent-dropout mask, with hm (chunk, H) scratch for the masked rows the
    recurrent product quantises; kh, kc (kstep) zoneout of h and of the LSTMs' c. c_old
    (H,) scratch for the c_{t-1} that zoneout's blend and the LN-LSTM's row pass read.
    LN-LSTM (lnlstm.pyx's equations, its row passes): ah takes the recurrent part apart
    from the input part; ln holds ln_gain_ih (G), ln_gain_hh (G), ln_gain_c (H) and
    ln_bias_c (H); eps; scratch rs_x (chunk, 4) and lnw (G + H + 5: rs_h, the gates,
    LN(c), its rstd)."""
    cdef int Ip = rc_q_kpad(I), Hp = rc_q_kpad(H)
    cdef int G = (3 if kind == GRU else 4 if kind == LSTM or kind == LN_LSTM else 1) * H
    cdef Py_ssize_t t, b, c, c1
    cdef int nc
    cdef const float* h_prev
    cdef float* h
    cdef rc_q_out xo, ho
    if b1 <= b0:
        return
    memset(&xo, 0, sizeof(xo))
    xo.mode = RC_Q_DEQUANT        # a = x_t W_ih^T + bias (LN-LSTM: no bias, normalised)
    xo.N = G
    xo.sa = sx
    xo.sw = sw_ih
    xo.bias = NULL if kind == LN_LSTM else bias
    xo.C = pre
    xo.ldc = ldp
    memset(&ho, 0, sizeof(ho))
    ho.mode = RC_Q_DEQUANT
    ho.sa = sh
    ho.sw = sw_hh
    if kind == GRU or kind == LN_LSTM:   # ah = h_{t-1} W_hh^T, apart from the input part
        ho.N = G
        ho.C = ah
        ho.ldc = G
    else:             # the pre-activations: input part + h_{t-1} W_hh^T
        ho.N = G
        ho.C = pre
        ho.ldc = ldp
        ho.accumulate = 1
    for t in range(T):
        h_prev = state_before(out, h0, t, B, H, b0)
        c = b0
        while c < b1:
            c1 = min(c + chunk, b1)
            nc = <int> (c1 - c)
            rc_q_rows(nc, I, x + (t * B + c) * I, I, xq, sx)
            rc_qmat(nc, I, xq, Ip, P_ih, &xo, us)
            if kind == LN_LSTM:
                rc_ln_rows_f32(pre, rs_x, nc, H, eps)
            rc_q_rows(nc, H, masked_rows(hm, h_prev + (c - b0) * H,
                                         NULL if rmask == NULL else rmask + c * H, nc * H),
                      H, hq, sh)
            rc_qmat(nc, H, hq, Hp, P_hh, &ho, us)
            for b in range(c, c1):
                h = out + (t * B + b) * H
                if t >= lengths[b]:
                    memset(h, 0, H * sizeof(float))
                    continue
                if kind == LSTM:
                    if kc != NULL:
                        memcpy(c_old, c_run + b * H, H * sizeof(float))
                    rc_q_lstm_gates_f32(pre + (b - c) * ldp, c_run + b * H, c_run + b * H,
                                        h, H)
                    if kc != NULL:
                        zone_rows(c_run + b * H, c_old, zone_at(kc, kstep, t, B, H, b), H)
                elif kind == LN_LSTM:
                    memcpy(c_old, c_run + b * H, H * sizeof(float))
                    rc_lnlstm_forward_f32(H, eps, pre + (b - c) * ldp, ah + (b - c) * G,
                                          lnw, ln, ln + G, bias, c_old, c_run + b * H,
                                          lnw + 4 + G, lnw + 4 + G + H, ln + 2 * G,
                                          ln + 2 * G + H, h, lnw + 4)
                    if kc != NULL:
                        zone_rows(c_run + b * H, c_old, zone_at(kc, kstep, t, B, H, b), H)
                elif kind == GRU:
                    rc_gru_forward_f32(pre + (b - c) * ldp, ah + (b - c) * 3 * H, b_hn,
                                       h_prev + (b - b0) * H, h, H)
                else:
                    rc_q_rnn_gates_f32(pre + (b - c) * ldp, h, H, kind == RNN_RELU)
                if kh != NULL:
                    zone_rows(h, h_prev + (b - b0) * H, zone_at(kh, kstep, t, B, H, b), H)
                if t == lengths[b] - 1:
                    memcpy(h_n + b * H, h, H * sizeof(float))
                    if c_run != NULL:
                        memcpy(c_n + b * H, c_run + b * H, H * sizeof(float))
            c = c1


def infer(int kind, float[:, :, ::1] out, float[:, ::1] h_n, float[:, ::1] c_n,
          const float[:, :, ::1] x, const float[:, ::1] h0, const float[:, ::1] c0,
          const int16_t[::1] p_ih, const float[::1] s_ih, const int16_t[::1] p_hh,
          const float[::1] s_hh, const float[::1] bias, const float[::1] b_hn,
          const int64_t[::1] lengths not None, int num_threads, rec_mask=None,
          zone_h=None, zone_c=None, ln=None, double eps=0):
    """One layer-direction's sequence in int8: out (T, B, H), h_n (B, H) and, for the
    LSTMs, c_n (B, H) are written (c0, c_n: any (B, H) arrays for the other kinds). p_ih,
    p_hh: pack() of the quantised W_ih (G, I), W_hh (G, H); s_ih, s_hh (G,) their row
    scales; bias (G,): b_ih + b_hh (LSTMs, RNN) or b_ih + [b_hr, b_hz, 0] (GRU); b_hn (H,):
    GRU's b_hh's last block (any array otherwise). lengths (B,) in 0..T. Masks, float32
    and C-contiguous, or None (off): rec_mask (B, H) recurrent dropout; zone_h (T or 1, B,
    H) zoneout of h and, LSTMs only, zone_c (the same shape) of c. LN_LSTM: ln, float32
    (2G + 2H,), ln_gain_ih, ln_gain_hh, ln_gain_c and ln_bias_c end to end, and eps.
    Shapes are trusted."""
    cdef bint two_states = kind == LSTM or kind == LN_LSTM
    cdef Py_ssize_t T = x.shape[0], B = x.shape[1]
    cdef int I = <int> x.shape[2], H = <int> h0.shape[1]
    cdef int gates = 4 if two_states else 3 if kind == GRU else 1
    cdef int G = gates * H
    cdef int ldp = 4 * H if kind == GRU else G   # GRU's gate pass writes a 4th block
    cdef int Ip = rc_q_kpad(I), Hp = rc_q_kpad(H)
    cdef long Us = rc_q_scratch_len(1, I if I > H else H)
    cdef int k, nt = kernel_threads(num_threads, B, 2.0 * T * B * G * (I + H))
    # each thread's scratch holds one chunk of its rows (R: at most its share of B)
    cdef Py_ssize_t R = min((B + nt - 1) // nt, max(8, CHUNK_BYTES // (ldp * 4)))
    cdef Py_ssize_t L = G + H + 5   # LN-LSTM's per-thread row scratch
    cdef float* out_p = &out[0, 0, 0]
    cdef float* h_n_p = &h_n[0, 0]
    cdef float* c_n_p = &c_n[0, 0]
    cdef const float* h0_p = &h0[0, 0]
    cdef const float* x_p = &x[0, 0, 0]
    cdef const int64_t* len_p = &lengths[0]
    cdef const float* m_p = data_of(rec_mask, x_p)
    cdef const float* kh_p = data_of(zone_h, x_p)
    cdef const float* kc_p = data_of(zone_c, x_p) if two_states else NULL
    cdef const float* ln_p = data_of(ln, x_p) if kind == LN_LSTM else NULL
    cdef Py_ssize_t kstep = zoneout_step(zone_h, B, H)
    cdef bint separate_ah = kind == GRU or kind == LN_LSTM
    cdef float* pre = <float*> rc_malloc64(nt * R * ldp * sizeof(float))
    cdef int16_t* xq = <int16_t*> rc_malloc64(nt * R * Ip * sizeof(int16_t))
    cdef float* sx = <float*> rc_malloc64(nt * R * sizeof(float))
    cdef int16_t* hq = <int16_t*> rc_malloc64(nt * R * Hp * sizeof(int16_t))
    cdef float* sh = <float*> rc_malloc64(nt * R * sizeof(float))
    cdef float* ah = (<float*> rc_malloc64(nt * R * G * sizeof(float)) if separate_ah
                      else NULL)
    cdef float* c_run = <float*> rc_malloc64(B * H * sizeof(float)) if two_states else NULL
    cdef uint8_t* us = <uint8_t*> rc_malloc64(nt * R * Us)
    cdef float* hm = (<float*> rc_malloc64(nt * R * H * sizeof(float)) if m_p != NULL
                      else NULL)
    cdef bint keeps_c = kind == LN_LSTM or kc_p != NULL
    cdef float* c_old = <float*> rc_malloc64(nt * H * sizeof(float)) if keeps_c else NULL
    cdef float* rs_x = (<float*> rc_malloc64(nt * R * 4 * sizeof(float)) if kind == LN_LSTM
                        else NULL)
    cdef float* lnw = (<float*> rc_malloc64(nt * L * sizeof(float)) if kind == LN_LSTM
                       else NULL)
    if (pre == NULL or xq == NULL or sx == NULL or hq == NULL or sh == NULL or us == NULL
            or (separate_ah and ah == NULL) or (two_states and c_run == NULL)
            or (m_p != NULL and hm == NULL) or (keeps_c and c_old == NULL)
            or (kind == LN_LSTM and (rs_x == NULL or lnw == NULL))):
        free(pre); free(xq); free(sx); free(hq); free(sh); free(ah); free(c_run); free(us)
        free(hm); free(c_old); free(rs_x); free(lnw)
        raise MemoryError()
    if two_states:
        memcpy(c_run, &c0[0, 0], B * H * sizeof(float))
    with nogil:
        copy_empty_rows(h_n_p, h0_p, len_p, B, H)
        if two_states:
            copy_empty_rows(c_n_p, &c0[0, 0], len_p, B, H)
        for k in prange(nt, num_threads=nt, schedule="static", chunksize=1):
            _rows_loop(kind, out_p, x_p, I, xq + k * R * Ip, sx + k * R, &p_ih[0], &s_ih[0],
                       &bias[0], pre + k * R * ldp, ldp,
                       ah + k * R * G if separate_ah else NULL, c_run, h_n_p, c_n_p,
                       us + k * R * Us, h0_p, hq + k * R * Hp, sh + k * R, &p_hh[0],
                       &s_hh[0], &b_hn[0], len_p, T, B, H, split(B, nt, k),
                       split(B, nt, k + 1), R, m_p,
                       hm + k * R * H if m_p != NULL else NULL, kh_p, kc_p, kstep,
                       c_old + k * H if keeps_c else NULL, ln_p, <float> eps,
                       rs_x + k * R * 4 if kind == LN_LSTM else NULL,
                       lnw + k * L if kind == LN_LSTM else NULL)
    free(pre); free(xq); free(sx); free(hq); free(sh); free(ah); free(c_run); free(us)
    free(hm); free(c_old); free(rs_x); free(lnw)
