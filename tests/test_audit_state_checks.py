"""Audit (mutation testing) of the saved-state checks: the boundaries and the branches of
each task's check_state, of recurrent.schema and of the run-file checks that the tests of
tests/test_task_state_checks.py leave open. Each case edits one entry of a state a real
tiny run saved and calls the task's check directly (the CLI path is covered there)."""
from __future__ import annotations

import copy
import json
import math
import types

import pytest
from helpers import invoke, one_line_error

from recurrent import checkpoint, schema
from recurrent.plugins import get_task


@pytest.fixture
def saved(task_runs):
    """task -> (task state, model spec) of the session's tiny run of each built-in task."""
    out = {}
    for task, run in task_runs.items():
        info = json.loads((run / "config.json").read_text())
        out[task] = (info["task_state"], info["model_spec"])
    return out


def problem(task, state, spec):
    """The check's message for ``state``, or None when the task accepts it."""
    try:
        get_task(task).check_state(state, spec)
    except ValueError as e:
        return str(e)
    return None


DELETE = object()


def edited(saved, task, **changes):
    """(a deep copy of the task's saved state with ``changes``, its model spec); a change
    to DELETE deletes the key."""
    state, spec = copy.deepcopy(saved[task])
    for key, value in changes.items():
        if value is DELETE:
            state.pop(key, None)
        else:
            state[key] = value
    return state, spec


# ---- recurrent.schema ---------------------------------------------------------------------

def test_a_spec_of_a_type_json_lacks_is_a_programming_error():
    with pytest.raises(TypeError, match="no JSON kind for tuple"):
        schema.check((1,), tuple, "x")
    with pytest.raises(TypeError, match="no JSON kind for tuple"):
        schema.check(1, tuple, "x")


def test_finite_is_a_number_first():
    for value, shown in ((True, "True"), ("1", "'1'"), (None, "None")):
        with pytest.raises(ValueError) as e:
            schema.finite(value, "x")
        assert str(e.value) == f"x: expected a number, got {shown}"
    schema.finite(-1.5, "x")
    schema.finite(3, "x")


# ---- recurrent.checkpoint: the run file's keys, the state check, the format ----------------

def _run_with(tmp_path, info):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps(info))
    return run


def test_a_key_of_the_wrong_json_type_is_named(saved, tmp_path):
    state, spec = saved["char-lm"]
    info = {"format": checkpoint.FORMAT, "task": "char-lm", "config": [],
            "task_state": state, "model_spec": spec}
    assert checkpoint.info_problem(info) == "'config' is not a JSON object"
    assert checkpoint.info_problem({**info, "task": 3}) == "'task' is not a JSON string"
    one_line_error(invoke("eval", _run_with(tmp_path, info)),
                   "is corrupted: 'config' is not a JSON object")


def test_a_run_file_missing_its_keys_is_corrupted_not_of_another_format(tmp_path):
    """The keys every run needs come before the format: a config.json without them (no
    "format" either) is named corrupted, not "format None"."""
    one_line_error(invoke("eval", _run_with(tmp_path, {"task": "char-lm"})),
                   "config.json is corrupted: no 'config'")


def test_a_task_without_check_state_accepts_any_state(saved, monkeypatch):
    import recurrent.plugins
    monkeypatch.setattr(recurrent.plugins, "get_task",
                        lambda name: types.SimpleNamespace(name=name, options=list,
                                                              defaults=dict))
    info = {"format": checkpoint.FORMAT, "task": "plain", "config": {},
            "task_state": {"anything": 1}, "model_spec": {}}
    assert checkpoint.info_problem(info) is None


# ---- char-lm --------------------------------------------------------------------------------

def test_char_lm_older_state_without_the_character_counts_passes(saved):
    state, spec = edited(saved, "char-lm", n_chars=DELETE, max_chars=DELETE)
    assert problem("char-lm", state, spec) is None


def test_char_lm_n_train_may_leave_exactly_two_characters(saved):
    state, spec = saved["char-lm"]
    n = state["n_chars"]
    assert problem("char-lm", *edited(saved, "char-lm", n_train=n - 2)) is None
    assert "n_train: expected at most n_chars - 2" in problem(
        "char-lm", *edited(saved, "char-lm", n_train=n - 1))


