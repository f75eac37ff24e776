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


def test_summarize_sittings_names_a_sitting_the_bench_stopped_early(tmp_path):
    """A file `recurrent bench --json` wrote after a failure or Ctrl-C holds only the rows
    measured before it: its rows are summarised and the file is named as incomplete."""
    result = _summarize(tmp_path, {"spec": {}, "rows": [_row(1, "infer"), _row(1, "train")]},
                        {"spec": {}, "rows": [_row(1, "infer")], "error": "exit code -9"})
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == (
        f"{tmp_path / 's1.json'}: incomplete sitting (the bench stopped: exit code -9); its rows "
        f"are summarised, the rows it did not reach have one sitting fewer")
    assert "| lstm | (2, 1, 1, 2) | 1.00 / 2.00 | 0.50 | 1.00 / 2.00 | 0.50 [0.50-0.50] |" \
        in result.stdout


def test_summarize_sittings_pairs_1_and_2_threads_within_one_sitting(tmp_path):
    """The 2-threads-vs-1 speedup divides each sitting's 1-thread time by the same
    sitting's 2-thread time: a sitting that stopped before its 2-thread row has no
    speedup, and its 1-thread row is not paired with another sitting's 2-thread row."""
    def row(threads, ms):
        return {**_row(threads, "train"), "ours": {"median_ms": ms}}

    stopped = {"spec": {}, "rows": [row(1, 8.0)], "error": "exit code -9"}
    whole = {"spec": {}, "rows": [row(1, 4.0), row(2, 2.0)]}
    result = _summarize(tmp_path, stopped, whole)
    assert result.returncode == 0, result.stderr
    assert "2 threads vs 1 (train, ours): lstm (2, 1, 1, 2): 2.00x" in result.stdout


def test_distributed_worker_times_two_ranks_and_leaves_no_run_directory(tmp_path):
    """bench_distributed.py's worker on two ranks (the data-parallel step reads the
    trainer's stop request) prints its result and removes the run directory it made."""
    pytest.importorskip("mpi4py", reason="mpi4py not installed (the mpi extra)")
    from recurrent.launch import mpiexec
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    env.pop("RECURRENT_NUM_THREADS", None)
    job = subprocess.run([mpiexec(), "-n", "2", sys.executable,
                          os.path.join(BENCHMARKS, "bench_distributed.py"), "--worker",
                          "default", "--threads", "1", "--steps", "1", "--warmup", "0"],
                         capture_output=True, text=True, timeout=300, env=env)
    assert job.returncode == 0, job.stderr
    result = json.loads(job.stdout.strip().splitlines()[-1])
    assert result["ranks"] == 2 and result["tokens_per_s"] > 0
    assert os.listdir(tmp_path) == []


def test_charlm_quality_times_the_trainers_steps_until_the_target(tmp_path):
    """charlm_quality.py runs the real Trainer with its step timed: with a target the
    first evaluation meets, it stops there and says so."""
    job = subprocess.run([sys.executable, os.path.join(BENCHMARKS, "charlm_quality.py"),
                          "--threads", "1", "--eval-every", "2", "--target", "10",
                          "--out", str(tmp_path / "run")],
                         capture_output=True, text=True, timeout=300)
    assert job.returncode == 0, job.stderr
    summary = json.loads(job.stdout.strip().splitlines()[-1])
    assert summary["reached"] and summary["steps"] == 2 and summary["median_step_ms"] > 0


def test_regularizers_refuses_a_cell_without_masks_before_timing(tmp_path):
    """bench_regularizers.py times recurrent dropout and zoneout: a cell whose mask_kinds
    lack them (the example plugin's peephole_lstm) is refused before any row, not a
    traceback after the other cells' rows."""
    pytest.importorskip("recurrent_peephole", reason="examples/recurrent-peephole not installed")
    env = {k: v for k, v in os.environ.items() if k != "RECURRENT_NO_ENTRYPOINTS"}
    env.update(RECURRENT_PLUGINS="peephole")
    job = subprocess.run([sys.executable, os.path.join(BENCHMARKS, "bench_regularizers.py"),
                          "--cell", "lstm,peephole_lstm", "--config", "3,2,2,3", "--rounds",
                          "1", "--repeats", "1"],
                         capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert job.returncode == 2 and job.stdout == ""
    assert "Traceback" not in job.stderr
    assert job.stderr.strip().splitlines()[-1].endswith(
        "--cell peephole_lstm: the cell takes no recurrent dropout and zoneout masks "
        "(its mask_kinds: none)")
