"""Data-parallel training on MPI ranks (recurrent/distributed.py, data_parallel.py,
launch.py), run for real under the mpiexec of the `mpi` extra (MPICH)."""
from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from helpers import bundled_reviews, write_reviews

from recurrent.checkpoint import load_arrays
from recurrent.distributed import row_share
from recurrent.extras import install_hint

pytest.importorskip("mpi4py", reason="mpi4py not installed (the mpi extra)")
from recurrent.launch import mpiexec, without_ranks  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
TINY = ["--steps", "8", "--hidden", "16", "--batch-size", "7", "--seq-len", "12",
        "--eval-every", "4", "--threads", "1", "--quiet", "--no-plot"]


def _env(tmp_path, **extra):
    env = {**os.environ,  # RECURRENT_CACHE_DIR: the session's (tests/conftest.py)
           # no empty entry: that would put the working directory (a source checkout,
           # kernels not compiled) before the installed package
           "PYTHONPATH": os.pathsep.join(p for p in [str(tmp_path / "site"), HERE,
                                                     os.environ.get("PYTHONPATH", "")] if p)}
    env.pop("RECURRENT_NUM_THREADS", None)
    env.update({k: str(v) for k, v in extra.items()})
    return env


def recurrent_cmd(args, tmp_path, ranks=None, timeout=120, **env):
    """`recurrent ARGS`, under `mpiexec -n RANKS` when ranks is given."""
    launcher = [] if ranks is None else [mpiexec(), "-n", str(ranks)]
    return subprocess.run([*launcher, sys.executable, "-m", "recurrent", *args],
                          capture_output=True, text=True, timeout=timeout, cwd=tmp_path,
                          env=_env(tmp_path, **env))


def losses(run):
    """(kind, step, loss) of every record of a run's metrics.jsonl."""
    import json
    out = []
    with open(os.path.join(run, "metrics.jsonl")) as f:
        for line in f:
            r = json.loads(line)
            if r["kind"] == "train":
                out.append(("train", r["step"], r["loss"]))
            elif r["kind"] == "eval":
                out.append(("eval", r["step"], r["metrics"]["loss"]))
    return out


def assert_same_run(a, b, tol=2e-4):
    la, lb = losses(a), losses(b)
    assert [x[:2] for x in la] == [x[:2] for x in lb] and la
    np.testing.assert_allclose([x[2] for x in la], [x[2] for x in lb], rtol=tol)
    pa, _ = load_arrays(os.path.join(a, "last.npz"))
    pb, _ = load_arrays(os.path.join(b, "last.npz"))
    assert sorted(pa) == sorted(pb)
    for key in pa:
        assert pa[key].shape == pb[key].shape, key
        np.testing.assert_allclose(pa[key], pb[key], atol=tol, err_msg=key)


@pytest.fixture
def faulty_plugin(tmp_path):
    """tests/mpi/faulty_lm.py registered through a real entry point (a dist-info on
    PYTHONPATH), so `python -m recurrent` on every rank finds the task."""
    info = tmp_path / "site" / "faulty_lm-0.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: faulty-lm\nVersion: 0.0\n")
    (info / "entry_points.txt").write_text("[recurrent]\nfaulty = mpi.faulty_lm\n")
    return {"RECURRENT_NO_ENTRYPOINTS": "", "RECURRENT_PLUGINS": "faulty"}


def test_row_share_partitions_every_batch():
    for rows in range(0, 12):
        for size in range(1, 5):
            shares = [row_share(rows, r, size) for r in range(size)]
            assert [i for s in shares for i in range(rows)[s]] == list(range(rows))
            assert max(s.stop - s.start for s in shares) - min(
                s.stop - s.start for s in shares) <= 1


def test_without_ranks_drops_only_the_ranks_option():
    assert without_ranks(["train", "char-lm", "--ranks", "2", "--steps", "3"]) == \
        ["train", "char-lm", "--steps", "3"]
    assert without_ranks(["train", "--ranks=4", "--resume", "r"]) == ["train", "--resume", "r"]


