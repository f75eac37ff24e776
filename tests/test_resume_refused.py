"""A resume that is refused changes no file: the checkpoint of the run (of each part, in
a run of parts) is read and checked before the options given again are saved."""
from __future__ import annotations

import re

import numpy as np
import pytest
import train_toys
from helpers import invoke, ok, one_line_error

from recurrent.checkpoint import BEST, CONFIG_FILE, LAST, RunDir, load_arrays, save_arrays
from recurrent.config import TrainingConfig
from recurrent.errors import UserError
from recurrent.plugins import get_task
from recurrent.runs import resume_run, start_run


@pytest.fixture(autouse=True)
def toys():
    with train_toys.registered():
        yield


def _finished(tmp_path, name="run", **overrides):
    task = get_task("toy-sign")
    values = {p.name: p.default for p in task.options()}
    values.update({"threads": 1, "quiet": True, "steps": 5, "epochs": 0, **overrides})
    run = start_run(task, TrainingConfig.resolve(task, values), str(tmp_path / name),
                    echo=lambda line: None)
    assert run.fit()["status"] == "done"
    return tmp_path / name


def _truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])


def _other_shapes(path):
    arrays, meta = load_arrays(str(path))
    save_arrays(str(path), {k: (np.zeros(3, v.dtype) if k.startswith("param/") else v)
                            for k, v in arrays.items()}, meta)


def _position(**values):
    """A damage that sets position fields of the checkpoint's meta, the file still whole."""
    def damage(path):
        arrays, meta = load_arrays(str(path))
        save_arrays(str(path), arrays, {**meta, **values})
    return damage


@pytest.mark.parametrize("damage, message", [
    (_truncate, "is corrupted or truncated"),
    (_other_shapes, "does not fit this model"),
    # a position no run saves: not trained from (a negative step count, a batch skipped)
    (_position(step=-5), "is corrupted or incomplete (ValueError: step is -5"),
    (_position(epoch=-1), "is corrupted or incomplete (ValueError: epoch is -1"),
    (_position(step=2.5), "is corrupted or incomplete (ValueError: step is 2.5"),
    (_position(clipped_steps=99), "clipped_steps 99 exceeds step 5"),
    (_position(lr_extensions=[1]), "lr_extensions is [1], not a list of triples"),
    (_position(best_loss="low"), "best_loss is 'low', not a number"),
])
def test_a_resume_refused_for_its_checkpoint_leaves_the_config_as_it_was(tmp_path, damage,
                                                                        message):
    run = _finished(tmp_path)
    damage(run / LAST)
    before = {name: (run / name).read_bytes() for name in (CONFIG_FILE, LAST, "metrics.jsonl")}
    with pytest.raises(UserError, match=re.escape(message)):
        resume_run(get_task("toy-sign"), RunDir.open(str(run)), echo=lambda line: None,
                   changes={"steps": 20, "quiet": True})
    assert {name: (run / name).read_bytes() for name in before} == before
    one_line_error(invoke("train", "toy-sign", "--resume", run, "--steps", 20), message,
                   str(run / LAST))
    assert {name: (run / name).read_bytes() for name in before} == before


@pytest.mark.parametrize("damage, message", [
    (_truncate, "is corrupted or truncated"),
    (_other_shapes, "does not fit this model"),
])
@pytest.mark.parametrize("steps", [5, 20])
def test_a_damaged_best_checkpoint_refuses_the_resume_untouched(tmp_path, damage, message,
                                                                 steps):
    """best.npz is the run's result (what eval, predict and export load) and the best
    score in last.npz is its: a resume that trained on, or ended with nothing to train,
    would report that score while the file holding it cannot be read (a later evaluation
    that does not beat the score leaves it so). The resume names it in one line instead,
    before any file changes."""
    run = _finished(tmp_path)
    damage(run / BEST)
    files = (CONFIG_FILE, LAST, BEST, "metrics.jsonl")
    before = {name: (run / name).read_bytes() for name in files}
    one_line_error(invoke("train", "toy-sign", "--resume", run, "--steps", steps), message,
                   str(run / BEST))
    assert {name: (run / name).read_bytes() for name in files} == before


@pytest.mark.parametrize("ensemble", [1, 2])
def test_a_best_checkpoint_without_its_last_one_refuses_the_resume_untouched(tmp_path,
                                                                             ensemble):
    """A run (or part) whose last.npz is gone while its best.npz is there has trained, not
    "no checkpoint yet": training it from the start would drop its metrics.jsonl at once
    and replace its best.npz with an early model at the first evaluation. The resume
    names both files in one line and changes none; once best.npz is removed too, as the
    line says, the part trains from the start."""
    run = _finished(tmp_path, ensemble=ensemble)
    part = run / "member-1" if ensemble > 1 else run
    (part / LAST).unlink()
    files = [p for p in sorted(run.rglob("*")) if p.is_file()]
    before = {p: p.read_bytes() for p in files}
    line = one_line_error(invoke("train", "toy-sign", "--resume", run, "--steps", 5),
                          f"{part / LAST} is missing, while {part / BEST} is there")
    assert f"remove {BEST} to train" in line
    assert {p: p.read_bytes() for p in sorted(run.rglob("*")) if p.is_file()} == before
    (part / BEST).unlink()
    ok(invoke("train", "toy-sign", "--resume", run, "--steps", 5))
    assert (part / LAST).is_file() and (part / BEST).is_file()


