"""Elman RNN kernels (tanh or relu): the whole sequence forward and backward, one call each.

Legend: T time steps, B batch rows, I input size, H hidden size (G = H: one gate block).

Forward, for step t of a valid row (t < lengths[b]):
    h_t = act(x_t W_ih^T + (b_ih + b_hh) + h_{t-1} W_hh^T)
The input projection for all T steps goes straight into `out` before the loop; each step
adds the recurrent product (recmat.h, W_hh packed once per call) and applies act in place.
Rows past their length keep h and output zeros; a row of length 0 runs no step (final
state = initial state, zero gradients, d h0 = d h_n).
The only cache is `out` itself: act'(a) is a function of h (1 - h^2 for tanh, h > 0 for
relu). Backward needs one work buffer dA (T, B, H).

Threads: as in lstm.pyx (kernel_threads; bitwise identical results for any thread count).
"""
from cython cimport floating
from cython.parallel cimport prange
from libc.stdint cimport int64_t
from libc.stdlib cimport free
from libc.string cimport memcpy, memset

from ._activations cimport relu, tanh_
from ._gates cimport rc_tanh_inplace_f32
from ._recmat cimport recmat
from ._rows cimport (copy_empty_rows, input_and_weight_grads, kernel_threads, packed_copy,
                     project_inputs, split, state_before, whole_input_part)


cdef void _forward_rows(floating* out, floating* h_n, const floating* h0,
                        const floating* w_hh_t, const int64_t* lengths, bint use_relu,
                        Py_ssize_t T, Py_ssize_t B, int H,
                        Py_ssize_t b0, Py_ssize_t b1) noexcept nogil:
    """The time loop for batch rows b0:b1; out[t] holds the projected inputs on entry;
    w_hh_t is W_hh^T packed for recmat."""
    cdef int nb = <int> (b1 - b0)
    cdef Py_ssize_t t, b, j
    cdef const floating* h_prev
    cdef floating* h
    if nb <= 0:
        return
    for t in range(T):
        h_prev = state_before(out, h0, t, B, H, b0)
        # a[t, b0:b1] (nb, H) += h_{t-1} (nb, H) @ W_hh^T (H, H)
        recmat(nb, H, H, h_prev, H, w_hh_t, out + (t * B + b0) * H, H, True)
        for b in range(b0, b1):
            h = out + (t * B + b) * H
            if t >= lengths[b]:
                memset(h, 0, H * sizeof(floating))
                continue
            if use_relu:
                for j in range(H):
                    h[j] = relu(h[j])
            elif floating is float:
                rc_tanh_inplace_f32(h, H)  # vectorised (gates.h)
            else:
                for j in range(H):
                    h[j] = tanh_(h[j])
            if t == lengths[b] - 1:
                memcpy(h_n + b * H, h, H * sizeof(floating))


cdef void _backward_rows(floating* dh, floating* da, const floating* d_out,
                         const floating* out, const floating* w_hh_p, const int64_t* lengths,
                         bint use_relu, Py_ssize_t T, Py_ssize_t B, int H,
                         Py_ssize_t b0, Py_ssize_t b1) noexcept nogil:
    """Reverse time loop for batch rows b0:b1; dh (B, H) carries d h_t between steps;
    w_hh_p is W_hh packed for recmat."""
    cdef int nb = <int> (b1 - b0)
    cdef Py_ssize_t t, b, j, row
    cdef floating* d
    cdef const floating* h
    cdef const floating* g
    cdef floating* dhb
    if nb <= 0:
        return
    for t in range(T - 1, -1, -1):
        for b in range(b0, b1):
            row = t * B + b
            d = da + row * H
            if t >= lengths[b]:
                memset(d, 0, H * sizeof(floating))  # padded step: dh passes through
                continue
            h = out + row * H
            g = d_out + row * H
            dhb = dh + b * H
            # h_t = act(a_t)
            if use_relu:
                for j in range(H):
                    d[j] = (g[j] + dhb[j]) if h[j] > 0 else 0
                    dhb[j] = 0
            else:
                for j in range(H):
                    d[j] = (g[j] + dhb[j]) * (1 - h[j] * h[j])
                    dhb[j] = 0
        # dh[b0:b1] (nb, H) += dA_t (nb, H) @ W_hh (H, H)
        recmat(nb, H, H, da + (t * B + b0) * H, H, w_hh_p, dh + b0 * H, H, True)