def test_char_lm_output_size_is_the_vocabulary_too(saved):
    state, spec = saved["char-lm"]
    assert "the model's output_size is" in problem(
        "char-lm", state, {**spec, "output_size": spec["output_size"] + 1})


# ---- sentiment ------------------------------------------------------------------------------

def test_sentiment_fractions_summing_to_one_leave_no_training_rows(saved):
    assert "valid_fraction + test_fraction: expected < 1" in problem(
        "sentiment", *edited(saved, "sentiment", valid_fraction=0.5, test_fraction=0.5))
    assert problem("sentiment", *edited(saved, "sentiment", valid_fraction=0.45,
                                        test_fraction=0.5)) is None


def test_sentiment_valid_fraction_must_be_positive(saved):
    assert "valid_fraction: expected a number > 0, got 0" in problem(
        "sentiment", *edited(saved, "sentiment", valid_fraction=0))


def test_sentiment_needs_two_classes(saved):
    state, spec = edited(saved, "sentiment")
    state["classes"] = state["classes"][:1]
    assert "classes: expected two or more distinct labels, got 1" in problem(
        "sentiment", state, {})


def test_sentiment_vocab_must_start_with_pad_then_unk(saved):
    state, spec = edited(saved, "sentiment")
    state["vocab"] = [state["vocab"][0], "word"] + state["vocab"][2:]
    assert "vocab: expected to start with <pad>, <unk>" in problem("sentiment", state, spec)


# ---- seq2seq --------------------------------------------------------------------------------

def test_seq2seq_source_vocab_must_start_with_its_specials(saved):
    state, spec = edited(saved, "seq2seq")
    state["source_vocab"] = ["<unk>", "<pad>"] + state["source_vocab"][2:]
    assert "source_vocab: expected to start with <pad>, <unk>" in problem(
        "seq2seq", state, spec)


def test_seq2seq_output_size_is_the_target_vocabulary(saved):
    state, spec = saved["seq2seq"]
    assert "the model's output_size is" in problem(
        "seq2seq", state, {**spec, "output_size": spec["output_size"] + 1})


# ---- forecast: state.py ---------------------------------------------------------------------

def fc(saved, **changes):
    """The hybrid run's state with ``changes``, checked against no model spec (sizes are
    not the subject); its message or None."""
    state, _ = edited(saved, "forecast", **changes)
    return problem("forecast", state, {})


def test_forecast_saved_state_is_a_hybrid_one(saved):
    state, _ = saved["forecast"]
    assert state["model"] == "hybrid" and state["anchors"] == ["ets"] * state["horizon"]
    assert state["ets"][0]["kind"] in ("hw_add", "hw_mul") and len(state["columns"]) == 1


def test_forecast_anchors_joined_by_plus_are_checked_part_by_part(saved):
    state, _ = saved["forecast"]
    h = state["horizon"]
    assert fc(saved, anchors=["ets+last"] * h) is None
    assert fc(saved, anchors=["ets+seasonal"] * h) is None
    assert "anchors[0]: expected last or" in fc(saved, anchors=["last+nope"] * h)


def test_forecast_split_ends_increase_throughout(saved):
    train, valid, rows = saved["forecast"][0]["split_ends"]
    assert "split_ends: expected three increasing row counts" in fc(
        saved, split_ends=[train, rows, valid])


def test_forecast_window_and_horizon_may_fill_the_splits_exactly(saved):
    state, _ = saved["forecast"]
    train, valid, rows = state["split_ends"]
    h = state["horizon"]
    assert fc(saved, window=train - h) is None  # window + horizon == the training rows
    assert "do not fit the splits" in fc(saved, window=train - h + 1)
    shortest = min(valid - train, rows - valid)
    assert fc(saved, horizon=shortest, anchors=["ets"] * shortest) is None
    assert "do not fit the splits" in fc(saved, horizon=shortest + 1,
                                         anchors=["ets"] * (shortest + 1))


def test_forecast_a_run_of_a_file_needs_its_path(saved):
    assert "data: expected the training file's path" in fc(saved, bundled=DELETE, data=None)
    assert "data: expected the training file's path" in fc(saved, bundled="", data=None)
    assert fc(saved, bundled=DELETE, data="series.csv") is None


