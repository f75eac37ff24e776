"""How one figure is printed, in tables (recurrent/report.py) and while training
(recurrent/progress.py): a foundation both levels share."""
from __future__ import annotations

import numpy as np


def is_scalar(value) -> bool:
    """A number that fits one table cell (bools are flags, not metrics)."""
    return (isinstance(value, (int, float, np.integer, np.floating))
            and not isinstance(value, (bool, np.bool_)))


def format_value(value, signed: bool = False) -> str:
    """One table cell: floats with 4 decimals, in exponent form from 1e9 on (a huge value
    such as a diverged model's perplexity stays one short cell) and below 1e-4 (a small
    nonzero value does not print as 0, nor two different ones as a tie), zero without a
    sign; ints as they are; "-" for anything else (a metric a column does not have).
    ``signed``: a "+" before positive floats (a difference)."""
    if not is_scalar(value):
        return "-"
    if isinstance(value, (float, np.floating)):
        value = float(value) + 0.0  # -0.0 prints as 0.0000
        sign = "+" if signed else ""
        size = abs(value)
        if np.isfinite(value) and (size >= 1e9 or 0 < size < 1e-4):
            return f"{value:{sign}.4e}"
        return f"{value:{sign}.4f}"
    return str(value)


def counted(count: int, noun: str) -> str:
    """``count`` and ``noun``, plural unless the count is 1: "1 step", "2 steps"."""
    return f"{count} {noun}{'' if count == 1 else 's'}"
