"""The peephole LSTM's whole-sequence forward and backward, built on recurrent's kernel
toolkit only (recurrent_toolkit.pxd): the same structure as the built-in LSTM's kernel.

Legend: T time, B batch rows, I input, H hidden, G = 4H gate rows in the order i, f, g, o.

Forward: the input part a = x_t W_ih^T + b_ih + b_hh of all T steps is one hoisted product
into the gate cache (project_inputs); then each step adds h_{t-1} W_hh^T for a thread's
slice of rows (matmul_packed over W_hh^T packed once) and runs the gate pass of each row
inside its length (peephole_gates.h), which leaves the activated gates in the cache.
Backward walks the steps in reverse: the gate pass turns the cache into dA, the gradient
of the pre-activations, and dh += dA W_hh (matmul_packed over W_hh packed once); after the
loop the peephole gradients are summed (one thread: a few flops per unit), and dx and the weight
gradients come from dA in one call (input_and_weight_grads).

Threads own contiguous slices of batch rows for the whole time loop (split,
kernel_threads); every element is computed the same way whatever the slice, so any
thread count gives bitwise the same results. A row past its length outputs zeros and keeps
its state; a row of length 0 runs no step.
"""
from cython cimport floating
from cython.parallel cimport prange
from libc.stdint cimport int64_t
from libc.stdlib cimport free
from libc.string cimport memcpy, memset

from recurrent_toolkit cimport (copy_empty_rows, input_and_weight_grads, kernel_threads,
                                matmul_packed, pack_weights, pack_weights_t,
                                project_inputs, split, state_before, whole_input_part)


cdef extern from "peephole_gates.h" nogil:
    void peephole_forward_f32(float* a, const float* c_prev, float* c, float* h,
                              const float* p_i, const float* p_f, const float* p_o, int H)
    void peephole_forward_f64(double* a, const double* c_prev, double* c, double* h,
                              const double* p_i, const double* p_f, const double* p_o,
                              int H)
    void peephole_backward_f32(float* a, const float* c_prev, const float* c,
                               const float* d_out, float* dh, float* dc, const float* p_i,
                               const float* p_f, const float* p_o, int H)
    void peephole_backward_f64(double* a, const double* c_prev, const double* c,
                               const double* d_out, double* dh, double* dc,
                               const double* p_i, const double* p_f, const double* p_o,
                               int H)
    void peephole_param_grads_f32(const float* da, const float* c_prev, const float* c,
                                  float* dp_i, float* dp_f, float* dp_o, int H)
    void peephole_param_grads_f64(const double* da, const double* c_prev, const double* c,
                                  double* dp_i, double* dp_f, double* dp_o, int H)


cdef inline void _gates_forward(floating* a, const floating* c_prev, floating* c,
                                floating* h, const floating* peep, int H) noexcept nogil:
    """peep (3, H): p_i, p_f, p_o."""
    if floating is float:
        peephole_forward_f32(a, c_prev, c, h, peep, peep + H, peep + 2 * H, H)
    else:
        peephole_forward_f64(a, c_prev, c, h, peep, peep + H, peep + 2 * H, H)


cdef inline void _gates_backward(floating* a, const floating* c_prev, const floating* c,
                                 const floating* d_out, floating* dh, floating* dc,
                                 const floating* peep, int H) noexcept nogil:
    if floating is float:
        peephole_backward_f32(a, c_prev, c, d_out, dh, dc, peep, peep + H, peep + 2 * H, H)
    else:
        peephole_backward_f64(a, c_prev, c, d_out, dh, dc, peep, peep + H, peep + 2 * H, H)


