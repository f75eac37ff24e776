"""The human-readable `recurrent eval` report of a forecast run.

Lays out the dicts of ForecastTask.evaluate / baselines (`recurrent eval --json` prints them
unchanged): a line saying what was scored, the metrics with the model and each baseline as
columns (the seasonal baseline's column names its season), a line naming the best MASE,
and with several value columns one labelled block of rows per column.
"""
from __future__ import annotations

import math

from recurrent.report import format_value, leader_line, metrics_table, overlap_line, text_table
from recurrent.step import VALID_LOSS_RUN

from . import anchors as anc
from . import ets
from .metrics import METRICS

SMOOTHING = {"ets": "ETS forecast", "es": "learned ES forecast"}  # anchor kind -> name


def _column_name(name: str, values: dict) -> str:
    if "model" in values:
        return f"{name} {values['model']}"
    return f"{name} (m={values['season']})" if "season" in values else name


def ets_note(state: dict, forecasters: dict) -> list[str]:
    """One line saying why the report lacks the ETS baseline: statsmodels is missing (and
    how to install it), the run saved no fits for a new file (trained without
    statsmodels), or no ETS model fits the training rows."""
    if "ets" in forecasters:
        return []
    if not ets.available():
        return [ets.missing_note()]
    # A run saved without fits has them fitted now on its training rows only (task
    # _ets_fits): a new file (no training rows) gets none, however many rows it has.
    return [ets.unfitted_note() if "ets" in state else ets.unsaved_note()]


def seasonal_note(state: dict, forecasters: dict) -> list[str]:
    """One line saying why the report of a seasonal run lacks the seasonal naive
    baseline: the split's first window ends less than a season into the series (the
    training split's, when the window is shorter than the season), so it has no season
    to copy, and the baseline is scored on every window of a split or on none
    (task._baseline_forecasts)."""
    season = int(state.get("season", 1))
    if season <= 1 or "seasonal_naive" in forecasters:
        return []
    return [f"seasonal naive (m={season}): left out, the split's first windows have fewer "
            f"than {season} rows up to their origin, no season to copy"]


def mape_note(forecasters: dict, columns: list[str], origins: int | None = None) -> list[str]:
    """Lines saying why a MAPE reads nan or covers less than the others: MAPE scores
    non-zero actuals only, so a column whose actuals are all 0 is left out of the mean over
    columns and, in a backtest (``origins``: its count; ``forecasters``' values are then
    spreads with their "count"), an origin where every column's are is left out of the
    spread over origins. Every forecaster scores the same actuals: the first one's
    figures are every one's."""
    first = next(iter(forecasters.values()), {})
    every = "" if len(columns) == 1 else " of every column"
    why = "and MAPE leaves zero actuals out"
    if origins is None:
        if math.isnan(first.get("mape", 0.0)):
            return [f"mape nan: the actuals{every} are all 0 here, {why}"]
        left = [f"mape[{c}]" for c in columns
                if len(columns) > 1 and math.isnan(first.get(f"mape[{c}]", 0.0))]
        return ([f"{', '.join(left)} nan: {'its' if len(left) == 1 else 'their'} actuals "
                 f"are all 0 here, {why}; mape is the mean over the other columns"]
                if left else [])
    count = first.get("mape", {}).get("count", origins)
    if count == 0:
        return [f"mape nan: the actuals{every} are all 0 at every origin, {why}"]
    lines = []
    if count < origins:
        lines.append(f"mape over {count} of {origins} origins: the actuals{every} are all 0 "
                     f"at the others, {why}")
    left = [f"mape[{c}] at {first[f'mape[{c}]']['count']}" for c in columns
            if len(columns) > 1 and first.get(f"mape[{c}]", {}).get("count", origins) < origins]
    if left:
        lines.append(f"{', '.join(left)} of {origins} origins only: the column's actuals "
                     f"are all 0 at the others, {why}; an origin's mape is the mean over "
                     f"the columns that have one")
    return lines


def per_column_table(columns: list[str], predictors: dict[str, dict]) -> list[str]:
    """Rows "value column, metric" with one column per predictor ("rmse[co2]" keys)."""
    rows = [["column", "metric", *(_column_name(n, v) for n, v in predictors.items())]]
    for column in columns:
        for i, metric in enumerate(METRICS):
            rows.append([column if i == 0 else "", metric,
                         *(format_value(v.get(f"{metric}[{column}]"))
                           for v in predictors.values())])
    return text_table(rows, align="ll" + "r" * len(predictors))


