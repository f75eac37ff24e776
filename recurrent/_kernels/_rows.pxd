# The scaffolding every cell kernel shares: how work is split between threads, packed
# weight copies, the hoisted input projection before the time loop, and dx plus the weight
# gradients after the backward loop. A kernel (lstm.pyx, gru.pyx, rnn.pyx) keeps only its
# own time loop and gate arithmetic.
# Legend: T time, B batch, I input, H hidden, G gate rows; "TB" = T * B stacked rows.
from cython cimport floating
from cython.parallel cimport prange
from libc.stdint cimport int64_t
from libc.stdlib cimport free
from libc.string cimport memcpy, memset

from ._blas cimport gemm
from ._recmat cimport pack, packed_len, rc_malloc64, recmat
from .tuning cimport MIN_PARALLEL_FLOPS, ROW_PARTS, tuning


# The hoisted GEMMs (input projection, dx, weight gradients) are cut into blocks whose
# size depends on the problem only, never on the thread count: OpenBLAS may round an
# element differently depending on the GEMM's shape, so a thread-dependent split would
# make 1 and 2 threads disagree in the last bit. Threads then share the blocks. The
# block sizes follow the run-time settings (tuning.pxd: row_parts, max_gate_block).
cdef enum:
    GATE_PARTS = 8    # about 8 blocks of G gate rows (weight gradients) ...
    MIN_GATE_BLOCK = 128  # ... of at least this many rows ...
    ALIGN = 16


