"""A --time-column that names no column of the file is refused naming it, not as "several
columns; choose with --column" (the misspelt name's real column counted as a value)."""
import pytest
from helpers import write_csv

from recurrent.errors import UserError
from recurrent_plugins.forecast import series as dataio


def test_a_misspelt_time_column_is_named(tmp_path):
    path = write_csv(tmp_path / "sales.csv", ["date", "sales"],
                     [["2023-01-01", "1"], ["2023-01-02", "2"]])
    with pytest.raises(UserError) as refused:
        dataio.read_series(dataio.resolve_source(str(path)), None, "Date")
    message = str(refused.value)
    assert "time column 'Date' not found" in message and "'date', 'sales'" in message
    assert "--column" not in message and "\n" not in message
    # with --column given too, the same message
    with pytest.raises(UserError, match="time column 'Date' not found"):
        dataio.read_series(dataio.resolve_source(str(path)), ["sales"], "Date")


def test_the_right_time_column_still_reads(tmp_path):
    path = write_csv(tmp_path / "sales.csv", ["date", "sales"],
                     [["2023-01-01", "1"], ["2023-01-02", "2"]])
    series = dataio.read_series(dataio.resolve_source(str(path)), None, "date")
    assert series.columns == ["sales"] and series.time_column == "date"