cdef void _forward_rows(floating* out, floating* gates, floating* cells, floating* h_n,
                        floating* c_n, const floating* h0, const floating* c0,
                        const floating* w_hh_t, const floating* peep,
                        const int64_t* lengths, Py_ssize_t T, Py_ssize_t B, int H,
                        Py_ssize_t b0, Py_ssize_t b1) noexcept nogil:
    """The time loop for rows b0:b1; gates (T, B, G) holds the input part on entry and
    the activated gates on return, cells (T, B, H) every c_t."""
    cdef int G = 4 * H
    cdef int nb = <int> (b1 - b0)
    cdef Py_ssize_t t, b, row
    if nb <= 0:
        return
    for t in range(T):
        # a (nb, G) += h_{t-1} W_hh^T for the slice's rows
        matmul_packed(nb, G, H, state_before(out, h0, t, B, H, b0), H, w_hh_t,
                      gates + (t * B + b0) * G, G, True)
        for b in range(b0, b1):
            row = t * B + b
            if t >= lengths[b]:
                memset(out + row * H, 0, H * sizeof(floating))
                continue
            _gates_forward(gates + row * G, state_before(cells, c0, t, B, H, b),
                           cells + row * H, out + row * H, peep, H)
            if t == lengths[b] - 1:
                memcpy(h_n + b * H, out + row * H, H * sizeof(floating))
                memcpy(c_n + b * H, cells + row * H, H * sizeof(floating))


cdef void _backward_rows(floating* dh, floating* dc, floating* gates, const floating* d_out,
                         const floating* cells, const floating* c0, const floating* w_hh_p,
                         const floating* peep, const int64_t* lengths, Py_ssize_t T,
                         Py_ssize_t B, int H, Py_ssize_t b0, Py_ssize_t b1) noexcept nogil:
    """The reverse time loop for rows b0:b1; dh, dc (B, H) carry the state gradients."""
    cdef int G = 4 * H
    cdef int nb = <int> (b1 - b0)
    cdef Py_ssize_t t, b, row
    if nb <= 0:
        return
    for t in range(T - 1, -1, -1):
        for b in range(b0, b1):
            row = t * B + b
            if t >= lengths[b]:  # no gradient through a padded step; dh, dc pass through
                memset(gates + row * G, 0, G * sizeof(floating))
                continue
            _gates_backward(gates + row * G, state_before(cells, c0, t, B, H, b),
                            cells + row * H, d_out + row * H, dh + b * H, dc + b * H, peep, H)
        # dh (nb, H) += dA_t (nb, G) @ W_hh (G, H)
        matmul_packed(nb, H, G, gates + (t * B + b0) * G, G, w_hh_p, dh + b0 * H, H, True)


cdef void _peephole_grads(floating* dpeep, const floating* da, const floating* cells,
                          const floating* c0, const int64_t* lengths, Py_ssize_t T,
                          Py_ssize_t B, int H) noexcept nogil:
    """dpeep (3, H) += the peephole gradients, summed over the valid (t, b) in order."""
    cdef int G = 4 * H
    cdef Py_ssize_t t, b, row
    for t in range(T):
        for b in range(B):
            if t < lengths[b]:
                row = t * B + b
                if floating is float:
                    peephole_param_grads_f32(da + row * G,
                                             state_before(cells, c0, t, B, H, b),
                                             cells + row * H, dpeep, dpeep + H,
                                             dpeep + 2 * H, H)
                else:
                    peephole_param_grads_f64(da + row * G,
                                             state_before(cells, c0, t, B, H, b),
                                             cells + row * H, dpeep, dpeep + H,
                                             dpeep + 2 * H, H)