cdef inline Py_ssize_t infer_chunk(Py_ssize_t T, Py_ssize_t B, int row_len,
                                   size_t itemsize) noexcept nogil:
    """Steps per inference chunk for rows of row_len values (at least 1, at most T):
    inference (no backward follows) projects the inputs a few steps at a time into a
    reused scratch of about tuning().infer_chunk_bytes, not all T steps into a (T, B, .)
    cache."""
    return max(1, min(T, <Py_ssize_t> (tuning().infer_chunk_bytes
                                       // (B * row_len * <Py_ssize_t> itemsize))))


cdef inline Py_ssize_t split(Py_ssize_t n, int parts, int k) noexcept nogil:
    """Start of part k when n items are cut into `parts` contiguous, near-equal parts."""
    return (n * k) // parts


cdef inline const floating* state_before(const floating* seq, const floating* first,
                                         Py_ssize_t t, Py_ssize_t B, int H,
                                         Py_ssize_t b) noexcept nogil:
    """Row b of the state before step t: first (B, H) at t = 0, else seq[t - 1], seq being
    a (T, B, H) sequence of states (the outputs h_t, LSTM's cells c_t)."""
    if t == 0:
        return first + b * H
    return seq + ((t - 1) * B + b) * H


cdef inline void copy_empty_rows(floating* final, const floating* first,
                                 const int64_t* lengths, Py_ssize_t B, int H) noexcept nogil:
    """final[b] = first[b] (H values) for every row b of length 0: such a row runs no step,
    so its final state is its initial state (the time loops write the others' at their
    last step)."""
    cdef Py_ssize_t b
    for b in range(B):
        if lengths[b] == 0:
            memcpy(final + b * H, first + b * H, H * sizeof(floating))


cdef inline void finish_step_hc(floating* out, floating* h_n, floating* c_n, const floating* c,
                                const int64_t* lengths, Py_ssize_t t, Py_ssize_t B, int H,
                                Py_ssize_t b0, Py_ssize_t b1) noexcept nogil:
    """After step t of rows b0:b1 of a cell with states (h, c) (LSTM, LN-LSTM; c: their
    c_t, (b1 - b0, H)): a row past its length outputs zero (its state is no longer read);
    a row at its last step hands on h_n, c_n."""
    cdef Py_ssize_t b, row
    for b in range(b0, b1):
        row = t * B + b
        if t >= lengths[b]:
            memset(out + row * H, 0, H * sizeof(floating))
        elif t == lengths[b] - 1:
            memcpy(h_n + b * H, out + row * H, H * sizeof(floating))
            memcpy(c_n + b * H, c + (b - b0) * H, H * sizeof(floating))


cdef inline Py_ssize_t _block(Py_ssize_t n, int parts) noexcept nogil:
    cdef Py_ssize_t b = (n + parts - 1) // parts
    b = ((b + ALIGN - 1) // ALIGN) * ALIGN
    return b if b > 0 else 1


cdef inline Py_ssize_t row_block(Py_ssize_t rows) noexcept nogil:
    """Rows per block of the T*B-row GEMMs (a function of the size only)."""
    return _block(rows, <int> tuning().row_parts)


cdef inline Py_ssize_t sum_block(Py_ssize_t rows) noexcept nogil:
    """Rows per block of a sum over T*B rows whose block sums are then added in block
    order: a function of the size only and, unlike row_block, not of the tuned row_parts
    (the blocks set where the sum rounds, so a tuning cache would change the results)."""
    return _block(rows, ROW_PARTS)


cdef inline Py_ssize_t gate_block(Py_ssize_t gates) noexcept nogil:
    """Gate rows per block of the weight-gradient GEMMs (a function of the size only).
    Every block makes BLAS re-pack all of X and h (T*B rows), which for small G costs as
    much as the multiply, so blocks are as large as leaves two of them (one per thread on
    two cores), up to tuning().max_gate_block rows (benchmarks/README.md)."""
    return max(_block(gates, GATE_PARTS), min(gates, MIN_GATE_BLOCK),
               min(_block(gates, 2), tuning().max_gate_block))


cdef inline Py_ssize_t num_blocks(Py_ssize_t n, Py_ssize_t block) noexcept nogil:
    return (n + block - 1) // block


# THE thread rule of every parallel region in the kernels. The caller's count (resolved
# once where the call entered the library, recurrent.threads.resolve_threads) is an upper
# bound; a region uses fewer threads when it has fewer independent units of work (batch
# rows in a time loop, blocks in a hoisted product) or when its total work is below
# tuning().min_parallel_flops (default MIN_PARALLEL_FLOPS, tuning.pxd), about where waking
# a second thread costs as much as it saves (and a woken thread on a busy machine may wait
# a whole scheduler slice). Results never depend on the count: every element is computed
# the same way on any thread (see recmat.h and the size-only blocks above).
cdef inline int kernel_threads(int requested, Py_ssize_t units, double flops) noexcept nogil:
    """Threads for a parallel region of `units` independent pieces and `flops` of work."""
    if flops < tuning().min_parallel_flops or requested <= 1 or units <= 1:
        return 1
    return <int> min(<Py_ssize_t> requested, units)


cdef inline void project_rows(floating* dst, int ldd, const floating* x, int I,
                              const floating* w_ih_t, int G, const floating* bias,
                              Py_ssize_t r0, Py_ssize_t r1) noexcept nogil:
    """dst[r0:r1, :G] = x[r0:r1] (n, I) @ W_ih^T (I, G) + bias (G,).  dst row stride ldd;
    w_ih_t is W_ih^T packed for recmat (a block of a few hundred rows keeps x in L2)."""
    recmat(<int> (r1 - r0), G, I, x + r0 * I, I, w_ih_t, dst + r0 * ldd, ldd, False)
    add_bias_rows(dst, ldd, bias, G, r0, r1)


cdef inline void add_bias_rows(floating* dst, int ldd, const floating* bias, int G,
                               Py_ssize_t r0, Py_ssize_t r1) noexcept nogil:
    """dst[r0:r1, :G] += bias (G,), row stride ldd: the bias after an input projection."""
    cdef Py_ssize_t r, j
    for r in range(r0, r1):
        for j in range(G):
            dst[r * ldd + j] += bias[j]


cdef inline void add_colsum(floating* db, const floating* d, int ldd, Py_ssize_t rows,
                            int ncols) noexcept nogil:
    """db (ncols,) += sum over rows of d[:, :ncols] (row stride ldd)."""
    cdef Py_ssize_t r, j
    for r in range(rows):
        for j in range(ncols):
            db[j] += d[r * ldd + j]


cdef inline void add_input_grads(floating* dw_ih, floating* db, const floating* d, int ldd,
                                 int ng, const floating* x, int I,
                                 Py_ssize_t TB) noexcept nogil:
    """ng rows of the input-side gradients, d pointing at their first column of dA (TB, .):
    dW_ih[rows] (ng, I) += dA[:, rows]^T (ng, TB) @ X (TB, I);  db[rows] (if not NULL) +=
    column sums."""
    gemm(True, False, ng, I, <int> TB, 1, d, ldd, x, I, 1, dw_ih, I)
    if db != NULL:
        add_colsum(db, d, ldd, TB, ng)


cdef inline void add_hidden_grads(floating* dw_hh, floating* db, const floating* d, int ldd,
                                  int ng, const floating* h0, const floating* out, int H,
                                  Py_ssize_t T, Py_ssize_t B) noexcept nogil:
    """ng rows of the recurrent-side gradients: dW_hh[rows] (ng, H) += sum_t dA_t^T h_{t-1},
    where h_{-1} = h0 (B, H) and h_{t-1} = out[t-1]. Rows past their length have dA = 0, so
    whatever out holds there does not matter. db (if not NULL) += column sums."""
    gemm(True, False, ng, H, <int> B, 1, d, ldd, h0, H, 1, dw_hh, H)
    gemm(True, False, ng, H, <int> ((T - 1) * B), 1, d + B * ldd, ldd, out, H, 1, dw_hh, H)
    if db != NULL:
        add_colsum(db, d, ldd, T * B, ng)


cdef inline floating* packed_copy(const floating* w, int K, int N, long sk,
                                  long sn) noexcept nogil:
    """A copy of Bmat (K, N), Bmat[k, n] = w[k * sk + n * sn], packed for recmat in 64-byte
    aligned memory; NULL when out of memory. The caller frees it."""
    cdef floating* P = <floating*> rc_malloc64(packed_len(K, N, w) * sizeof(floating))
    if P != NULL:
        pack(w, K, N, sk, sn, P)
    return P


cdef inline void project_packed(floating* dst, int ldd, const floating* x,
                                const floating* w_ih_t, const floating* bias,
                                Py_ssize_t TB, int I, int G, int num_threads) noexcept nogil:
    """dst[:, :G] (TB, G; row stride ldd) = X (TB, I) @ W_ih^T (I, G) + bias (G,), in row
    blocks shared by up to num_threads threads; w_ih_t is W_ih^T packed for recmat."""
    cdef Py_ssize_t rb = row_block(TB), nrb = num_blocks(TB, rb)
    cdef Py_ssize_t k
    for k in prange(nrb, num_threads=kernel_threads(num_threads, nrb, 2.0 * TB * I * G),
                    schedule="dynamic", chunksize=1):
        project_rows(dst, ldd, x, I, w_ih_t, G, bias, k * rb, min((k + 1) * rb, TB))


cdef inline int project_inputs(floating* dst, int ldd, const floating* x,
                               const floating* w_ih, const floating* bias,
                               Py_ssize_t TB, int I, int G, int num_threads) noexcept nogil:
    """project_packed for all T steps at once, packing W_ih (G, I) here. Returns -1 when
    out of memory (nothing written), else 0."""
    cdef floating* w_ih_t = packed_copy(w_ih, I, G, 1, I)  # W_ih^T: (k, n) = W_ih[n, k]
    if w_ih_t == NULL:
        return -1
    project_packed(dst, ldd, x, w_ih_t, bias, TB, I, G, num_threads)
    free(w_ih_t)
    return 0


# The gradient of the input projection, dA_in (TB, G), is made of column blocks of dA
# (TB, ldd), the gradient of the pre-activations: W_ih rows first[p] .. first[p + 1] - 1
# take theirs from dA's columns starting at column[p]. One part (column 0) when dA_in is
# dA's first G columns (RNN, LSTM: whole_input_part); GRU's dA holds another block between
# its input gates' (gru.pyx).
cdef enum:
    MAX_INPUT_PARTS = 2


cdef struct InputParts:
    int count
    int first[MAX_INPUT_PARTS + 1]
    int column[MAX_INPUT_PARTS]


cdef inline InputParts whole_input_part(int G) noexcept nogil:
    """dA_in is dA's columns 0..G-1."""
    cdef InputParts parts
    parts.count = 1
    parts.first[:] = [0, G, G]     # every field set: the struct is copied whole
    parts.column[:] = [0, 0]
    return parts


cdef inline int input_and_weight_grads(floating* dx, floating* dw_ih, floating* db_ih,
                                       floating* dw_hh, floating* db_hh,
                                       const floating* da, int ldd, int G, InputParts parts,
                                       const floating* x, const floating* h0,
                                       const floating* out, const floating* w_ih,
                                       Py_ssize_t T, Py_ssize_t B, int I, int H,
                                       int num_threads) noexcept nogil:
    """Everything backward computes after its time loop from dA (TB, ldd), the gradient
    of the pre-activations, in blocks shared by up to num_threads threads:
        dx (TB, I)       = dA_in @ W_ih (G, I)                        (written)
        dW_ih (G, I)    += dA_in^T @ X;    db_ih (G,) += column sums of dA_in
        dW_hh (G, H)    += sum_t dA_t[:, :G]^T @ h_{t-1};  db_hh (if not NULL) likewise
    dA_in as described by `parts` (InputParts); dx is summed part by part, in order.
    Returns -1 when out of memory, else 0."""
    return split_input_and_weight_grads(dx, dw_ih, db_ih, dw_hh, db_hh, da, da, ldd, G,
                                        parts, x, h0, out, w_ih, T, B, I, H, num_threads)


cdef inline int split_input_and_weight_grads(floating* dx, floating* dw_ih, floating* db_ih,
                                             floating* dw_hh, floating* db_hh,
                                             const floating* da, const floating* da_hh,
                                             int ldd, int G, InputParts parts,
                                             const floating* x, const floating* h0,
                                             const floating* out, const floating* w_ih,
                                             Py_ssize_t T, Py_ssize_t B, int I, int H,
                                             int num_threads) noexcept nogil:
    """input_and_weight_grads with the two sides' gradients in separate arrays of the same
    row stride ldd: the input side (dx, dW_ih, db_ih) from da, the recurrent side (dW_hh,
    db_hh) from da_hh (the layer-normalised LSTM, whose sides are normalised apart).
    db_ih and db_hh may be NULL (no bias gradient wanted)."""
    cdef Py_ssize_t TB = T * B
    cdef Py_ssize_t rb = row_block(TB), nrb = num_blocks(TB, rb)
    cdef Py_ssize_t gb = gate_block(G), ngb = num_blocks(G, gb)
    cdef Py_ssize_t k, r0, r1, g0, g1, a0, a1
    cdef int p, failed = 0
    # W_ih as is, one packed copy per part: (k, n) = W_ih[first[p] + k, n]
    cdef floating* w_part[MAX_INPUT_PARTS]
    for p in range(parts.count):
        w_part[p] = packed_copy(w_ih + parts.first[p] * I, parts.first[p + 1] - parts.first[p],
                                I, I, 1)
        failed = failed or w_part[p] == NULL
    if failed:
        for p in range(parts.count):
            free(w_part[p])
        return -1
    for k in prange(nrb + ngb,
                    num_threads=kernel_threads(num_threads, nrb + ngb,
                                               2.0 * TB * G * (2 * I + H)),
                    schedule="dynamic", chunksize=1):
        if k >= ngb:  # the big weight-gradient blocks first, the many small dx blocks fill in
            # dx[r0:r1] (n, I) = sum over parts of dA_in[r0:r1, part] @ W_ih[part]
            r0 = (k - ngb) * rb
            r1 = min(r0 + rb, TB)
            for p in range(parts.count):
                recmat(<int> (r1 - r0), I, parts.first[p + 1] - parts.first[p],
                       da + r0 * ldd + parts.column[p], ldd, w_part[p], dx + r0 * I, I, p > 0)
        else:
            # weight and bias gradients for gate rows g0:g1, cut where the parts meet
            g0 = k * gb
            g1 = min(g0 + gb, G)
            for p in range(parts.count):
                a0 = max(g0, parts.first[p])
                a1 = min(g1, parts.first[p + 1])
                if a1 > a0:
                    add_input_grads(dw_ih + a0 * I, NULL if db_ih == NULL else db_ih + a0,
                                    da + a0 - parts.first[p] + parts.column[p], ldd,
                                    <int> (a1 - a0), x, I, TB)
            add_hidden_grads(dw_hh + g0 * H, NULL if db_hh == NULL else db_hh + g0, da_hh + g0,
                             ldd, <int> (g1 - g0), h0, out, H, T, B)
    for p in range(parts.count):
        free(w_part[p])
    return 0


# Recurrent dropout and zoneout (recurrent.protocols.Cell, "masks"), the same in every
# kernel. A variational mask m (B, H) multiplies h_{t-1} where it enters the recurrent
# product (h_{t-1} W_hh^T), the same at every step; the state itself, the output and
# everything else read the unmasked h. A zoneout array k (T, B, H), or (1, B, H) for one
# value per row and unit at every step (the expectation in evaluation), mixes each state
# with its previous value after the step: s_t = k * s_{t-1} + (1 - k) * candidate_t.
# Pointers are NULL when the option is off; masks are per row, so results stay bitwise
# the same for any thread split.

cdef inline const floating* masked_rows(floating* scratch, const floating* h,
                                        const floating* m, Py_ssize_t n) noexcept nogil:
    """h * m (n values) into scratch, returned; h itself when m is NULL."""
    cdef Py_ssize_t j
    if m == NULL:
        return h
    for j in range(n):
        scratch[j] = h[j] * m[j]
    return scratch


cdef inline void zone_rows(floating* s, const floating* s_prev, const floating* k,
                           Py_ssize_t n) noexcept nogil:
    """s = k * s_prev + (1 - k) * s (n values): zoneout of a state's candidate s."""
    cdef Py_ssize_t j
    for j in range(n):
        s[j] = k[j] * s_prev[j] + (1 - k[j]) * s[j]


cdef inline const floating* zone_at(const floating* k, Py_ssize_t kstep, Py_ssize_t t,
                                    Py_ssize_t B, int H, Py_ssize_t b) noexcept nogil:
    """Row b of a zoneout array at step t (kstep: B * H for (T, B, H), 0 for (1, B, H));
    NULL when k is NULL."""
    if k == NULL:
        return NULL
    return k + t * kstep + b * H


cdef inline void add_masked(floating* dh, const floating* d, const floating* m,
                            Py_ssize_t n) noexcept nogil:
    """dh += d * m (n values): the recurrent product's gradient reaching a masked h."""
    cdef Py_ssize_t j
    for j in range(n):
        dh[j] += d[j] * m[j]


cdef inline void zone_split_hc(floating* d_cand, floating* held_h, floating* held_c,
                               floating* dh, floating* dc, const floating* d_out,
                               const floating* kh, const floating* kc, int H) noexcept nogil:
    """Backward of zoneout for one row of a cell with states (h, c) whose row backward
    takes d_out + the carried dh as d h_t and dc as d c_t (the layer-normalised LSTM), run
    before it: with g = d_out + dh, d_cand = (1 - kh) * g is the candidate h's gradient
    (the row backward's d_out, dh zeroed), dc becomes (1 - kc) * dc, the candidate c's, and
    held_h = kh * g, held_c = kc * dc are the direct parts of d h_{t-1}, d c_{t-1}, added
    back by zone_join_hc after the row backward. All (H,)."""
    cdef Py_ssize_t j
    cdef floating g
    for j in range(H):
        g = d_out[j] + dh[j]
        d_cand[j] = (1 - kh[j]) * g
        held_h[j] = kh[j] * g
        dh[j] = 0
        held_c[j] = kc[j] * dc[j]
        dc[j] = (1 - kc[j]) * dc[j]


cdef inline void zone_join_hc(floating* dh, floating* dc, const floating* held_h,
                              const floating* held_c, int H) noexcept nogil:
    """dh += held_h, dc += held_c (H,): zone_split_hc's direct parts, after the row
    backward has left d h_{t-1} (before the W_hh path) and d c_{t-1} through the
    candidates."""
    cdef Py_ssize_t j
    for j in range(H):
        dh[j] += held_h[j]
        dc[j] += held_c[j]


cdef inline floating* masked_history(const floating* h0, const floating* out,
                                     const floating* m, Py_ssize_t T, Py_ssize_t B,
                                     int H) noexcept nogil:
    """h_{t-1} as the recurrent product saw it, for the weight gradients: a (T, B, H)
    buffer [h0 * m, out[0] * m, ..., out[T - 2] * m] (the caller frees it; NULL when out of
    memory). add_hidden_grads then reads h0 = buf, out = buf + B * H."""
    cdef floating* buf = <floating*> rc_malloc64(T * B * H * sizeof(floating))
    cdef Py_ssize_t t, j, n = B * H
    if buf == NULL:
        return NULL
    for j in range(n):
        buf[j] = h0[j] * m[j]
    for t in range(1, T):
        for j in range(n):
            buf[t * n + j] = out[(t - 1) * n + j] * m[j]
    return buf


cdef inline const floating* data_of(object a, const floating* like) except? NULL:
    """The data of a C-contiguous array of the kernel's dtype (the cell checked it), NULL
    for None. The caller's reference keeps the array alive for the call; ``like`` only
    picks the dtype."""
    cdef const floating[::1] flat
    if a is None:
        return NULL
    flat = a.reshape(-1)
    return &flat[0]


cdef inline const unsigned char* flags_of(object a) except? NULL:
    """The data of a C-contiguous uint8 array (zoneout flags, recurrent.masks), NULL for
    None."""
    cdef const unsigned char[::1] flat
    if a is None:
        return NULL
    flat = a.reshape(-1)
    return &flat[0]


cdef inline Py_ssize_t zoneout_step(object k, Py_ssize_t B, int H):
    """kstep of a zoneout array (T or 1, B, H) or None: B * H with a value per step."""
    return 0 if k is None or k.shape[0] == 1 else B * H


cdef inline Py_ssize_t two_state_masks(object rec_mask, object zoneout,
                                       const floating* like, Py_ssize_t B, int H,
                                       const floating** m, const floating** kh,
                                       const floating** kc) except -1:
    """The masks of a cell with states h and c (the LSTMs): m <- rec_mask's data, kh, kc
    <- the data of zoneout's (kh, kc) pair, each NULL when off; returns zoneout's kstep.
    ``like`` only picks the dtype."""
    zone_h, zone_c = (None, None) if zoneout is None else zoneout
    m[0] = data_of(rec_mask, like)
    kh[0] = data_of(zone_h, like)
    kc[0] = data_of(zone_c, like)
    return zoneout_step(zone_h, B, H)


cdef inline floating* mask_scratch(const floating* m, Py_ssize_t B, int H) except? NULL:
    """(B, H) work space for the masked h_{t-1} (the caller frees it) when m is not NULL,
    else NULL."""
    cdef floating* p
    if m == NULL:
        return NULL
    p = <floating*> rc_malloc64(B * H * sizeof(floating))
    if p == NULL:
        raise MemoryError()
    return p
