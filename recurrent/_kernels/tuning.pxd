# The kernels' run-time choices (recurrent/tuning.py measures them on the user's CPU):
# one struct read by every kernel call, set from Python (tuning.pyx). Every choice depends
# on the problem's sizes only, never on the thread count, so results stay bitwise the same
# for any thread count (some choices may change the last bits between settings).

# The defaults, THE place they live (used when tuning is off or has not run).
cdef enum:
    # float32 LSTM with at least this many batch rows computes the input part x_t W_ih^T
    # inside each step's register tiles (lstmstep.h) instead of hoisting it before the loop
    LSTM_IN_TILE_MIN_ROWS = 4
    # the hoisted row GEMMs (input projection, dx) run in about this many blocks of T*B rows
    ROW_PARTS = 16
    # largest block of gate rows of the weight-gradient GEMMs (_rows.pxd gate_block)
    MAX_GATE_BLOCK = 256
    # inference projects the inputs a few steps at a time into a scratch of about this size
    INFER_CHUNK_BYTES = 4 << 20
    # a parallel region with less work than this runs on one thread (kernel_threads)
    MIN_PARALLEL_FLOPS = 20000000


# Compiled plugins read this struct through tuning() (the kernel toolkit's kernel_threads
# and block sizes are inline in their extensions). A change of its fields renames tuning()
# and raises TOOLKIT_API_VERSION, so that a plugin built against the old layout fails to
# import (Cython finds no such function) instead of reading the wrong fields.
cdef struct Tuning:
    Py_ssize_t lstm_in_tile_min_rows
    Py_ssize_t row_parts
    Py_ssize_t max_gate_block
    Py_ssize_t infer_chunk_bytes
    double min_parallel_flops


cdef const Tuning* tuning() noexcept nogil
