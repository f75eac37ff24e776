"""The built-in Cython cells against the plain-numpy reference cells and torch, the gate
nonlinearities' accuracy, thread-count handling and BLAS single-threading.

Legend: T time, B batch, I input, H hidden.
"""
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from recurrent import conformance, threads
from recurrent._kernels import activations, ompinfo
from recurrent.plugins import get_cell
from recurrent.reference import get_reference_cell

CELL_NAMES = ("rnn_tanh", "rnn_relu", "lstm", "gru", "ln_lstm")
TORCH_CELLS = ("rnn_tanh", "rnn_relu", "lstm", "gru")  # ln_lstm: tests/test_ln_lstm.py

# (T, B, I, H): general, T=1, B=1, more rows than threads with an odd split, H not a
# multiple of any vector width.
SIZES = [(5, 3, 4, 6), (1, 2, 3, 4), (6, 1, 3, 5), (4, 9, 2, 7)]
TOL = {np.float64: dict(rtol=1e-10, atol=1e-12), np.float32: dict(rtol=1e-4, atol=2e-5)}


def _full(x):
    """lengths of a batch whose rows all have every step of x (T, B, I)."""
    return np.full(x.shape[1], x.shape[0], dtype=np.int64)


def _problem(cell, T, B, I, H, dtype, with_lengths, seed=0):
    """Random parameters, inputs, initial states, output gradients and lengths: every row
    full (with_lengths False), lengths in 1..T with one full row (True), or lengths in 0..T
    with row 0 of length 0 and, when B > 1, the last row full ("empty")."""
    rng = np.random.default_rng(seed)
    shapes = cell.param_shapes(I, H)
    params = {k: np.zeros(s, dtype) for k, s in shapes.items()}
    cell.init_params(params, H, rng)
    x = rng.normal(size=(T, B, I)).astype(dtype)
    states = tuple(rng.normal(scale=0.5, size=(B, H)).astype(dtype) for _ in cell.state_names)
    d_out = rng.normal(size=(T, B, H)).astype(dtype)
    d_finals = tuple(rng.normal(size=(B, H)).astype(dtype) for _ in cell.state_names)
    if with_lengths == "empty":
        lengths = rng.integers(0, T + 1, size=B).astype(np.int64)
        lengths[-1] = T
        lengths[0] = 0
    elif with_lengths:
        lengths = rng.integers(1, T + 1, size=B).astype(np.int64)
        lengths[0] = T  # at least one full row
    else:
        lengths = np.full(B, T, dtype=np.int64)
    return params, x, states, d_out, d_finals, lengths


def _run(cell, params, x, states, d_out, d_finals, lengths, num_threads):
    """forward + backward; returns every result as a flat dict of arrays."""
    out, finals, cache = cell.forward(x, states, params, lengths, num_threads)
    out = np.array(out)
    grads = {k: np.zeros_like(v) for k, v in params.items()}
    dx, d_states = cell.backward(d_out, d_finals, cache, grads, num_threads)
    result = {"out": out, "dx": dx}
    result.update({f"final_{i}": f for i, f in enumerate(finals)})
    result.update({f"d_state_{i}": d for i, d in enumerate(d_states)})
    result.update({f"grad_{k}": g for k, g in grads.items()})
    return result


@pytest.mark.parametrize("name", CELL_NAMES)
def test_builtin_cell_is_registered(name):
    cell = get_cell(name)
    assert cell.name == name
    assert type(cell).__module__ == "recurrent_plugins.cells"


@pytest.mark.parametrize("name", CELL_NAMES)
def test_conformance_kit_passes(name):
    failures = [r for r in conformance.check_cell(get_cell(name)) if not r.passed]
    assert failures == []


