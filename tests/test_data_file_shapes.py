"""Data files whose shape is subtly wrong, for every task that reads them: rows with more
fields than the header, a column named twice, an unbalanced quote, a megabyte-long cell,
Unicode line separators inside a line, NUL bytes after a byte-order mark and a symbolic
link loop. Each is either read as the file means or refused with one line naming the
file, the line and the real problem, before a run directory is made."""
import os

import numpy as np
import pytest
from helpers import invoke, ok, one_line_error, write_csv

from recurrent import datafile
from recurrent.errors import UserError
from recurrent_plugins.forecast import series as dataio
from recurrent_plugins.sentiment.dataset import read_csv
from recurrent_plugins.seq2seq import data as seq2seq_data

FORECAST_RUN = ["--window", 5, "--hidden", 8, "--model", "rnn", "--steps", 1, "--threads", 1,
                "--quiet", "--no-plot"]
SENTIMENT_RUN = ["--hidden", 8, "--embed-dim", 8, "--ensemble", 1, "--steps", 1,
                 "--threads", 1, "--quiet", "--no-plot"]


def forecast_lines(n=80):
    return [f"{1700 + i},{np.sin(i / 3) * 10 + 20:.2f}" for i in range(n)]


def write_lines(path, lines):
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


def read(path, columns=None, time_column=None):
    return dataio.read_series(dataio.resolve_source(str(path)), columns, time_column)


def refused_row(tmp_path, header, index, row):
    """(path, message): the forecast file of forecast_lines() with line ``index`` (0 the
    first after the header) set to ``row``, and the one-line refusal of reading it."""
    lines = forecast_lines()
    lines[index] = row
    path = write_lines(tmp_path / "s.csv", [header, *lines])
    with pytest.raises(UserError) as info:
        read(path)
    return path, str(info.value)


# ---- rows with more fields than the header ---------------------------------------------------

def test_forecast_row_with_an_unquoted_thousands_comma_is_refused(tmp_path):
    """'1749,1,234' under 'year,sunspots' is three fields: reading the first two would
    take 1 for 1234 without a word."""
    path, message = refused_row(tmp_path, "year,sunspots", 49, "1749,1,234")
    assert message == (f"data file {path!r} line 51: 3 fields, the header has 2 "
                       f"(quote values that contain commas, and name every column in the "
                       f"header)")
    result = invoke("train", "forecast", "--data", path, *FORECAST_RUN,
                    "--out", tmp_path / "run")
    one_line_error(result, "line 51: 3 fields, the header has 2")
    assert not (tmp_path / "run").exists()
    # quoted, it is one field, and no number
    with pytest.raises(UserError, match=r"is not numeric: '1,234' at line 2"):
        read(write_lines(tmp_path / "q.csv", ["year,sunspots", '1700,"1,234"', "1701,5"]))


def test_forecast_header_lacking_a_column_name_is_refused(tmp_path):
    """A header 'year' over rows 'year,value' would read the years as the series."""
    path = write_lines(tmp_path / "s.csv", ["year", *forecast_lines()])
    with pytest.raises(UserError, match=r"line 2: 2 fields, the header has 1 "):
        read(path)
    # empty trailing fields (a spreadsheet's) are no data
    fine = read(write_lines(tmp_path / "t.csv", ["year,v", "1700,1,", "1701,2, "]),
                time_column="year")
    assert fine.values[:, 0].tolist() == [1.0, 2.0]


# ---- a column named twice ----------------------------------------------------------------

def test_forecast_column_named_twice_is_refused(tmp_path):
    lines = [f"{row},{float(row.split(',')[1]) * 2}" for row in forecast_lines()]
    path = write_lines(tmp_path / "s.csv", ["year,v,v", *lines])
    with pytest.raises(UserError) as info:
        read(path, ["v"], "year")
    assert str(info.value) == (f"data file {path!r} has 2 columns named 'v': rename all but "
                               f"one so that it is clear which one to read")
    with pytest.raises(UserError, match="has 2 columns named 'year'"):
        read(write_lines(tmp_path / "t.csv", ["year,year,v", "1,1,1"]), ["v"], "year")
    # a repeated column that is not read is no concern
    other = read(write_lines(tmp_path / "u.csv", ["year,v,x,x", "1700,1,a,b", "1701,2,c,d"]),
                 ["v"], "year")
    assert other.values[:, 0].tolist() == [1.0, 2.0]


def test_sentiment_column_named_twice_is_refused(tmp_path):
    rows = [[f"good film {i}", "pos", "x"] for i in range(20)] + \
           [[f"bad film {i}", "neg", "x"] for i in range(20)]
    path = write_csv(tmp_path / "d.csv", ["text", "label", "text"], rows)
    with pytest.raises(UserError) as info:
        read_csv(path, "text", "label")
    assert str(info.value) == (f"{path} has 2 columns named 'text': rename all but one so "
                               f"that it is clear which one to read")
    one_line_error(invoke("train", "sentiment", "--data", path, *SENTIMENT_RUN,
                          "--out", tmp_path / "run"), "has 2 columns named 'text'")
    assert not (tmp_path / "run").exists()
    labels = write_csv(tmp_path / "l.csv", ["text", "label", "label"], rows)
    with pytest.raises(UserError, match="has 2 columns named 'label'"):
        read_csv(labels, "text", "label")
    assert len(read_csv(labels, "text", None).texts) == 40  # the label column is not read


