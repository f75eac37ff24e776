"""Plain-text tables for `recurrent eval`: the generic metrics table, and the pieces a task's
``format_report`` may reuse (recurrent.protocols.Task); and the checks of the metrics and
baselines a task returns (metrics_problem, baselines_problem), which the trainer applies
(and the task conformance kit, to baselines). Everything here takes plain dicts, lists
and numbers and returns lines of text (or a problem's text): no click, no model.
"""
from __future__ import annotations

import json
import math
import unicodedata

import numpy as np

from . import paired as paired_tests
from .checkpoint import json_default, not_json
from .figures import format_value, is_scalar


def baselines_problem(baselines) -> str | None:
    """What keeps a task's baselines() result from being shown beside the model (it is
    not {name: {metric: value}} of JSON values, which eval --json prints), or None."""
    if not isinstance(baselines, dict) or not all(isinstance(m, dict)
                                                  for m in baselines.values()):
        return "must return {name: {metric: value}}"
    problem = not_json(baselines, "baselines")
    return f"{problem} is not a JSON value (eval --json prints them)" if problem else None


def metrics_problem(metrics) -> str | None:
    """What keeps a task's evaluate() result from being used (it is not a dict of figures
    holding the "loss" that picks the best checkpoint as a number, of JSON values, which
    metrics.jsonl and eval --json keep), or None."""
    if not isinstance(metrics, dict):
        return f"returned {type(metrics).__name__}, not a dict of figures with a 'loss'"
    if "loss" not in metrics:
        return "returned no 'loss'"
    loss = metrics["loss"]
    if isinstance(loss, (bool, np.bool_)) or np.ndim(loss) != 0 \
            or np.asarray(loss).dtype.kind not in "iuf":
        return f"returned a 'loss' of type {type(loss).__name__}, not a number"
    problem = not_json(metrics, "metrics")
    return f"returned {problem}, which is not a JSON value (metrics.jsonl and eval --json " \
           f"keep the figures)" if problem else None


def text_table(rows: list[list[str]], align: str | None = None) -> list[str]:
    """Rows of cells (the first row is the header) as aligned lines. ``align`` has one
    letter per column, "l" (labels) or "r" (numbers); default: the first column "l", the
    others "r"."""
    widths = [max(display_width(r[i]) for r in rows) for i in range(len(rows[0]))]
    align = align or "l" + "r" * (len(widths) - 1)

    def pad(cell, width, side):
        fill = " " * (width - display_width(cell))
        return cell + fill if side == "l" else fill + cell

    return ["  ".join(pad(c, w, a) for c, w, a in zip(r, widths, align)).rstrip()
            for r in rows]


def display_width(text: str) -> int:
    """The terminal columns ``text`` takes, which aligns a table's cells where len() would
    not: two for a wide or full-width character (East Asian width W or F: CJK ideographs,
    kana, hangul, full-width forms), none for a combining mark or a zero-width format
    character (categories Mn, Me, Cf: drawn on or between their neighbours), one for any
    other."""
    return sum(0 if unicodedata.category(c) in ("Mn", "Me", "Cf")
               else 2 if unicodedata.east_asian_width(c) in ("W", "F") else 1 for c in text)


def joined(names: list[str]) -> str:
    """'a', 'a and b', 'a, b and c': names as a sentence lists them."""
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def metrics_table(metrics: dict, baselines: dict, names: list[str] | None = None) -> list[str]:
    """Metric names as rows, the model and each baseline as columns.

    ``names``: the rows to show, in order (default: every scalar of the model, then those
    only a baseline has)."""
    if names is None:
        names = [k for k, v in metrics.items() if is_scalar(v)]
        for values in baselines.values():
            names += [k for k, v in values.items() if is_scalar(v) and k not in names]
    rows = [["metric", "model", *baselines]]
    rows += [[n, format_value(metrics.get(n)),
              *(format_value(values.get(n)) for values in baselines.values())] for n in names]
    return text_table(rows)


def leader_line(metrics: dict, baselines: dict, key: str, lower_is_better: bool,
                names: dict | None = None, label: str | None = None) -> list[str]:
    """One line saying whether the model or a baseline scores best on ``key`` (the
    figure a reader compares first), e.g. "best mase: seasonal_naive (m=7), 0.4840 (the
    model: 0.5540)"; figures the tables print alike are a tie, and every baseline tied
    with the best is named ("best accuracy: bow_logreg and nb_logreg, tied at 0.7650 (the
    model: 0.7600)").
    ``names``: a baseline's name as the report shows it (default: its key); ``label``:
    how to name the figure (default: ``key``). [] when the model or every baseline
    lacks a number for ``key`` (NaN counts as lacking)."""
    def number(value):
        return is_scalar(value) and not math.isnan(value)

    model = metrics.get(key)
    scored = {n: float(v[key]) for n, v in baselines.items() if number(v.get(key))}
    if not number(model) or not scored:
        return []
    sign = 1 if lower_is_better else -1
    best = min(scored, key=lambda n: sign * scored[n])
    ours, theirs, label = float(model), scored[best], label or key
    # equal as printed (format_value: small figures in exponent form, zero unsigned):
    # every baseline that ties the best is named, so that none reads as beaten
    tied = [(names or {}).get(n, n) for n in scored
            if format_value(scored[n]) == format_value(theirs)]
    name = joined(tied)
    if format_value(ours) == format_value(theirs):
        return [f"best {label}: the model{' and' if len(tied) == 1 else ','} {name}, "
                f"tied at {format_value(ours)}"]
    if sign * ours < sign * theirs:
        return [f"best {label}: the model, {format_value(ours)} (next: {name}, "
                f"{format_value(theirs)})"]
    tie = "tied at " if len(tied) > 1 else ""
    return [f"best {label}: {name}, {tie}{format_value(theirs)} (the model: "
            f"{format_value(ours)})"]


