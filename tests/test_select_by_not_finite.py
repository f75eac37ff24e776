"""--select-by a figure that is not a finite number: an evaluation with a NaN or infinite
figure never makes best.npz (NaN compares with nothing; an infinite figure would stay the
best for good), and a run whose figure was never finite says so at the end of training,
in eval and in predict, rather than "no evaluation" or "stopped before its first
evaluation"."""
import math

import click
import pytest

import recurrent
import train_toys
from helpers import invoke, ok, registered_plugin
from recurrent import candidates, selection
from recurrent.runs import start_run
from test_train import config_for, eval_records


class OddScore(train_toys.ToySign):
    """toy-sign whose metrics add "score": the value --score gives, at every evaluation."""
    name = "odd-score"

    def options(self):
        return super().options() + [click.Option(["--score"], default="0.5")]

    def prepare(self, config):
        return {**super().prepare(config), "score": config["score"]}

    def evaluate(self, state, split, config, model):
        return {**super().evaluate(state, split, config, model),
                "score": float(state["score"])}


class OddScoreCandidates(OddScore):
    """odd-score choosing between two --samples by the validation figure."""
    name = "odd-score-candidates"

    def candidates(self, config):
        return [{"samples": 192}, {"samples": 160}]


class _Plugin:
    @recurrent.hookimpl
    def register_tasks(self, register):
        register(OddScore())
        register(OddScoreCandidates())


@pytest.fixture(autouse=True)
def tasks():
    with train_toys.registered(), registered_plugin(_Plugin(), "test-odd-score"):
        yield


@pytest.mark.parametrize("score", ["nan", "inf", "-inf"])
@pytest.mark.parametrize("direction", ["max", "min"])
def test_a_figure_never_finite_makes_no_best_checkpoint_and_says_so(tmp_path, score,
                                                                     direction):
    run = tmp_path / "run"
    out = ok(invoke("train", "odd-score", "--score", score, "--select-by",
                    f"score:{direction}", "--epochs", 2, "--quiet", "--out", run))
    assert ("done after 18 steps: no best checkpoint (valid score was not a finite number "
            "at any of the 2 evaluations; eval, predict and export use last.npz)") in out
    assert [e["best"] for e in eval_records(str(run))] == [False, False]
    assert not (run / "best.npz").exists() and (run / "last.npz").exists()
    header = ok(invoke("eval", run)).splitlines()[0]
    assert header.endswith("(no best checkpoint, valid score was not a finite number at "
                           "any evaluation: the latest parameters, last.npz)")
    result = invoke("predict", run, 1.0)
    ok(result)
    assert ("has no best checkpoint (valid score was not a finite number at any "
            "evaluation): using the latest parameters, last.npz") in result.stderr


def test_candidates_whose_figure_is_never_finite_say_so(tmp_path):
    run = tmp_path / "run"
    out = ok(invoke("train", "odd-score-candidates", "--score", "nan", "--select-by",
                    "score:max", "--epochs", 1, "--quiet", "--out", run))
    assert "no candidate's valid score was a finite number (kept --samples 192)" in out
    assert "best valid score nan" not in out


def test_an_ensemble_whose_figure_is_not_finite_claims_no_best(tmp_path):
    run = tmp_path / "run"
    out = ok(invoke("train", "odd-score", "--score", "nan", "--select-by", "score:max",
                    "--ensemble", 2, "--epochs", 1, "--quiet", "--out", run))
    assert "the ensemble's valid score is nan, not a finite number" in out
    assert "best ensemble" not in out


class _Scripted:
    """toy-sign whose "score" follows a script, one value per evaluation (the first for
    the check of --select-by before the run starts)."""

    def __init__(self, scores):
        self._task, self._scores = train_toys.ToySign(), iter(scores)

    def __getattr__(self, name):
        return getattr(self._task, name)

    def evaluate(self, state, split, config, model):
        return {**self._task.evaluate(state, split, config, model),
                "score": next(self._scores)}


@pytest.mark.parametrize("select_by, scores, marks", [
    ("score:max", [0.0, math.inf, 0.5, math.nan, 0.7], [False, True, False, True]),
    ("score:min", [0.0, -math.inf, 0.5, math.nan, 0.3], [False, True, False, True]),
])
def test_an_infinite_figure_does_not_stay_the_best(tmp_path, select_by, scores, marks):
    task, config = config_for("toy-sign", select_by=select_by, eval_every=1, steps=4)
    trainer = start_run(_Scripted(scores), config, str(tmp_path / "run"),
                        echo=lambda line: None)
    summary = trainer.fit()
    assert [e["best"] for e in eval_records(str(tmp_path / "run"))] == marks
    assert summary["best"] == f"valid score {scores[-1]:.4f}"


def test_a_candidate_with_a_figure_not_finite_never_wins_over_a_finite_one():
    assert candidates.choose([-math.inf, 0.5, 0.4]) == 2
    assert candidates.choose([math.inf, math.nan, 0.4]) == 2
    assert candidates.choose([math.nan, -math.inf]) == 0
    assert not selection.improves(-math.inf, math.inf)
    assert selection.improves(0.1, math.inf)
