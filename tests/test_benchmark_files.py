"""The pytest-benchmark files under benchmarks/ and summarize_sittings.py: each side runs
what its docstring says, with the thread counts it says (one call each on tiny sizes,
through a stand-in for pytest-benchmark's fixture; no timing)."""
import importlib.util
import json
import os
import subprocess
import sys

import pytest

BENCHMARKS = os.path.join(os.path.dirname(__file__), "..", "benchmarks")


def _module(name):
    spec = importlib.util.spec_from_file_location(
        f"benchmarks_{name}", os.path.join(BENCHMARKS, f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Benchmark:
    """pytest-benchmark's fixture, calling the target once; `during` is called inside the
    call (what the timed code sees)."""

    def __init__(self, during=lambda: None):
        self.extra_info, self.seen, self.during = {}, [], during

    def __call__(self, fn, *args, **kwargs):
        self.seen.append(self.during())
        return fn(*args, **kwargs)

    def pedantic(self, fn, args=(), kwargs=None, rounds=1, warmup_rounds=0, iterations=1):
        return self(fn, *args, **(kwargs or {}))


@pytest.mark.parametrize("mode", ["infer", "train"])
@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn_tanh"])
def test_kernels_numpy_reference_side_runs(cell, mode):
    """bench_kernels' numpy reference side runs the reference cell on the problem's
    full-length rows (it passed lengths=None, which the reference cells refuse)."""
    kernels = _module("bench_kernels")
    kernels.test_numpy_reference(Benchmark(), cell, (5, 3, 4, 6), 1, mode)


def _torch_threads_seen(module_name, test_name, *args):
    torch = pytest.importorskip("torch", reason="torch not installed")
    module = _module(module_name)
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        benchmark = Benchmark(during=torch.get_num_threads)
        getattr(module, test_name)(benchmark, *args)
        return benchmark.seen, torch.get_num_threads()
    finally:
        torch.set_num_threads(previous)


@pytest.mark.parametrize("module_name, test_name, args", [
    ("bench_optim", "test_torch", ("adam", 1000)),
    ("bench_losses", "test_cross_entropy_torch", ((64, 10),)),
    ("bench_train_step", "test_torch_train_step", ("sentiment",)),
])
def test_torch_sides_run_on_one_thread_and_leave_torch_as_they_found_it(
        module_name, test_name, args):
    """The one-thread files time torch on one thread whatever ran before (bench_optim's
    torch side ran at torch's default while the fused step runs on one), and restore
    torch's thread count after (bench_losses and bench_train_step left it at 1 for every
    benchmark after them)."""
    seen, after = _torch_threads_seen(module_name, test_name, *args)
    assert seen == [1] and after == 2


def test_kernels_torch_side_uses_the_benchmarks_thread_count():
    seen, after = _torch_threads_seen("bench_kernels", "test_torch", "gru", (3, 2, 3, 4),
                                      2, "train")
    assert seen == [2] and after == 2
    seen, after = _torch_threads_seen("bench_kernels", "test_torch", "gru", (3, 2, 3, 4),
                                      1, "infer")
    assert seen == [1] and after == 2


def _row(threads, mode, precision="fp32", torch_precision="fp32", torch=True):
    row = {"cell": "lstm", "T": 2, "B": 1, "I": 1, "H": 2, "threads": threads, "mode": mode,
           "precision": precision, "torch_precision": torch_precision,
           "ours": {"median_ms": 1.0}, "ratio": 0.5}
    if torch:
        row["torch"] = {"median_ms": 2.0}
    return row


def _summarize(tmp_path, *payloads):
    paths = []
    for i, payload in enumerate(payloads):
        path = tmp_path / f"s{i}.json"
        path.write_text(json.dumps(payload))
        paths.append(str(path))
    return subprocess.run([sys.executable, os.path.join(BENCHMARKS, "summarize_sittings.py"),
                           *paths], capture_output=True, text=True, timeout=60)


def test_summarize_sittings_keeps_precisions_apart_and_leaves_out_rows_without_torch(
        tmp_path):
    """An int8 row is summarised under its own heading, never as a float32 one; a row
    timed without torch (--vs none) is left out with a note, not a KeyError."""
    result = _summarize(tmp_path, {"spec": {}, "rows": [
        _row(1, "infer"), _row(1, "infer", precision="int8"), _row(1, "train", torch=False)]})
    assert result.returncode == 0, result.stderr
    headings = [line for line in result.stdout.splitlines() if line.startswith("###")]
    assert headings == ["### threads: 1", "### threads: 1 (recurrent int8, torch fp32)"]
    assert "left out 1 row(s) timed without torch" in result.stderr


def test_summarize_sittings_names_a_file_that_is_not_a_result(tmp_path):
    result = _summarize(tmp_path, {"rows_of_mine": []})
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip() == (f"error: {tmp_path / 's0.json'}: not a recurrent bench "
                                     f"--json result (no rows)")
