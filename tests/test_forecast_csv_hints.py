"""forecast: one-line refusals of a CSV file that say what to do. A value written with a
decimal comma (a European spreadsheet's export saved with commas between the columns,
which quotes "47,73") or thousands separators: how to write it (other text that is no
number gets no such hint). A file of several columns given without --column, one of
them named as times: --time-column too, as --column alone leaves the rows numbered."""
import pytest
from helpers import invoke, one_line_error, write_csv

HINT = "write numbers with a decimal point and no thousands separator"


@pytest.mark.parametrize("cell", ["47,73", "-0,5", "1.234,5", "1,234.5"])
def test_a_number_with_a_comma_is_refused_saying_how_to_write_it(tmp_path, cell):
    rows = [[f"2010-01-{d:02d}", f"{40 + d}.5"] for d in range(1, 29)]
    rows[5][1] = cell
    data = write_csv(tmp_path / "euro.csv", ["date", "wert"], rows)
    one_line_error(invoke("train", "forecast", "--data", data, "--out", tmp_path / "run"),
                   f"column 'wert' is not numeric: {cell!r} at line 7", HINT)


def test_other_text_gets_no_hint(tmp_path):
    rows = [[f"2010-01-{d:02d}", f"{40 + d}.5"] for d in range(1, 29)]
    rows[5][1] = "n,a"
    data = write_csv(tmp_path / "text.csv", ["date", "wert"], rows)
    result = invoke("train", "forecast", "--data", data, "--out", tmp_path / "run")
    one_line_error(result, "column 'wert' is not numeric: 'n,a' at line 7")
    assert HINT not in result.stderr


def test_several_columns_name_the_time_column_option(tmp_path):
    rows = [[f"2010-01-{d:02d}", f"{40 + d}.5", "north"] for d in range(1, 29)]
    data = write_csv(tmp_path / "sales.csv", ["date", "sales", "region"], rows)
    one_line_error(invoke("train", "forecast", "--data", data, "--out", tmp_path / "run"),
                   "has several columns ('date', 'sales', 'region'); choose with --column "
                   "(and its times with --time-column date, else the rows are numbered steps)")
    # a time column given, or none named as times: the message names --column only
    for header, extra in ((["date", "sales", "region"], ["--time-column", "date"]),
                          (["when", "sales", "region"], [])):
        data = write_csv(tmp_path / "other.csv", header, rows)
        result = invoke("train", "forecast", "--data", data, *extra, "--out",
                        tmp_path / "run")
        one_line_error(result, "choose with --column")
        assert "--time-column" not in result.stderr
