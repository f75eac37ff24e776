"""diebold_mariano builds its (B, n) cosine matrix in blocks: B grows as n^(2/3), and the
whole matrix held n^(5/3) numbers (1.4 GB at n = 100,000). Memory bound by tracemalloc;
the p-value is the one the whole matrix gives (bitwise on one BLAS thread)."""
import tracemalloc

import numpy as np

from recurrent import paired
from recurrent.threads import single_threaded_blas


def _whole_matrix(d, horizon):
    """The statistic with the whole (B, n) matrix at once (the formula as written)."""
    from scipy.stats import t as student_t
    n = d.size
    cosines = max(1, min(n // (2 * horizon), int(np.ceil(0.41 * n ** (2 / 3)))))
    t = np.arange(n) + 0.5
    frequencies = np.pi * np.arange(1, cosines + 1)[:, None] * t[None, :] / n
    projections = np.sqrt(2.0 / n) * (np.cos(frequencies) @ (d - d.mean()))
    variance = float(np.mean(projections ** 2))
    statistic = np.sqrt(n) * d.mean() / np.sqrt(variance)
    return float(2 * student_t.sf(abs(statistic), df=cosines))


def test_diebold_mariano_memory_does_not_grow_with_the_cosine_matrix(monkeypatch):
    monkeypatch.setattr(paired, "COSINE_BLOCK", 1 << 16, raising=False)
    n = 20_000  # B = 303 cosines: the whole matrix is 48 MB, and cos() another 48 MB
    d = np.random.default_rng(0).standard_normal(n)
    paired.diebold_mariano(d[:100], 1)  # imports scipy outside the measurement
    tracemalloc.start()
    try:
        paired.diebold_mariano(d, 1)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 * 2**20, f"peak {peak / 2**20:.1f} MiB"


def test_diebold_mariano_blocks_give_the_whole_matrix_p_value(monkeypatch):
    rng = np.random.default_rng(1)
    for block in (1, 1 << 12, 1 << 16, 1 << 21):
        monkeypatch.setattr(paired, "COSINE_BLOCK", block, raising=False)
        for n, horizon in ((24, 1), (100, 1), (999, 3), (4097, 12), (20_000, 1)):
            d = rng.standard_normal(n) + 0.05
            with single_threaded_blas():  # the whole-matrix gemv on one thread too
                expected = _whole_matrix(d, horizon)
            assert paired.diebold_mariano(d, horizon) == expected, (block, n, horizon)
