"""loss.png in a run directory, drawn from metrics.jsonl (needs matplotlib)."""
from __future__ import annotations

import importlib.util
import math

from .checkpoint import PLOT_FILE, RunDir, atomic_write
from .extras import install_hint
from .matplotlib_agg import figure_classes


_told = False  # the note is said once per process


def missing_note(imported: bool = False) -> str | None:
    """That loss.png will not be written, the first time it is asked while matplotlib
    is missing; else None. Before training only the package is looked for (importing
    it would delay the first step); after a plot that could not be drawn
    (`imported=True`) the import itself is tried, which catches a broken install."""
    global _told
    if _told:
        return None
    if (figure_classes() is not None if imported
            else importlib.util.find_spec("matplotlib") is not None):
        return None
    _told = True
    return (f"note: loss.png will not be written: matplotlib is not installed "
            f"({install_hint('plot')}, or pass --no-plot)")


def write_loss_plot(run: RunDir) -> bool:
    """Mean training loss per log interval, validation loss per evaluation and the
    baselines' validation losses as lines. False without matplotlib or without records."""
    # None for any failing import: it is imported after the last step, where an error
    # would hide the summary of a run that trained to the end
    classes = figure_classes()
    if classes is None:
        return False
    Figure, FigureCanvasAgg = classes
    records = run.read_metrics()
    train = {r["step"]: r.get("mean_loss", r["loss"])
             for r in records if r.get("kind") == "train"}
    valid = {r["step"]: r["metrics"]["loss"] for r in records if r.get("kind") == "eval"}
    baselines = next((r["baselines"] for r in records if r.get("kind") == "baselines"), {})
    if not train and not valid:
        return False
    figure = Figure(figsize=(8, 4.5), layout="constrained")
    FigureCanvasAgg(figure)
    ax = figure.subplots()
    for label, points, style in (("train", train, "-"), ("valid", valid, "o-")):
        finite = sorted((k, v) for k, v in points.items() if v is not None and math.isfinite(v))
        if finite:
            ax.plot(*zip(*finite), style, label=label, markersize=4)
    for name, values in (baselines or {}).items():
        if isinstance(values.get("loss"), (int, float)):
            ax.axhline(values["loss"], linestyle="--", linewidth=1, color="gray")
            ax.annotate(f"{name} (valid)", (0, values["loss"]),
                        xycoords=("axes fraction", "data"), fontsize="small", color="gray",
                        va="bottom")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.grid(alpha=0.3)
    ax.legend()
    atomic_write(run.file(PLOT_FILE), lambda f: figure.savefig(f, format="png", dpi=100))
    return True
