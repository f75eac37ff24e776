"""--select-by (recurrent/selection.py): the validation figure that picks the best
checkpoint and that --patience watches, through the library API on the toy tasks."""
import math

import numpy as np
import pytest

import train_toys
from recurrent import selection
from recurrent.checkpoint import BEST, RunDir, load_arrays
from recurrent.errors import UserError
from recurrent.plugins import get_task
from recurrent.position import Position
from recurrent.runs import resume_run, start_run
from recurrent.trainer import load_params
from test_train import config_for, eval_records, train


@pytest.fixture(autouse=True)
def toys():
    with train_toys.registered():
        yield


def test_parse_needs_the_direction_of_any_metric_but_the_loss():
    assert selection.parse(None) == selection.parse("loss") == ("loss", "min")
    assert selection.parse("accuracy:max") == ("accuracy", "max")
    assert selection.parse("f1/fresh:min") == ("f1/fresh", "min")
    for bad in ("accuracy", "accuracy:best", ":max", "loss:"):
        with pytest.raises(ValueError, match=r"NAME:max or NAME:min"):
            selection.parse(bad)


def test_scores_are_minimised_and_read_numpy_numbers():
    metrics = {"loss": 0.5, "accuracy": np.float32(0.75), "count": np.int64(8), "ok": True}
    assert selection.parse("accuracy:max").score(metrics) == -0.75
    assert selection.parse("count:min").score(metrics) == 8
    with pytest.raises(KeyError, match=r"no number 'ok' \(they have: loss, accuracy, count\)"):
        selection.parse("ok:max").score(metrics)


def test_the_best_figure_is_printed_as_the_evaluation_lines_print_it():
    """The run's summary names its best figure as its eval lines and `recurrent eval`
    print figures (format_value): a tiny loss, as a separable dataset reaches, is not
    0.0000, which would read as a perfect model."""
    assert selection.parse("loss").describe(2.7264e-05) == "valid loss 2.7264e-05"
    assert selection.parse("loss").describe(0.4552) == "valid loss 0.4552"
    accuracy = selection.parse("accuracy:max")
    assert accuracy.describe(accuracy.score({"accuracy": 0.7882})) == "valid accuracy 0.7882"


def test_accuracy_picks_the_most_accurate_checkpoint(tmp_path):
    """Each evaluation is marked best exactly when its accuracy beats every earlier one;
    best.npz holds the parameters of the last such evaluation, and its accuracy is the
    one the summary names."""
    trainer, summary = train(tmp_path, "toy-sign", epochs=3, eval_every=2, lr=0.02,
                             select_by="accuracy:max")
    evals = eval_records(str(tmp_path / "run"))
    accuracies = [e["metrics"]["accuracy"] for e in evals]
    assert len(set(accuracies)) > 2  # the choice is not trivial
    assert [e["best"] for e in evals] == \
        [a > max(accuracies[:i], default=-1) for i, a in enumerate(accuracies)]
    losses = [e["metrics"]["loss"] for e in evals]
    loss_marks = [v < min(losses[:i], default=math.inf) for i, v in enumerate(losses)]
    assert loss_marks != [e["best"] for e in evals]  # the loss would have chosen otherwise
    model = trainer.config.build_model(trainer.spec)
    arrays, _ = load_arrays(str(tmp_path / "run" / BEST))
    load_params(model, arrays, BEST)
    model.eval()
    task = get_task("toy-sign")
    best = task.evaluate(trainer.task_state, "valid", trainer.config, model.runner())
    assert float(best["accuracy"]) == max(accuracies)
    assert summary["best"] == f"valid accuracy {max(accuracies):.4f}"
    assert summary["best_loss"] == pytest.approx(losses[accuracies.index(max(accuracies))])


