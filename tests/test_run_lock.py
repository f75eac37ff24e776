"""One trainer per run directory (recurrent/run_lock.py): a resume started while another
process trains the run is refused in one line and writes nothing; once that process
ends, however it ends, the run resumes."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

from helpers import TINY_RUN, installed_env, invoke, ok, one_line_error, tiny_text

from recurrent import run_lock


def _start_long_run(text, run):
    """A char-lm run in another process that trains for minutes unless stopped; returns
    once it has written its first checkpoint (it holds the run's lock from before
    config.json)."""
    args = [sys.executable, "-m", "recurrent", "train", "char-lm", "--data", str(text),
            *map(str, TINY_RUN), "--no-plot", "--steps", "100000000", "--epochs", "1000000",
            "--eval-every", "5",
            "--out", str(run)]
    job = subprocess.Popen(args, env=installed_env(), stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (run / "last.npz").exists():
        assert job.poll() is None, job.stderr.read()
        assert time.monotonic() < deadline, "the run did not start"
        time.sleep(0.2)
    return job


def test_a_resume_while_another_process_trains_is_refused(tmp_path):
    text, run = tiny_text(tmp_path), tmp_path / "run"
    job = _start_long_run(text, run)
    try:
        config = (run / "config.json").read_bytes()
        refused = invoke("train", "--resume", run, "--steps", 3)
        one_line_error(refused, f"{run} is being trained by another process")
        # the refused resume wrote nothing: its --steps 3 is not in config.json
        assert (run / "config.json").read_bytes() == config
        assert json.loads(config)["config"]["steps"] == 100000000
    finally:
        job.send_signal(signal.SIGINT)  # Ctrl-C: the run saves and stops
        job.wait(timeout=120)
    assert job.returncode == 130, job.stderr.read()
    # the lock went with the process: the run resumes now
    ok(invoke("train", "--resume", run, "--steps", 3))


def test_a_killed_trainer_leaves_no_stale_lock(tmp_path):
    text, run = tiny_text(tmp_path), tmp_path / "run"
    job = _start_long_run(text, run)
    job.kill()  # SIGKILL: no handler runs
    job.wait(timeout=60)
    ok(invoke("train", "--resume", run, "--steps", 3))


def test_one_process_may_train_and_resume_a_run_in_turn(tmp_path):
    """The lock is the process's: the library trains a run, then resumes it."""
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
    run_lock.release(str(tmp_path / "run"))
