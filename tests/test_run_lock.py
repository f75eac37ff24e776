"""One trainer per run directory (recurrent/run_lock.py): a resume started while another
process trains the run is refused in one line and writes nothing; once that process
ends, however it ends, the run resumes."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from helpers import TINY_RUN, advised, installed_env, invoke, ok, one_line_error, tiny_text

from recurrent import run_lock


LONG = ("--steps", "100000000", "--epochs", "1000000", "--eval-every", "5")


@pytest.fixture
def trainers():
    """Starts `recurrent ARGS` in other processes, each in its own session (process
    group); whatever a test leaves running (a failed assertion, a timeout) is killed with
    its group when the test ends, so no minutes-long trainer outlives it."""
    jobs = []

    def start(args, checkpoint):
        """Returns once ``checkpoint`` exists (the process holds its locks from before it
        writes)."""
        job = subprocess.Popen([sys.executable, "-m", "recurrent", *map(str, args)],
                               env=installed_env(), stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True, start_new_session=True)
        jobs.append(job)
        deadline = time.monotonic() + 120
        while not checkpoint.exists():
            assert job.poll() is None, job.stderr.read()
            assert time.monotonic() < deadline, "the run did not start"
            time.sleep(0.2)
        return job

    yield start
    for job in jobs:
        if job.poll() is None:
            os.killpg(job.pid, signal.SIGKILL)
            job.wait(timeout=60)
        job.stderr.close()


def _long_run(start, text, run, *extra):
    """A char-lm run in another process that trains for minutes unless stopped."""
    return start(["train", "char-lm", "--data", text, *TINY_RUN, "--no-plot", *LONG,
                  *extra, "--out", run], run / ("member-0" if extra else "") / "last.npz")


def _stop(job):
    job.send_signal(signal.SIGINT)  # Ctrl-C: the run saves and stops
    job.wait(timeout=120)
    assert job.returncode == 130, job.stderr.read()


def test_a_resume_while_another_process_trains_is_refused(tmp_path, trainers):
    text, run = tiny_text(tmp_path), tmp_path / "run"
    job = _long_run(trainers, text, run)
    try:
        config = (run / "config.json").read_bytes()
        refused = invoke("train", "--resume", run, "--steps", 3)
        one_line_error(refused, f"{run} is being trained by another process")
        # the refused resume wrote nothing: its --steps 3 is not in config.json
        assert (run / "config.json").read_bytes() == config
        assert json.loads(config)["config"]["steps"] == 100000000
    finally:
        _stop(job)
    # the lock went with the process: the run resumes now (and ends where it stands)
    ok(invoke("train", "--resume", run, "--steps", _trained(run)))


def test_a_killed_trainer_leaves_no_stale_lock(tmp_path, trainers):
    text, run = tiny_text(tmp_path), tmp_path / "run"
    job = _long_run(trainers, text, run)
    job.kill()  # SIGKILL: no handler runs
    job.wait(timeout=60)
    ok(invoke("train", "--resume", run, "--steps", _trained(run)))


def _trained(run) -> int:
    """The steps run's last.npz has trained: --steps that ends it where it stands."""
    from recurrent.checkpoint import load_arrays
    return load_arrays(str(run / "last.npz"))[1]["step"]


def test_a_member_and_its_ensemble_are_never_trained_at_once(tmp_path, trainers):
    """The ensemble's trainer holds every member's directory: a resume of a member is
    refused while it trains, and a resume of the ensemble while a member is resumed: the
    refusal advises the resume of the run asked for, not of the part that is busy."""
    text, run = tiny_text(tmp_path), tmp_path / "my ens"
    job = _long_run(trainers, text, run, "--ensemble", "2")
    try:
        for part in ("member-0", "member-1"):
            one_line_error(invoke("train", "--resume", run / part, "--steps", 3),
                           "is being trained by another process")
    finally:
        _stop(job)
    job = trainers(["train", "--resume", run / "member-1", *LONG[:4]],
                 run / "member-1" / "last.npz")
    try:
        line = one_line_error(invoke("train", "--resume", run, "--steps", 3),
                              f"{run / 'member-1'} is being trained by another process")
    finally:
        _stop(job)
    assert advised(line) == ["train", "--resume", str(run)]
    ok(invoke(*advised(line), "--steps", max(_trained(run / "member-0"),
                                             _trained(run / "member-1"))))


def test_one_process_may_train_and_resume_a_run_in_turn(tmp_path):
    """The lock is the process's: the library trains a run, then resumes it; once fit
    returns the lock is gone, and another process may resume the run."""
    from recurrent.checkpoint import RunDir
    from recurrent.config import TrainingConfig
    from recurrent.plugins import get_task
    from recurrent.runs import resume_run, start_run
    task = get_task("char-lm")
    values = {"data": str(tiny_text(tmp_path)), "steps": 2, "hidden": 8, "embed_dim": 4,
              "seq_len": 16, "threads": 1, "quiet": True, "plot": False}
    config = TrainingConfig.resolve(task, values)
    config["loss"] = task.loss
    start_run(task, config, str(tmp_path / "run"), echo=lambda line: None).fit()
    trainer = resume_run(task, RunDir.open(str(tmp_path / "run")), echo=lambda line: None,
                         changes={"steps": 4})
    assert trainer.fit(resume=True)["step"] == 4
    directory = os.stat(tmp_path / "run")
    assert (directory.st_dev, directory.st_ino) not in run_lock._held
    job = subprocess.run([sys.executable, "-m", "recurrent", "train", "--resume",
                          str(tmp_path / "run"), "--steps", "5"], env=installed_env(),
                         capture_output=True, text=True, timeout=120)
    assert job.returncode == 0, job.stderr


def test_a_refused_resume_keeps_the_locks_an_earlier_hold_took(tmp_path):
    """Holds are counted: a refused resume_run in the process that holds the run does not
    let another process in."""
    ok(invoke("train", "char-lm", "--data", tiny_text(tmp_path), *TINY_RUN, "--no-plot",
              "--out", tmp_path / "run"))
    key = run_lock.hold(str(tmp_path / "run"))
    try:
        one_line_error(invoke("train", "--resume", tmp_path / "run", "--cell", "gru"),
                       "cell")  # refused: --cell is not resumable
        job = subprocess.run([sys.executable, "-m", "recurrent", "train", "--resume",
                              str(tmp_path / "run"), "--steps", "5"], env=installed_env(),
                             capture_output=True, text=True, timeout=120)
        assert job.returncode == 1 and "being trained by another process" in job.stderr
    finally:
        run_lock.release(key)