@pytest.mark.parametrize("task,extra", [
    ("char-lm", ["--dropout", "0.3", "--layers", "2"]),      # per-step outputs, carried
                                                              # state, dropout masks
    ("char-lm", ["--recurrent-dropout", "0.3", "--zoneout", "0.2"]),  # cell masks
    # pooled outputs, lengths, cross-fitted wide part
    ("sentiment", ["--hidden", "8", "--steps", "6", "--data", "slice.csv",
                   "--wide-folds", "5", "--ensemble", "1"]),
    ("forecast", ["--tbptt", "0"]),                          # float features
    ("forecast", ["--model", "esrnn", "--es-train", "joint"]),  # the task's parameters
    ("forecast", ["--average", "ema:0.9"]),                  # weight averaging
    ("seq2seq", ["--max-train", "300", "--max-eval", "40"]),  # pair batches, decoding
    # masks over time in the encoder and decoder, whose steps each rank trims to its rows
    ("seq2seq", ["--max-train", "300", "--max-eval", "40", "--zoneout", "0.3",
                 "--recurrent-dropout", "0.2", "--layers", "2", "--dropout", "0.3"]),
])
def test_two_ranks_train_as_one_rank_does(tmp_path, task, extra):
    args = [a for a in TINY if task == "char-lm" or a not in ("--seq-len", "12")]
    if task == "sentiment":  # a small real slice: its baselines fit in seconds
        write_reviews(tmp_path / "slice.csv", bundled_reviews(160))
    one = recurrent_cmd(["train", task, *args, *extra, "--out", "one"], tmp_path)
    assert one.returncode == 0, one.stderr
    two = recurrent_cmd(["train", task, *args, *extra, "--out", "two"], tmp_path, ranks=2)
    assert two.returncode == 0, two.stderr
    assert two.stderr == ""
    assert two.stdout.count("done after") == 1  # rank 0 alone prints
    assert sorted(os.listdir(tmp_path / "one")) == sorted(os.listdir(tmp_path / "two"))
    assert_same_run(tmp_path / "one", tmp_path / "two")


@pytest.mark.parametrize("task,extra", [
    ("char-lm", []), ("forecast", ["--inputs", "level", "--window", "30"]),  # no candidates
    ("forecast", ["--forecast_model", "esrnn", "--es_train", "joint", "--inputs", "level",
                  "--window", "30"]),
    ("forecast", ["--average", "ema:0.9", "--inputs", "level", "--window", "30"]),  # averaging
])
def test_replicas_stay_bitwise_equal(tmp_path, task, extra):
    out = tmp_path / "out"
    out.mkdir()
    args = ["--steps", "6", "--hidden", "16", "--batch_size", "5", "--threads", "1",
            "--eval_every", "3", *extra]
    job = subprocess.run([mpiexec(), "-n", "2", sys.executable,
                          os.path.join(HERE, "mpi", "replicas.py"), str(out), task, *args],
                         capture_output=True, text=True, timeout=120, env=_env(tmp_path))
    assert job.returncode == 0, job.stderr
    p0, p1 = np.load(out / "rank-0.npy"), np.load(out / "rank-1.npy")
    assert p0.tobytes() == p1.tobytes()
    if "--average" in extra:  # the averages too, and they differ from the trained ones
        a0, a1 = np.load(out / "rank-0-average.npy"), np.load(out / "rank-1-average.npy")
        assert a0.tobytes() == a1.tobytes()
        assert not np.array_equal(a0, p0[:a0.size])
    trained, _ = load_arrays(str(out / "run" / "last.npz"))
    assert not np.array_equal(np.concatenate([v.ravel() for k, v in sorted(trained.items())
                                              if k.startswith("param/")]), 0)


