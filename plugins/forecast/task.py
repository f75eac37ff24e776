"""The `forecast` task: an RNN encoder over a window of past values predicts the next H steps.

Dimension legend: N rows, C value columns, W window, H horizon, B windows, S forecast steps.

Model: features (W, B, C) -> recurrent encoder -> last valid output -> dense head with H*C
outputs (step-major: h * C + c), trained with mse on scaled values. By default the head
predicts, for each step, the change from an anchor forecast chosen before training
(--difference; anchors.py: naive, seasonal naive, the run's exponential smoothing, their
mean, or the learned smoothing), so its zero output is that forecast. Forecasts longer
than H roll out recursively: the H predicted steps are appended to the window and the
model is run again.

State (JSON, saved in the run directory): where the data lives, the columns, split ends,
the scaler fitted on the training rows only, the season and the MASE scale.
"""
from __future__ import annotations

import copy
import json
import os
import functools
from dataclasses import dataclass, field
from typing import Callable

import click
import numpy as np

from recurrent import datafile
from recurrent import paired as paired_tests
from recurrent import selection
from recurrent.checks import one_line
from recurrent.errors import UserError
from recurrent.figures import counted
from recurrent.memo import Kept, rows_key
from recurrent.moved_data import NOT_THE_RUNS_DATA
from recurrent.progress import warn_once
from recurrent.report import TRAIN_OVERLAP, overlap_count
from recurrent.step import VALID_LOSS_RUN, SplitLoss, valid_loss_name

from . import series as dataio
from . import metrics as fm
from . import report
from . import anchors as anc
from . import calendar as cal
from . import ets
from . import joint
from . import smoothing
from . import state as saved
from . import windows as win
from .predict import (MAX_STEPS, forecast_stream, run_predict, step_text, steps_by,
                      time_step)
from .times import DATE_ORDERS, serial_date_note

EVAL_CHUNK = 1024  # windows per model call in evaluation
# The way out when the run's own data file was edited since training: train --resume,
# eval and predict all read it, so the hint names what each can do.
CHANGED_DATA_HINT = ("restore it as it was to train or evaluate this run (eval and predict "
                     "can read the edited file as new data with --data)")
MODELS = ("auto", *saved.KINDS)  # --model
# what to do when the run's training data is gone (predict's --data is a file to forecast
# after, and the moved file is one; predict.own_data_gone for --origin test)
GONE_ADVICE = "give its new place with --data"

# Training defaults of this task, pinned here (not inherited) because the documented
# quality (test MASE < 1 on the bundled sunspots; benchmarks/forecast_quality.py) was
# measured with them.
DEFAULTS = {"cell": "lstm", "hidden": 128, "layers": 1, "optimizer": "adam", "lr": 2e-3,
            "epochs": 10, "batch_size": 32}


@dataclass
class Prepared:
    """A series ready for windowing: filled, scaled, with the rows of each split."""
    series: dataio.Series
    filled: np.ndarray  # (N, C) float64 original units, gaps interpolated
    scaled: np.ndarray  # (N, C) float64 scaled units
    observed: np.ndarray  # (N, C) bool: the cell held a real value
    last_seen: np.ndarray  # (N, C) int64 last observed row at or before each row
    ranges: dict  # split -> (start, end) rows of its targets
    calendar: np.ndarray | None = None  # (N, F) calendar features of the run, if any
    es: list | None = None  # the run's learned smoothing (smoothing.py), None without it
    ets_fits: Callable[[], list | None] = field(default=lambda: None, repr=False)

    @functools.cached_property
    def ets(self) -> list | None:
        """The run's ETS fits per column (ets.py), None without one: ets_fits(), called
        when first asked, as it may import statsmodels, which only the ETS baseline and
        a model that forecasts from ETS read."""
        return self.ets_fits()

    def fitted(self, state: dict) -> dict:
        """The run's state with the smoothing fits of this data (a new file's restarted
        at its first rows), for the hybrid's anchors and inputs (no other model reads
        the ETS fits)."""
        if anc.uses_ets(state):
            state = ets.with_fits(state, self.ets)
        if self.es is not None and "es" in state:
            state = {**state, "es": self.es}
        return state


# Learned smoothing fits made so far in this process, newest last (smoothing_fit).
ES_FITS_KEPT = 8
_ES_FITS = Kept(ES_FITS_KEPT)


def smoothing_fit(train_scaled: np.ndarray, season: int, horizon: int) -> list:
    """smoothing.fit, kept per process on all it depends on, as ets.fit is kept: the
    training rows' scaled values (so the data, the split and the scaler), the season and
    the horizon; not the window or input mode, so the candidate runs of --window auto and
    --inputs auto fit once (the ES_FITS_KEPT fits made last are kept; each call gets its
    own copy). Not kept across processes: a change of smoothing.py's fit would not show
    in the key."""
    train_scaled = np.ascontiguousarray(train_scaled, dtype=np.float64)
    key = (rows_key(train_scaled), int(season), int(horizon))
    fits = _ES_FITS.get(key)
    if fits is None:
        fits = _ES_FITS[key] = smoothing.fit(train_scaled, int(season), int(horizon))
    return copy.deepcopy(fits)


def _window_option(ctx, param, value):
    """--window's click callback: "auto" or a number of steps (windows.parse_window)."""
    try:
        return win.parse_window(value)
    except ValueError as e:
        raise click.BadParameter(str(e)) from None