def test_a_damaged_member_checkpoint_refuses_the_ensembles_resume_untouched(tmp_path):
    run = _finished(tmp_path, ensemble=2)
    _truncate(run / "member-1" / LAST)
    files = [CONFIG_FILE, f"member-0/{CONFIG_FILE}", f"member-1/{CONFIG_FILE}"]
    before = {name: (run / name).read_bytes() for name in files}
    one_line_error(invoke("train", "toy-sign", "--resume", run, "--steps", 20),
                   "is corrupted or truncated", str(run / "member-1" / LAST))
    assert {name: (run / name).read_bytes() for name in files} == before


def test_a_resume_with_a_sound_checkpoint_still_saves_the_new_options(tmp_path):
    run = _finished(tmp_path)
    resume_run(get_task("toy-sign"), RunDir.open(str(run)), echo=lambda line: None,
               changes={"steps": 7, "quiet": True}).fit(resume=True)
    assert RunDir(str(run)).info()["config"]["steps"] == 7
    assert load_arrays(str(run / LAST))[1]["step"] == 7


@pytest.mark.parametrize("ensemble", [1, 2])
def test_steps_below_those_trained_are_refused_untouched(tmp_path, ensemble):
    """--steps counts from the run's start: fewer than a checkpoint has trained would
    train nothing yet save a horizon the run has passed. The same number, or a step
    limit left off (0), is no refusal."""
    run = _finished(tmp_path, ensemble=ensemble)
    part = run / "member-0" if ensemble > 1 else run  # the first part checked
    files = [CONFIG_FILE, LAST] if ensemble == 1 else [CONFIG_FILE, f"member-0/{LAST}"]
    before = {name: (run / name).read_bytes() for name in files}
    one_line_error(invoke("train", "toy-sign", "--resume", run, "--steps", 3),
                   f"--steps 3: {part} has trained 5 steps already (--steps counts from "
                   f"the run's start: 5 ends it where it stands, more extends it)")
    assert {name: (run / name).read_bytes() for name in files} == before
    result = invoke("train", "toy-sign", "--resume", run, "--steps", 5)
    assert result.exit_code == 0, result.output + result.stderr


def test_epochs_below_those_trained_are_refused_untouched(tmp_path):
    run = _finished(tmp_path, steps=0, epochs=2)
    before = {name: (run / name).read_bytes() for name in (CONFIG_FILE, LAST)}
    one_line_error(invoke("train", "toy-sign", "--resume", run, "--epochs", 1),
                   f"--epochs 1: {run} has trained 2 epochs already (--epochs counts from "
                   f"the run's start: 2 ends it where it stands, more extends it)")
    assert {name: (run / name).read_bytes() for name in before} == before
    ok(invoke("train", "toy-sign", "--resume", run, "--epochs", 2))


@pytest.mark.parametrize("saved, said", [
    ({"tbptt": -1}, "--tbptt must be >= 0, got -1"),
    ({"clip_norm": -1.0}, "--clip-norm must be >= 0 (0 = off), got -1.0"),
    ({"clip_value": 0.0}, "--clip-value must be > 0, got 0.0"),
    ({"steps": 0, "epochs": 0}, "nothing to train: --epochs and --steps are both 0"),
    ({"forget_bias": 1e39}, "--forget-bias 1e+39 is beyond the parameters' float32 range"),
])
def test_options_of_a_config_json_that_click_would_refuse_are_refused_on_resume(
        task_runs, tmp_path, saved, said):
    """The values click's ranges refuse on the command line reach a resume through the
    run's config.json (edited, or written by another tool): the same checks refuse them
    in one line naming the file they were read from, and the run's files stay as they
    were."""
    import json
    import shutil
    run = tmp_path / "run"
    shutil.copytree(task_runs["char-lm"], run)
    info = json.loads((run / CONFIG_FILE).read_text())
    info["config"].update(saved)
    (run / CONFIG_FILE).write_text(json.dumps(info))
    before = {path.name: path.read_bytes() for path in run.iterdir()}
    one_line_error(invoke("train", "--resume", run), said,
                   f"(read from {run / CONFIG_FILE})")  # not an option the user typed
    assert {path.name: path.read_bytes() for path in run.iterdir()} == before