@pytest.mark.parametrize("with_lengths", [False, True, "empty"],
                         ids=["full", "lengths", "zero-length"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("size", SIZES, ids=lambda s: "T{}B{}I{}H{}".format(*s))
@pytest.mark.parametrize("name", CELL_NAMES)
def test_matches_reference(name, size, dtype, with_lengths):
    fast, ref = get_cell(name), get_reference_cell(name)
    problem = _problem(fast, *size, dtype, with_lengths)
    got = _run(fast, *problem, num_threads=2)
    want = _run(ref, *problem, num_threads=1)
    assert got.keys() == want.keys()
    for key in want:
        assert got[key].dtype == dtype, key
        np.testing.assert_allclose(got[key], want[key], err_msg=key, **TOL[dtype])


@pytest.mark.parametrize("size", [(3, 5, 21, 37), (2, 1, 33, 48)],
                         ids=lambda s: "T{}B{}I{}H{}".format(*s))
@pytest.mark.parametrize("name", CELL_NAMES)
def test_float32_at_vector_sized_weights(name, size):
    # Packing a weight matrix transposes 16 x 16 blocks in registers (AVX-512) and the
    # rest element by element: I and H here take both, with partial blocks (21 = 16 + 5,
    # 37 = 2 * 16 + 5) and full ones (48); B = 5 takes the LSTM's in-tile input part.
    fast, ref = get_cell(name), get_reference_cell(name)
    problem = _problem(fast, *size, np.float32, True, seed=7)
    got = _run(fast, *problem, num_threads=2)
    want = _run(ref, *problem, num_threads=1)
    for key in want:
        np.testing.assert_allclose(got[key], want[key], err_msg=key, **TOL[np.float32])


@pytest.mark.parametrize("size", [(5, 11, 7, 37), (4, 6, 5, 32), (3, 1, 4, 16)],
                         ids=lambda s: "T{}B{}I{}H{}".format(*s))
def test_fused_lstm_step_matches_reference(size):
    # The float32 LSTM forward runs lstmstep.h: 4-row tiles over groups of 16 units. These
    # sizes take full groups (H = 16, 32), a partial last group (37), and 4-, 2- and 1-row
    # tiles (B = 11, 6, 1) on this machine's best vector variant, with lengths.
    fast, ref = get_cell("lstm"), get_reference_cell("lstm")
    problem = _problem(fast, *size, np.float32, True, seed=5)
    got = _run(fast, *problem, num_threads=2)
    want = _run(ref, *problem, num_threads=1)
    for key in want:
        np.testing.assert_allclose(got[key], want[key], err_msg=key, **TOL[np.float32])


@pytest.mark.parametrize("name", CELL_NAMES)
def test_padded_steps_output_zero_and_pass_gradients_through(name):
    cell = get_cell(name)
    params, x, states, d_out, d_finals, _ = _problem(cell, 6, 4, 3, 5, np.float64, False)
    lengths = np.array([6, 2, 1, 4], dtype=np.int64)
    res = _run(cell, params, x, states, d_out, d_finals, lengths, 2)
    for b, n in enumerate(lengths):
        assert np.all(res["out"][n:, b] == 0)
        assert np.all(res["dx"][n:, b] == 0)
    # a row batched with longer ones equals the row alone, truncated to its length
    b, n = 1, lengths[1]
    alone = _run(cell, params, np.ascontiguousarray(x[:n, b:b + 1]),
                 tuple(np.ascontiguousarray(s[b:b + 1]) for s in states),
                 np.ascontiguousarray(d_out[:n, b:b + 1]),
                 tuple(np.ascontiguousarray(d[b:b + 1]) for d in d_finals),
                 np.array([n], dtype=np.int64), 1)
    np.testing.assert_allclose(res["out"][:n, b], alone["out"][:, 0], rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(res["dx"][:n, b], alone["dx"][:, 0], rtol=1e-12, atol=1e-14)
    for i in range(len(cell.state_names)):
        np.testing.assert_allclose(res[f"final_{i}"][b], alone[f"final_{i}"][0], rtol=1e-12)
        np.testing.assert_allclose(res[f"d_state_{i}"][b], alone[f"d_state_{i}"][0],
                                   rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("name", CELL_NAMES)
def test_thread_counts_give_identical_results(name, dtype):
    # Bitwise: the per-step product computes each element the same way whatever rows share
    # a thread (recmat.h), and the hoisted GEMMs use blocks that do not depend on threads.
    # Small problems run on one thread (kernel_threads in _rows.pxd); (20, 40, 32, 64) and
    # (30, 48, 24, 96) are large enough for every cell's time loops and hoisted products
    # to be shared by threads, the weight gradients in two or more blocks of gate rows.
    # Rows of length 0 (row 0) too.
    cell = get_cell(name)
    for size in [(7, 11, 5, 9), (5, 37, 20, 70), (20, 40, 32, 64), (30, 48, 24, 96)]:
        problem = _problem(cell, *size, dtype, "empty", seed=3)
        one = _run(cell, *problem, num_threads=1)
        for num_threads in (2, 3):
            other = _run(cell, *problem, num_threads=num_threads)
            for key in one:
                np.testing.assert_array_equal(other[key], one[key],
                                              err_msg=f"{key} {num_threads} threads {size}")
        if hasattr(cell, "infer"):
            params, x, states, _, _, lengths = problem
            for num_threads in (1, 3):
                out, finals = cell.infer(x, states, params, lengths, num_threads)
                np.testing.assert_array_equal(out, one["out"])
                for i, f in enumerate(finals):
                    np.testing.assert_array_equal(f, one[f"final_{i}"])


@pytest.mark.parametrize("name", CELL_NAMES)
def test_missing_biases_mean_zero_biases(name):
    cell = get_cell(name)
    params, x, states, d_out, d_finals, lengths = _problem(cell, 4, 3, 2, 5, np.float64, True)
    zero_bias = dict(params, bias_ih=np.zeros_like(params["bias_ih"]),
                     bias_hh=np.zeros_like(params["bias_hh"]))
    no_bias = {k: v for k, v in params.items() if not k.startswith("bias")}
    want = _run(cell, zero_bias, x, states, d_out, d_finals, lengths, 1)
    got = _run(cell, no_bias, x, states, d_out, d_finals, lengths, 1)
    for key in got:
        np.testing.assert_array_equal(got[key], want[key], err_msg=key)


@pytest.mark.parametrize("name", CELL_NAMES)
def test_backward_adds_into_grads_and_cache_is_single_use(name):
    cell = get_cell(name)
    params, x, states, d_out, d_finals, lengths = _problem(cell, 3, 2, 2, 3, np.float64, False)
    grads = {k: np.zeros_like(v) for k, v in params.items()}
    for _ in range(2):
        _, _, cache = cell.forward(x, states, params, lengths, 1)
        cell.backward(d_out, d_finals, cache, grads, 1)
    once = _run(cell, params, x, states, d_out, d_finals, lengths, 1)
    for k in params:
        np.testing.assert_allclose(grads[k], 2 * once[f"grad_{k}"], rtol=1e-12, atol=1e-15)
    with pytest.raises(ValueError, match="already used"):
        cell.backward(d_out, d_finals, cache, grads, 1)


def test_forward_output_is_read_only_because_backward_reads_it():
    cell = get_cell("lstm")
    params, x, states, *_ = _problem(cell, 2, 2, 2, 3, np.float32, False)
    out, finals, _ = cell.forward(x, states, params, _full(x), 1)
    with pytest.raises(ValueError):
        out[0, 0, 0] = 1.0
    finals[0][0, 0] = 1.0  # final states are the caller's own


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("B", [1, 5], ids=["B1", "B5"])  # B >= 4: LSTM's in-tile input
@pytest.mark.parametrize("name", CELL_NAMES)
def test_rows_of_length_zero_run_no_step(name, B, dtype):
    # By definition: zero outputs and dx, final states = initial states, d initial states =
    # d final states, and no parameter gradient (the same as without those rows).
    cell = get_cell(name)
    params, x, states, d_out, d_finals, _ = _problem(cell, 4, B, 3, 5, dtype, False, seed=2)
    lengths = np.zeros(B, dtype=np.int64)
    lengths[1:] = [4, 2, 0, 3][:B - 1]
    empty = lengths == 0
    res = _run(cell, params, x, states, d_out, d_finals, lengths, 2)
    assert np.all(res["out"][:, empty] == 0) and np.all(res["dx"][:, empty] == 0)
    for i, (s, d) in enumerate(zip(states, d_finals)):
        np.testing.assert_array_equal(res[f"final_{i}"][empty], s[empty])
        np.testing.assert_array_equal(res[f"d_state_{i}"][empty], d[empty])
    if hasattr(cell, "infer"):
        out, finals = cell.infer(x, states, params, lengths, 2)
        np.testing.assert_array_equal(out, res["out"])
        for i, f in enumerate(finals):
            np.testing.assert_array_equal(f, res[f"final_{i}"])
    if B > 1:  # the other rows alone give the same parameter gradients
        rows = ~empty
        sub = tuple(np.ascontiguousarray(a[:, rows]) for a in (x, d_out))
        rest = _run(cell, params, sub[0], tuple(np.ascontiguousarray(s[rows]) for s in states),
                    sub[1], tuple(np.ascontiguousarray(d[rows]) for d in d_finals),
                    lengths[rows], 1)
        for k in params:
            np.testing.assert_allclose(res[f"grad_{k}"], rest[f"grad_{k}"], err_msg=k,
                                       **TOL[dtype])
    else:  # nothing ran: no parameter gradient at all
        for k in params:
            assert np.all(res[f"grad_{k}"] == 0), k


def test_kernels_need_a_lengths_array():
    cell = get_cell("gru")
    params, x, states, *_ = _problem(cell, 2, 2, 2, 3, np.float32, False)
    with pytest.raises(TypeError, match="lengths"):
        cell.forward(x, states, params, None, 1)


def test_wrong_dtype_is_rejected_with_a_clear_message():
    cell = get_cell("gru")
    params, x, states, *_ = _problem(cell, 2, 2, 2, 3, np.float32, False)
    with pytest.raises(ValueError, match="C-contiguous float32"):
        cell.forward(x, tuple(s.astype(np.float64) for s in states), params, _full(x), 1)


@pytest.mark.parametrize("name", TORCH_CELLS)
def test_matches_torch_float32(name):
    torch = pytest.importorskip("torch", reason="torch not installed")
    T, B, I, H = 6, 4, 5, 8
    cell = get_cell(name)
    params, x, states, d_out, d_finals, _ = _problem(cell, T, B, I, H, np.float32, False)
    module = {"rnn_tanh": lambda: torch.nn.RNN(I, H), "lstm": lambda: torch.nn.LSTM(I, H),
              "rnn_relu": lambda: torch.nn.RNN(I, H, nonlinearity="relu"),
              "gru": lambda: torch.nn.GRU(I, H)}[name]()
    module.load_state_dict({f"{k}_l0": torch.from_numpy(v) for k, v in params.items()})
    xt = torch.from_numpy(x).requires_grad_()
    st = [torch.from_numpy(s[None]).requires_grad_() for s in states]
    out_t, fin_t = module(xt, tuple(st) if len(st) == 2 else st[0])
    fin_t = fin_t if isinstance(fin_t, tuple) else (fin_t,)
    loss = (out_t * torch.from_numpy(d_out)).sum() + sum(
        (f[0] * torch.from_numpy(d)).sum() for f, d in zip(fin_t, d_finals))
    loss.backward()
    got = _run(cell, params, x, states, d_out, d_finals, _full(x), 2)
    tol = dict(rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(got["out"], out_t.detach().numpy(), **tol)
    np.testing.assert_allclose(got["dx"], xt.grad.numpy(), **tol)
    for i, (f, s) in enumerate(zip(fin_t, st)):
        np.testing.assert_allclose(got[f"final_{i}"], f.detach().numpy()[0], **tol)
        np.testing.assert_allclose(got[f"d_state_{i}"], s.grad.numpy()[0], **tol)
    for k in params:
        np.testing.assert_allclose(got[f"grad_{k}"], getattr(module, f"{k}_l0").grad.numpy(),
                                   err_msg=k, **tol)


# ---- gate nonlinearities ----------------------------------------------------------------

def _float32_grid():
    """Dense float32 values covering both tanh branches, saturation and tiny magnitudes."""
    rng = np.random.default_rng(0)
    parts = [np.linspace(-20, 20, 400_001), rng.normal(scale=3, size=100_000),
             np.linspace(-0.7, 0.7, 100_001), 10.0 ** np.linspace(-30, 2, 2_001),
             -(10.0 ** np.linspace(-30, 2, 2_001)), [0.625, -0.625, 88.0, -87.0, 100, -100]]
    return np.concatenate([np.asarray(p, np.float64) for p in parts]).astype(np.float32)


@pytest.mark.parametrize("fn", ["sigmoid", "tanh"])
def test_float32_nonlinearities_within_1e6_relative(fn):
    x = _float32_grid()
    got = np.empty_like(x)
    getattr(activations, fn)(x, got)
    xd = x.astype(np.float64)
    exact = np.tanh(xd) if fn == "tanh" else 1 / (1 + np.exp(-xd))
    # libm's float32 sigmoid underflows to 0 below x = -87 too: there compare absolutely
    tiny = np.abs(exact) < 1e-30
    rel = np.abs(got[~tiny] - exact[~tiny]) / np.abs(exact[~tiny])
    assert rel.max() < 1e-6, (rel.max(), x[~tiny][rel.argmax()])
    assert np.abs(got[tiny] - exact[tiny]).max() < 1e-30


@pytest.mark.parametrize("fn", ["sigmoid", "tanh"])
def test_nonlinearities_special_values(fn):
    x = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0], np.float32)
    got = np.empty_like(x)
    getattr(activations, fn)(x, got)
    want = np.tanh(x) if fn == "tanh" else np.array([np.nan, 1, 0, 0.5, 0.5], np.float32)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-37)  # sigmoid(-inf) ~ 6e-39
    assert np.signbit(got[4]) == (fn == "tanh")  # tanh(-0) = -0


# ---- threads ----------------------------------------------------------------------------

def test_openmp_is_compiled_in_and_runs_a_team():
    # A build without OpenMP works single-threaded, but unless asked for (setup.py reads
    # RECURRENT_NO_OPENMP) it means the compiler probe failed: that is a failure here.
    if os.environ.get("RECURRENT_NO_OPENMP"):
        assert ompinfo.team_size(2) == 1
        pytest.skip("built without OpenMP on request (RECURRENT_NO_OPENMP)")
    assert threads.openmp_enabled() is True
    assert ompinfo.team_size(2) == 2


def test_resolve_threads_honours_ints_and_defaults_sensibly(monkeypatch):
    assert threads.resolve_threads(3, 1, 8) == 3
    assert threads.resolve_threads(1, 512, 512) == 1
    monkeypatch.setattr(threads, "max_threads", lambda: 2)  # e.g. RECURRENT_NUM_THREADS=2
    monkeypatch.setattr(threads, "idle_cores", lambda: 4)  # a quiet machine
    assert threads.resolve_threads(None, 1, 64) == 1  # small batches stay single-threaded
    assert threads.resolve_threads(None, 16, 16) == 1  # so does little work per step
    assert threads.resolve_threads(None, 2 * threads.MIN_ROWS_PER_THREAD, 128) == 2
    assert threads.resolve_threads(None, 4096, 64) == 2
    monkeypatch.setattr(threads, "idle_cores", lambda: 1)  # a busy machine
    assert threads.resolve_threads(None, 4096, 64) == 1
    for bad in (0, -1, 1.5, "2", True):
        with pytest.raises(ValueError, match="num_threads"):
            threads.resolve_threads(bad, 8, 8)


def test_max_threads_reads_the_environment(monkeypatch):
    monkeypatch.setattr(threads, "openmp_enabled", lambda: True)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setenv("RECURRENT_NUM_THREADS", "3")
    assert threads.max_threads() == 3
    monkeypatch.delenv("RECURRENT_NUM_THREADS")
    monkeypatch.setenv("OMP_NUM_THREADS", "5,2")
    assert threads.max_threads() == 5
    monkeypatch.setattr(threads, "openmp_enabled", lambda: False)
    assert threads.max_threads() == 1


class _FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def _sampled_idle_cores(monkeypatch, samples, every=0.05):
    """idle_cores() after feeding it `samples` (runnable threads elsewhere) `every` s apart."""
    clock = _FakeClock()
    monkeypatch.setattr(threads.time, "monotonic", clock)
    monkeypatch.setattr(threads, "_busy_average", [-1.0, 0.0])
    feed = iter(samples)
    monkeypatch.setattr(threads, "_runnable_elsewhere", lambda: next(feed))
    for _ in samples:
        idle = threads.idle_cores()
        clock.now += every
    return idle


def test_idle_cores_counts_other_processes_runnable_threads(monkeypatch):
    monkeypatch.setattr(threads, "available_cores", lambda: 4)
    for others, idle in [(0, 4), (1, 3), (3, 1), (9, 1)]:
        assert _sampled_idle_cores(monkeypatch, [others] * 40) == idle
    # a kernel thread runnable in one sample out of ten does not cost a core...
    assert _sampled_idle_cores(monkeypatch, [0] + [0, 0, 0, 0, 1, 0, 0, 0, 0, 0] * 8) == 4
    # ...nor one caught after a long pause between kernel calls...
    assert _sampled_idle_cores(monkeypatch, [0, 0, 0, 1, 0], every=5.0) == 4
    # ...a neighbour that starts running does, within about a second
    assert _sampled_idle_cores(monkeypatch, [0] * 20 + [1] * 30) == 3
    assert _sampled_idle_cores(monkeypatch, [0, 0, 1, 1, 1, 1, 1], every=5.0) == 3


def test_idle_cores_samples_at_most_every_20_ms(monkeypatch):
    monkeypatch.setattr(threads, "available_cores", lambda: 4)
    calls = []
    monkeypatch.setattr(threads, "_runnable_elsewhere", lambda: calls.append(1) or 0)
    _sampled_idle_cores(monkeypatch, [0] * 3)  # resets the average
    monkeypatch.setattr(threads, "_runnable_elsewhere", lambda: calls.append(1) or 0)
    for _ in range(100):  # same fake instant: one sample at most
        threads.idle_cores()
    assert len(calls) <= 1


def test_idle_cores_falls_back_to_the_load_average(monkeypatch):
    monkeypatch.setattr(threads, "available_cores", lambda: 4)
    monkeypatch.setattr(threads, "_runnable_elsewhere", lambda: None)  # no /proc
    for load, idle in [(0.0, 4), (1.0, 4), (2.0, 3), (3.6, 1), (9.0, 1)]:
        monkeypatch.setattr(threads, "_busy_average", [-1.0, 0.0])
        monkeypatch.setattr(threads.os, "getloadavg", lambda load=load: (load, 0.0, 0.0))
        assert threads.idle_cores() == idle


def _busy_difference(switch, windows=10, seconds=0.1):
    """Mean of threads._runnable_elsewhere() over windows with ``switch(True)`` minus the mean
    over windows with ``switch(False)``, the two kinds alternating so that whatever else
    the machine runs meanwhile weighs on both alike."""
    samples = {True: [], False: []}
    for i in range(2 * windows):
        on = i % 2 == 0
        switch(on)
        time.sleep(0.02)  # let the switch take effect
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            samples[on].append(threads._runnable_elsewhere())
            time.sleep(0.01)
    switch(False)
    return np.mean(samples[True]) - np.mean(samples[False])


@pytest.mark.skipif(not os.path.exists("/proc/self/task"), reason="needs Linux /proc")
def test_a_busy_process_counts_and_our_own_busy_threads_do_not():
    """The default thread count used to follow the load average, which counts our own
    threads: a sustained 2-thread run talked itself down to 1 thread. Another process
    spinning adds about one to the count of runnable threads elsewhere, our own thread
    busy in numpy about nothing (each compared with windows where it rests). On a loaded
    machine our busy thread also keeps other processes' threads waiting for a core, which
    raises both figures alike, so the two are compared with each other."""
    run, stop = threading.Event(), threading.Event()
    a = np.ones((300, 300))

    def burn():  # our own thread, busy in numpy with the GIL released while ``run`` is set
        while not stop.is_set():
            if run.wait(0.01):
                a @ a

    worker = threading.Thread(target=burn)
    worker.start()
    try:
        ours = _busy_difference(lambda on: run.set() if on else run.clear())
    finally:
        stop.set()
        worker.join()
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:  # a stopped process is not runnable
        other = _busy_difference(
            lambda on: spinner.send_signal(signal.SIGCONT if on else signal.SIGSTOP))
    finally:
        spinner.kill()
        spinner.wait()
    assert other - ours > 0.5, (other, ours)


def test_blas_is_single_threaded_inside_kernel_calls_and_restored_after():
    from threadpoolctl import threadpool_info, threadpool_limits

    def openblas_threads():
        return [i["num_threads"] for i in threadpool_info() if i["internal_api"] == "openblas"]

    with threadpool_limits(limits=2, user_api="blas"):
        before = openblas_threads()
        assert before and all(n == 2 for n in before)
        with threads.single_threaded_blas():
            assert all(n == 1 for n in openblas_threads())
            with threads.single_threaded_blas():  # nested
                assert all(n == 1 for n in openblas_threads())
            assert all(n == 1 for n in openblas_threads())
        assert openblas_threads() == before


# ---- every compiled variant -------------------------------------------------------------

_VARIANT_CHECK = """
import numpy as np
from recurrent._kernels import activations
from recurrent.plugins import get_cell
from recurrent.reference import get_reference_cell
print(activations.vector_level())
# masks: none; zoneout as 0/1 and fractional values (the fused gate passes); zoneout as bool
# flags (training); recurrent dropout alone; and recurrent dropout with zoneout's flags
for name, kind in [(n, k) for n in ("rnn_tanh", "rnn_relu", "lstm", "gru", "ln_lstm")
                   for k in (None, "zoneout", "flags", "recurrent", "both")]:
    fast, ref = get_cell(name), get_reference_cell(name)
    rng = np.random.default_rng(1)
    T, B, I, H = 5, 11, 7, 37        # 11 rows, 37 units: every tile and panel tail
    params = {k: np.zeros(s, np.float32) for k, s in fast.param_shapes(I, H).items()}
    fast.init_params(params, H, rng)
    for k in params:                 # ln_lstm's gains and shift away from 1 and 0
        if k.startswith("ln_"):
            params[k] += rng.uniform(-0.3, 0.3, params[k].shape).astype(np.float32)
    x = rng.normal(size=(T, B, I)).astype(np.float32)
    states = tuple(rng.normal(size=(B, H)).astype(np.float32) for _ in fast.state_names)
    d_out = rng.normal(size=(T, B, H)).astype(np.float32)
    d_finals = tuple(rng.normal(size=(B, H)).astype(np.float32) for _ in fast.state_names)
    lengths = rng.integers(0, T + 1, size=B)   # int64, rows of length 0 included
    lengths[0] = 0
    masks = {}
    if kind in ("recurrent", "both"):   # (B, H): dropped, kept as 1 / (1 - p), and 0.5
        masks["recurrent"] = rng.choice(np.float32([0, 1 / 0.7, 0.5]), size=(B, H))
    if kind in ("flags", "both"):
        masks["zoneout"] = tuple(rng.random((T, B, H)) < 0.4 for _ in fast.state_names)
    if kind == "zoneout":
        masks["zoneout"] = tuple(rng.choice(np.float32([0, 1, 0.3]), size=(T, B, H))
                                 for _ in fast.state_names)
    results = []
    for cell in (fast, ref):
        out, finals, cache = cell.forward(x, states, params, lengths, 2, masks=masks or None)
        grads = {k: np.zeros_like(v) for k, v in params.items()}
        dx, d_states = cell.backward(d_out, d_finals, cache, grads, 2)
        results.append([np.array(out), dx, *finals, *d_states, *grads.values()])
    for i, (got, want) in enumerate(zip(*results)):
        # float32 sums: atol grows with the array's scale (ln_lstm's gradients reach ~30)
        atol = 2e-5 * max(1.0, float(np.abs(want).max()))
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=atol,
                                   err_msg=f"{name} {kind} result {i}")
    a = np.linspace(-30, 30, 10001, dtype=np.float32)
    t = np.empty_like(a)
    activations.tanh(a, t)
    assert np.max(np.abs(t - np.tanh(a.astype(np.float64)))) < 1e-6
print("ok")
"""


@pytest.mark.parametrize("level", ["avx2", "portable"])
def test_lower_vector_variants_match_reference(level):
    """The AVX2 and portable builds of the gate passes and recurrent product (chosen at run
    time; a CPU would otherwise only run its best one) give the reference results:
    every built-in cell, forward and backward, without masks, with zoneout (values and
    flags), with recurrent dropout, and with both."""
    import os
    import subprocess
    import sys
    # PYTHONSAFEPATH keeps `-c` from importing the uncompiled source tree when run from the repo.
    env = dict(os.environ, RECURRENT_VECTOR_LEVEL=level, PYTHONSAFEPATH="1")
    result = subprocess.run([sys.executable, "-c", _VARIANT_CHECK], env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    chosen, status = result.stdout.split()
    assert status == "ok"
    assert chosen == level or (level == "avx2" and chosen == "portable")  # CPU without AVX2


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("use_relu", [False, True])
def test_rnn_zoneout_backward_with_separate_candidates_equals_in_place(use_relu, dtype):
    """The rnn kernel's backward takes the candidates either as its work space (as the cell
    hands them) or in a separate array; both give the same gradients, candidates intact."""
    from recurrent._kernels import rnn
    rng = np.random.default_rng(3)
    T, B, I, H = 4, 5, 3, 19
    x = rng.normal(size=(T, B, I)).astype(dtype)
    h0 = rng.normal(size=(B, H)).astype(dtype)
    w_ih = rng.normal(scale=0.4, size=(H, I)).astype(dtype)
    w_hh = rng.normal(scale=0.3, size=(H, H)).astype(dtype)
    bias = rng.normal(size=H).astype(dtype)
    lengths = np.array([4, 0, 2, 4, 3], np.int64)
    keep = rng.choice(np.array([0, 1, 0.4], dtype), size=(T, B, H))
    d_out = rng.normal(size=(T, B, H)).astype(dtype)
    out, h_n, cand = (np.empty((T, B, H), dtype), np.empty((B, H), dtype),
                      np.empty((T, B, H), dtype))
    rnn.forward(out, h_n, x, h0, w_ih, w_hh, bias, lengths, use_relu, 1, None, keep, cand)
    results = []
    for separate in (False, True):
        c = cand.copy()
        da = np.empty_like(c) if separate else c
        dx, dh = np.empty_like(x), np.ones((B, H), dtype)
        dw_ih, dw_hh, db = np.zeros_like(w_ih), np.zeros_like(w_hh), np.zeros(H, dtype)
        rnn.backward(dx, dh, dw_ih, dw_hh, db, da, d_out, x, h0, out, w_ih, w_hh, lengths,
                     use_relu, 1, None, keep, c)
        if separate:
            np.testing.assert_array_equal(c, cand)
        results.append((dx, dh, dw_ih, dw_hh, db))
    for got, want in zip(*results):
        np.testing.assert_array_equal(got, want)