class _Scripted:
    """toy-sign with scripted validation metrics: the loss falls at every evaluation, the
    accuracy stops rising after the second (and is NaN at the fourth)."""

    def __init__(self, script):
        self._task, self._script = get_task("toy-sign"), iter(script)

    def __getattr__(self, name):
        return getattr(self._task, name)

    def evaluate(self, state, split, config, model):
        return next(self._script)


SCRIPT = [{"loss": 1.0 - 0.1 * i, "accuracy": a}
          for i, a in enumerate([0.5, 0.6, 0.6, float("nan"), 0.6, 0.6, 0.6])]


@pytest.mark.parametrize("select_by, marks, status", [
    ("accuracy:max", [True, True, False, False, False], "early-stopped"),
    ("loss", [True] * 6, "done"),
])
def test_patience_counts_evaluations_without_a_better_selected_figure(
        tmp_path, select_by, marks, status):
    task, config = config_for("toy-sign", select_by=select_by, eval_every=1, steps=6,
                              patience=3)
    script = SCRIPT if select_by == "loss" else SCRIPT[:1] + SCRIPT  # + the start's check
    trainer = start_run(_Scripted(script), config, str(tmp_path / "run"),
                        echo=lambda line: None)
    summary = trainer.fit()
    assert summary["status"] == status
    assert [e["best"] for e in eval_records(str(tmp_path / "run"))] == marks
    assert summary["best"] == ("valid accuracy 0.6000" if select_by != "loss"
                               else "valid loss 0.5000")


def test_a_metric_the_task_lacks_is_one_line_before_the_run_directory(tmp_path):
    with pytest.raises(UserError, match=r"^--select-by acc:max: the task's validation "
                                        r"metrics have no number 'acc' \(they have: loss, "
                                        r"accuracy, count\)$"):
        train(tmp_path, "toy-sign", select_by="acc:max")
    assert not (tmp_path / "run").exists()
    with pytest.raises(UserError, match=r"^--select-by 'accuracy': expected"):
        train(tmp_path, "toy-sign", select_by="accuracy")
    assert not (tmp_path / "run").exists()


def test_a_resumed_run_keeps_the_selected_best(tmp_path):
    """The best score is part of the checkpoint: stopping and resuming marks the same
    evaluations best as a run that never stopped."""
    options = dict(epochs=3, eval_every=2, lr=0.02, select_by="accuracy:max")
    full, _ = train(tmp_path, "toy-sign", name="full", **options)
    train(tmp_path, "toy-sign", name="half", steps=full.position.step // 2 + 1, **options)
    run = RunDir.open(str(tmp_path / "half"))
    config = run.info()["config"]
    config["steps"] = 0
    run.update_config(config)
    resume_run(get_task("toy-sign"), run, echo=lambda line: None).fit(resume=True)
    marks = [[(e["step"], e["best"]) for e in eval_records(str(tmp_path / name))]
             for name in ("full", "half")]
    assert marks[0] == marks[1] and sum(best for _, best in marks[0]) > 1


def test_the_loss_given_again_as_loss_min_resumes(tmp_path):
    """--select-by loss:min is the run's loss: the resume goes on, keeping "loss"."""
    train(tmp_path, "toy-sign", steps=3, epochs=0)
    run = RunDir.open(str(tmp_path / "run"))
    resume_run(get_task("toy-sign"), run, echo=lambda line: None,
               changes={"select_by": "loss:min", "steps": 4}).fit(resume=True)
    assert run.info()["config"]["select_by"] == "loss"
    with pytest.raises(UserError, match="--select-by cannot change when resuming"):
        resume_run(get_task("toy-sign"), run, echo=lambda line: None,
                   changes={"select_by": "accuracy:max"})


def test_checkpoints_written_before_select_by_resume_on_the_loss():
    meta = Position(step=4, best_loss=0.5).to_meta()
    del meta["best_score"]
    position = Position.from_meta(meta)
    assert position.best_loss == 0.5 and position.best_score == math.inf
    assert Position().to_meta()["best_score"] is None
    _, config = config_for("toy-sign")
    assert config["select_by"] == "loss"
