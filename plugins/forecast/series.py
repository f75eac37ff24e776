"""Reading a time series from CSV: bundled series, column checks, times, gap filling.

Dimension legend: N rows (time steps) of the file, C value columns.

Every problem with the user's file becomes a one-line recurrent.errors.UserError that names
the file, the column and the line, so the CLI can print it as-is.
"""
from __future__ import annotations

import hashlib
import math
import os
import re
import shlex
from dataclasses import dataclass, replace

import numpy as np

from recurrent import datafile
from recurrent.errors import UserError
from recurrent.memo import Kept, file_identity

from .times import TIME_OF_DAY, calendar_date, parse_times, period_notation

DATA_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")

# name -> (file in DATA_DIR, time column, value column); see data/SOURCE.md.
BUNDLED = {
    "sunspots": ("sunspots.csv.gz", "year", "sunspots"),
    "co2": ("co2.csv.gz", "date", "co2"),
}

# Cell texts read as "no value" (compared lower-cased, after stripping blanks): the words
# data files write for it, a spreadsheet's #N/A and R's <NA> among them.
MISSING_MARKERS = frozenset({"", "na", "n/a", "nan", "null", "none", "?", "#n/a", "#na",
                             "<na>"})


@dataclass
class Source:
    """Where a series comes from: a bundled name or a file path, with its defaults."""
    path: str  # absolute path of the CSV (possibly compressed: recurrent.datafile)
    label: str  # what messages call it: the bundled name or the path as given
    bundled: str | None = None  # bundled series name, else None
    time_column: str | None = None  # the bundled series' time column
    column: str | None = None  # the bundled series' value column


@dataclass
class Series:
    """A series as read: NaN marks a missing value (before filling)."""
    label: str
    columns: list[str]
    values: np.ndarray  # (N, C) float64, NaN where missing
    times: np.ndarray | None  # (N,) float64 or datetime64, strictly increasing; None: row order
    time_column: str | None
    lines: np.ndarray  # (N,) int64 file line number of each row (for messages)
    date_order: str | None = None  # "dmy"/"mdy" when the dates start with day and month
    # (N,) timedelta64 each row's UTC offset as written (times are then UTC, times +
    # offsets the file's local times), None for numbers and dates without offsets
    offsets: np.ndarray | None = None
    # quarters or ISO weeks (2010-Q1, 2010-W01): times.period_notation of the column, in
    # which forecast times are labelled; None for other times
    notation: str | None = None
    # file line numbers of the blank lines among the rows of a series without times,
    # skipped (blank_lines_note)
    blank_lines: tuple[int, ...] = ()

    @property
    def observed(self) -> np.ndarray:
        """(N, C) bool: the cells that held a real value in the file."""
        return ~np.isnan(self.values)


def resolve_source(data: str | None) -> Source:
    """``data`` is a CSV path or the name of a bundled series (default: sunspots)."""
    if data is None or data == "":
        data = "sunspots"
    # a directory of a bundled series' name (`--out co2` made one) is not data: the name
    # then means the bundled series, as it did when the run's state was made
    # lexists: a symbolic link that cannot be followed (a loop) is a file the user named,
    # whose problem recurrent.datafile names, not a missing one
    if os.path.lexists(data) and not (data in BUNDLED and os.path.isdir(data)):
        return Source(path=os.path.abspath(data), label=data)
    if data in BUNDLED:
        file_name, time_column, column = BUNDLED[data]
        return Source(path=os.path.join(DATA_DIR, file_name), label=data, bundled=data,
                      time_column=time_column, column=column)
    raise UserError(f"data file {data!r} not found (bundled series: {', '.join(sorted(BUNDLED))})")


def _read_rows(path: str, label: str) -> list[tuple[int, list[str]]]:
    """(file line number where the row ends, cells) for every CSV row."""
    text = datafile.read_text(path, repr(label))
    return [(end, row) for _, end, row in datafile.csv_rows(text, f"data file {label!r}")]


# Series read so far, newest last: (file identity, source, options) -> Series. A run
# reads its file once per candidate and again for each candidate's evaluation; parsing
# it cell by cell each time dominated short runs. Two files at a time: a run's own and
# a file given to eval or predict (--data).
READ_KEPT = 2
_READ = Kept(READ_KEPT)


def _copy(series: Series) -> Series:
    """A Series of its own arrays: the cached one is never handed out to be changed."""
    return replace(series, columns=list(series.columns), values=series.values.copy(),
                   times=None if series.times is None else series.times.copy(),
                   offsets=None if series.offsets is None else series.offsets.copy(),
                   lines=series.lines.copy())