def test_an_ensemble_trains_each_member_data_parallel(tmp_path):
    write_reviews(tmp_path / "slice.csv", bundled_reviews(160))
    args = ["train", "sentiment", "--data", "slice.csv", "--hidden", "8", "--steps", "6",
            "--batch-size", "7", "--eval-every", "3", "--threads", "1", "--quiet",
            "--no-plot", "--ensemble", "2"]
    one = recurrent_cmd([*args, "--out", "one"], tmp_path)
    assert one.returncode == 0, one.stderr
    two = recurrent_cmd([*args, "--out", "two"], tmp_path, ranks=2)
    assert two.returncode == 0, two.stderr
    assert two.stdout.count("done after") == 1 and "ensemble valid loss" in two.stdout
    for member in ("member-0", "member-1"):
        assert_same_run(tmp_path / "one" / member, tmp_path / "two" / member)


def test_resume_at_another_rank_count(tmp_path):
    first = ["--steps", "6", "--schedule", "constant"]
    one = recurrent_cmd(["train", "char-lm", *TINY, *first, "--out", "one"], tmp_path)
    assert one.returncode == 0, one.stderr
    one = recurrent_cmd(["train", "--resume", "one", "--steps", "12"], tmp_path)
    assert one.returncode == 0, one.stderr
    many = recurrent_cmd(["train", "char-lm", *TINY, *first, "--out", "many"], tmp_path,
                         ranks=3)  # 7 rows: 3 + 2 + 2
    assert many.returncode == 0, many.stderr
    many = recurrent_cmd(["train", "--resume", "many", "--steps", "12"], tmp_path, ranks=2)
    assert many.returncode == 0, many.stderr
    assert_same_run(tmp_path / "one", tmp_path / "many")


def _one_line(stderr):
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    return lines[0]


def test_candidates_that_all_diverge_end_every_rank_alike(tmp_path):
    args = ["train", "forecast", "--lr", "1e30", "--hidden", "8", "--epochs", "2",
            "--window", "30", "--threads", "1", "--no-plot", "--quiet", "--out", "run"]
    one = recurrent_cmd(args, tmp_path)
    assert one.returncode != 0
    expected = _one_line(one.stderr)
    assert expected.startswith("Error: every candidate's training diverged; candidate 1")
    two = recurrent_cmd([*args[:-1], "run2"], tmp_path, ranks=2)
    assert two.returncode == one.returncode
    assert _one_line(two.stderr) == expected.replace("run/", "run2/")  # no MPI abort


@pytest.mark.parametrize("mode,expected", [
    ("kill", "Error: rank 1 on "),
    ("raise", "Error: rank 1: internal error in plugin 'faulty' (version 0.0) "
              "(RuntimeError: evaluation 3 is broken)"),
])
def test_a_failing_rank_stops_the_job_with_one_line(tmp_path, faulty_plugin, mode, expected):
    """A rank that dies or raises ends the job at once: waiting for the other ranks' 600 s
    timeout would exceed recurrent_cmd's 120 s and fail the test."""
    args = ["train", "faulty-lm", *TINY, "--steps", "40", "--eval-every", "2",
            "--out", "run", "--ranks", "2"]
    job = recurrent_cmd(args, tmp_path, FAULTY_RANK=1, FAULTY_EVALUATION=3, FAULTY_MODE=mode,
                        **faulty_plugin)
    assert job.returncode != 0
    line = _one_line(job.stderr)
    assert line.startswith(expected), line
    # the checkpoint of the last evaluation before (step 4) is intact and resumes
    arrays, meta = load_arrays(str(tmp_path / "run" / "last.npz"))
    assert meta["step"] == 4
    resumed = recurrent_cmd(["train", "--resume", "run", "--steps", "8"], tmp_path,
                            **faulty_plugin)
    assert resumed.returncode == 0, resumed.stderr


