"""A SIGTERM to a data-parallel job: MPICH's mpiexec (Hydra) forwards every SIGTERM it
receives to every rank and waits for them to end (it sends no SIGKILL of its own), and
the `--ranks` launcher passes its SIGTERM on to mpiexec. The ranks agree on a step, save
a checkpoint and exit with 143, as one process does (tests/test_sigterm.py). Run for real
under the mpiexec of the `mpi` extra."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from test_distributed import _env
from test_sigterm import last_arrays, signal_at_line, stopped_step

pytest.importorskip("mpi4py", reason="mpi4py not installed (the mpi extra)")
from recurrent.launch import mpiexec  # noqa: E402

RUN = ["--hidden", "16", "--batch-size", "7", "--seq-len", "12", "--threads", "1",
       "--log-every", "1", "--eval-every", "0", "--no-plot", "--schedule", "constant"]


def _left_behind(pattern: str) -> list[int]:
    """Pids of the processes whose command line holds ``pattern``."""
    found = subprocess.run(["pgrep", "-f", "--", pattern], capture_output=True, text=True)
    return [int(pid) for pid in found.stdout.split()]


def _recurrent(*args):
    return [sys.executable, "-m", "recurrent", *map(str, args)]


@pytest.mark.parametrize("launcher", ["--ranks", "mpiexec"])
def test_sigterm_to_the_launcher_stops_every_rank_at_a_step_with_a_checkpoint(
        tmp_path, launcher):
    run = tmp_path / "run"
    args = ["train", "char-lm", *RUN, "--steps", "1000000", "--out", run]
    command = (_recurrent(*args, "--ranks", "2") if launcher == "--ranks"
               else [mpiexec(), "-n", "2", *_recurrent(*args)])
    try:
        code, out, err = signal_at_line(command, tmp_path, "step 3/", env=_env(tmp_path))
        assert _left_behind(f"--out {run}") == [], "mpiexec or ranks still running"
    finally:
        for pid in _left_behind(f"--out {run}"):
            os.kill(pid, signal.SIGKILL)
    assert code == 128 + signal.SIGTERM, err
    assert err == ""
    step = stopped_step(out, str(run))
    assert last_arrays(run)[1]["step"] == step

    end = step + 2  # resumed on two ranks, it ends where an uninterrupted run does
    resumed = subprocess.run(_recurrent("train", "--resume", run, "--steps", end,
                                        "--ranks", "2"),
                             capture_output=True, text=True, cwd=tmp_path,
                             env=_env(tmp_path), timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    full = subprocess.run(_recurrent("train", "char-lm", *RUN, "--steps", end, "--out",
                                     tmp_path / "full", "--ranks", "2"),
                          capture_output=True, text=True, cwd=tmp_path, env=_env(tmp_path),
                          timeout=120)
    assert full.returncode == 0, full.stderr
    got, want = last_arrays(run)[0], last_arrays(tmp_path / "full")[0]
    assert sorted(got) == sorted(want)
    for name in want:
        np.testing.assert_array_equal(got[name], want[name], err_msg=name)


def test_a_sighup_to_the_launcher_alone_ends_every_rank_at_once(tmp_path):
    """`kill -HUP` of `recurrent train --ranks 2` aborts it as it aborts one process
    (`Aborted.`, 129) and ends the ranks with it, rather than printing `Aborted.` while
    they train on to the end of the run. The run is too long for any machine to end it
    before the signal reaches the ranks, however late that is."""
    run = tmp_path / "run"
    command = _recurrent("train", "char-lm", *RUN, "--steps", "1000000", "--out", run,
                         "--ranks", "2")
    try:
        code, out, err = signal_at_line(command, tmp_path, "step 3/", signals=(signal.SIGHUP,),
                                        env=_env(tmp_path))
        assert _left_behind(f"--out {run}") == [], "mpiexec or ranks still running"
    finally:
        for pid in _left_behind(f"--out {run}"):
            os.kill(pid, signal.SIGKILL)
    assert code == 128 + signal.SIGHUP, err
    assert err.split() == ["Aborted."]
    assert "done after" not in out, out


@pytest.mark.parametrize("pause", [0.0, 0.5])
def test_a_ctrl_c_the_ranks_stopped_at_keeps_its_exit_status_after_a_sigterm(tmp_path,
                                                                            pause):
    """A Ctrl-C at the terminal (the job's process group) and then, at once or once
    mpiexec has forwarded the Ctrl-C, a SIGTERM to the `--ranks` launcher: the ranks stop
    at a step for the Ctrl-C, which reached them first (the SIGTERM after it changes
    nothing: the launcher passes it to the ranks, not to mpiexec, which may take a second
    signal for a second Ctrl-C and end the ranks at once), and say so themselves; the
    launcher passes their exit status on and adds no line of its own."""
    run = tmp_path / "run"
    proc = subprocess.Popen(
        _recurrent("train", "char-lm", *RUN, "--steps", "1000000", "--out", run,
                   "--ranks", "2"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
        env=_env(tmp_path), start_new_session=True)
    try:
        for line in proc.stdout:
            if line.startswith("step 3/"):
                break
        os.killpg(proc.pid, signal.SIGINT)  # as the terminal sends a Ctrl-C
        time.sleep(pause)
        os.kill(proc.pid, signal.SIGTERM)
        out, err = proc.communicate(timeout=120)
        assert _left_behind(f"--out {run}") == [], "mpiexec or ranks still running"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        for pid in _left_behind(f"--out {run}"):
            os.kill(pid, signal.SIGKILL)
    assert proc.returncode == 128 + signal.SIGINT, err
    assert err == ""
    last = out.splitlines()[-1]
    assert last.startswith("interrupted at step ") and ": checkpoint saved; " in last, out


def test_a_reader_that_goes_away_stops_the_ranks_with_a_checkpoint(tmp_path):
    """`recurrent train ... --ranks 2 | head -1`: once the launcher cannot write its
    output, it stops the ranks as a SIGTERM does (a checkpoint at their next step) and
    ends quietly with 1, as one process ends at its next print; nothing hangs."""
    run = tmp_path / "run"
    proc = subprocess.Popen(
        _recurrent("train", "char-lm", *RUN, "--steps", "1000000", "--out", run,
                   "--ranks", "2"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path, env=_env(tmp_path),
        start_new_session=True)
    try:
        for line in proc.stdout:
            if line.startswith(b"step "):
                break
        proc.stdout.close()  # the reader goes away, as `head -1` does after its line
        proc.stdout = None  # communicate() then reads stderr alone
        err = proc.communicate(timeout=120)[1].decode()
        code = proc.returncode
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert code == 1, err
    assert "Traceback" not in err and "Error" not in err, err
    assert (run / "last.npz").exists()
    assert not _left_behind(str(run))


def _launcher(prelude: str, run) -> list[str]:
    """A `--ranks 2` char-lm training into ``run`` whose launcher runs the Python lines
    ``prelude`` first (they change what it does), then recurrent's own entry point."""
    script = (f"import sys\n{prelude}sys.argv[0] = 'recurrent'\n"
              "from recurrent._console import main\nmain()\n")
    return [sys.executable, "-c", script, "train", "char-lm", *RUN, "--steps", "1000000",
            "--out", str(run), "--ranks", "2"]


def test_a_sigterm_while_mpiexec_starts_is_passed_on_once_it_runs(tmp_path):
    """A SIGTERM that reaches the `--ranks` launcher as mpiexec has just started: the
    launcher passes it on and waits for the job to end (143, one line), rather than dying
    and leaving mpiexec and the ranks training on. Which line depends on how far the ranks
    got when it reached them: none had its handler (the launcher's error line), or they
    aborted while starting ("Aborted."), or they stopped at a step as one process does
    (its summary line on standard output, nothing on standard error)."""
    run = tmp_path / "run"
    # The launcher's process, with the signal sent to itself right after mpiexec starts.
    script = (
        "import os, signal, subprocess, sys\n"
        "real = subprocess.Popen\n"
        "def started_then_signalled(*args, **kwargs):\n"
        "    proc = real(*args, **kwargs)\n"
        "    os.kill(os.getpid(), signal.SIGTERM)\n"
        "    return proc\n"
        "subprocess.Popen = started_then_signalled\n")
    try:
        done = subprocess.run(
            _launcher(script, run), capture_output=True, text=True, cwd=tmp_path, env=_env(tmp_path), timeout=120)
        left = _left_behind(f"--out {run}")
    finally:
        for pid in _left_behind(f"--out {run}"):
            os.kill(pid, signal.SIGKILL)
    assert left == [], "mpiexec or ranks still running"
    assert done.returncode == 128 + signal.SIGTERM, done.stderr
    lines = done.stderr.strip().splitlines()
    if not lines:
        # the ranks had their handler in place: they stopped at an agreed step (or
        # before the first one) and rank 0 printed the summary line one process prints
        last = done.stdout.strip().splitlines()[-1]
        assert last.startswith("terminated (SIGTERM) "), done.stdout[-500:]
        assert "continue with `recurrent train char-lm --resume" in last, last
        return
    # the ranks end before they could act on it (the launcher says so), or, when it
    # reaches them once they took SIGTERM as a Ctrl-C, rank 0 says so as one process does
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("Error: terminated (SIGTERM)") or lines[0] == "Aborted.", lines


def test_ranks_that_a_sigterm_ends_without_a_word_are_reported_by_the_launcher(tmp_path):
    """A SIGTERM that kills the ranks while they start, before recurrent's handler is in
    place, leaves mpiexec ending 143 and nothing said: the launcher says what happened
    in one line, as when the ranks end in any other way before acting on it. An mpiexec
    that ends 143 at SIGTERM without a word stands in for that race."""
    run = tmp_path / "run"
    silent = tmp_path / "mpiexec"
    silent.write_text(f"#!{sys.executable}\n"
                      "import signal, sys, time\n"
                      "signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(143))\n"
                      "time.sleep(60)\n")
    silent.chmod(0o755)
    # the signal once that mpiexec has its handler in place (its ranks would not)
    script = ("import os, signal, subprocess, time\n"
              "import recurrent.launch\n"
              f"recurrent.launch.mpiexec = lambda: {str(silent)!r}\n"
              "real = subprocess.Popen\n"
              "def started_then_signalled(*args, **kwargs):\n"
              "    proc = real(*args, **kwargs)\n"
              "    time.sleep(1)\n"
              "    os.kill(os.getpid(), signal.SIGTERM)\n"
              "    return proc\n"
              "subprocess.Popen = started_then_signalled\n")
    done = subprocess.run(_launcher(script, run), capture_output=True, text=True,
                          cwd=tmp_path, env=_env(tmp_path), timeout=120)
    assert done.returncode == 128 + signal.SIGTERM, done.stderr
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        "Error: terminated (SIGTERM) before the ranks could save a checkpoint"), done.stderr