def format_report(state: dict, metrics: dict, baselines: dict) -> list[str]:
    columns = state["columns"]
    mean = " (the mean over columns)" if len(columns) > 1 else ""
    windows, scored = metrics.get("windows", "?"), metrics.get("scored_windows")
    gaps = scored is not None and scored != windows
    # the metrics score observed actuals only, the loss every target (_score): where
    # windows have none observed, the loss reads other rows than the metrics do
    # a run saved before the state's "valid_loss" is scored by mse (step.valid_loss_name)
    name = ("--loss (mse by default)" if state.get("valid_loss") == VALID_LOSS_RUN
            else "mse")
    loss = (f"{name} on scaled values of all {windows} windows' targets, "
            f"gap-filled ones included, as training scores them" if gaps
            else f"{name} on scaled values")
    scored = (f" ({scored} with observed actuals to score"
              f"{' in every column' if len(columns) > 1 else ''})" if gaps else "")
    lines = overlap_line(metrics, windows, "windows")
    lines += [f"{windows} windows{scored}: {state['window']} past steps -> "
             f"{state['horizon']} forecast step(s) of {', '.join(columns)}",
             f"rmse, mae in the data's units, mape, smape in %{mean}; mase = mae / naive mae "
             f"on the training rows (below 1 beats it); loss = {loss}"]
    if "blend" in state:
        anchor = anchor_label(anc.run_anchors(state))
        lines.append(f"model = {anchor} + {format_value(state['blend'])} x the network's "
                     f"correction (share chosen on the validation split, --blend)")
    if "model_choice" in state:
        choice = state["model_choice"]
        took = {"anchors": "the plain anchors", "ets": f"the {SMOOTHING['ets']}",
                "combined": "their mean", "es": f"the {SMOOTHING['es']}"}
        # a MASE no window could score is NaN, which config.json keeps as null
        # (write_json); read back as NaN, it compares as it did in choose_model
        choice = {k: math.nan if v is None else v for k, v in choice.items()}
        best = min(choice, key=choice.get)
        lines.append(f"--model auto took {state['model']} on {took[best]}: validation MASE "
                     + ", ".join(f"{took[k]} {format_value(v)}" for k, v in choice.items()))
    lines += seasonal_note(state, baselines) + ets_note(state, baselines)
    lines += mape_note({"model": metrics, **baselines}, columns)
    lines.append("")
    titled = {_column_name(n, v): v for n, v in baselines.items()}
    lines += metrics_table(metrics, titled, names=[*METRICS, "loss"])
    lines += leader_line(metrics, baselines, "mase", lower_is_better=True,
                         names={n: _column_name(n, v) for n, v in baselines.items()},
                         label="mase" + mean)
    if len(columns) > 1:
        lines += ["", *per_column_table(columns, {"model": metrics, **baselines})]
    return lines


def anchor_label(anchors: list[str] | None) -> str:
    """What the network's correction is added to, named from the run's anchors per step
    (anchors.py): one smoothing's forecast on every step, the mean of ETS with the plain
    anchors (the combined candidate of --model auto), else "anchor"."""
    kinds = set(anchors or [])
    if len(kinds) == 1 and kinds <= set(SMOOTHING):
        return SMOOTHING[kinds.pop()]
    if kinds and all(k.startswith("ets+") for k in kinds):
        return f"mean of the {SMOOTHING['ets']} and the plain anchor"
    return "anchor"


def format_backtest(state: dict, split: str, result: dict) -> list[str]:
    """Rolling-origin table: one row per metric, per forecaster "mean +- std [min, max]"
    over the origins (of a several-column series: over each origin's mean over columns)."""
    forecasters = result["forecasters"]
    mean = (", each origin's figure the mean over columns"
            if len(state["columns"]) > 1 else "")
    lines = [*overlap_line(result, result["origins"], "origins"),
             f"rolling origin: {result['origins']} forecast origins over the {split} split, "
             f"{state['horizon']} step(s) each; per metric the mean +- standard deviation "
             f"[min, max] over origins{mean}", *seasonal_note(state, forecasters),
             *ets_note(state, forecasters),
             *mape_note(forecasters, state["columns"], result["origins"]), ""]
    rows = [["metric", *(_column_name(n, v) for n, v in forecasters.items())]]
    for metric in [*METRICS, "loss"]:
        rows.append([metric, *(_spread_cell(v[metric]) for v in forecasters.values())])
    return lines + text_table(rows)


def _spread_cell(s: dict) -> str:
    return (f"{format_value(s['mean'])} +- {format_value(s['std'])} "
            f"[{format_value(s['min'])}, {format_value(s['max'])}]")