def test_debug_shows_a_failing_ranks_traceback_and_stops_every_rank(tmp_path, faulty_plugin):
    """--debug, which a rank's error line suggests: the rank prints its traceback, then
    stops the job as without --debug; its exception alone would end that rank only and
    leave the other waiting for it until RECURRENT_MPI_TIMEOUT."""
    args = ["--debug", "train", "faulty-lm", *TINY, "--steps", "40", "--eval-every", "2",
            "--out", "run", "--ranks", "2"]
    job = recurrent_cmd(args, tmp_path, FAULTY_RANK=1, FAULTY_EVALUATION=3, FAULTY_MODE="raise",
                        RECURRENT_MPI_TIMEOUT=60, **faulty_plugin)
    assert job.returncode == 1, job.stderr
    assert "Traceback" in job.stderr and "RuntimeError: evaluation 3 is broken" in job.stderr
    assert job.stderr.splitlines()[-1].startswith(
        "Error: rank 1: internal error in plugin 'faulty' (version 0.0)"), job.stderr


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full")
def test_a_launcher_whose_stderr_is_full_trains_on_without_its_notes(tmp_path):
    """Notes that cannot be written are lost and the run goes on, as one process's
    (progress.aside): 2>/dev/full, and a note printed at the start (more threads than
    cores)."""
    threads = str(os.cpu_count() or 1)  # on each of 2 ranks: more than the cores
    args = [a for a in TINY if a not in ("--threads", "1")]
    with open("/dev/full", "w") as full:
        job = subprocess.run([sys.executable, "-m", "recurrent", "train", "char-lm", *args,
                              "--threads", threads, "--out", "run", "--ranks", "2"],
                             stdout=subprocess.PIPE, stderr=full, text=True, cwd=tmp_path,
                             env=_env(tmp_path), timeout=120)
    assert job.returncode == 0
    assert job.stdout.startswith("done after 8 steps"), job.stdout


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full")
def test_a_launcher_whose_stdout_is_full_says_so_as_one_process_does(tmp_path):
    with open("/dev/full", "w") as full:
        job = subprocess.run([sys.executable, "-m", "recurrent", "train", "char-lm", *TINY,
                              "--out", "run", "--ranks", "2"],
                             stdout=full, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
                             env=_env(tmp_path), timeout=120)
    assert job.returncode == 1
    assert _one_line(job.stderr) == "Error: cannot write standard output: No space left on device"


def _processes_of(pattern: str) -> list[int]:
    """Pids of the processes whose command line holds ``pattern``."""
    found = subprocess.run(["pgrep", "-f", "--", pattern], capture_output=True, text=True)
    return [int(pid) for pid in found.stdout.split()]


@contextlib.contextmanager
def _endless_ranks_job(tmp_path, **pipes):
    """The launcher of a `train --ranks 2` run with no end in sight, once the run's first
    checkpoint is written; on the way out it and whatever of its job is left are killed."""
    run = tmp_path / "run"
    launcher = subprocess.Popen(
        [sys.executable, "-m", "recurrent", "train", "char-lm", *TINY, "--steps", "1000000",
         "--out", str(run), "--ranks", "2"], cwd=tmp_path, env=_env(tmp_path), **pipes)
    try:
        deadline = time.monotonic() + 120
        while not (run / "last.npz").exists():
            assert time.monotonic() < deadline and launcher.poll() is None, \
                "no checkpoint written"
            time.sleep(0.1)
        yield launcher
    finally:
        launcher.kill()
        for pid in _processes_of(f"--out {run}"):
            os.kill(pid, signal.SIGKILL)


def _assert_job_ends(tmp_path, what):
    """Wait up to 2 minutes for every process of the run's job to end."""
    deadline = time.monotonic() + 120
    while _processes_of(f"--out {tmp_path / 'run'}") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _processes_of(f"--out {tmp_path / 'run'}") == [], f"{what} left running"


def test_mpiexec_killed_under_the_launcher_is_one_line(tmp_path):
    """mpiexec itself killed (by the out-of-memory killer, or kill -9) prints nothing: the
    launcher says what happened in one line and exits as a shell reports that kill; the
    ranks end with mpiexec and the checkpoint they saved resumes."""
    with _endless_ranks_job(tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True) as launcher:
        children = subprocess.run(["pgrep", "-P", str(launcher.pid)], capture_output=True,
                                  text=True).stdout.split()
        assert len(children) == 1, children  # mpiexec
        os.kill(int(children[0]), signal.SIGKILL)
        out, err = launcher.communicate(timeout=120)
        _assert_job_ends(tmp_path, "ranks")
    assert launcher.returncode == 128 + signal.SIGKILL, err
    assert _one_line(err).startswith("Error: mpiexec was killed by SIGKILL"), err
    resumed = recurrent_cmd(["train", "--resume", "run", "--steps", "12"], tmp_path)
    assert resumed.returncode == 0, resumed.stderr


