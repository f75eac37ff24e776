"""SIGTERM, the signal schedulers and supervisors send before a SIGKILL (Slurm at a time
limit or on preemption, `timeout`, systemd, docker stop, Kubernetes), stops a training
run as a first Ctrl-C does: at the next step boundary, with a checkpoint to resume from;
the run ends "terminated (SIGTERM)" with exit status 143. Sent for real to a training
subprocess once it has logged a step."""
from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys

import numpy as np
import pytest
from helpers import installed_env, ok, tiny_text, train_tiny

from recurrent.checkpoint import LAST, load_arrays
from recurrent.interrupt import Interrupt

RUN = ["--hidden", "8", "--embed-dim", "4", "--seq-len", "16", "--batch-size", "4",
       "--threads", "1", "--log-every", "1", "--eval-every", "0", "--no-plot",
       "--schedule", "constant"]  # a schedule that does not depend on --steps
ENDLESS = ["--steps", "1000000", "--epochs", "1000"]  # stopped by the signal, never ends


@contextlib.contextmanager
def reaped(proc):
    """The block's subprocess (started in a session of its own) killed with its process
    group if it is still running when the block ends, so a failing test leaves none."""
    try:
        yield proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def signal_at_line(command, cwd, starts, signals=(signal.SIGTERM,), env=None):
    """``command`` run in ``cwd`` in a session of its own, sent each of ``signals`` in
    turn (to its process alone, as `kill PID` or a supervisor sends them) once a stdout
    line starts with ``starts``; (exit status, stdout from that line on, stderr)."""
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=cwd, env=env or installed_env(),
                            start_new_session=True)
    with reaped(proc):
        seen = ""
        for line in proc.stdout:
            if line.startswith(starts):
                seen = line
                break
        for signum in signals:
            os.kill(proc.pid, signum)
        out, err = proc.communicate(timeout=120)
    return proc.returncode, seen + out, err


def recurrent(*args):
    return [sys.executable, "-m", "recurrent", *map(str, args)]


def stopped_step(out, run="run") -> int:
    """The step of the last line of ``out``: 'terminated (SIGTERM) at step N: ...'."""
    last = out.splitlines()[-1]
    head, _, rest = last.partition(": checkpoint saved; continue with ")
    assert head.startswith("terminated (SIGTERM) at step "), out
    assert rest == f"`recurrent train char-lm --resume {run}`", last
    return int(head.rsplit(" ", 1)[1])


def last_arrays(path):
    arrays, meta = load_arrays(str(path / LAST))
    return arrays, meta


