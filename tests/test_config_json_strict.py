"""config.json is strict JSON, as metrics.jsonl and every --json output are: a NaN or
infinite number in it (a candidate's validation figure that was not finite, a forecast
model choice no window could score) is written as null, and the readers of those values
tell such a null from a diverged candidate's."""
import json

import pytest

import train_toys
from helpers import invoke, ok, registered_plugin
from recurrent.candidates import chosen_text
from test_select_by_not_finite import _Plugin


def _strict(path):
    def refuse(constant):
        raise ValueError(f"{constant} is not strict JSON")
    return json.loads(path.read_text(), parse_constant=refuse)


@pytest.fixture
def odd_score():
    with train_toys.registered(), registered_plugin(_Plugin(), "test-odd-score"):
        yield


@pytest.mark.parametrize("score", ["nan", "inf"])
def test_a_candidates_figure_that_is_not_finite_is_null_and_not_called_diverged(
        tmp_path, odd_score, score):
    run = tmp_path / "run"
    ok(invoke("train", "odd-score-candidates", "--score", score, "--select-by",
              "score:max", "--epochs", 1, "--quiet", "--out", run))
    chose = _strict(run / "config.json")["chose"]
    assert chose["scores"] == [None, None] and chose["diverged"] == []
    line = next(line for line in ok(invoke("eval", run)).splitlines()
                if line.startswith("chosen on validation: "))
    assert line == ("chosen on validation: --samples 192 (valid score not a finite number) "
                    "over --samples 160 (valid score not a finite number)")
    assert json.loads(ok(invoke("eval", run, "--json")))["chose"] == chose


def test_a_choice_recorded_before_diverged_was_listed_reads_null_as_diverged():
    record = {"candidates": [{"window": 8}, {"window": 16}], "scores": [0.25, None],
              "chosen": 0, "select_by": "loss", "given": {"window": "auto"}}
    assert chosen_text({"chose": record}) == ("chosen on validation: --window 8 (valid "
                                              "loss 0.2500) over --window 16 (diverged)")


@pytest.mark.parametrize("unscored", [None, float("nan")])
def test_a_forecast_model_choice_no_window_scored_reads_back(tmp_path, unscored):
    run = tmp_path / "run"
    ok(invoke("train", "forecast", "--steps", 2, "--hidden", 4, "--window", 16,
              "--inputs", "level", "--threads", 1, "--quiet", "--no-plot", "--out", run))
    info = _strict(run / "config.json")
    assert set(info["task_state"]["model_choice"]) >= {"anchors", "ets"}
    info["task_state"]["model_choice"]["ets"] = unscored  # NaN: as a run saved before
    (run / "config.json").write_text(json.dumps(info))
    out = ok(invoke("eval", run))
    assert "validation MASE" in out and " nan" in out
