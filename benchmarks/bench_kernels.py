"""Cell kernels: recurrent's Cython kernels beside the plain-numpy reference cells and torch.

    pytest benchmarks/bench_kernels.py --benchmark-columns=median,iqr,rounds \
        --benchmark-sort=name [-k "lstm and T100"]

One call = one layer-direction over a whole float32 sequence: "infer" is the forward pass,
"train" is forward + backward with d_out = 1 (loss = sum of outputs) and dx computed.
Threads: recurrent's num_threads; torch.set_num_threads; BLAS threads for the numpy
reference. Sizes (T, B, I, H) are those of issues 2 and 7. For the side-by-side table with
ratios and the BLAS kernel in use, run `recurrent bench` (see benchmarks/README.md).
"""
import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from recurrent.reference import get_reference_cell
from recurrent_plugins.bench import DEFAULT_CONFIGS, Problem, torch_threads

CELLS = ("lstm", "gru", "rnn_tanh")
CONFIGS = [pytest.param(c, id="T{}-B{}-I{}-H{}".format(*c)) for c in DEFAULT_CONFIGS]
THREADS = [pytest.param(n, id=f"{n}thr") for n in (1, 2)]
MODES = ("infer", "train")


def every_case(test):
    """Parametrize a benchmark over cells x sizes x thread counts x modes."""
    for name, values in (("mode", MODES), ("threads", THREADS), ("config", CONFIGS),
                         ("cell", CELLS)):
        test = pytest.mark.parametrize(name, values)(test)
    return test


def _rounds(problem, mode):
    """Fewer rounds for the big sizes so the whole file runs in minutes, not hours."""
    work = problem.flops(mode)
    return 3 if work > 5e9 else 10 if work > 2e8 else 30


@every_case
def test_recurrent(benchmark, cell, config, threads, mode):
    problem = Problem(cell, *config)
    benchmark.extra_info["gflop"] = problem.flops(mode) / 1e9
    benchmark.pedantic(problem.ours(mode, threads), rounds=_rounds(problem, mode),
                       warmup_rounds=1)


@every_case
def test_numpy_reference(benchmark, cell, config, threads, mode):
    problem = Problem(cell, *config)
    ref = get_reference_cell(cell)
    none = (None,) * len(problem.states)

    def run():
        out, _, cache = ref.forward(problem.x, problem.states, problem.params,
                                    problem.lengths, threads)
        if mode == "train":
            ref.backward(problem.d_out, none, cache, problem.grads, threads)

    with threadpool_limits(limits=threads, user_api="blas"):
        benchmark.pedantic(run, rounds=max(1, _rounds(problem, mode) // 3), warmup_rounds=1)


@every_case
def test_torch(benchmark, cell, config, threads, mode):
    pytest.importorskip("torch", reason="torch not installed")
    problem = Problem(cell, *config)
    fn, _, _ = problem.torch_side(mode)
    with torch_threads(threads):
        benchmark.pedantic(fn, rounds=_rounds(problem, mode), warmup_rounds=1)


def test_problem_sides_agree():
    """The benchmarked sides compute the same thing (a cheap guard, not a timing)."""
    pytest.importorskip("torch", reason="torch not installed")
    from recurrent_plugins.bench import check_agreement
    for cell in CELLS:
        assert check_agreement(Problem(cell, 6, 3, 4, 5), "train", 1) < 1e-4
        assert np.isfinite(Problem(cell, 6, 3, 4, 5).flops("train"))
