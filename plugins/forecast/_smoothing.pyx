"""The learned smoothing's recursions (plugins/forecast/smoothing.py: _run, reverse) over
the N rows of one column, float64, without the GIL.

Each statement is the Python loop's, operation for operation in the same order, so the
results are bitwise those of the loop: setup.py builds this extension with
-ffp-contract=off (no fused multiply-add) and without -ffast-math (no reassociation).
alpha and gamma come computed (smoothing._sigmoid); S comes with its first m entries set.
"""


def forward(const double[::1] y, double[::1] S, double[::1] level, double alpha,
            double gamma, Py_ssize_t m, before=None):
    """level[t] (N,) and S[m:] (N+m,) of the recursion, in place, from the level
    ``before`` row 0 (l[-1]): y[0] - S[0] when None (a series' start)."""
    cdef Py_ssize_t t, n = y.shape[0]
    cdef double prev
    if n < 1:
        raise IndexError("index 0 is out of bounds for axis 0 with size 0")
    if level.shape[0] != n or S.shape[0] != n + m or m < 0:
        raise ValueError("forward: level must be (N,) and S (N+m,)")
    prev = y[0] - S[0] if before is None else <double>before
    with nogil:
        for t in range(n):
            prev = alpha * (y[t] - S[t]) + (1.0 - alpha) * prev
            level[t] = prev
            if m > 1:
                S[t + m] = gamma * (y[t] - prev) + (1.0 - gamma) * S[t]


def backward(const double[::1] y, const double[::1] level, const double[::1] S,
             double[::1] d_level, double[::1] d_S, double alpha, double gamma,
             Py_ssize_t m):
    """(d_alpha, d_gamma): the recursion's reverse pass, accumulating into d_level (N,)
    and d_S (N+m,) in place."""
    cdef Py_ssize_t t, n = y.shape[0]
    cdef double d_alpha = 0.0, d_gamma = 0.0, before
    if n == 0:
        return d_alpha, d_gamma
    if (level.shape[0] < n or S.shape[0] < n or d_level.shape[0] < n
            or d_S.shape[0] < n + (m if m > 1 else 0)):
        raise ValueError("backward: level, d_level must be (N,), S, d_S (N+m,)")
    with nogil:
        for t in range(n - 1, -1, -1):
            if t > 0:
                before = level[t - 1]
            else:
                before = y[0] - S[0]
            if m > 1:  # S[t+m] = gamma (y - l[t]) + (1 - gamma) S[t]
                d_gamma += d_S[t + m] * ((y[t] - level[t]) - S[t])
                d_level[t] -= gamma * d_S[t + m]
                d_S[t] += (1.0 - gamma) * d_S[t + m]
            # l[t] = alpha (y - S[t]) + (1 - alpha) l[t-1]
            d_alpha += d_level[t] * ((y[t] - S[t]) - before)
            d_S[t] -= alpha * d_level[t]
            if t > 0:
                d_level[t - 1] += (1.0 - alpha) * d_level[t]
            else:  # l[-1] = y[0] - S[0]
                d_S[0] -= (1.0 - alpha) * d_level[t]
    return d_alpha, d_gamma
