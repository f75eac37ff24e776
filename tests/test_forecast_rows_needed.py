"""The "too few rows" error of a forecast split names a row count from which on every
count works: the validation and test rows are rounded shares, so one more row can take
a training row away, and the smallest count that fits is not an "at least"."""
import re

import pytest

from recurrent.errors import UserError
from recurrent_plugins.forecast import windows as win


def _needed(n, window, horizon, valid, test):
    with pytest.raises(UserError) as refused:
        win.split_ends(n, window, horizon, valid, test)
    return int(re.search(r"need at least (\d+)", str(refused.value)).group(1))


def test_44_rows_are_not_told_that_43_are_enough():
    # 43 rows keep 31 training rows (6 + 6 held out), 44 keep 30 (7 + 7): too few.
    assert win.split_ends(43, 30, 1, 0.15, 0.15) == (31, 37)
    assert _needed(44, 30, 1, 0.15, 0.15) > 44


@pytest.mark.parametrize("window,horizon,valid,test", [
    (30, 1, 0.15, 0.15), (16, 1, 0.15, 0.15), (60, 13, 0.15, 0.15), (8, 4, 0.1, 0.2),
    (1, 52, 0.05, 0.05), (30, 12, 0.5, 0.4)])
def test_every_row_count_from_the_one_named_fits(window, horizon, valid, test):
    need = None
    for n in range(1, 1500):
        try:
            win.split_ends(n, window, horizon, valid, test)
        except UserError:
            need = _needed(n, window, horizon, valid, test)
            assert n < need
    assert need is not None
    for n in range(need, need + 1500):
        win.split_ends(n, window, horizon, valid, test)


@pytest.mark.parametrize("valid,test", [(1e-9, 0.15), (0.15, 1e-9)])
def test_a_tiny_fraction_names_the_count_without_counting_up_to_horizon_over_it(
        monkeypatch, valid, test):
    # --valid-fraction 1e-9 is accepted (> 0); the count is found by trying counts below
    # a bound, which must not grow as horizon / fraction (a billion tries: minutes)
    calls = []
    ends = win._ends
    monkeypatch.setattr(win, "_ends", lambda *a: calls.append(1) or ends(*a))
    need = _needed(10, 30, 1, valid, test)
    assert len(calls) < 10_000
    win.split_ends(need, 30, 1, valid, test)
    with pytest.raises(UserError):
        win.split_ends(need - 1, 30, 1, valid, test)