def read_series(source: Source, columns: list[str] | tuple[str, ...] | None,
                time_column: str | None, date_order: str | None = None,
                saved_order: str | None = None) -> Series:
    """Read the value ``columns`` (and ``time_column``) of a CSV file with a header row.

    Without ``columns``: the bundled series' column, or the file's only non-time column.
    ``date_order`` ("dmy"/"mdy"): how to read dates such as 01/02/2010 when the column
    itself does not tell (see times.py); without it, ``saved_order``, a run's order,
    which a refusal then names as the run's.

    Kept per process while the file's identity (recurrent.memo.file_identity) is
    unchanged, for the same source and options (the READ_KEPT files read last); each call
    gets its own copy. A file that changed while it was read is not kept.
    """
    # a regular file only: a pipe gives its data once (recurrent.datafile keeps that)
    identity = file_identity(source.path) if os.path.isfile(source.path) else None
    if identity is None:
        return _read_series(source, columns, time_column, date_order, saved_order)
    key = (source.path, identity, source.label, source.bundled, source.time_column,
           source.column, None if columns is None else tuple(columns), time_column,
           date_order, saved_order)
    kept = _READ.get(key)
    if kept is not None:
        return _copy(kept)
    series = _read_series(source, columns, time_column, date_order, saved_order)
    if file_identity(source.path) == identity:
        _READ[key] = _copy(series)
    return series


def blank_lines_note(series: Series) -> str | None:
    """A one-line note, for a file the user gives (training, eval/predict --data), on
    blank lines among the rows of a series without a time column, which are skipped:
    each row is the next step, so a blank line that stands for a missing value (a
    spreadsheet saves an empty cell of a one-column file as one) would move the rows after
    it a step earlier; NA there is a gap filled in place. None when there are none."""
    if not series.blank_lines:
        return None
    count = len(series.blank_lines)
    return (f"note: data file {series.label!r} has {count} blank line"
            f"{'s' if count > 1 else ''} among its rows (first: line "
            f"{series.blank_lines[0]}), skipped; without a time column each row is the "
            f"next step: write NA on a blank line that is a missing value to have it filled "
            f"in place")


def _read_series(source: Source, columns, time_column, date_order=None,
                 saved_order=None) -> Series:
    """read_series without its cache."""
    label = source.label
    rows = _read_rows(source.path, label)
    # Keep file line numbers beside each row for messages; drop empty lines (csv gives []).
    # A line holding only "" is a row whose one cell is missing, not an empty line.
    numbered = [(line, row) for line, row in rows if row]
    if not numbered:
        raise UserError(f"data file {label!r} is empty")
    header_line, header = numbered[0]
    header = [name.strip() for name in header]
    datafile.check_comma_header(header, f"data file {label!r}")
    _check_header_names(header, header_line, label,
                        numbered[1][1] if len(numbered) > 1 else None)
    body = numbered[1:]
    if not body:
        raise UserError(f"data file {label!r} has a header but no data rows")

    if time_column is None and source.bundled is not None:
        time_column = source.time_column
    # Columns without a header name (a pandas index, a trailing separator) are no
    # candidates for the defaults: --column and --time-column name theirs.
    named = [h for h in header if h]
    if time_column is None and not columns:
        time_column = _named_time_column(named)
    if time_column is not None and time_column not in header:  # before the default
        # columns, which would count the misspelt time column's real one as a value
        found = ", ".join(repr(h) for h in header)
        raise UserError(f"time column {time_column!r} not found in {label!r}; columns "
                        f"found: {found}")
    if not columns:
        columns = _default_columns(source, named, time_column)
    columns = list(dict.fromkeys(columns))  # drop repeats, keep order
    for name in [*columns, *([time_column] if time_column else [])]:
        if name not in header:
            found = ", ".join(repr(h) for h in header)
            raise UserError(f"column {name!r} not found in {label!r}; columns found: {found}")
    if time_column in columns:
        raise UserError(f"column {time_column!r} is both the time column and a value column")
    datafile.check_unique_columns(header, [*columns, time_column], f"data file {label!r}")
    # A row may not hold non-empty fields past the header's: an unquoted comma in a
    # number (1,234) or a header lacking a name shifts cells into them, and reading only
    # the leading fields would take a wrong value without a word.
    width = len(header)
    for line, row in body:
        if any(cell.strip() for cell in row[width:]):
            # a header of one field may be a title or comment line above the real one
            # (an analytics export's "# ----" lines), which no quoting fixes
            above = (f"; if line {header_line} ({datafile.excerpt(header[0], 20)}) is a title or "
                     f"comment, delete the lines above the column names" if width == 1
                     else "")
            raise UserError(f"data file {label!r} line {line}: {len(row)} fields, the header "
                            f"has {width} (quote values that contain commas, and name "
                            f"every column in the header{above})")

    values = np.empty((len(body), len(columns)), dtype=np.float64)  # (N, C)
    for c, name in enumerate(columns):
        index = header.index(name)
        for r, (line, row) in enumerate(body):
            values[r, c] = _parse_value(row[index] if index < len(row) else "", name, line, label)

    times = offsets = notation = None
    if time_column:
        index = header.index(time_column)
        texts = [(line, row[index].strip() if index < len(row) else "") for line, row in body]
        explain = _other_cells(header, body, index, columns)
        times, date_order, offsets = parse_times(texts, time_column, label, date_order,
                                                 offsets=True, saved_order=saved_order,
                                                 explain=explain)
        notation = (period_notation(texts[0][1])
                    if texts and np.issubdtype(times.dtype, np.datetime64) else None)
    # a blank line between the first and the last row: a row without cells (csv gives [])
    blank = () if time_column else tuple(
        line for line, row in rows if not row and header_line < line < body[-1][0])
    return Series(label=label, columns=columns, values=values, times=times,
                  time_column=time_column, offsets=offsets,
                  lines=np.array([line for line, _ in body], dtype=np.int64),
                  date_order=date_order if time_column else None, notation=notation,
                  blank_lines=blank)


