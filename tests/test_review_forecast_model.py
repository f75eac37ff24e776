"""Review checks of the forecast task's model-selection pieces (calendar.py)."""
from __future__ import annotations

import numpy as np

from recurrent_plugins.forecast import calendar as cal


def _dates(start, count, unit):
    return np.datetime64(start, unit) + np.arange(count)


def test_yearly_dates_get_no_calendar_cycle_whose_phase_never_changes():
    """Yearly rows dated 1 January all sit at phase 0 of the year: sin 0, cos 1 on every
    row, a constant input, so the year is not a cycle of theirs; the cycles of finer
    steps stay as documented."""
    yearly = np.array([f"{y}-01-01" for y in range(1900, 1970)], dtype="datetime64[us]")
    assert np.ptp(cal.features(yearly, ["year"]), axis=0).max() == 0.0
    assert cal.choose_cycles("auto", yearly, len(yearly)) == []
    monthly = np.array([f"{1990 + i // 12}-{i % 12 + 1:02d}-01" for i in range(60)],
                       dtype="datetime64[us]")
    assert cal.choose_cycles("auto", monthly, 60) == ["year"]
    assert cal.choose_cycles("auto", _dates("2000-01-01", 800, "D"), 800) == ["week", "year"]
    assert cal.choose_cycles("auto", _dates("2000-01-01T00", 500, "h"), 500) == ["day", "week"]