def test_a_launcher_killed_outright_stops_its_ranks_with_a_checkpoint(tmp_path):
    """The `--ranks` launcher killed by SIGKILL cannot pass anything on: mpiexec gets a
    SIGTERM from the kernel as its parent ends, and the ranks stop as at a SIGTERM, with
    a checkpoint, instead of training on unwatched."""
    with _endless_ranks_job(tmp_path, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL) as launcher:
        launcher.kill()
        launcher.wait()
        _assert_job_ends(tmp_path, "mpiexec or ranks")
    _, meta = load_arrays(str(tmp_path / "run" / "last.npz"))
    resumed = recurrent_cmd(["train", "--resume", "run", "--steps", str(meta["step"] + 2)],
                            tmp_path)
    assert resumed.returncode == 0, resumed.stderr


def test_a_raising_rank_under_mpiexec_prints_one_line(tmp_path, faulty_plugin):
    """By hand (mpiexec, no --ranks launcher to filter its output): the rank's own line
    alone, without the MPI library's report of the abort."""
    args = ["train", "faulty-lm", *TINY, "--steps", "40", "--eval-every", "2", "--out", "run"]
    job = recurrent_cmd(args, tmp_path, ranks=2, FAULTY_RANK=1, FAULTY_EVALUATION=3,
                        FAULTY_MODE="raise", **faulty_plugin)
    assert job.returncode != 0
    assert _one_line(job.stderr).startswith(
        "Error: rank 1: internal error in plugin 'faulty' (version 0.0) "
        "(RuntimeError: evaluation 3 is broken)")


def test_a_hanging_rank_ends_the_job_after_the_timeout(tmp_path, faulty_plugin):
    args = ["train", "faulty-lm", *TINY, "--steps", "40", "--out", "run", "--ranks", "2"]
    job = recurrent_cmd(args, tmp_path, FAULTY_RANK=1, FAULTY_EVALUATION=1, FAULTY_MODE="hang",
                        RECURRENT_MPI_TIMEOUT=3, **faulty_plugin)
    assert job.returncode != 0
    line = _one_line(job.stderr)
    assert line.startswith("Error: rank 0: no answer from the other ranks for 3 s"), line