def forward(floating[:, :, ::1] out, floating[:, ::1] h_n,
            const floating[:, :, ::1] x, const floating[:, ::1] h0,
            const floating[:, ::1] w_ih, const floating[:, ::1] w_hh,
            const floating[::1] bias, const int64_t[::1] lengths not None, bint use_relu,
            int num_threads):
    """out (T, B, H) and h_n (B, H) are written; bias (H,) = b_ih + b_hh; lengths in 0..T."""
    cdef Py_ssize_t T = x.shape[0], B = x.shape[1]
    cdef int I = <int> x.shape[2], H = <int> h0.shape[1]
    cdef int nt = kernel_threads(num_threads, B, 2.0 * T * B * H * H)
    cdef int k, status
    cdef floating* out_p = &out[0, 0, 0]
    cdef floating* h_n_p = &h_n[0, 0]
    cdef const floating* h0_p = &h0[0, 0]
    cdef const int64_t* len_p = &lengths[0]
    cdef floating* w_hh_t = packed_copy(&w_hh[0, 0], H, H, 1, H)  # W_hh^T (H, H)
    if w_hh_t == NULL:
        raise MemoryError()
    with nogil:
        copy_empty_rows(h_n_p, h0_p, len_p, B, H)
        # a (T*B, H) = X @ W_ih^T + bias, straight into out
        status = project_inputs(out_p, H, &x[0, 0, 0], &w_ih[0, 0], &bias[0], T * B, I, H,
                                num_threads)
        if status == 0:
            for k in prange(nt, num_threads=nt, schedule="static", chunksize=1):
                _forward_rows(out_p, h_n_p, h0_p, w_hh_t, len_p, use_relu, T, B, H,
                              split(B, nt, k), split(B, nt, k + 1))
    free(w_hh_t)
    if status != 0:
        raise MemoryError()


def backward(floating[:, :, ::1] dx, floating[:, ::1] dh,
             floating[:, ::1] dw_ih, floating[:, ::1] dw_hh, floating[::1] db,
             floating[:, :, ::1] da,
             const floating[:, :, ::1] d_out, const floating[:, :, ::1] x,
             const floating[:, ::1] h0, const floating[:, :, ::1] out,
             const floating[:, ::1] w_ih, const floating[:, ::1] w_hh,
             const int64_t[::1] lengths not None, bint use_relu, int num_threads):
    """dx (T, B, I) is written; da (T, B, H) is work space. dh (B, H) holds d h_n on entry
    and d h0 on return (unchanged for a row of length 0). dw_ih, dw_hh and db (H,: the
    gradient of b_ih and b_hh alike) are ADDED to."""
    cdef Py_ssize_t T = x.shape[0], B = x.shape[1]
    cdef int I = <int> x.shape[2], H = <int> h0.shape[1]
    cdef int nt = kernel_threads(num_threads, B, 2.0 * T * B * H * H)
    cdef int k, status
    cdef floating* dh_p = &dh[0, 0]
    cdef floating* da_p = &da[0, 0, 0]
    cdef const floating* d_out_p = &d_out[0, 0, 0]
    cdef const floating* out_p = &out[0, 0, 0]
    cdef const int64_t* len_p = &lengths[0]
    cdef floating* w_hh_packed = packed_copy(&w_hh[0, 0], H, H, H, 1)  # W_hh (H, H) as is
    if w_hh_packed == NULL:
        raise MemoryError()
    with nogil:
        for k in prange(nt, num_threads=nt, schedule="static", chunksize=1):
            _backward_rows(dh_p, da_p, d_out_p, out_p, w_hh_packed, len_p, use_relu, T, B, H,
                           split(B, nt, k), split(B, nt, k + 1))
        status = input_and_weight_grads(&dx[0, 0, 0], &dw_ih[0, 0], &db[0], &dw_hh[0, 0], NULL,
                                        da_p, H, H, whole_input_part(H), &x[0, 0, 0],
                                        &h0[0, 0], out_p, &w_ih[0, 0], T, B, I, H,
                                        num_threads)
    free(w_hh_packed)
    if status != 0:
        raise MemoryError()
