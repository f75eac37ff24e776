"""Runs stopped before their first checkpoint: a Ctrl-C while the trainer sets up (the
planned steps counted, the baselines fitted) stops cleanly with a checkpoint of step 0,
and `--resume` of a run that has config.json but no last.npz yet (stopped before the
trainer's handler was installed, or failed before its first checkpoint) trains it from
the start with its saved options, as an uninterrupted run would."""
from __future__ import annotations

import os
import signal

import pytest
import train_toys
from helpers import checkpoint_params, invoke, ok, same_params
from test_train import config_for

from recurrent.checkpoint import LAST, METRICS, RunDir, load_arrays
from recurrent.errors import UserError
from recurrent.plugins import get_task
from recurrent.runs import resume_run, start_run

NOTICE = "has no checkpoint yet: training it from the start with its saved options"


@pytest.fixture(autouse=True)
def toys():
    with train_toys.registered():
        yield


def _start(tmp_path, name, task_name="toy-sign", **overrides):
    """A new run directory (config.json written), its Trainer not yet fitted."""
    task, config = config_for(task_name, **overrides)
    return start_run(task, config, str(tmp_path / name), echo=lambda line: None)


def _params(path):
    return checkpoint_params(path, LAST)



def _records(path, kind):
    return [r for r in RunDir(str(path)).read_metrics() if r["kind"] == kind]


def _fit_catching_ctrl_c(trainer):
    try:
        return trainer.fit()
    except KeyboardInterrupt:  # the old behaviour: no handler yet while setting up
        pytest.fail("a Ctrl-C while the trainer was set up escaped as KeyboardInterrupt")


def test_resume_of_a_run_without_checkpoint_trains_it_from_the_start(tmp_path, capsys):
    full = _start(tmp_path, "full").fit()
    _start(tmp_path, "bare")  # config.json only: stopped before the trainer started
    assert os.listdir(tmp_path / "bare") == ["config.json"]
    summary = resume_run(get_task("toy-sign"), RunDir.open(str(tmp_path / "bare")),
                         echo=lambda line: None).fit(resume=True)
    assert f"{tmp_path / 'bare'} {NOTICE}" in capsys.readouterr().err
    assert summary["status"] == "done" and summary["step"] == full["step"]
    assert same_params(_params(tmp_path / "bare"), _params(tmp_path / "full"))
    assert RunDir(str(tmp_path / "bare")).read_metrics() != []
    assert len(_records(tmp_path / "bare", "baselines")) == 1


def test_cli_resume_of_a_run_without_checkpoint_says_so_and_finishes(tmp_path):
    _start(tmp_path, "bare")
    result = invoke("train", "toy-sign", "--resume", tmp_path / "bare", "--quiet")
    ok(result)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines == [f"{tmp_path / 'bare'} {NOTICE}"]
    assert (tmp_path / "bare" / LAST).exists()
    # and a second --resume continues it as any other run: nothing left to do
    again = invoke("train", "toy-sign", "--resume", tmp_path / "bare", "--quiet")
    assert NOTICE not in ok(again) + again.stderr


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_resume_after_a_failure_before_the_first_checkpoint_starts_again(tmp_path):
    # an infinite target at batch 3, no evaluation before it: no last.npz is written
    trainer = _start(tmp_path, "failed", "toy-wave", spike_at=3, log_every=1)
    with pytest.raises(UserError, match="no checkpoint had been written yet"):
        trainer.fit()
    run = RunDir.open(str(tmp_path / "failed"))
    assert not run.has(LAST) and [r["step"] for r in _records(run.path, "train")] == [1, 2, 3]
    config = run.info()["config"]
    config["spike_at"] = None
    run.update_config(config)
    resume_run(get_task("toy-wave"), run, echo=lambda line: None).fit(resume=True)
    full = _start(tmp_path, "full", "toy-wave", log_every=1)
    full.fit()
    # the first attempt's records are gone: the run's metrics are those of a fresh run
    assert [r["step"] for r in _records(run.path, "train")] == \
        [r["step"] for r in _records(tmp_path / "full", "train")]
    assert len(_records(run.path, "baselines")) == 1
    assert same_params(_params(tmp_path / "failed"), _params(tmp_path / "full"))


def _ctrl_c_in_baselines(monkeypatch, task_name):
    task = get_task(task_name)
    baselines = task.baselines

    def interrupted(state, split, config):
        signal.raise_signal(signal.SIGINT)
        return baselines(state, split, config)

    monkeypatch.setattr(task, "baselines", interrupted)


@pytest.mark.parametrize("where", ["baselines", "counting steps"])
def test_a_ctrl_c_while_the_trainer_sets_up_stops_at_step_0_and_resumes(
        tmp_path, monkeypatch, where):
    before = signal.getsignal(signal.SIGINT)  # SIG_IGN when started under nohup or "&"
    full = _start(tmp_path, "full", schedule="cosine").fit()
    if where == "baselines":
        _ctrl_c_in_baselines(monkeypatch, "toy-sign")
        trainer = _start(tmp_path, "stopped", schedule="cosine")
    else:  # the cosine schedule's pass over epoch 0 reaches batch 1 before any step
        trainer = _start(tmp_path, "stopped", schedule="cosine", interrupt_at=1)
    summary = _fit_catching_ctrl_c(trainer)
    assert summary["status"] == "interrupted" and summary["step"] == 0
    assert signal.getsignal(signal.SIGINT) is before  # restored
    _, meta = load_arrays(str(tmp_path / "stopped" / LAST))
    assert meta["step"] == 0
    monkeypatch.undo()
    resumed = train_toys.resume_uninterrupted(tmp_path / "stopped", "toy-sign")
    assert resumed.fit(resume=True)["status"] == "done"
    assert same_params(_params(tmp_path / "stopped"), _params(tmp_path / "full"))
    assert full["status"] == "done"
    assert len(_records(tmp_path / "stopped", "baselines")) == 1


def test_cli_ctrl_c_while_setting_up_exits_130_and_says_how_to_resume(tmp_path,
                                                                       monkeypatch):
    _ctrl_c_in_baselines(monkeypatch, "toy-lm")
    run = tmp_path / "s"
    try:
        result = invoke("train", "toy-lm", "--out", run, "--quiet")
    except KeyboardInterrupt:
        pytest.fail("a Ctrl-C while the trainer was set up escaped as KeyboardInterrupt")
    assert result.exit_code == 130, result.output + result.stderr
    assert "interrupted at step 0" in result.output
    assert f"--resume {run}" in result.output
    monkeypatch.undo()
    ok(invoke("train", "toy-lm", "--resume", run, "--quiet"))
    assert RunDir(str(run)).has(METRICS)
