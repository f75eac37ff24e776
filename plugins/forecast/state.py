"""What a forecast run's saved state must hold (ForecastTask.check_state): the keys the
task reads, of the types and sizes it reads them as, so that a damaged or hand-edited
config.json is named in one line when the run is opened rather than failing as an
internal error inside a forecast.

Keys the task reads with a default (runs saved before they existed have none) are
optional; sizes are checked against one another: C value columns, H horizon steps, the
model's inputs and outputs (its model_spec).
"""
from __future__ import annotations

from recurrent import schema
from recurrent.step import VALID_LOSS_RUN

from . import anchors as anc
from . import calendar as cal
from . import ets, smoothing
from . import windows as win
from .predict import STEP_UNITS

KINDS = ("hybrid", "esrnn", "rnn")  # a run's model: --model auto resolves to one of them
ANCHOR_PARTS = (*anc.ANCHORS, "ets", "es")  # an anchor is one part or "a+b" (anchors.py)


def _anchor(value, where) -> None:
    schema.check(value, str, where)
    if not all(part in ANCHOR_PARTS for part in value.split("+")):
        raise ValueError(f"{where}: expected {' or '.join(ANCHOR_PARTS)} (or two joined "
                         f"by +), got {value!r}")


def _split_ends(value, where) -> None:
    schema.check(value, schema.list_of(schema.at_least(1), size=3), where)
    if not value[0] < value[1] < value[2]:
        raise ValueError(f"{where}: expected three increasing row counts, got {value}")


def _model_choice(value, where) -> None:
    """choose_model's scores: at least one candidate's validation MASE (a number; null,
    or NaN in a run saved before config.json wrote it as null, when no window could be
    scored)."""
    schema.check(value, dict, where)
    if not value:
        raise ValueError(f"{where}: expected the candidates' scores, got none")
    for key, score in value.items():
        schema.check(key, schema.one_of(*anc.CHOICES), f"{where} key")
        schema.check(score, schema.nullable(float), f"{where}.{key}")


def _fits(check_fit, columns: int):
    """A list of one fit (checked by ``check_fit``) or null per value column."""
    def spec(value, where):
        schema.check(value, schema.list_of(schema.nullable(dict), size=columns), where)
        for c, fit in enumerate(value):
            if fit is not None:
                check_fit(fit, f"{where}[{c}]")
    return spec


STATE = schema.fields(
    {"data": schema.nullable(str), "data_label": str,
     "columns": schema.list_of(str, nonempty=True), "time_column": schema.nullable(str),
     "fill": bool, "window": schema.at_least(1), "horizon": schema.at_least(1),
     "season": schema.at_least(1), "split_ends": _split_ends,
     "scaler": schema.fields({"center": list, "scale": list},
                             {"kind": schema.one_of(*win.SCALINGS)}),
     "mase_scale": list},
    {"bundled": schema.nullable(str), "difference": bool, "anchors": list,
     "damping": list, "blend_mode": schema.one_of(*anc.BLEND_MODES),
     "blend": schema.at_least(0, float),
     "model": schema.one_of(*KINDS), "model_choice": _model_choice, "seasonal_inputs": bool,
     "calendar": schema.list_of(schema.one_of(*cal.CYCLES)),
     "calendar_clock": schema.one_of(*cal.CLOCKS),
     "inputs": schema.one_of(*win.INPUT_MODES[1:]), "ets": list, "es": list,
     "es_train": str, "data_sha256": str, "date_order": str,
     "valid_loss": schema.one_of(VALID_LOSS_RUN),
     "time_step": schema.fields({"unit": schema.one_of(*STEP_UNITS),
                                 "size": schema.above(0)})})


def check(state: dict, model_spec: dict, expected_spec) -> None:
    """ValueError naming the first entry of ``state`` that the task could not read, or
    a size the model's spec disagrees with; ``expected_spec(state)``: the spec the task
    would make for the state (ForecastTask.model_spec), whose sizes must be the model's."""
    schema.check(state, STATE, "")
    columns, horizon = len(state["columns"]), state["horizon"]
    train_end, valid_end, rows = state["split_ends"]
    if state["window"] + horizon > train_end or min(valid_end - train_end,
                                                    rows - valid_end) < horizon:
        raise ValueError(f"window {state['window']} and horizon {horizon} do not fit the "
                         f"splits {state['split_ends']} (every split holds a window)")
    if not state.get("bundled") and state["data"] is None:
        raise ValueError("data: expected the training file's path (the run has no "
                         "bundled series), got None")
    if state.get("calendar") and not state["time_column"]:
        raise ValueError(f"time_column: the calendar features ({', '.join(state['calendar'])})"
                         f" come from the dates of a time column, got "
                         f"{state['time_column']!r}")
    positive = schema.list_of(schema.above(0), size=columns)
    schema.check(state["scaler"]["center"], schema.list_of(schema.finite, size=columns),
                 "scaler.center")
    schema.check(state["scaler"]["scale"], positive, "scaler.scale")
    schema.check(state["mase_scale"], positive, "mase_scale")
    if "anchors" in state:
        schema.check(state["anchors"], schema.list_of(_anchor, size=horizon), "anchors")
    if "damping" in state:
        schema.check(state["damping"], schema.list_of(
            schema.list_of(schema.finite, size=columns), size=horizon), "damping")
    if "ets" in state:
        schema.check(state["ets"], _fits(ets.check_fit, columns), "ets")
    if "es" in state:
        schema.check(state["es"], _fits(smoothing.check_fit, columns), "es")
    parts = {part for anchor in state.get("anchors") or [] for part in anchor.split("+")}
    needed = {"ets": state.get("model") == "hybrid" or "ets" in parts,
              "es": state.get("model") == "esrnn" or "es" in parts,
              "damping": "seasonal_damped" in parts}
    for key, needs in needed.items():
        if needs and key not in state:
            raise ValueError(f"{key} is missing (the run's model or anchors use it)")
    expected = expected_spec(state)
    for key in ("input_size", "output_size"):
        schema.sized_as(model_spec, key, expected[key], "the state")