def ctrl_c_at_line(args, cwd, env, starts, wait=0.0, again=None):
    """`python -m recurrent ARGS` run in ``cwd`` in a session of its own, sent SIGINT as a
    terminal's Ctrl-C is (to the whole group) once a stdout line starts with ``starts``
    (and ``wait`` seconds more), and a second one ``again`` seconds later if given;
    (exit status, the rest of stdout, stderr)."""
    proc = subprocess.Popen([sys.executable, "-m", "recurrent", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=cwd, env=env, start_new_session=True)
    try:
        for line in proc.stdout:
            if line.startswith(starts):
                break
        time.sleep(wait)
        os.killpg(proc.pid, signal.SIGINT)
        if again is not None:
            time.sleep(again)
            os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    return proc.returncode, out, err


def test_ctrl_c_on_the_launcher_saves_a_checkpoint(tmp_path):
    code, out, err = ctrl_c_at_line(
        ["train", "char-lm", *TINY[:-2], "--no-plot", "--steps", "100000", "--log-every",
         "1", "--out", "run", "--ranks", "2"], tmp_path, _env(tmp_path), "step 5")
    assert code == 130, err
    assert "interrupted at step" in out
    assert err.strip() == ""
    _, meta = load_arrays(str(tmp_path / "run" / "last.npz"))
    assert meta["step"] >= 5
    resumed = recurrent_cmd(["train", "--resume", "run", "--steps", str(meta["step"] + 2)],
                            tmp_path, ranks=2)
    assert resumed.returncode == 0, resumed.stderr


def test_a_hostfile_job_on_two_local_hosts(tmp_path):
    (tmp_path / "hosts").write_text("localhost:1\n127.0.0.1:1\n")
    job = subprocess.run([mpiexec(), "-f", "hosts", "-n", "2", sys.executable, "-m",
                          "recurrent", "train", "char-lm", *TINY, "--out", "run"],
                         capture_output=True, text=True, timeout=120, cwd=tmp_path,
                         env=_env(tmp_path))
    assert job.returncode == 0, job.stderr
    assert (tmp_path / "run" / "best.npz").exists()


def test_info_shows_the_rank_layout(tmp_path):
    job = recurrent_cmd(["info"], tmp_path, ranks=2)
    assert job.returncode == 0, job.stderr
    mpi = [line for line in job.stdout.splitlines() if line.startswith("mpi ")]
    assert len(mpi) == 1 and "MPICH" in mpi[0] and "2 ranks on 1 host(s)" in mpi[0], job.stdout
    assert "threads     1 by default" in job.stdout  # 2 cores / 2 ranks... or 1 core


def test_a_tuning_note_is_printed_once_for_the_job(tmp_path):
    """A note of the kernel tuning (here on a RECURRENT_TUNE it does not read) comes from
    rank 0 alone, in `train --ranks` and in `info` under mpiexec: every rank meets it, and
    the other ranks are silent unless they fail."""
    note = "recurrent: RECURRENT_TUNE='bogus' is not on or off; tuning stays on"
    # tuning stays on and writes its cache: one of this test's own, not the session's
    cache = str(tmp_path / "cache")
    train = recurrent_cmd(["train", "char-lm", *TINY, "--max-chars", "20000", "--out", "run",
                           "--ranks", "2"], tmp_path, RECURRENT_TUNE="bogus",
                          RECURRENT_CACHE_DIR=cache)
    info = recurrent_cmd(["info"], tmp_path, ranks=2, RECURRENT_TUNE="bogus",
                         RECURRENT_CACHE_DIR=cache)
    for job in (train, info):
        assert job.returncode == 0, job.stderr
        assert job.stderr.splitlines().count(note) == 1, job.stderr


def test_ranks_without_mpi4py_says_how_to_install(tmp_path):
    code = ("import sys; sys.modules['mpi4py'] = None; from recurrent.cli import main; "
            "sys.argv = ['recurrent', 'train', 'char-lm', '--ranks', '2']; main()")
    job = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, cwd=tmp_path)
    assert job.returncode == 1
    assert _one_line(job.stderr) == ("Error: --ranks needs mpi4py and an MPI library: "
                                     f"{install_hint('mpi')}")
    assert not (tmp_path / "runs").exists()


def test_ranks_disagreeing_with_mpiexec_is_refused(tmp_path):
    job = recurrent_cmd(["train", "char-lm", *TINY, "--ranks", "3", "--out", "run"],
                        tmp_path, ranks=2)
    assert job.returncode == 1
    assert _one_line(job.stderr).startswith("Error: --ranks 3: this job already runs on 2")
    assert not (tmp_path / "run").exists()


def test_bad_options_under_mpiexec_give_one_line_and_no_abort(tmp_path):
    job = recurrent_cmd(["train", "char-lm", "--data", "missing.txt", "--out", "run"],
                        tmp_path, ranks=2)
    assert job.returncode == 1
    assert "missing.txt" in _one_line(job.stderr)
    assert not (tmp_path / "run").exists()


def test_no_mpi_runs_each_process_on_its_own_under_a_launcher(tmp_path):
    job = recurrent_cmd(["info"], tmp_path, ranks=2, RECURRENT_NO_MPI=1)
    assert job.returncode == 0, job.stderr
    mpi = [line for line in job.stdout.splitlines() if line.startswith("mpi ")]
    assert len(mpi) == 2 and all("mpi4py installed" in line for line in mpi), job.stdout