def _check_header_names(header: list[str], line: int, label: str,
                        below: list[str] | None = None) -> None:
    """UserError when the header line is a row of data: a file without a header, whose
    first row would be read as column names, its values lost without a word (a
    one-column file's first value would name the column). Data is every named cell a
    number or, like the cell under it (``below``, the next row), a date (times.
    calendar_date: a month's, 1949-01, too), with numbers and dates both there: column
    names that are dates over cells that are not (one column per day) are a header."""
    named = [h for h in header if h]
    if named and all(_finite(h) for h in named):
        raise UserError(f"data file {label!r} has no header: line {line} "
                        f"({datafile.excerpt(','.join(header))}) holds numbers, not column "
                        f"names; add a line of column names above it (such as 'value', or "
                        f"'time,value')")
    if not named or below is None:
        return
    cells = [(h, below[i].strip() if i < len(below) else "") for i, h in enumerate(header)]
    dates = [bool(h) and calendar_date(h) and calendar_date(cell) for h, cell in cells]
    numbers = [h for (h, _), date in zip(cells, dates) if h and not date]
    if any(dates) and numbers and all(map(_finite, numbers)):
        values = len(dates) - sum(dates)
        count = iter(range(1, values + 1))
        names = ["date" if date else "value" if values == 1 else f"value{next(count)}"
                 for date in dates]
        raise UserError(f"data file {label!r} has no header: line {line} "
                        f"({datafile.excerpt(','.join(header))}) holds dates and numbers like "
                        f"the rows below it: it looks like data, not column names (the first "
                        f"line is always read as the header); add a line of column names "
                        f"above it (such as {','.join(names)!r})")