class ForecastTask:
    name = "forecast"
    help = ("Time-series forecasting from CSV: sliding windows, --horizon steps at once "
            "(bundled: sunspots, co2).")
    loss = "mse"
    # the input length is --window; each run sets its own smoothing and blend, so its
    # runs cannot be ensembled (recurrent/ensemble.py)
    unused_options = ("seq_len", "ensemble")
    fixed_params_option = f"--es-train {joint.ES_TRAIN[1]}"  # the learned smoothing kept fixed

    def __init__(self):
        self._cache = {}

    # ---- CLI -------------------------------------------------------------------------------

    def options(self):
        return [
            click.Option(["--data"], default="sunspots", show_default=True, metavar="FILE|NAME",
                         help="CSV file with a header row (.gz/.bz2/.xz/.zip ok), or a bundled "
                              "series: sunspots (yearly 1700-2008), co2 (weekly 1958-2001)."),
            click.Option(["--column"], multiple=True,
                         help="Value column; repeat for several (each is input and forecast "
                              "target). Default: the file's only non-time column."),
            click.Option(["--time-column"], default=None,
                         help="Column of times (numbers, or dates in one format), strictly "
                              "increasing, at one frequency (a series whose step changes "
                              "is refused): used to interpolate gaps, to label forecasts "
                              "and to refuse an eval or predict --data file of another "
                              "frequency. Default (without --column): in a file of two "
                              "columns, the one headed time, date, year, ... "
                              "(docs/forecast.md)."),
            click.Option(["--date-order"], type=click.Choice(DATE_ORDERS), default=None,
                         help="Read dates such as 01/02/2010 as day/month/year (dmy) or "
                              "month/day/year (mdy). Needed only when no row has a day "
                              "above 12."),
            click.Option(["--fill/--no-fill"], default=True, show_default=True,
                         help="Interpolate missing values, or reject a file with gaps."),
            click.Option(["--scaling"], type=click.Choice(win.SCALINGS), default="standard",
                         show_default=True, help="Scaler, fitted on the training split only."),
            click.Option(["--window"], default="auto", show_default=True,
                         metavar="N|auto", callback=_window_option,
                         help=f"Past steps the model sees; auto: train a model with each "
                              f"of {', '.join(map(str, win.WINDOWS))} (with each --inputs "
                              f"mode when that is auto too) and keep the one with the "
                              f"best validation score (--select-by)."),
            click.Option(["--horizon"], type=click.IntRange(min=1), default=1,
                         show_default=True, help="Steps predicted at once."),
            click.Option(["--season"], type=click.IntRange(min=1), default=None,
                         help="Season length of the seasonal-naive baseline (1: none). "
                              "Default: detected by autocorrelation of the first column's "
                              "training rows or, when a time column of dates implies "
                              "one (12 for monthly rows, 24 for hourly...), whichever of "
                              "the two seasonal naive forecasts the validation rows better."),
            click.Option(["--valid-fraction"], default=win.HELD_OUT, show_default=True,
                         type=click.FloatRange(0, 0.5, min_open=True),
                         help="Share of rows (at the end, before the test rows) for validation."),
            click.Option(["--test-fraction"], default=win.HELD_OUT, show_default=True,
                         type=click.FloatRange(0, 0.5, min_open=True),
                         help="Share of rows at the end held out for the test metrics."),
            click.Option(["--difference/--no-difference"], default=True, show_default=True,
                         help="Predict changes from an anchor forecast, or levels. The anchor "
                              "is the one --model takes: with rnn the naive or seasonal-naive "
                              "forecast (possibly with a damped share of the last seasonal "
                              "change) chosen per step on the training rows; with hybrid "
                              "ETS's (or, when auto takes it, the mean of ETS's and the plain "
                              "one); with esrnn the learned smoothing's (auto chooses among "
                              "them on validation)."),
            click.Option(["--calendar"], type=click.Choice(cal.CALENDAR_MODES),
                         default="auto", show_default=True,
                         help="Feed where each step falls in the day, week and year (sin "
                              "and cos), from a time column of dates; auto: the cycles "
                              "longer than a step that the training rows span twice; none: "
                              "no calendar features."),
            click.Option(["--blend"], type=click.Choice(anc.BLEND_MODES), default="auto",
                         show_default=True,
                         help="With --difference: keep the share of the model's correction "
                              "of its anchor (1, 0.75, 0.5, 0.25 or 0) that forecasts the "
                              "validation split best, chosen after training (auto), or all "
                              "of it (full)."),
            click.Option(["--model", "forecast_model"], type=click.Choice(MODELS),
                         default="auto", show_default=True,
                         help="hybrid: the network corrects the run's exponential smoothing "
                              "(ETS, fitted on the training rows) and sees the window "
                              "relative to its level and season (needs statsmodels: "
                              "the ets extra); esrnn: the same over ES-RNN's smoothing, "
                              "its coefficients and initial season learned by gradient on "
                              "the training rows' errors at the horizon; rnn: it corrects "
                              "the naive or seasonal-naive forecast; auto: whichever of "
                              "those anchors, the ETS forecast, their mean and the "
                              "learned smoothing forecasts the validation split best."),
            click.Option(["--es-train"], type=click.Choice(joint.ES_TRAIN),
                         default=joint.DEFAULT, show_default=True,
                         help="The learned smoothing of --model esrnn (also when auto "
                              "takes it): joint: its coefficients and initial season "
                              "trained with the network, by the gradient of the "
                              "network's loss, from the fit on the training rows; first: "
                              "that fit kept fixed."),
            click.Option(["--inputs"], type=click.Choice(win.INPUT_MODES), default="auto",
                         show_default=True,
                         help="Feed the window as scaled levels, or relative to its last "
                              "value (for trending series such as co2); auto: train a "
                              "model with each (and each window when --window is auto "
                              "too) and keep the one with the best validation score "
                              "(--select-by)."),
        ]

    def moot_options(self, config):
        """--es-train without the learned smoothing (--model rnn or hybrid, or
        --no-difference, under which auto takes rnn); --blend without --difference (there
        is no anchor to blend with)."""
        moot = {}
        difference = config.get("difference", True)
        model = config.get("forecast_model") or "auto"
        why = (f"--model {model} has none" if model in ("rnn", "hybrid") else
               "--no-difference leaves auto with rnn" if model == "auto" and not difference
               else None)
        if why:
            moot["es_train"] = (f"the learned smoothing of --model esrnn (or auto, which "
                                f"may take it); {why}")
        if not difference:
            moot["blend"] = ("--difference (the share of the correction of its anchor); "
                             "--no-difference has no anchor")
        return moot

    def candidates(self, config):
        """--window auto and --inputs auto: one candidate run per window length and input
        mode left to choose (both auto: every pair, windows outermost), the best on
        validation kept (recurrent/candidates.py); no single window or heuristic mode was
        the better one on the suite's series (benchmarks/README.md)."""
        windows = ([{"window": w} for w in win.WINDOWS]
                   if win.parse_window(config.get("window")) == "auto" else [{}])
        modes = ([{"inputs": mode} for mode in win.INPUT_MODES if mode != "auto"]
                 if config.get("inputs") in (None, "auto") else [{}])
        named = [{**m, **w} for w in windows for m in modes]  # keys in config.json's order
        return named if len(named) > 1 else []

    def defaults(self):
        return dict(DEFAULTS)

    def predict_options(self):
        return [
            click.Option(["--steps"], type=click.IntRange(min=1, max=MAX_STEPS),
                         default=None,
                         help=f"Steps to forecast, at most {MAX_STEPS} (default: the "
                              f"horizon); more than the horizon rolls out recursively."),
            click.Option(["--data"], default=None, metavar="FILE",
                         help="Recent history to forecast from (same columns, at least "
                              "the rows a forecast reads: the window, and for a seasonal "
                              "run the season before it; with --stream, also two seasons "
                              "and two). Default: the training data."),
            click.Option(["--date-order"], type=click.Choice(DATE_ORDERS), default=None,
                         help="How to read the --data file's dates such as 01/02/2010 when "
                              "the file does not tell: dmy or mdy (default: as the "
                              "training data's)."),
            click.Option(["--origin"], type=click.Choice(["end", "test"]), default="end",
                         show_default=True,
                         help="Forecast after the last row, or from the start of the test "
                              "split (to compare with its actuals)."),
            click.Option(["--plot"], type=click.Path(dir_okay=False), default=None,
                         metavar="FILE.png",
                         help="Write a PNG: history, test actuals, forecast, baseline "
                              "(needs matplotlib)."),
            click.Option(["--json", "as_json"], is_flag=True,
                         help="Print one JSON object instead of CSV lines."),
        ]

    # ---- data ------------------------------------------------------------------------------

    def prepare(self, config):
        source = dataio.resolve_source(config.get("data"))
        series = dataio.read_series(source, config.get("column"), config.get("time_column"),
                                    config.get("date_order"))
        for note in (serial_date_note(series.times, series.time_column, source.label),
                     dataio.blank_lines_note(series)):
            if note is not None:
                warn_once(note)
        fill = config.get("fill", True)
        dataio.check_values(series, fill)
        window = win.resolve_window(config.get("window"))
        horizon = int(config.get("horizon", 1))
        n = series.values.shape[0]
        train_end, valid_end = win.split_ends(
            n, window, horizon, config.get("valid_fraction", win.HELD_OUT),
            config.get("test_fraction", win.HELD_OUT), label=repr(source.label))
        dataio.check_splits(series, win.split_ranges(train_end, valid_end, n))
        # --select-by mape on validation rows that are all 0 would choose on NaN scores
        fm.check_mape_selection(selection.parse(config.get("select_by")),
                                series.values[train_end:valid_end],
                                series.observed[train_end:valid_end], series.columns,
                                source.label)
        step = _check_one_step(series, train_end)
        train_values = series.values[:train_end]
        train_observed = series.observed[:train_end]
        # Scaler and MASE scale see the training rows only (observed values, no gap fills).
        scaler = win.fit_scaler(train_values, train_observed, config.get("scaling", "standard"),
                                series.columns)
        win.check_resolution(train_values, train_observed, scaler, series.columns,
                             series.lines[:train_end], source.label)
        win.check_inputs_range(series.values, series.observed, scaler, series.columns,
                               series.lines, source.label,
                               win.split_ranges(train_end, valid_end, n))
        mase_scale = fm.naive_scale(train_values, train_observed)
        fm.check_scale(mase_scale, train_observed, series.columns, source.label)
        season = config.get("season")
        if season is not None and 2 * int(season) > train_end:
            # Two seasons in the training rows, as a detected or dated season has: with
            # fewer, most training rows have no value one season before them, and the
            # seasonal anchors and inputs of the training windows would read row 0 in its
            # place (windows.lagged), while ETS and the learned smoothing, which need two
            # seasons, would not be seasonal at all.
            raise UserError(f"--season {season}: the training split has {train_end} rows "
                            f"(of {n} in {source.label!r}), fewer than two seasons of "
                            f"{season} rows; give a season of at most {train_end // 2}, "
                            f"or more data")
        filled = dataio.fill_gaps(series, [train_end, valid_end, n])
        if season is None:
            # Autocorrelation's season, or the one the dates imply (12 for monthly rows):
            # whichever seasonal naive forecasts the validation rows better (a choice
            # like the others made on validation; the training rows may come from
            # another regime, as a summer's daily demand does before an autumn's).
            detected = fm.detect_season(filled[:train_end, 0])
            dated = cal.calendar_season(series.times, train_end)
            season = detected if dated is None else fm.choose_season(
                filled[:valid_end, 0], [detected, dated], start=train_end)
        # ETS per column on the training rows only (gap fills of those rows included).
        ets_fits = ets.fit(filled[:train_end], int(season)) if ets.available() else None
        difference = bool(config.get("difference", True))
        asked = config.get("forecast_model")
        train_scaled = win.scale(filled[:train_end], scaler)
        # The learned smoothing (ES-RNN's recursion) per column on the training rows'
        # scaled values, for --model esrnn and as a candidate of auto.
        es_fits = (smoothing_fit(train_scaled, int(season), horizon)
                   if difference and asked in (None, "auto", "esrnn") else None)
        model = self._model_kind(config, ets_fits, difference, es_fits)
        if ets_fits is None:
            warn_once(ets.missing_note())
        anchors = choice = damping = None
        if difference:
            # The forecast the head corrects, per step: the best simple one on the
            # training windows (anchors.py), with the damped seasonal shares fitted there.
            train_windows = (train_scaled, train_observed,
                             win.window_origins(0, train_end, window, horizon), horizon,
                             int(season))
            damping = anc.fit_damping(*train_windows)
            anchors = anc.choose_anchors(*train_windows, damping)
        if model == "auto":
            # The kind of model by the validation windows' MASE of the candidates' anchors
            # (rows up to the end of the validation split only); the plain candidate
            # compared without the damped steps (docs/forecast.md).
            scale = np.asarray(mase_scale) / np.asarray(scaler["scale"])
            model, anchors, choice = anc.choose_model(
                win.scale(filled[:valid_end], scaler), series.observed[:valid_end],
                win.window_origins(train_end, valid_end, window, horizon),
                anc.choose_anchors(*train_windows, damping, kinds=anc.UNDAMPED),
                {"horizon": horizon, "season": int(season), "scaler": scaler,
                 "ets": ets_fits, "es": es_fits, "damping": damping}, scale, refined=anchors)
        elif model == "hybrid":
            anchors = ["ets"] * horizon
        elif model == "esrnn":
            anchors = ["es"] * horizon
        if model == "esrnn":
            joint.check_loss(config.get("es_train") or joint.DEFAULT, config.get("loss"))
        self._check_loss(config)
        cycles = cal.choose_cycles(config.get("calendar", "auto"), series.times, train_end)
        return {
            "data": None if source.bundled else source.path,
            "bundled": source.bundled,
            "data_label": source.label,
            "columns": series.columns,
            "time_column": series.time_column,
            "fill": bool(fill),
            "window": window,
            "horizon": horizon,
            "difference": difference,
            **({"anchors": anchors} if anchors else {}),
            **({"damping": damping} if anchors and any("seasonal_damped" in a for a in anchors)
               else {}),
            "blend_mode": config.get("blend", "auto") if difference else "full",
            "model": model,
            **({"model_choice": choice} if choice else {}),
            "seasonal_inputs": bool(anchors) and any(
                "seasonal" in a or (("ets" in a or a == "es") and season > 1)
                for a in anchors),
            "calendar": cycles,
            **({"calendar_clock": cal.CLOCK} if cycles else {}),
            "inputs": win.resolve_inputs(config.get("inputs"), filled[:train_end]),
            "season": int(season),
            **({"ets": ets_fits} if ets_fits is not None else {}),
            **({"es": es_fits, "es_train": config.get("es_train") or joint.DEFAULT}
               if model == "esrnn" else {}),
            "split_ends": [train_end, valid_end, n],
            **({"time_step": step} if step else {}),
            "data_sha256": dataio.digest(series),
            "valid_loss": VALID_LOSS_RUN,
            "scaler": scaler,
            "mase_scale": [float(v) for v in mase_scale],
            # How dates such as 01/02/2010 were read, so that later files read the same way.
            **({"date_order": series.date_order} if series.date_order else {}),
        }

    @staticmethod
    def _model_kind(config, ets_fits, difference, es_fits=None):
        """--model resolved: hybrid, esrnn, rnn, or auto (to be chosen on validation) when
        there are ETS or learned smoothing fits and --difference, else rnn; UserError when
        hybrid or esrnn is asked for and cannot be built."""
        asked = config.get("forecast_model")
        has_ets = ets_fits is not None and any(f is not None for f in ets_fits)
        has_es = es_fits is not None and any(f is not None for f in es_fits)
        if asked in ("hybrid", "esrnn") and not difference:
            raise UserError(f"--model {asked} corrects its smoothing's forecast: it does "
                            f"not go with --no-difference")
        if asked == "hybrid":
            if ets_fits is None:
                raise UserError(f"--model hybrid: {ets.missing_note()}")
            if not has_ets:
                raise UserError("--model hybrid: no exponential smoothing fits the training "
                                f"rows (fewer than {ets.MIN_ROWS}?); use --model rnn")
            return "hybrid"
        if asked == "esrnn":
            if not has_es:
                raise UserError("--model esrnn: the training split has too few rows to "
                                f"learn the smoothing (it needs {smoothing.MIN_ROWS} and "
                                "the horizon + 2); use --model rnn")
            return "esrnn"
        if asked == "rnn":
            return "rnn"
        return "auto" if (has_ets or has_es) and difference else "rnn"

    def _training_source(self, state, gone_advice=GONE_ADVICE):
        """The source of the run's training data; UserError ending in ``gone_advice``
        when its file is gone."""
        if state.get("bundled"):
            return dataio.resolve_source(state["bundled"])
        path = state["data"]
        datafile.check_path_encodable(path)  # else it would not exist, wrongly "gone"
        try:  # a file there that cannot be read (permission denied): its reading says so
            os.stat(path)
        except (FileNotFoundError, NotADirectoryError, ValueError):
            raise UserError(f"the training data {path!r} is gone: restore it, or "
                            f"{gone_advice}") from None
        except OSError:
            pass
        # the path as given names the file from the directory the run was trained in;
        # from another one it names another file or none, so messages name the file read
        label = state["data_label"]
        return dataio.Source(path=path, label=label if os.path.abspath(label) == path else path)

    def load(self, state, config) -> Prepared:
        """The training series (split as in training) or, with config["eval_data"], a new
        file read with the saved columns and scaler, all of whose windows are "test"."""
        eval_data = config.get("eval_data")
        if eval_data:
            source = dataio.resolve_source(eval_data)
            return self.load_file(state, source, whole_file=True, restart=True,
                                  targets=True)
        return self.load_file(state, self._training_source(state), whole_file=False)

    def load_file(self, state, source, whole_file, restart=False, targets=False,
                  date_order=None, changed_hint=CHANGED_DATA_HINT) -> Prepared:
        """Cached _read: evaluation runs every few hundred steps on the same file. The
        learned smoothing's values ("es", which change every step when they train with
        the network) shape only a new file's reading (its restart), so they key only
        that."""
        try:
            stat = os.stat(source.path)
        except OSError:  # a path that cannot be read: reading it names the problem
            return self._read(state, source, whole_file, restart, targets, date_order,
                              changed_hint)
        keyed = state if whole_file else {k: v for k, v in state.items() if k != "es"}
        key = (source.path, stat.st_mtime_ns, stat.st_size, whole_file, restart, targets,
               date_order, json.dumps(keyed, sort_keys=True))
        if key not in self._cache:
            self._cache.clear()  # one series at a time is all a run needs
            self._cache[key] = self._read(state, source, whole_file, restart, targets,
                                          date_order, changed_hint)
        return self._cache[key]

    def _read(self, state, source, whole_file, restart, targets, date_order=None,
              changed_hint=CHANGED_DATA_HINT) -> Prepared:
        """A file read with the run's columns and scaler. A new file (``whole_file``) must
        hold the window's rows, or with ``restart`` all the rows its smoothing states
        restart on (windows.head_rows), and with ``targets`` a horizon after them. Its
        dates are read in ``date_order`` when given (predict --date-order), else as the
        training data's were. ``changed_hint``: what to do about a training file whose
        rows differ from the run's."""
        series = dataio.read_series(source, state["columns"], state["time_column"],
                                    date_order, saved_order=state.get("date_order"))
        blank = dataio.blank_lines_note(series) if whole_file else None
        if blank is not None:
            warn_once(blank)
        if state.get("calendar") and not np.issubdtype(series.times.dtype, np.datetime64):
            # calendar.phases reads datetime64: numbers would give meaningless features
            raise UserError(f"this run feeds calendar features ({', '.join(state['calendar'])})"
                            f" from the dates of its time column {state['time_column']!r}, "
                            f"but {source.label!r} has numbers there: write them as dates")
        if whole_file and state.get("time_step"):
            times = _wall_clock(series)
            if times is not None and len(times) >= 2 \
                    and not steps_by(times, state["time_step"]):
                raise UserError(f"time column {state['time_column']!r} of {source.label!r} "
                                f"steps by {step_text(time_step(times))}, the run's data by "
                                f"{step_text(state['time_step'])}: the model forecasts "
                                f"rows of the run's frequency; give rows at that one")
        dataio.check_values(series, state["fill"], constant_ok=whole_file)
        n = series.values.shape[0]
        window, horizon = state["window"], state["horizon"]
        head = 0  # the training series: its states are the run's own
        if whole_file:
            # A new file: its first rows start the smoothing states (filled apart from
            # the rest, so no later row reaches them), and the windows scored are those
            # whose targets come after them (predict takes a shorter file, restarting on
            # the rows it has).
            first = win.head_rows(state) if restart else win.history_rows(state)
            min_rows = first + (horizon if targets else 0)
            if n < min_rows:
                rows = (f"first {first} rows (the window among them), which start its "
                        f"seasonal states," if restart and first > window else
                        f"window {window} and the season of {state['season']} rows "
                        f"before it, which its seasonal forecast reads," if first > window
                        else f"window {window}")
                need = (f"{rows} and horizon {horizon} need" if targets
                        else f"{rows} need" if first > window else f"{rows} needs")
                raise UserError(f"too few rows in {source.label!r}: {counted(n, 'row')}, "
                                f"but the model's {need} at least {min_rows}")
            head = min(win.head_rows(state), n)
            ranges = {"test": (head, n)}
            if targets:
                dataio.check_splits(series, ranges)
            filled = dataio.fill_gaps(series, [head, n])
        else:
            train_end, valid_end, expected = state["split_ends"]
            if n != expected:
                raise UserError(f"the training data {source.label!r} changed since training "
                                f"({n} rows, was {expected}): {changed_hint}")
            stored = state.get("data_sha256")  # (runs saved before it have none)
            if stored is not None and stored != dataio.digest(series):
                raise UserError(f"the training data {source.label!r} changed since training "
                                f"(same {n} rows, other values or times): "
                                f"{changed_hint}")
            ranges = win.split_ranges(train_end, valid_end, n)
            filled = dataio.fill_gaps(series, [train_end, valid_end, n])
        return Prepared(series=series, filled=filled, scaled=win.scale(filled, state["scaler"]),
                        observed=series.observed, last_seen=win.last_observed(series.observed),
                        ranges=ranges,
                        calendar=cal.run_features(state, series.times, series.offsets),
                        ets_fits=self._ets_reader(state, filled, ranges, head),
                        es=(anc.restarted_es(state, filled[:head])
                            if head and "es" in state else None))

    def _ets_reader(self, state, filled, ranges, head):
        """_ets_fits as Prepared.ets_fits, made when first asked: a new file's restart
        too (a refusal of it then stops only a command that reads the fits)."""
        return lambda: self._ets_fits(state, filled, ranges, head)

    @staticmethod
    def _ets_fits(state, filled, ranges, head=0):
        """The run's ETS fits (restarted at a new file's first row from its ``head``
        first rows: ets.restart; 0 for the training series); a run saved without them
        (statsmodels missing then) gets them fitted now on its training rows when
        statsmodels is there. A run saved with them, read without statsmodels, loses its
        ETS baseline (the report says how to get it back), or is refused in one line
        when its model forecasts from them."""
        if "ets" in state and not ets.available():
            if anc.uses_ets(state):
                raise UserError(f"this run's model forecasts from exponential smoothing "
                                f"(--model {state['model']}): {ets.missing_note()}")
            return None
        if "ets" in state:
            return ets.restart(state["ets"], filled[:head]) if head else state["ets"]
        if "train" not in ranges or not ets.available():
            return None
        return ets.fit(filled[:ranges["train"][1]], int(state["season"]))

    def _origins(self, state, prepared, split):
        if split not in prepared.ranges:
            raise ValueError(f"split {split!r} is not available here; have "
                             f"{', '.join(prepared.ranges)}")
        start, end = prepared.ranges[split]
        return win.window_origins(start, end, state["window"], state["horizon"])

    # ---- model and training ----------------------------------------------------------------

    def resolved_options(self, state):
        return {"season": state.get("season"), "time_column": state.get("time_column"),
                "column": state.get("columns")}

    def read_files(self, state):
        return {} if state.get("data") is None else {"data": state["data"]}

    def moved_files(self, state, moved):
        state = dict(state, data=moved["data"], data_label=moved["data"])
        # the series there, checked by its rows and their digest
        self.load_file(state, self._training_source(state), whole_file=False,
                       changed_hint=NOT_THE_RUNS_DATA)
        return state

    def check_state(self, state, model_spec):
        saved.check(state, model_spec, lambda state: self.model_spec(state, {}))

    def model_spec(self, state, config):
        columns = len(state["columns"])
        inputs = (2 * columns if win.seasonal_inputs(state) else columns) \
            + (columns if win.hybrid_model(state) else 0) \
            + 2 * len(state.get("calendar", []))
        return {"input": "features", "input_size": inputs,
                "output": "last", "output_size": state["horizon"] * columns}

    def trained_params(self, state, config):
        """The learned smoothing's theta per column when it trains with the network
        (--es-train joint: joint.py), else {}."""
        return joint.trained_params(state)

    def with_params(self, state, values):
        return joint.with_params(state, values)

    def batches(self, state, split, config, rng, params=None):
        """Training or evaluation windows; ``params``: the live values of the trained
        smoothing (trained_params), read as each batch is made, whose batches carry the
        gradient of the loss with respect to them ("backward": joint.py)."""
        if split == "train":  # prepare checked a new run: this is a resumed one's check
            self._check_loss(config, resumed=True)
        prepared = self.load(state, config)
        origins = self._origins(state, prepared, split)
        if split == "train":
            origins = rng.permutation(origins)  # shuffled within the training split only
        batch_size = int(config.get("batch_size") or DEFAULTS["batch_size"])
        for start in range(0, len(origins), batch_size):
            chunk = origins[start:start + batch_size]
            now = state if params is None else joint.with_params(state, params)
            batch = {
                "x": win.model_inputs(prepared.scaled, prepared.last_seen, chunk, now,
                                      prepared.calendar),
                "lengths": None,
                "y": anc.model_targets(prepared.scaled, prepared.last_seen, chunk, now),
                "reset": True,
            }
            if params is not None:
                batch["backward"] = joint.batch_backward(prepared.scaled,
                                                         prepared.last_seen, chunk, now)
            yield batch

    def after_training(self, state, config, model):
        """--blend auto: the share of the head's correction to keep, chosen by the MASE
        of the validation windows (anchors.choose_blend); saved in the run's state."""
        anchors = anc.run_anchors(state)
        if state.get("blend_mode", "full") != "auto" or anchors is None:
            return state
        prepared = self.load(state, {})
        origins = self._origins(state, prepared, "valid")
        horizon = state["horizon"]
        full = self._scaled_forecasts({**state, "blend": 1.0}, prepared, origins, model)
        anchor = anc.anchor_forecast(prepared.scaled, prepared.last_seen, origins, horizon,
                                     state["season"], anchors, state)
        rows = win.target_rows(origins, horizon)
        scale = np.asarray(state["mase_scale"]) / np.asarray(state["scaler"]["scale"])
        blend = anc.choose_blend(full - anchor, anchor, prepared.scaled[rows],
                                 prepared.observed[rows], scale)
        return {**state, "blend": blend}

    def training_state(self, state):
        """The state without after_training's blend: a resumed run compares its
        checkpoints on the whole correction, as its first part did."""
        return {k: v for k, v in state.items() if k != "blend"}

    # ---- evaluation ------------------------------------------------------------------------

    def _scaled_forecasts(self, state, prepared, origins, model):
        """Model forecasts (B, H, C) in scaled units, one model call per EVAL_CHUNK windows."""
        state = prepared.fitted(state)
        parts = []
        for start in range(0, len(origins), EVAL_CHUNK):
            chunk = origins[start:start + EVAL_CHUNK]
            x = win.model_inputs(prepared.scaled, prepared.last_seen, chunk, state,
                                      prepared.calendar)
            outputs, _ = model.forward(x)
            parts.append(anc.model_forecasts(outputs, prepared.scaled, prepared.last_seen,
                                             chunk, state))
        return np.concatenate(parts, axis=0)

    @staticmethod
    def _last(values, prepared, origins):
        """(B, C) each origin's value as known at the origin."""
        return win.known_at(values, prepared.last_seen, origins[:, None], origins)[:, 0, :]

    def _score(self, state, prepared, origins, scaled_forecast, config, **extra):
        """Metrics (original units, observed actuals only) and the "loss" in scaled units
        (_loss), which counts gap-filled targets as the training loss does (it picks the
        best checkpoint on the same terms the network is trained on)."""
        rows = win.target_rows(origins, state["horizon"])  # (B, H)
        loss = self._loss(state, config, scaled_forecast, prepared.scaled[rows])
        result = fm.forecast_metrics(prepared.filled[rows],
                                     win.unscale(scaled_forecast, state["scaler"]),
                                     np.asarray(state["mase_scale"]), state["columns"],
                                     mask=prepared.observed[rows])
        result["loss"] = loss
        result["windows"] = int(len(origins))
        # the metrics score only observed actuals: a window without one in some column
        # (gaps in the file) adds nothing to that column's metrics, only to the loss
        result["scored_windows"] = int(_scored(prepared.observed[rows]).sum())
        return {**result, **extra}

    def _check_loss(self, config, resumed=False):
        """UserError for a --loss that refuses some real targets (binary_cross_entropy's
        probabilities): the head's targets and the actuals _loss scores are scaled values
        of any sign and size, also where the training rows' happen to fit such a loss.
        ``resumed``: a run an earlier version trained with it, which may be evaluated and
        predicted with but not trained further."""
        name = config.get("loss") or self.loss
        if name == "mse":
            return
        from recurrent.plugins import get_loss
        loss = get_loss(name)
        if getattr(loss, "target_kind", "dense") != "dense":
            return  # a loss of class ids: the first training batch's check names it
        try:
            loss.value_and_grad(np.zeros((1, 2), np.float32),
                                np.array([[-1.5, 2.5]], np.float32))
        except ValueError as e:
            after = ("; a run trained with it by an earlier version can be evaluated and "
                     "predicted with, not trained further" if resumed else "")
            raise UserError(f"--loss {name} does not fit task {self.name!r} (its default is "
                            f"{self.loss}): its targets are scaled values of any sign and "
                            f"size (probed with -1.5 and 2.5: {one_line(e)}){after}") from None

    def _loss(self, state, config, scaled_forecast, scaled_actual):
        """The run's training loss (--loss, else mse) of scaled forecasts (B, H, C) against
        the scaled actuals (B, H, C): the head's outputs and targets differ from them by
        the same anchor, so every residual, and the loss, is the one training sees. A run
        saved before the state's "valid_loss" is scored by mse (step.valid_loss_name)."""
        name = valid_loss_name(state, config, self.loss)
        loss = SplitLoss(self, {**config, "loss": name})
        if loss.own:  # numpy's mean: the figures runs have always recorded
            return float(np.mean((scaled_forecast - scaled_actual) ** 2))
        rows = len(scaled_forecast)
        loss.add(np.reshape(scaled_forecast, (rows, -1)), np.reshape(scaled_actual, (rows, -1)))
        return loss.value

    def evaluate(self, state, split, config, model):
        prepared = self.load(state, config)
        origins = self._origins(state, prepared, split)
        # The splits were checked for an observed value per column when the run was
        # prepared, but the training windows' targets start after the first window: a
        # column observed only in those first rows has nothing to score there.
        targets = win.target_rows(origins, state["horizon"])
        if targets.size:
            dataio.check_splits(prepared.series, {split: (int(targets.min()),
                                                          int(targets.max()) + 1)},
                                rows="split's forecast targets")
        metrics = self._score(state, prepared, origins,
                              self._scaled_forecasts(state, prepared, origins, model), config)
        if config.get("eval_data"):
            overlap = self._training_overlap(state, config, prepared, origins)
            if overlap is not None:
                metrics[TRAIN_OVERLAP] = overlap
        return metrics

    def _training_overlap(self, state, config, prepared, origins) -> int | None:
        """How many of the windows of an `eval --data` file (``prepared``, ``origins``)
        are windows of the run's training split: the same rows of inputs and targets (the
        values as the file has them, and the times when the series has a time column), so
        that their scores are not held-out ones; None when the run's own data cannot be
        read (gone or changed since training): nothing to compare with."""
        try:
            # read past load_file's cache, which holds one series: the --data file's,
            # which baselines() and paired() read next, stays cached
            own = self._read(state, self._training_source(state), whole_file=False,
                             restart=False, targets=False)
        except UserError:
            return None
        trained = self._origins(state, own, "train")
        return overlap_count(self._window_rows(state, prepared, origins),
                             self._window_rows(state, own, trained))

    @staticmethod
    def _window_rows(state, prepared, origins) -> list[bytes]:
        """Each window's rows, inputs and targets, as bytes: its values (NaN where a cell
        is missing) and, with a time column, its times."""
        rows = origins[:, None] + np.arange(1 - state["window"], state["horizon"] + 1)
        parts = [np.asarray(prepared.series.values, dtype=np.float64)[rows]]
        if prepared.series.times is not None:
            times = np.asarray(prepared.series.times)
            # dates as their count of units, numbers as they are
            parts.append(times.view(np.int64) if np.issubdtype(times.dtype, np.datetime64)
                         else times.astype(np.float64))
            parts[-1] = parts[-1][rows]
        return [b"".join(part[k].tobytes() for part in parts) for k in range(len(origins))]

    def baselines(self, state, split, config):
        prepared = self.load(state, config)
        origins = self._origins(state, prepared, split)
        return {name: self._score(state, prepared, origins, forecast, config, **extra)
                for name, (forecast, extra) in
                self._baseline_forecasts(state, prepared, origins).items()}

    def paired(self, state, split, config, model):
        """The Diebold-Mariano test of the model's MASE against each baseline's on the
        split's windows (recurrent.paired), those with an observed target; the difference
        is that of the split's MASE."""
        prepared = self.load(state, config)
        origins = self._origins(state, prepared, split)
        rows = win.target_rows(origins, state["horizon"])
        observed = prepared.observed[rows]

        def losses(scaled_forecast):
            return fm.window_mase(prepared.filled[rows],
                                  win.unscale(scaled_forecast, state["scaler"]),
                                  state["mase_scale"], observed)

        tested = observed.any(axis=(1, 2))
        ours = losses(self._scaled_forecasts(state, prepared, origins, model))
        out = {}
        for name, (forecast, _) in self._baseline_forecasts(state, prepared, origins).items():
            difference = ours - losses(forecast)
            out[name] = paired_tests.result(
                "Diebold-Mariano", "mase", difference.mean(),
                paired_tests.diebold_mariano(difference[tested], state["horizon"]),
                int(tested.sum()), "windows", same=paired_tests.identical(difference[tested]))
        return out

    def _baseline_forecasts(self, state, prepared, origins):
        """name -> (scaled forecasts (B, H, C), extra keys of its metrics): naive,
        seasonal naive when the run has a season and every origin a season of history, and
        ETS (ets.py) with the run's fits, filtered up to each origin."""
        horizon, season = state["horizon"], state["season"]
        naive = fm.naive_forecast(self._last(prepared.scaled, prepared, origins), horizon)
        result = {"naive": (naive, {})}
        if season > 1 and origins.min() >= season - 1:
            rows = fm.seasonal_rows(origins, horizon, season)
            seasonal = win.known_at(prepared.scaled, prepared.last_seen, rows, origins)
            result["seasonal_naive"] = (seasonal, {"season": season})
        if prepared.ets is not None and any(f is not None for f in prepared.ets):
            forecast = ets.forecast_at(prepared.scaled, prepared.last_seen, origins,
                                       {**state, "ets": prepared.ets})  # (B, H, C)
            result["ets"] = (forecast, {"model": ets.describe(prepared.ets)})
        return result

    def backtest(self, state, split, config, model, origins_count):
        """Rolling-origin evaluation: ``origins_count`` forecast origins spread evenly over
        the split's windows (its first and last included), each scored on its own H steps.
        Per forecaster (model and baselines): the mean, standard deviation, minimum and
        maximum of every metric over the origins."""
        prepared = self.load(state, config)
        origins = self._origins(state, prepared, split)
        rows = win.target_rows(origins, state["horizon"])
        origins = origins[_scored(prepared.observed[rows])]
        if origins_count > len(origins):
            where = (repr(config["eval_data"]) if config.get("eval_data")
                     else f"the {split} split")
            count = (f"{len(origins)} forecast origin{'s' if len(origins) != 1 else ''} "
                     f"(windows with observed actuals to score)")
            raise UserError(f"--backtest {origins_count}: {where} has only {count}; ask "
                            f"for at most {len(origins)}" if len(origins) >= 2 else
                            f"--backtest {origins_count}: {where} has {count}, too few for "
                            f"a spread over origins; evaluate it without --backtest")
        picked = origins[np.unique(np.round(np.linspace(0, len(origins) - 1,
                                                        origins_count)).astype(np.int64))]
        forecasts = {"model": (self._scaled_forecasts(state, prepared, picked, model), {}),
                     **self._baseline_forecasts(state, prepared, picked)}
        result = {"origins": int(len(picked)),
                  "origin_rows": [int(o) for o in picked], "forecasters": {}}
        if config.get("eval_data"):
            # as eval --data counts them: origins whose window the run trained on score
            # no held-out forecast
            overlap = self._training_overlap(state, config, prepared, picked)
            if overlap is not None:
                result[TRAIN_OVERLAP] = overlap
        for name, (forecast, extra) in forecasts.items():
            scores = [self._score(state, prepared, picked[i:i + 1], forecast[i:i + 1], config)
                      for i in range(len(picked))]
            result["forecasters"][name] = {**extra, **{
                key: fm.spread([s[key] for s in scores])
                for key in scores[0] if key not in ("windows", "scored_windows")}}
        return result

    def format_backtest(self, state, split, result):
        """`recurrent eval --backtest` text (report.py)."""
        return report.format_backtest(state, split, result)

    def format_report(self, state, metrics, baselines):
        """`recurrent eval` text: the model beside naive and seasonal-naive (report.py)."""
        return report.format_report(state, metrics, baselines)

    def report_notes(self, state, baselines):
        """Why the seasonal naive or ETS baseline is missing, when it is
        (report.seasonal_note, report.ets_note)."""
        return report.seasonal_note(state, baselines) + report.ets_note(state, baselines)

    # ---- predict ---------------------------------------------------------------------------

    def predict(self, state, config, model, options):
        return run_predict(self, state, config, model, options)

    def predict_stream(self, state, config, model, options):
        return forecast_stream(self, state, model, options)


