"""PNG plot of a forecast. matplotlib is optional (extra "plot").

The training loss curve (loss.png) is written by the trainer, not here.

Drawing uses matplotlib's object API with the Agg canvas (no pyplot, no global backend
switch), and files are written to a temporary name first, then renamed: a failed plot
never leaves a half-written PNG behind.
"""
from __future__ import annotations

import numpy as np

from recurrent import matplotlib_agg
from recurrent.checkpoint import atomic_write


def _save(figure, canvas_class, path: str) -> None:
    """Write the PNG as every file the CLI writes (recurrent.checkpoint.atomic_write): whole
    or not at all, with the mode of the file it replaces or, new, the mode open() would
    give it; a symbolic link stays a link (the file it names is replaced)."""
    # a WriteError names the file; a link the user named stays a link
    atomic_write(path, canvas_class(figure).print_png, follow_link=True)


def forecast_plot(path: str, title: str, columns: list[str], time_label: str,
                  times: np.ndarray, values: np.ndarray, test_start: int | None,
                  forecast_times: np.ndarray, forecast: np.ndarray,
                  baseline: np.ndarray, baseline_name: str) -> None:
    """One panel per column: history, test actuals (rows from test_start), the model's
    forecast and the baseline's.

    times (N,) / values (N, C) the history shown (NaN = gap, drawn as a break);
    forecast_times (S,), forecast and baseline (S, C).
    """
    Figure, Canvas = matplotlib_agg.required("plotting")
    figure = Figure(figsize=(10, 3.2 * len(columns)), layout="constrained")
    axes = figure.subplots(len(columns), 1, squeeze=False, sharex=True)[:, 0]
    split = len(times) if test_start is None else test_start
    for c, (ax, name) in enumerate(zip(axes, columns)):
        ax.plot(times[:split], values[:split, c], color="0.35", lw=1, label="history")
        if split < len(times):
            # Start the test line at the last history point so the two lines join.
            joined = max(split - 1, 0)
            ax.plot(times[joined:], values[joined:, c], color="tab:blue", lw=1.2,
                    label="test actuals")
        ax.plot(forecast_times, forecast[:, c], color="tab:red", lw=1.6, marker=".",
                label="model forecast")
        ax.plot(forecast_times, baseline[:, c], color="tab:green", lw=1.2, ls="--",
                label=baseline_name)
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
        ax.legend(loc="best", fontsize="small")
    axes[0].set_title(title)
    axes[-1].set_xlabel(time_label)
    _save(figure, Canvas, path)