def test_a_sigterm_that_mpiexec_loses_reaches_the_ranks_from_the_launcher(tmp_path):
    """mpiexec may miss a SIGTERM passed on while it starts (no forwarding yet, or no
    ranks yet to forward to): the launcher also signals every rank that has joined the
    job. Here an mpiexec that drops every SIGTERM stands in for that race."""
    run = tmp_path / "run"
    dropping = tmp_path / "mpiexec"
    dropping.write_text(
        f"#!{sys.executable}\n"
        "import signal, subprocess, sys\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        f"job = subprocess.Popen([{mpiexec()!r}, *sys.argv[1:]],\n"
        "                       preexec_fn=lambda: signal.signal(signal.SIGTERM, "
        "signal.SIG_DFL))\n"
        "sys.exit(job.wait())\n")
    dropping.chmod(0o755)
    script = ("import recurrent.launch\n"
              f"recurrent.launch.mpiexec = lambda: {str(dropping)!r}\n")
    try:
        job = subprocess.Popen(
            _launcher(script, run), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
            env=_env(tmp_path))
        for line in job.stdout:  # the ranks train: then the launcher is told to stop
            if line.startswith("step "):
                job.send_signal(signal.SIGTERM)
                break
        out, err = job.communicate(timeout=120)
        left = _left_behind(f"--out {run}")
    finally:
        for pid in _left_behind(f"--out {run}"):
            os.kill(pid, signal.SIGKILL)
    assert left == [], "mpiexec or ranks still running"
    assert job.returncode == 128 + signal.SIGTERM, err
    assert out.splitlines()[-1].startswith("terminated (SIGTERM) at step"), out[-500:]
    assert "checkpoint saved" in out.splitlines()[-1] and err == ""
    assert (run / "last.npz").exists()