SIGNIFICANCE = 0.05  # the level paired_line reads p against


def paired_line(paired: dict) -> list[str]:
    """One line from a task's paired tests (recurrent/paired.py: per baseline a dict of
    test, metric, difference, p, items and unit), e.g. "paired over the split's 46
    windows, model - baseline in mase (Diebold-Mariano): naive -0.2279 (p 0.003), ets
    +0.0490 (p 0.497); p < 0.05: more than this split's noise". A p of None reads "no
    test" (too few items, or no variance), one below 0.001 "p < 0.001", one just below
    SIGNIFICANCE that three decimals would round up to it "p < 0.05", and a baseline that
    scored every item as the model did "identical" (an entry without the "identical" key:
    a zero difference with p 1). [] without any test."""
    if not paired:
        return []
    first = next(iter(paired.values()))
    tests = ", ".join(dict.fromkeys(r["test"] for r in paired.values()))

    def identical(r):
        if r["p"] is None:
            return False
        same = r.get("identical")
        if same is None:  # not said (a plugin's entry): a zero difference with p 1
            same = abs(r["difference"]) <= paired_tests.IDENTICAL and r["p"] == 1.0
        return same

    def cell(r):
        if r["p"] is None:
            return "no test"
        if identical(r):
            return "identical"
        if r["p"] < 0.001:
            return "p < 0.001"
        text = f"{r['p']:.3f}"
        # a p just below the level must not print as the level itself (0.0496 as 0.050)
        return f"p < {SIGNIFICANCE}" if r["p"] < SIGNIFICANCE <= float(text) else f"p {text}"

    def difference(r):  # an identical pair's rounding noise is no difference
        return format_value(0.0 if identical(r) else r["difference"], signed=True)

    cells = {name: cell(r) for name, r in paired.items()}
    parts = ", ".join(f"{name} {difference(r)} ({cells[name]})" for name, r in paired.items())
    unit = first["unit"]  # a plural ("windows", "texts"): one item is "1 window"
    if first["items"] == 1 and unit.endswith("s"):
        unit = unit[:-1]
    # the legend reads a p the line prints: none when every cell is "identical" or "no test"
    legend = (f"; p < {SIGNIFICANCE}: more than this split's noise"
              if any(c.startswith("p ") for c in cells.values()) else "")
    return [f"paired over the split's {first['items']} {unit}, model - baseline in "
            f"{first['metric']} ({tests}): {parts}{legend}"]


# the metric a task reports for `eval --data FILE`: how many of FILE's items the run
# trained on (their scores are not held-out scores); overlap_line says so
TRAIN_OVERLAP = "train_overlap"


def overlap_count(items, trained) -> int:
    """How many of ``items`` (sequences of ids) equal one of ``trained``: metrics[
    TRAIN_OVERLAP] of an eval --data file."""
    seen = {tuple(item) for item in trained}
    return sum(tuple(item) in seen for item in items)


def overlap_line(metrics: dict, total: int | None = None, unit: str = "items") -> list[str]:
    """The note under eval's header when some of a --data file's ``total`` ``unit`` (texts,
    pairs) are in the run's training split (metrics[TRAIN_OVERLAP]), else []."""
    overlap = metrics.get(TRAIN_OVERLAP)
    if not overlap:
        return []
    of = "the file's" if total is None else f"the {total}"
    verb, their = ("is", "its score is not a held-out score") if overlap == 1 else (
        "are", "their scores are not held-out scores")
    return [f"note: {overlap} of {of} {unit} {verb} in the run's training split (as the "
            f"model reads them): {their}"]


def generic_report(metrics: dict, baselines: dict, total: int | None = None,
                   unit: str = "items") -> list[str]:
    """What `recurrent eval` prints for a task without ``format_report``: the training
    overlap's note (overlap_line), the scalar table, then each non-scalar model metric
    (e.g. a matrix) as JSON on its own line."""
    lines = overlap_line(metrics, total, unit)
    names = [k for k, v in metrics.items() if is_scalar(v) and k != TRAIN_OVERLAP]
    for values in baselines.values():
        names += [k for k, v in values.items() if is_scalar(v) and k not in names]
    lines += metrics_table(metrics, baselines, names)
    for key, value in metrics.items():
        if not is_scalar(value):
            lines.append(f"{key}: {json.dumps(value, default=json_default)}")
    return lines