def _finite(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


def _other_cells(header: list[str], body: list, time_index: int, columns: list[str]):
    """times.parse_times' ``explain``: why row j's time does not increase on row i's,
    from the cells of the columns that are neither the time column nor a value column.
    A column holding a time of day, or headed as a time (hour, month), that differs
    between the two rows means the time is split over two columns; another column that
    differs (an id: a column with at most half as many distinct cells as rows, whose
    later cell, where the time goes back without repeating, is new there) means rows of
    several series stacked in one file (long format)."""
    others = [k for k, name in enumerate(header)
              if k != time_index and name not in columns]

    def cell(row, k):
        return row[k].strip() if k < len(row) else ""

    def explain(i, j, repeat):
        (line_i, row_i), (_, row_j) = body[i], body[j]
        differ = [k for k in others if cell(row_i, k) != cell(row_j, k)]
        if not differ:
            return None
        time_name, date = header[time_index], cell(row_j, time_index)
        for k in differ:
            part, name = cell(row_j, k), header[k]
            if TIME_OF_DAY.fullmatch(part) or (name.lower() in ("hour", "hours", "hr")
                                                and part.isdigit() and int(part) < 24):
                joined = f"{date} {part}" if ":" in part else f"{date} {int(part):02d}:00"
                return (f": its time of day is in column {name!r} ({datafile.excerpt(part)}); "
                        f"write date and time in one column, such as "
                        f"{datafile.excerpt(joined)}, and name that with --time-column")
            if _names_time(name):
                return (f": its time is split over columns {time_name!r} and {name!r} "
                        f"({datafile.excerpt(date)}, {datafile.excerpt(part)}); write one "
                        f"date per row in one column, such as 2010-01-31, and name that "
                        f"with --time-column")
        for k in differ:
            cells = [cell(row, k) for _, row in body]
            if len(set(cells)) > len(body) // 2 \
                    or (not repeat and cells[j] in cells[:j]):
                continue  # values or notes rather than an id
            return (f", where column {header[k]!r} changes from {datafile.excerpt(cells[i])} "
                    f"(line {line_i}) to {datafile.excerpt(cells[j])}: the file holds "
                    f"several series (long format); forecast each from a file of its own "
                    f"rows, or give each series a column and name them with --column")
        return None

    return explain


# Header names taken as the time column of a file given without --time-column or --column.
TIME_NAMES = frozenset({"time", "date", "datetime", "timestamp", "ds", "year", "month",
                        "quarter", "week", "day", "hour", "period"})


def _named_time_column(header: list[str]) -> str | None:
    """In a two-column file, the column whose header names a time (`date,value`), so that
    the file needs no options; None otherwise."""
    named = [h for h in header if h.lower() in TIME_NAMES]
    return named[0] if len(header) == 2 and len(named) == 1 else None


def _names_time(name: str) -> bool:
    """Whether a header names a time in one of its words ("Date (UTC)", "timestamp_utc",
    "order_date"): for advice only, as a word such as "day_of_week" may name a value."""
    return any(word in TIME_NAMES for word in re.findall(r"[a-z]+", name.lower()))


def _default_columns(source: Source, header: list[str], time_column: str | None) -> list[str]:
    if source.bundled is not None:
        return [source.column]
    candidates = [h for h in header if h != time_column]
    if len(candidates) == 1:
        return candidates
    found = ", ".join(repr(h) for h in candidates)
    # --column alone leaves the file without a time column (_named_time_column takes one
    # only without it): a column named as times is named here with the option it needs
    timed = [h for h in candidates if _names_time(h)] if time_column is None else []
    also = (f" (and its times with --time-column {shlex.quote(timed[0])}, else the rows "
            f"are numbered steps)" if len(timed) == 1 else "")
    # dates and their times of day in two columns (Date,Time or date,hour): one column
    # of times needs both in each cell
    split = [h for h in timed if h.lower() in TIME_NAMES]
    if len(split) == 2 and {h.lower() for h in split} & {"time", "hour"}:
        also = (f" (and its times with --time-column, in one column: write the dates and "
                f"times of day of {split[0]!r} and {split[1]!r} in one cell each, such as "
                f"2010-01-31 17:00, else the rows are numbered steps)")
    raise UserError(f"{source.label!r} has several columns ({found}); choose with "
                    f"--column{also}")


# the largest value size read: its square, summed over a series, stays finite in float64
MAX_ABS_VALUE = 1e150


def _parse_value(text: str, column: str, line: int, label: str) -> float:
    text = text.strip()
    if text.lower() in MISSING_MARKERS:
        return np.nan
    try:
        value = float(text)
    except ValueError:
        raise UserError(f"column {column!r} is not numeric: {datafile.excerpt(text)} at "
                        f"line {line} of {label!r}{_number_hint(text)}") from None
    if not np.isfinite(value):
        raise UserError(f"column {column!r} has a non-finite value {datafile.excerpt(text)} "
                        f"at line {line} of {label!r}")
    if abs(value) > MAX_ABS_VALUE:
        raise UserError(f"column {column!r} has {datafile.excerpt(text)} at line {line} of "
                        f"{label!r}: values "
                        f"beyond {MAX_ABS_VALUE:g} in size overflow the scaler's and the "
                        f"metrics' sums of squares; rescale the column (e.g. to other units)")
    return value


def _number_hint(text: str) -> str:
    """What to do about a cell that float does not read, when it is a number written
    another way; "" for other text."""
    # a comma inside a number (47,73 or 1,234) is a decimal comma or a thousands
    # separator, of which float reads neither: say how to write it
    if _number_with_comma(text):
        return (" (write numbers with a decimal point and no thousands separator, such "
                "as 1234.5)")
    # a quote after a blank ('1, "2"') opens no quoted field in CSV: the quotes stay
    if len(text) > 1 and text[0] == text[-1] == '"' and _number(text[1:-1]):
        return " (a blank after a comma keeps the quotes in the value: remove the blanks)"
    # a spreadsheet's error value (#DIV/0!, #VALUE!, #REF!, #NAME?, #NUM!, #NULL!)
    if re.fullmatch(r"#[A-Z/0]+[!?]", text.upper()):
        return (" (a spreadsheet's error value: fix its formula, or leave the cell empty "
                "to have it filled)")
    # a unit written into the cell (a spreadsheet's percent or currency format)
    if _number(text.strip("%$€£¥ ")) and text != text.strip("%$€£¥ "):
        return " (write the bare number, without a % or currency sign)"
    return ""


def _number(text: str) -> bool:
    """Whether float reads ``text``."""
    try:
        float(text)
    except ValueError:
        return False
    return True


def _number_with_comma(text: str) -> bool:
    """Whether ``text`` is a signed run of digits, commas and points holding a comma (a
    decimal comma or thousands separators, in either convention)."""
    return "," in text and re.fullmatch(r"[+-]?\d[\d.,]*", text) is not None


def check_values(series: Series, fill: bool, constant_ok: bool = False) -> None:
    """Reject columns without values, constant columns (unless ``constant_ok``: a new
    file read with a trained run's scaler and MASE scale, whose recent values may well
    hold still) and (with fill off) any gap."""
    observed = series.observed
    for c, name in enumerate(series.columns):
        column = series.values[observed[:, c], c]
        if column.size == 0:
            raise UserError(f"column {name!r} of {series.label!r} has no values")
        if not constant_ok and column.size > 1 and np.all(column == column[0]):
            raise UserError(f"column {name!r} of {series.label!r} is constant "
                            f"(every value is {column[0]:g}): nothing to forecast")
        missing = np.flatnonzero(~observed[:, c])
        if missing.size and not fill:
            raise UserError(f"column {name!r} of {series.label!r} has {missing.size} missing "
                            f"values (first at line {int(series.lines[missing[0]])}); "
                            f"drop --no-fill to interpolate them")


def check_splits(series: Series, ranges: dict, rows: str = "split") -> None:
    """Reject a split ({name: (start, end) rows}) in which a column has no observed value:
    its windows would have no actual value to score (their targets are gap fills).
    ``rows`` says what the ranges are in the message: the splits, or the rows their
    windows forecast when those are fewer (a training window's targets start after its
    inputs)."""
    observed = series.observed
    for split, (start, end) in ranges.items():
        for c, name in enumerate(series.columns):
            if end > start and not observed[start:end, c].any():
                raise UserError(f"column {name!r} of {series.label!r} has no value in the "
                                f"{split} {rows} (lines {int(series.lines[start])}-"
                                f"{int(series.lines[end - 1])}): nothing to score there")


def digest(series: Series) -> str:
    """SHA-256 of the values (NaN where missing) and times: whether a file still holds
    the series a run was trained on."""
    h = hashlib.sha256(np.ascontiguousarray(series.values, dtype=np.float64).tobytes())
    if series.times is not None:
        h.update(np.ascontiguousarray(series.times).tobytes())
    return h.hexdigest()


def time_positions(series: Series) -> np.ndarray:
    """(N,) float64 positions on the time axis: the times when given, else row numbers."""
    return positions(series.times, series.values.shape[0])


def positions(times: np.ndarray | None, n: int) -> np.ndarray:
    """(n,) float64 positions on the time axis of ``times`` (float64 or datetime64), or
    row numbers 0..n-1 without them."""
    if times is None:
        return np.arange(n, dtype=np.float64)
    if np.issubdtype(times.dtype, np.datetime64):
        return times.astype(np.int64).astype(np.float64)
    return times.astype(np.float64)


def fill_gaps(series: Series, segment_ends: list[int]) -> np.ndarray:
    """Linear interpolation in time of the missing values, split by split.

    Rows are cut into consecutive segments ending at ``segment_ends`` (the last one is N).
    A gap inside a segment is interpolated from observed values up to that segment's end
    only, so a value is never filled from a later split (no leakage from validation or test
    into training); a gap at a segment's end holds the last value seen.
    Returns (N, C) float64 without NaN.
    """
    values = series.values.copy()  # (N, C)
    observed = series.observed  # (N, C)
    positions = time_positions(series)  # (N,)
    start = 0
    for end in segment_ends:
        for c, name in enumerate(series.columns):
            gaps = np.flatnonzero(~observed[start:end, c]) + start
            if gaps.size == 0:
                continue
            known = np.flatnonzero(observed[:end, c])
            if known.size == 0:
                raise UserError(f"column {name!r} of {series.label!r} has no values up to "
                                f"line {int(series.lines[end - 1])}: nothing to fill gaps from")
            values[gaps, c] = np.interp(positions[gaps], positions[known], values[known, c])
        start = end
    return values