def _wall_clock(series: dataio.Series):
    """The series' times as its file's clock reads them (UTC plus each row's offset, when
    the file wrote offsets), the clock its forecasts are dated on (predict.py): monthly
    dates written at local midnight step by whole months there, not in UTC; None
    without a time column."""
    if series.times is None:
        return None
    return cal.clock_times(series.times, series.offsets, "local")


def _check_one_step(series: dataio.Series, train_end: int) -> dict | None:
    """The training rows' time step (predict.time_step, on the file's clock: _wall_clock),
    saved with the run so that new files are checked against it; UserError when the rows
    after them step otherwise (a frequency change: the model would take a row of one for
    a step of the other, and predict would date its forecasts by the training rows'
    step). A few missing rows
    leave the median step as it is; the rows after them are judged (steps_by) with the
    step from the last training row, when there are two or more of them."""
    times = _wall_clock(series)
    train = time_step(times[:train_end]) if times is not None else None
    later = time_step(times[train_end:]) if train is not None else None
    if later is not None and not steps_by(times[train_end - 1:], train):
        lines = series.lines
        raise UserError(f"time column {series.time_column!r} of {series.label!r} steps by "
                        f"{step_text(train)} in the training rows (lines {int(lines[0])}-"
                        f"{int(lines[train_end - 1])}) and by {step_text(later)} after them "
                        f"(lines {int(lines[train_end])}-{int(lines[-1])}): resample the "
                        f"series to one frequency")
    return train


def _scored(observed: np.ndarray) -> np.ndarray:
    """(B,) bool of (B, H, C) observed targets: the windows every column of which has an
    observed actual to score (the others leave a column's metrics without them)."""
    return observed.any(axis=1).all(axis=-1)