@pytest.mark.parametrize("data, reason", [
    # standard input reaches one process only
    ("-", "standard input reaches one process only"),
    # `--data /dev/fd/0 < FILE`: a regular file here, but this process's descriptor
    ("/dev/fd/0", "/dev/fd/0 is a descriptor of this process, which the ranks do not share"),
])
def test_ranks_refuse_data_on_standard_input(tmp_path, data, reason):
    """Every rank reads the data itself: data given on this process's standard input is
    refused in one line before mpiexec starts (saying why, not that it is a pipe),
    rather than mpiexec's own failure messages."""
    (tmp_path / "text.txt").write_text("to be or not to be, that is the question\n" * 400)
    from test_distributed_startup import _run_job
    with open(tmp_path / "text.txt") as text:
        job = _run_job([sys.executable, "-m", "recurrent", "train", "char-lm", *TINY,
                        "--data", data, "--ranks", "2", "--out", "run"], tmp_path,
                       stdin=text)
    assert job.returncode == 1
    assert _one_line(job.stderr) == (
        f"Error: --data {data}: every rank of a data-parallel run opens and reads the data "
        f"file itself, so it must be a regular file that can be opened more than once, and "
        f"{reason}; save the data to a file and give its path"), job.stderr
    assert not (tmp_path / "run").exists()


def test_a_run_trained_on_standard_input_is_not_resumed_on_ranks(tmp_path):
    """A run trained from standard input (one process) cannot give its ranks its data
    when resumed data-parallel: one line saying to resume it on one process, not "stdin
    is empty" from a rank, nor a rank waiting until the MPI timeout."""
    (tmp_path / "text.txt").write_text("to be or not to be, that is the question\n" * 400)
    from test_distributed_startup import _run_job
    with open(tmp_path / "text.txt") as data:
        job = _run_job([sys.executable, "-m", "recurrent", "train", "char-lm", *TINY,
                        "--data", "-", "--out", "run"], tmp_path, stdin=data)
    assert job.returncode == 0, job.stderr
    before = (tmp_path / "run" / "last.npz").read_bytes()
    with open(tmp_path / "text.txt") as data:
        job = _run_job([sys.executable, "-m", "recurrent", "train", "--resume", "run",
                        "--steps", "4", "--ranks", "2"], tmp_path, stdin=data, timeout=60)
    assert job.returncode == 1
    assert _one_line(job.stderr) == (
        "Error: the run run's data is standard input: every rank of a data-parallel run "
        "opens and reads the data file itself, so it must be a regular file that can be "
        "opened more than once, and standard input reaches one process only; resume it on "
        "one process, without --ranks (or mpiexec)"), job.stderr
    assert (tmp_path / "run" / "last.npz").read_bytes() == before


def test_ranks_refuse_data_from_a_named_pipe(tmp_path):
    """A named pipe gives its data to the first process that reads it; the next rank
    would wait for it until the MPI timeout, so it is refused in one line at once."""
    os.mkfifo(tmp_path / "pipe")
    from test_distributed_startup import _run_job
    job = _run_job([sys.executable, "-m", "recurrent", "train", "char-lm", *TINY,
                    "--data", "pipe", "--ranks", "2", "--out", "run"], tmp_path, timeout=60)
    assert job.returncode == 1
    assert _one_line(job.stderr).startswith(
        "Error: --data pipe: every rank of a data-parallel run opens and reads the data "
        "file itself, so it must be a regular file"), job.stderr
    assert not (tmp_path / "run").exists()


def test_ranks_train_with_data_waiting_on_standard_input(tmp_path):
    """A --ranks run started with something on its standard input (a pipe into a job
    script, say) trains: no rank reads it, and mpiexec is not given it to pass on."""
    (tmp_path / "input.txt").write_text("y\n" * 200000)
    from test_distributed_startup import _run_job
    with open(tmp_path / "input.txt") as given:
        job = _run_job([sys.executable, "-m", "recurrent", "train", "char-lm", *TINY,
                        "--ranks", "2", "--out", "run"], tmp_path, timeout=120, stdin=given)
    assert job.returncode == 0, job.stderr
    assert (tmp_path / "run" / "best.npz").exists()
