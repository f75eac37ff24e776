"""Weight averaging (--average, recurrent/averaging.py) in real training runs of the
throwaway toy tasks (tests/train_toys.py): the average against the one computed by hand
from the parameter trajectory, evaluation and checkpoints on the average, exact resume,
and bad option values."""
import json

import numpy as np
import pytest
from click.testing import CliRunner
from helpers import one_line_error

import train_toys
from recurrent import averaging
from recurrent.checkpoint import BEST, LAST, RunDir, load_arrays, save_arrays
from recurrent.cli import cli
from recurrent.config import TrainingConfig
from recurrent.errors import UserError
from recurrent.plugins import get_task
from recurrent.runs import load_model, resume_run, start_run

STEPS = 7


@pytest.fixture(autouse=True)
def toys():
    with train_toys.registered():
        yield


def train(tmp_path, name, **overrides):
    task = get_task("toy-sign")
    base = {p.name: p.default for p in task.options()}
    config = TrainingConfig.resolve(task, {**base, "threads": 1, "quiet": True,
                                           **overrides})
    trainer = start_run(task, config, str(tmp_path / name), echo=lambda line: None)
    return trainer, trainer.fit()


@pytest.fixture(scope="module")
def trajectory(tmp_path_factory):
    """The trained parameters after steps 1..STEPS of one toy-sign run (constant rate):
    run k stops after k steps, and a run is the prefix of a longer one with its seed."""
    tmp = tmp_path_factory.mktemp("trajectory")
    with train_toys.registered():
        return np.stack([train(tmp, f"k{k}", steps=k)[0].model.params.astype(np.float64)
                         for k in range(1, STEPS + 1)])


def hand_average(trajectory, kind, value):
    """The averages of the module docstring, computed from the whole trajectory at once."""
    n = len(trajectory)
    if kind == "ema":
        weights = value ** np.arange(n - 1, -1, -1.0)
    else:
        weights = (np.arange(1, n + 1) > value).astype(np.float64)
        if not weights.any():
            weights[-1] = 1.0
    return weights @ trajectory / weights.sum()


@pytest.mark.parametrize("option, kind, value", [
    ("ema:0.9", "ema", 0.9), ("ema:0.5", "ema", 0.5), ("swa:3", "swa", 3),
    ("swa:0", "swa", 0), ("swa:5", "swa", 5)])
def test_the_checkpoints_hold_the_average_of_the_trajectory(tmp_path, trajectory, option,
                                                             kind, value):
    trainer, _ = train(tmp_path, "avg", steps=STEPS, average=option)
    # averaging does not change training: the trained parameters are the plain run's
    np.testing.assert_array_equal(trainer.model.params, trajectory[-1].astype(np.float32))
    expected = hand_average(trajectory, kind, value)
    run = RunDir.open(str(tmp_path / "avg"))
    for name in (LAST, BEST):  # evaluated once, at the end: best is that average
        arrays, _ = load_arrays(run.file(name))
        averaged = np.concatenate([arrays[f"param/{k}"].ravel()
                                   for k in trainer.model.named_params])
        np.testing.assert_allclose(averaged, expected, rtol=0, atol=2e-6)
    arrays, meta = load_arrays(run.file(LAST))
    np.testing.assert_array_equal(arrays["train/params"], trainer.model.params)
    assert meta["average_count"] == (STEPS if kind == "ema" else max(0, STEPS - value))
    # an average over several steps is not the last parameters
    assert np.abs(expected - trajectory[-1]).max() > 1e-4


