"""forecast: one-line refusals of a CSV file that say what to do. A value written with a
decimal comma (a European spreadsheet's export saved with commas between the columns,
which quotes "47,73") or thousands separators: how to write it (other text that is no
number gets no such hint). A file of several columns given without --column, one of
them named as times: --time-column too, as --column alone leaves the rows numbered. A
unit in a cell (12.5%, $12) or quotes kept after a blank: what to write. Comment or title
lines above or under the header, and a local hour repeated when daylight saving ends: what
they are."""
import shlex

import pytest
from helpers import invoke, ok, one_line_error, write_csv

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


@pytest.mark.parametrize("name", ["Date (UTC)", "timestamp_utc", "order_date"])
def test_several_columns_name_a_time_column_whose_header_has_more_words(tmp_path, name):
    rows = [[f"2010-01-{d:02d}", f"{40 + d}.5", "north"] for d in range(1, 29)]
    data = write_csv(tmp_path / "sales.csv", [name, "sales", "region"], rows)
    one_line_error(invoke("train", "forecast", "--data", data, "--out", tmp_path / "run"),
                   f"choose with --column (and its times with --time-column "
                   f"{shlex.quote(name)}, else the rows are numbered steps)")


def test_a_comment_line_under_the_header_is_named_as_no_date(tmp_path):
    """A '# ...' line under the header has no value (a missing one): the time column
    names that line as no date, not the first real date as written otherwise."""
    rows = [["# exported from the meter"]] + [[f"2010-01-{d:02d}", f"{40 + d}.5"]
                                              for d in range(1, 29)]
    data = write_csv(tmp_path / "c.csv", ["date", "value"], rows)
    result = invoke("train", "forecast", "--data", data, "--out", tmp_path / "run")
    one_line_error(result, "time column 'date' of", "has '# exported from the meter' at "
                   "line 2: neither a number nor a date")
    assert "mixes date formats" not in result.stderr


@pytest.mark.parametrize("above", [["# meter export"], ["Sales report", ""]])
def test_lines_above_the_header_are_named_as_title_or_comment(tmp_path, above):
    """Lines of one field above the column names become the header: the row that has
    more fields is refused saying to delete those lines, not only to quote commas."""
    path = tmp_path / "t.csv"
    rows = [f"2010-01-{d:02d},{40 + d}.5" for d in range(1, 29)]
    path.write_text("\n".join([*above, "date,value", *rows]) + "\n", encoding="utf-8")
    one_line_error(invoke("train", "forecast", "--data", path, "--out", tmp_path / "run"),
                   f"line {len(above) + 1}: 2 fields, the header has 1",
                   f"if line 1 ({above[0]!r}) is a title or comment, delete the lines above "
                   f"the column names")
    assert not (tmp_path / "run").exists()


def test_an_hour_repeated_at_the_end_of_daylight_saving_names_utc_offsets(tmp_path):
    """Local times without offsets repeat 02:00 when the clock goes back: sorting cannot
    fix that, and the refusal says that offsets do. A repeated day gets no such hint."""
    hours = [f"2010-10-30 {h:02d}:00" for h in range(24)] + \
            [f"2010-10-31 {h:02d}:00" for h in (0, 1, 2, 2, *range(3, 24))]
    data = write_csv(tmp_path / "dst.csv", ["time", "load"],
                     [[t, f"{10 + i % 24}.5"] for i, t in enumerate(hours)])
    one_line_error(invoke("train", "forecast", "--data", data, "--out", tmp_path / "run"),
                   "time column 'time' does not increase at line 29",
                   "write each time with its UTC offset, such as 2010-10-31T02:00+01:00")
    days = [f"2010-01-{d:02d}" for d in (1, 2, 3, 3, *range(4, 29))]
    data = write_csv(tmp_path / "days.csv", ["date", "value"],
                     [[t, f"{40 + i}.5"] for i, t in enumerate(days)])
    result = invoke("train", "forecast", "--data", data, "--out", tmp_path / "run")
    one_line_error(result, "does not increase at line 5", "remove duplicate times)")
    assert "UTC offset" not in result.stderr


@pytest.mark.parametrize("cell, hint", [
    ("12.5%", "write the bare number, without a % or currency sign"),
    ("$1234.50", "write the bare number, without a % or currency sign"),
    ("€ 12", "write the bare number, without a % or currency sign"),
    ("#DIV/0!", "a spreadsheet's error value: fix its formula, or leave the cell empty "
                "to have it filled"),
    ("#VALUE!", "a spreadsheet's error value: fix its formula, or leave the cell empty "
                "to have it filled"),
])
def test_a_number_with_a_unit_is_refused_saying_how_to_write_it(tmp_path, cell, hint):
    rows = [[f"2010-01-{d:02d}", f"{40 + d}.5"] for d in range(1, 29)]
    rows[5][1] = cell
    data = write_csv(tmp_path / "unit.csv", ["date", "wert"], rows)
    one_line_error(invoke("train", "forecast", "--data", data, "--out", tmp_path / "run"),
                   f"column 'wert' is not numeric: {cell!r} at line 7 of", f"({hint})")


def test_quotes_after_blanks_are_refused_saying_to_remove_the_blanks(tmp_path):
    """'"2010-01-01", "40.5"': the blank before the second quote makes the quotes part of
    the value (CSV quotes only a field's first character)."""
    path = tmp_path / "blanks.csv"
    path.write_text("\n".join(['"date", "wert"', *(f'"2010-01-{d:02d}", "{40 + d}.5"'
                                                   for d in range(1, 29))]) + "\n")
    one_line_error(invoke("train", "forecast", "--data", path, "--out", tmp_path / "run"),
                   "is not numeric: '\"41.5\"' at line 2", "(a blank after a comma keeps "
                   "the quotes in the value: remove the blanks)")


@pytest.mark.parametrize("first, also", [("sep=,", False), ("sep=;", True)])
def test_a_spreadsheet_separator_line_is_refused_saying_to_delete_it(tmp_path, first, also):
    """Excel's 'sep=,' line above the header is no header: read as one, its first field
    'sep=' became the value column and the message named the real header as a value."""
    comma = "," if first == "sep=," else ";"
    path = tmp_path / "sep.csv"
    path.write_text("\n".join([first, f"date{comma}wert",
                               *(f"2010-01-{d:02d}{comma}{40 + d}" for d in range(1, 29))])
                    + "\n")
    result = invoke("train", "forecast", "--data", path, "--out", tmp_path / "run")
    one_line_error(result, f"starts with a spreadsheet's separator line {first!r}, not a "
                   f"header: delete that line")
    assert ("save the file with commas between the columns" in result.stderr) == also


@pytest.mark.parametrize("cell", ["#N/A", "#n/a", "<NA>", "N/A", "None"])
def test_missing_value_words_of_spreadsheets_and_r_are_gaps(tmp_path, cell):
    rows = [[f"2010-01-{d:02d}", f"{40 + d}.5"] for d in range(1, 29)]
    rows[5][1] = cell
    data = write_csv(tmp_path / "gap.csv", ["date", "wert"], rows)
    run = tmp_path / "run"
    ok(invoke("train", "forecast", "--data", data, "--window", 5, "--hidden", 8, "--steps", 1,
              "--threads", 1, "--quiet", "--no-plot", "--out", run))