def forward(floating[:, :, ::1] out, floating[:, :, ::1] gates, floating[:, :, ::1] cells,
            floating[:, ::1] h_n, floating[:, ::1] c_n,
            const floating[:, :, ::1] x, const floating[:, ::1] h0, const floating[:, ::1] c0,
            const floating[:, ::1] w_ih, const floating[:, ::1] w_hh,
            const floating[::1] bias, const floating[:, ::1] peep,
            const int64_t[::1] lengths not None, int num_threads):
    """out, cells (T, B, H), gates (T, B, G), h_n, c_n (B, H) are written; bias (G,) =
    b_ih + b_hh; peep (3, H) = p_i, p_f, p_o; lengths (B,) in 0..T. Shapes are trusted."""
    cdef Py_ssize_t T = x.shape[0], B = x.shape[1]
    cdef int I = <int> x.shape[2], H = <int> h0.shape[1]
    cdef int G = 4 * H
    cdef int k, status = 0
    cdef int nt = kernel_threads(num_threads, B, 2.0 * T * B * G * H)
    cdef floating* out_p = &out[0, 0, 0]
    cdef floating* gates_p = &gates[0, 0, 0]
    cdef floating* cells_p = &cells[0, 0, 0]
    cdef floating* h_n_p = &h_n[0, 0]
    cdef floating* c_n_p = &c_n[0, 0]
    cdef const floating* h0_p = &h0[0, 0]
    cdef const floating* c0_p = &c0[0, 0]
    cdef const floating* peep_p = &peep[0, 0]
    cdef const int64_t* len_p = &lengths[0]
    cdef floating* w_hh_t = pack_weights_t(&w_hh[0, 0], G, H)
    if w_hh_t == NULL:
        raise MemoryError()
    with nogil:
        copy_empty_rows(h_n_p, h0_p, len_p, B, H)
        copy_empty_rows(c_n_p, c0_p, len_p, B, H)
        # a (T*B, G) = X @ W_ih^T + bias, into the gate cache
        status = project_inputs(gates_p, G, &x[0, 0, 0], &w_ih[0, 0], &bias[0], T * B, I, G,
                                num_threads)
        if status == 0:
            for k in prange(nt, num_threads=nt, schedule="static", chunksize=1):
                _forward_rows(out_p, gates_p, cells_p, h_n_p, c_n_p, h0_p, c0_p, w_hh_t,
                              peep_p, len_p, T, B, H, split(B, nt, k), split(B, nt, k + 1))
    free(w_hh_t)
    if status != 0:
        raise MemoryError()


def backward(floating[:, :, ::1] dx, floating[:, ::1] dh, floating[:, ::1] dc,
             floating[:, ::1] dw_ih, floating[:, ::1] dw_hh, floating[::1] db,
             floating[:, ::1] dpeep, floating[:, :, ::1] gates,
             const floating[:, :, ::1] d_out, const floating[:, :, ::1] x,
             const floating[:, ::1] h0, const floating[:, ::1] c0,
             const floating[:, :, ::1] out, const floating[:, :, ::1] cells,
             const floating[:, ::1] w_ih, const floating[:, ::1] w_hh,
             const floating[:, ::1] peep, const int64_t[::1] lengths not None,
             int num_threads):
    """dx (T, B, I) is written. dh, dc (B, H) hold d h_n, d c_n on entry and d h0, d c0 on
    return. dw_ih, dw_hh, db (G,) and dpeep (3, H) are ADDED to. gates, the forward cache,
    is overwritten with dA."""
    cdef Py_ssize_t T = x.shape[0], B = x.shape[1]
    cdef int I = <int> x.shape[2], H = <int> h0.shape[1]
    cdef int G = 4 * H
    cdef int nt = kernel_threads(num_threads, B, 2.0 * T * B * G * H)
    cdef int k, status
    cdef floating* da_p = &gates[0, 0, 0]
    cdef floating* dpeep_p = &dpeep[0, 0]
    cdef const floating* cells_p = &cells[0, 0, 0]
    cdef const floating* c0_p = &c0[0, 0]
    cdef const int64_t* len_p = &lengths[0]
    cdef floating* w_hh_p = pack_weights(&w_hh[0, 0], G, H)
    if w_hh_p == NULL:
        raise MemoryError()
    with nogil:
        for k in prange(nt, num_threads=nt, schedule="static", chunksize=1):
            _backward_rows(&dh[0, 0], &dc[0, 0], da_p, &d_out[0, 0, 0], cells_p, c0_p, w_hh_p,
                           &peep[0, 0], len_p, T, B, H, split(B, nt, k), split(B, nt, k + 1))
        # a few flops per unit and row: one thread, rows summed in (t, b) order
        _peephole_grads(dpeep_p, da_p, cells_p, c0_p, len_p, T, B, H)
        status = input_and_weight_grads(&dx[0, 0, 0], &dw_ih[0, 0], &db[0], &dw_hh[0, 0],
                                        NULL, da_p, G, G, whole_input_part(G), &x[0, 0, 0],
                                        &h0[0, 0], &out[0, 0, 0], &w_ih[0, 0], T, B, I, H,
                                        num_threads)
    free(w_hh_p)
    if status != 0:
        raise MemoryError()