def test_evaluation_best_checkpoint_and_eval_use_the_averaged_parameters(tmp_path):
    trainer, summary = train(tmp_path, "avg", epochs=2, average="ema:0.8")
    task = trainer.task
    model, info = load_model(RunDir.open(str(tmp_path / "avg")))
    averaged_loss = task.evaluate(info["task_state"], "valid", trainer.config,
                                  model.runner())["loss"]
    assert summary["best_loss"] == pytest.approx(averaged_loss, rel=1e-6)
    trainer.model.eval()  # the trained (not averaged) parameters score differently
    trained_loss = task.evaluate(trainer.task_state, "valid", trainer.config,
                                 trainer.model.runner())["loss"]
    assert abs(trained_loss - averaged_loss) > 1e-4
    result = CliRunner().invoke(cli, ["eval", str(tmp_path / "avg"), "--split", "valid",
                                      "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["metrics"]["loss"] == pytest.approx(averaged_loss,
                                                                         rel=1e-9)


@pytest.mark.parametrize("option", ["ema:0.9", "swa:10"])
def test_resume_with_averaging_equals_an_uninterrupted_run(tmp_path, option):
    full, _ = train(tmp_path, "full", epochs=2, log_every=1, eval_every=4, average=option)
    train(tmp_path, "half", epochs=2, log_every=1, eval_every=4,
                          steps=12, average=option)  # stops at an evaluation
    run = RunDir.open(str(tmp_path / "half"))
    config = run.info()["config"]
    config["steps"] = 0
    run.update_config(config)
    resume_run(get_task("toy-sign"), run, echo=lambda line: None).fit(resume=True)
    for name in (LAST, BEST):
        a, meta_a = load_arrays(str(tmp_path / "full" / name))
        b, meta_b = load_arrays(str(tmp_path / "half" / name))
        assert sorted(a) == sorted(b)
        for key in a:
            np.testing.assert_array_equal(a[key], b[key])
        assert meta_a.get("average_count") == meta_b.get("average_count")
    evals = [[r["metrics"]["loss"] for r in RunDir(str(tmp_path / n)).read_metrics()
              if r["kind"] == "eval"] for n in ("full", "half")]
    assert evals[0] == evals[1]


def test_a_checkpoint_without_the_trained_parameters_is_one_clear_error(tmp_path):
    train(tmp_path, "avg", steps=3, average="ema:0.9")
    path = str(tmp_path / "avg" / LAST)
    arrays, meta = load_arrays(path)
    del arrays["train/params"]
    save_arrays(path, arrays, meta)
    run = RunDir.open(str(tmp_path / "avg"))
    with pytest.raises(UserError, match="corrupted or incomplete.*train/params"):
        resume_run(get_task("toy-sign"), run, echo=lambda line: None).fit(resume=True)


@pytest.mark.parametrize("value, fragment", [
    ("ema:1", "between 0 and 1"), ("ema:0", "between 0 and 1"), ("ema:x", "not a number"),
    ("swa:-1", "whole number"), ("swa:2.5", "whole number"), ("swa:inf", "whole number"),
    ("polyak", "expected off, ema:D"), ("ema", "expected off, ema:D")])
def test_bad_values_are_one_line_and_make_no_run(tmp_path, value, fragment):
    out = tmp_path / "run"
    result = CliRunner().invoke(cli, ["train", "toy-sign", "--out", str(out), "--average",
                                      value])
    assert result.exit_code != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: ") and fragment in lines[0], \
        result.stderr
    assert "Traceback" not in result.output and not out.exists()
    with pytest.raises(ValueError, match=fragment):
        averaging.parse(value)
    # the library path (a config not from the command line) refuses it too
    with pytest.raises(UserError, match=fragment):
        train(tmp_path, "lib", average=value)


@pytest.mark.parametrize("start, reach", [(7, "which the run's 7 step(s) do not reach"),
                                          (100, "which the run's 7 step(s) do not reach"),
                                          (6, "the last of the run's 7 step(s) alone")])
def test_swa_starting_at_the_end_of_a_new_run_is_refused(tmp_path, start, reach):
    """swa:S averages the steps after step S: a run of --steps S+1 or fewer would keep
    the trained parameters as the "average", which is --average off said otherwise."""
    out = tmp_path / "run"
    result = CliRunner().invoke(cli, ["train", "toy-sign", "--out", str(out), "--steps",
                                      str(STEPS), "--average", f"swa:{start}"])
    assert result.exit_code != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines == [f"Error: --average swa:{start} averages from step {start + 1} on, "
                     f"{reach}: the average would be the trained parameters; give a "
                     f"smaller start, more --steps, or --average off"], result.stderr
    assert not out.exists()
    with pytest.raises(UserError, match=f"--average swa:{start} averages"):
        train(tmp_path, "lib", steps=STEPS, average=f"swa:{start}")
    assert not (tmp_path / "lib").exists()


def test_swa_beyond_the_steps_of_an_epoch_run_is_a_note(tmp_path):
    """--epochs ends the run before swa:S starts (its steps are known once an epoch is
    counted, after the run is made): the run trains, says once that the average is the
    trained parameters, and says it again when resumed for another epoch."""
    out = tmp_path / "run"
    result = CliRunner().invoke(cli, ["train", "toy-sign", "--out", str(out), "--epochs",
                                      "1", "--average", "swa:100000", "--quiet"])
    assert result.exit_code == 0, result.output
    steps = RunDir.open(str(out)).read_metrics()[-1]["step"]
    notes = [line for line in result.stderr.splitlines() if line.startswith("note:")]
    assert notes == [f"note: --average swa:100000 averages from step 100001 on, which the "
                     f"run's {steps} step(s) do not reach: the average would be the trained "
                     f"parameters; give a smaller start, more --epochs, or --average off"]
    arrays, meta = load_arrays(str(out / LAST))
    assert meta["average_count"] == 0
    names = load_model(RunDir.open(str(out)))[0].named_params
    np.testing.assert_array_equal(
        np.concatenate([arrays[f"param/{k}"].ravel() for k in names]),
        arrays["train/params"])
    result = CliRunner().invoke(cli, ["train", "toy-sign", "--resume", str(out), "--epochs",
                                      "2", "--quiet"])
    assert result.exit_code == 0, result.output
    assert [line for line in result.stderr.splitlines() if line.startswith("note:")] == [
        f"note: --average swa:100000 averages from step 100001 on, which the run's "
        f"{2 * steps} step(s) do not reach: the average would be the trained parameters; "
        f"give more --epochs"]


def test_averaging_cannot_change_on_resume(tmp_path):
    train(tmp_path, "run", steps=3, average="ema:0.9")
    result = CliRunner().invoke(cli, ["train", "toy-sign", "--resume", str(tmp_path / "run"),
                                      "--average", "off"])
    one_line_error(result, "--average cannot change when resuming")


def test_averaging_given_again_in_another_spelling_resumes(tmp_path):
    """ema:0.90 and EMA:0.9 are the run's ema:0.9: the resume goes on and the run keeps
    its own spelling; another decay is still refused."""
    run = tmp_path / "run"
    train(tmp_path, "run", steps=3, average="ema:0.9")
    for spelling in ("ema:0.90", "EMA:0.9"):
        result = CliRunner().invoke(cli, ["train", "toy-sign", "--resume", str(run),
                                          "--average", spelling, "--steps", "4"])
        assert result.exit_code == 0, result.output
        assert RunDir.open(str(run)).info()["config"]["average"] == "ema:0.9"
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    result = CliRunner().invoke(cli, ["train", "toy-sign", "--resume", str(run),
                                      "--average", "ema:0.8"])
    one_line_error(result, "--average cannot change when resuming")
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before


def test_a_task_may_turn_averaging_on_by_default(tmp_path, monkeypatch):
    task = get_task("toy-sign")
    defaults = task.defaults()
    monkeypatch.setattr(type(task), "defaults", lambda self: {**defaults,
                                                              "average": "ema:0.9"})
    help_text = CliRunner().invoke(cli, ["train", "toy-sign", "--help"]).output
    assert "default: ema:0.9" in help_text.replace("\n", " ").replace("  ", " ")
    on, off = tmp_path / "on", tmp_path / "off"
    assert CliRunner().invoke(cli, ["train", "toy-sign", "--out", str(on), "--steps", "5",
                                    "--quiet"]).exit_code == 0
    assert CliRunner().invoke(cli, ["train", "toy-sign", "--out", str(off), "--steps", "5",
                                    "--quiet", "--average", "off"]).exit_code == 0
    assert RunDir.open(str(on)).info()["config"]["average"] == "ema:0.9"
    assert load_arrays(str(on / LAST))[1]["average_count"] == 5
    assert "average_count" not in load_arrays(str(off / LAST))[1]
    assert "train/params" not in load_arrays(str(off / LAST))[0]