# ---- unbalanced quotes and long cells ------------------------------------------------------

def test_forecast_unbalanced_quote_names_the_line_it_opens_on(tmp_path):
    """The quote opened at line 12 runs to the end of the file: refused naming line 12,
    not as a 'not numeric' value holding the rest of the file."""
    path, message = refused_row(tmp_path, "year,v", 10, '1710,"20')
    assert message == (f"data file {path!r} line 12: malformed CSV (a quoted field "
                       f"opened on this line is never closed: an unbalanced quote)")


def test_sentiment_unbalanced_quote_names_the_line_its_row_starts_on(tmp_path):
    """A quote opened at line 3 closes at the first quote of line 5: the message names
    both lines."""
    path = tmp_path / "d.csv"
    path.write_text('text,label\nfine,pos\n"dull start,neg\nok,pos\nsaid "hi" there,neg\n',
                    encoding="utf-8")
    with pytest.raises(UserError) as info:
        read_csv(str(path), "text", "label")
    assert str(info.value) == (f"{path} line 5: malformed CSV (',' expected after '\"', in a "
                               f"row that starts at line 3)")


def test_forecast_megabyte_cell_is_named_by_its_start(tmp_path):
    """A 1 MB cell past the csv module's 131072-character limit: the message names the
    line and shows the cell's start, not the csv module's limit nor the whole cell."""
    path, message = refused_row(tmp_path, "year,v", 20, "1720," + "x" * (1 << 20))
    assert message == (f"column 'v' is not numeric: {'x' * 40!r}... (1048576 characters) "
                       f"at line 22 of {path!r}")


def test_forecast_megabyte_time_cell_is_refused_at_once(tmp_path):
    """dateutil takes about a minute on a megabyte of digits: a cell that long is refused
    as no date without parsing it."""
    lines = [f"2000-01-{d:02d},{d}" for d in range(1, 29)]
    lines[5] = "2000-0" + "9" * (1 << 20) + ",6"
    path = write_lines(tmp_path / "s.csv", ["date,v", *lines])
    with pytest.raises(UserError) as info:
        read(path)
    assert str(info.value) == (f"time column 'date' of {path!r} has {'2000-0' + '9' * 34!r}... "
                               f"(1048582 characters) at line 7: neither a number nor a date "
                               f"(1048582 characters, too long for a date)")


def test_csv_rows_report_where_each_row_starts_and_ends():
    rows = datafile.csv_rows('a,b\n"x\ny",1\n\n2,3\n', "f.csv")
    assert rows == [(1, 1, ["a", "b"]), (2, 3, ["x\ny", "1"]), (4, 4, []), (5, 5, ["2", "3"])]


# ---- seq2seq lines --------------------------------------------------------------------------

@pytest.mark.parametrize("separator", ["\u2028", "\u2029", "\x85", "\x0b", "\x0c", "\x1c",
                                       "\x1e"])
def test_seq2seq_lines_end_only_at_line_breaks(tmp_path, separator):
    """A Unicode line separator inside a line is part of it: the pair stays whole and the
    line numbers of later lines stay those of the file."""
    path = tmp_path / "pairs.tsv"
    path.write_text(f"cat\tK AE T{separator}X\tY\r\ndog\tD AO G\n\nbad line\n",
                    encoding="utf-8")
    with pytest.raises(UserError) as info:
        seq2seq_data.read_pairs(str(path))
    assert str(info.value) == f"{path} line 4: expected source<TAB>target, found no tab"
    path.write_text(f"cat\tK AE T{separator}X\tY\r\ndog\tD AO G\n", encoding="utf-8")
    pairs, _ = seq2seq_data.read_pairs(str(path))
    assert pairs == [("cat", f"K AE T{separator}X\tY"), ("dog", "D AO G")]


# ---- bytes ----------------------------------------------------------------------------------

def test_nul_byte_after_a_utf8_byte_order_mark_is_refused():
    with pytest.raises(UserError) as info:
        datafile.decode(b"\xef\xbb\xbftext,label\nok\x00,pos\n", "d.csv")
    assert str(info.value) == "d.csv looks binary (NUL byte at offset 16), not text"


def test_symbolic_link_loop_is_named_as_such(tmp_path):
    """Not 'not found': the path exists as a link that cannot be followed."""
    os.symlink(tmp_path / "b.csv", tmp_path / "a.csv")
    os.symlink(tmp_path / "a.csv", tmp_path / "b.csv")
    loop = str(tmp_path / "a.csv")
    one_line_error(invoke("train", "forecast", "--data", loop, *FORECAST_RUN,
                          "--out", tmp_path / "run"), "Too many levels of symbolic links")
    good = write_lines(tmp_path / "s.csv", ["year,v", *forecast_lines()])
    ok(invoke("train", "forecast", "--data", good, *FORECAST_RUN, "--out", tmp_path / "run"))
    for command in (["eval", tmp_path / "run", "--data", loop],
                    ["predict", tmp_path / "run", "--data", loop]):
        one_line_error(invoke(*command), "Too many levels of symbolic links")
    dangling = str(tmp_path / "gone.csv")
    os.symlink(tmp_path / "nothing.csv", dangling)
    one_line_error(invoke("eval", tmp_path / "run", "--data", dangling),
                   "data file not found")
