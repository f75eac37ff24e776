"""How one figure is printed, in tables (recurrent/report.py) and while training
(recurrent/progress.py): a foundation both levels share."""
from __future__ import annotations

import numpy as np


def is_scalar(value) -> bool:
    """A number that fits one table cell (bools are flags, not metrics)."""
    return (isinstance(value, (int, float, np.integer, np.floating))
            and not isinstance(value, (bool, np.bool_)))


def format_value(value) -> str:
    """One table cell: floats with 4 decimals (in exponent form from 1e9 on, so that a
    huge value such as a diverged model's perplexity stays one short cell), ints as they
    are, "-" for anything else (a metric a column does not have)."""
    if not is_scalar(value):
        return "-"
    if isinstance(value, (float, np.floating)):
        return f"{value:.4e}" if abs(value) >= 1e9 and np.isfinite(value) else f"{value:.4f}"
    return str(value)