def test_sigterm_saves_a_checkpoint_and_resume_matches_an_uninterrupted_run(tmp_path):
    text = tiny_text(tmp_path)
    code, out, err = signal_at_line(
        recurrent("train", "char-lm", "--data", text, *RUN, *ENDLESS, "--out", "run"),
        tmp_path, "step 3/")
    assert code == 128 + signal.SIGTERM, err
    assert err == ""
    step = stopped_step(out)
    assert step >= 3
    _, meta = last_arrays(tmp_path / "run")
    assert meta["step"] == step
    assert [name for name in os.listdir(tmp_path / "run") if name.endswith(".tmp")] == []

    end = step + 3
    resumed = subprocess.run(recurrent("train", "--resume", "run", "--steps", end),
                             capture_output=True, text=True, cwd=tmp_path,
                             env=installed_env(), timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    full = subprocess.run(recurrent("train", "char-lm", "--data", text, *RUN, "--steps", end,
                                    "--epochs", "1000", "--out", "full"),
                          capture_output=True, text=True, cwd=tmp_path, env=installed_env(),
                          timeout=120)
    assert full.returncode == 0, full.stderr
    got, got_meta = last_arrays(tmp_path / "run")
    want, want_meta = last_arrays(tmp_path / "full")
    assert got_meta["step"] == want_meta["step"] == end
    assert sorted(got) == sorted(want)
    for name in want:
        np.testing.assert_array_equal(got[name], want[name], err_msg=name)


def test_a_repeated_sigterm_still_saves_the_checkpoint(tmp_path):
    """One request often arrives twice (a job's process group signalled and a launcher
    passing the signal on): the second changes nothing."""
    text = tiny_text(tmp_path)
    code, out, err = signal_at_line(
        recurrent("train", "char-lm", "--data", text, *RUN, *ENDLESS, "--out", "run"),
        tmp_path, "step 3/", signals=(signal.SIGTERM, signal.SIGTERM))
    assert code == 128 + signal.SIGTERM, err
    assert last_arrays(tmp_path / "run")[1]["step"] == stopped_step(out)


# `recurrent ARGS` whose trainer sends its process a SIGTERM as fit returns: the copy of
# a request that reaches the process once the trainer's handler has gone (a job's process
# group signalled and a launcher passing the signal on, one copy delayed).
SIGTERM_AGAIN_AFTER_FIT = """
import os, signal, sys
from recurrent.trainer import Trainer
fit = Trainer.fit

def fit_then_signalled(self, resume=False):
    summary = fit(self, resume=resume)
    os.kill(os.getpid(), signal.SIGTERM)
    return summary

Trainer.fit = fit_then_signalled
sys.argv[0] = "recurrent"
from recurrent._console import main
main()
"""


def test_a_sigterm_repeated_after_the_training_stopped_still_prints_the_summary(tmp_path):
    """The request's second copy may arrive after the trainer has saved its checkpoint
    and put the command's handler back, before the summary line: it changes nothing
    there either (the summary line, 143, nothing on stderr), rather than aborting the
    command with "Aborted." in place of the line that says how to continue."""
    text = tiny_text(tmp_path)
    code, out, err = signal_at_line(
        [sys.executable, "-c", SIGTERM_AGAIN_AFTER_FIT, "train", "char-lm", "--data", text,
         *RUN, *ENDLESS, "--out", "run"], tmp_path, "step 3/")
    assert code == 128 + signal.SIGTERM, err
    assert err == ""
    assert last_arrays(tmp_path / "run")[1]["step"] == stopped_step(out)


def _outside(signum, frame):
    pytest.fail("the SIGTERM reached the handler outside the Interrupt")


@pytest.fixture
def sigterm_caught():
    """A SIGTERM handler failing the test, so that one the Interrupt leaves unhandled
    does not end the test session."""
    previous = signal.signal(signal.SIGTERM, _outside)
    yield
    signal.signal(signal.SIGTERM, previous)


def test_sigterm_requests_the_stop_a_first_ctrl_c_does(sigterm_caught):
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    with Interrupt() as interrupt:
        signal.raise_signal(signal.SIGTERM)
        assert interrupt.requested and interrupt.signal == signal.SIGTERM
        signal.raise_signal(signal.SIGTERM)  # a repeated request: no escalation
        assert interrupt.signal == signal.SIGTERM
        with pytest.raises(KeyboardInterrupt):  # a Ctrl-C after it leaves at once
            signal.raise_signal(signal.SIGINT)
    with Interrupt() as interrupt:  # after a Ctrl-C, a SIGTERM keeps the Ctrl-C's stop
        signal.raise_signal(signal.SIGINT)
        signal.raise_signal(signal.SIGTERM)
        assert interrupt.signal == signal.SIGINT
    with Interrupt() as outer:  # nested handlers pass the signal on both ways
        signal.raise_signal(signal.SIGTERM)
        with Interrupt() as inner:
            assert inner.signal == signal.SIGTERM
    with Interrupt() as outer:
        with Interrupt() as inner:
            signal.raise_signal(signal.SIGTERM)
        assert outer.signal == signal.SIGTERM
    assert {s: signal.getsignal(s) for s in before} == before  # restored


# A char-lm whose prepare (before the run directory is made or the trainer set up) says
# when it starts and then waits, as the reading of a large data set does.
SLOW_PREPARE = '''
import time
import recurrent
from recurrent_plugins.char_lm import CharLM

class SlowStartLM(CharLM):
    name = "slow-start-lm"
    help = "char-lm whose prepare waits (tests only)"

    def prepare(self, config):
        print("preparing", flush=True)
        time.sleep(120)
        return super().prepare(config)

@recurrent.hookimpl
def register_tasks(register):
    register(SlowStartLM())
'''


def test_a_sigterm_before_the_trainer_starts_aborts_as_a_ctrl_c_does(tmp_path):
    """Before the trainer's handler is in place a Ctrl-C aborts the command ("Aborted.",
    no traceback); a SIGTERM does the same, with exit status 143."""
    site = tmp_path / "site"
    info = site / "slow_start_lm-0.0.dist-info"
    info.mkdir(parents=True)
    (site / "slow_start_lm.py").write_text(SLOW_PREPARE)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: slow_start_lm\nVersion: 0.0\n")
    (info / "entry_points.txt").write_text("[recurrent]\nslow_start_lm = slow_start_lm\n")
    env = installed_env(RECURRENT_NO_ENTRYPOINTS="", RECURRENT_PLUGINS="slow_start_lm",
                        PYTHONPATH=os.pathsep.join(
                            p for p in [str(site), os.environ.get("PYTHONPATH", "")] if p))
    code, out, err = signal_at_line(
        recurrent("train", "slow-start-lm", "--data", tiny_text(tmp_path), *RUN, "--steps",
                  "5", "--out", "run"), tmp_path, "preparing", env=env)
    assert code == 128 + signal.SIGTERM, err
    assert [line for line in err.splitlines() if line.strip()] == ["Aborted."]
    assert not (tmp_path / "run").exists()


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    directory = tmp_path_factory.mktemp("tiny")
    ok(train_tiny(tiny_text(directory), directory / "run"))
    return directory / "run"


def _sighup_default():
    signal.signal(signal.SIGHUP, signal.SIG_DFL)


def _streaming(run, cwd, preexec_fn=_sighup_default):
    """`recurrent predict RUN --stream` started, one line sent and its answer read: it
    now waits on its standard input for the next line. Started with SIGHUP's default
    action unless ``preexec_fn`` says otherwise, as from a terminal, whatever this test
    session inherited (a suite run under nohup ignores SIGHUP, and so would the
    command)."""
    proc = subprocess.Popen(recurrent("predict", run, "--stream"), stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=cwd, env=installed_env(), start_new_session=True,
                            preexec_fn=preexec_fn)
    proc.stdin.write("the quick\n")
    proc.stdin.flush()
    assert proc.stdout.readline().startswith("{")
    return proc


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_a_sigterm_or_sighup_ends_a_command_outside_training_as_a_ctrl_c_does(
        tiny_run, tmp_path, signum):
    """A command other than a training loop (here predict --stream, waiting for its next
    line) ends on a SIGTERM or a SIGHUP as on a Ctrl-C: "Aborted." and exit status 128 +
    the signal's number, rather than dying by the signal with nothing cleaned up."""
    proc = _streaming(tiny_run, tmp_path)
    with reaped(proc):
        os.kill(proc.pid, signum)
        _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signum, err
    assert [line for line in err.splitlines() if line.strip()] == ["Aborted."]


def _ignore_sighup():
    signal.signal(signal.SIGHUP, signal.SIG_IGN)


def test_a_sighup_ignored_from_the_start_stays_ignored(tiny_run, tmp_path):
    """Started with SIGHUP ignored (nohup), a command keeps ignoring it."""
    proc = _streaming(tiny_run, tmp_path, preexec_fn=_ignore_sighup)
    with reaped(proc):
        os.kill(proc.pid, signal.SIGHUP)
        out, err = proc.communicate("be\n", timeout=120)
    assert proc.returncode == 0 and err == "", err
    assert out.startswith("{")