def test_forecast_calendar_features_need_a_time_column(saved):
    assert "time_column: the calendar features (year)" in fc(
        saved, calendar=["year"], time_column=None)


def test_forecast_damping_is_checked_and_required_by_a_damped_anchor(saved):
    h = saved["forecast"][0]["horizon"]
    assert "damping is missing" in fc(saved, anchors=["seasonal_damped"] * h, damping=DELETE)
    assert fc(saved, anchors=["seasonal_damped"] * h, damping=[[0.5]] * h) is None
    assert "damping[0]: expected 1 entries, got 2" in fc(saved, damping=[[0.5, 0.5]] * h)
    assert "damping[0][0]: expected a finite number" in fc(saved, damping=[[math.inf]] * h)


def test_forecast_ets_fits_one_per_column_null_allowed(saved):
    fit = saved["forecast"][0]["ets"][0]
    assert fc(saved, ets=[None]) is None  # a column without a fit
    assert "ets: expected 1 entries, got 2" in fc(saved, ets=[fit, None])


def test_forecast_a_hybrid_needs_its_ets_fits_without_anchors_too(saved):
    assert "ets is missing" in fc(saved, anchors=DELETE, ets=DELETE)


def test_forecast_an_anchor_part_needs_its_fits(saved):
    h = saved["forecast"][0]["horizon"]
    assert "ets is missing" in fc(saved, model="rnn", anchors=["ets+last"] * h, ets=DELETE)
    assert "es is missing" in fc(saved, model="rnn", anchors=["es"] * h)


def test_forecast_output_size_is_the_columns_by_the_horizon(saved):
    state, spec = saved["forecast"]
    assert "the model's output_size is" in problem(
        "forecast", state, {**spec, "output_size": spec["output_size"] + 1})


# ---- forecast: ets.check_fit and smoothing.check_fit ----------------------------------------

def _fit(saved):
    fit = copy.deepcopy(saved["forecast"][0]["ets"][0])
    assert fit["kind"] in ("hw_add", "hw_mul") and "initial_trend" in fit
    return fit


def test_ets_fit_needs_every_coefficient_and_state_of_its_kind(saved):
    fit = _fit(saved)
    del fit["smoothing"]["smoothing_trend"]
    assert "ets[0].smoothing.smoothing_trend is missing" in fc(saved, ets=[fit])
    fit = _fit(saved)
    del fit["initial_trend"]
    assert "ets[0].initial_trend is missing" in fc(saved, ets=[fit])


def test_ets_fallback_only_on_a_multiplicative_fit_and_additive(saved):
    additive = {**_fit(saved), "kind": "hw_add"}
    multiplicative = {**_fit(saved), "kind": "hw_mul"}
    assert fc(saved, ets=[{**multiplicative, "fallback": additive}]) is None
    assert "ets[0].fallback: only a multiplicative fit has one" in fc(
        saved, ets=[{**additive, "fallback": additive}])
    assert "ets[0].fallback: only a multiplicative fit has one" in fc(
        saved, ets=[{**multiplicative, "fallback": multiplicative}])
    broken = {k: v for k, v in additive.items() if k != "initial_level"}
    assert "ets[0].fallback.initial_level is missing" in fc(
        saved, ets=[{**multiplicative, "fallback": broken}])


def test_es_fits_are_checked_their_theta_sized_by_the_season(saved):
    assert fc(saved, es=[{"season": 1, "theta": [0.1, -0.2]}]) is None
    assert fc(saved, es=[{"season": 3, "theta": [0.1, -0.2, 1.0, 2.0, 3.0]}]) is None
    assert "es[0].theta: expected 5 entries, got 3" in fc(
        saved, es=[{"season": 3, "theta": [0.1, -0.2, 1.0]}])
    assert "es[0].theta: expected 2 entries, got 3" in fc(
        saved, es=[{"season": 1, "theta": [0.1, -0.2, 1.0]}])
    assert "es[0].theta[0]: expected a finite number" in fc(
        saved, es=[{"season": 1, "theta": [math.nan, 0.0]}])
