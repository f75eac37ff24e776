# recurrent's kernel toolkit, Cython side: what a plugin's compiled cell cimports
#
#     from recurrent_toolkit cimport kernel_threads, split, pack_weights_t, ...
#
# with recurrent.get_include() in both the Extension's include_dirs and cythonize's
# include_path (docs/plugins-native.md). The built-in LSTM, GRU and RNN kernels are made of
# these same pieces. Every function is inline and nogil: a plugin compiles them into its
# own extension. API_VERSION (= RECURRENT_TOOLKIT_API_VERSION of recurrent_toolkit.h, and
# recurrent.TOOLKIT_API_VERSION at run time) is raised whenever a name below changes
# meaning or signature, or names are added.
#
# Legend: T time, B batch rows, I input, H hidden, G gate rows (gates * H), "TB" = T * B
# stacked rows; every matrix is row-major with the row stride given.
#
# Threads and determinism: a kernel resolves its thread count for one parallel region
# with kernel_threads(), cuts batch rows into contiguous slices with split(), and gets
# bitwise the same results for any count as long as each element is computed by one
# thread the same way whatever the slice: matmul_packed and the gate passes are; the
# hoisted products cut their work in blocks that depend on the sizes only.
from cython cimport floating

# ---- version, vector code, aligned scratch, fast activations (recurrent_toolkit.h) ----
cdef extern from "recurrent_toolkit.h" nogil:
    int API_VERSION "RECURRENT_TOOLKIT_API_VERSION"
    int rc_cpu_level()        # 0 portable, 2 AVX2+FMA, 3 AVX-512 (the variant in use)
    void* rc_malloc64(size_t bytes)  # 64-byte aligned scratch, NULL when out of memory; free()
    float rc_expf(float x)
    float rc_sigmoidf(float x)
    float rc_tanhf(float x)

# sigmoid(x), tanh_(x), relu(x) for float (the fast versions above) and double (libm)
from recurrent._kernels._activations cimport relu, sigmoid, tanh_

# ---- the packed product: pack a weight matrix once per call, multiply every step ----
# packed_len(K, N, like): elements of a packed (K, N) copy; pack(b, K, N, sk, sn, P):
# P = packed Bmat, Bmat[k, n] = b[k * sk + n * sn];
# recmat(m, N, K, A, lda, P, C, ldc, accumulate): C (m, N) = [C +] A (m, K) @ Bmat.
from recurrent._kernels._recmat cimport pack, packed_len, recmat


# ---- scaffolding shared by the cell kernels (see _rows.pxd for each one's contract) ----
# packed_copy(w, K, N, sk, sn): a 64-byte aligned packed copy of Bmat (as pack), NULL when
#   out of memory; the caller frees it (pack_weights_t and pack_weights below use it);
# kernel_threads(requested, units, flops): the threads one parallel region uses;
# split(n, parts, k): start of part k of n items cut into contiguous near-equal parts;
# state_before(seq, first, t, B, H, b): row b of the state entering step t;
# copy_empty_rows(final, first, lengths, B, H): rows of length 0 keep their first state;
# project_inputs(dst, ldd, x, w_ih, bias, TB, I, G, num_threads): the hoisted input
#   projection dst[:, :G] = X @ W_ih^T + bias (returns -1 when out of memory);
# project_packed: the same with W_ih^T already packed;
# input_and_weight_grads(dx, dw_ih, db_ih, dw_hh, db_hh, dA, ldd, G, whole_input_part(G),
#   x, h0, out, w_ih, T, B, I, H, num_threads): after a backward time loop, from dA
#   (TB, ldd) the gradient of the pre-activations: dx = dA @ W_ih, dW_ih += dA^T X,
#   dW_hh += sum_t dA_t^T h_{t-1}, bias gradients += column sums (-1 when out of memory);
# add_input_grads, add_hidden_grads: the weight-gradient GEMMs of one block of gate rows;
# gemm(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc): row-major BLAS
#   (scipy's, single-threaded inside a kernel's threads).
from recurrent._kernels._rows cimport (InputParts, MIN_PARALLEL_FLOPS, add_hidden_grads,
                                       add_input_grads, copy_empty_rows,
                                       input_and_weight_grads, kernel_threads, packed_copy,
                                       project_inputs, project_packed, split, state_before,
                                       whole_input_part)
from recurrent._kernels._blas cimport gemm


cdef inline floating* pack_weights_t(const floating* w, int G, int K) noexcept nogil:
    """W^T of w (G, K), packed for matmul_packed: forward's a (m, G) += h (m, K) @ W^T.
    NULL when out of memory; the caller frees it."""
    return packed_copy(w, K, G, 1, K)


cdef inline floating* pack_weights(const floating* w, int G, int K) noexcept nogil:
    """w (G, K) as is, packed for matmul_packed: backward's dh (m, K) += dA (m, G) @ W.
    NULL when out of memory; the caller frees it."""
    return packed_copy(w, G, K, K, 1)


cdef inline void matmul_packed(int m, int N, int K, const floating* A, long lda,
                               const floating* P, floating* C, long ldc,
                               bint accumulate) noexcept nogil:
    """C (m, N) = [C +] A (m, K) @ Bmat (K, N), P = Bmat packed (pack_weights_t: Bmat =
    W^T, N = G; pack_weights: Bmat = W, N = K). Rows m of one thread's slice; every element
    is the same whatever m."""
    recmat(m, N, K, A, lda, P, C, ldc, accumulate)
