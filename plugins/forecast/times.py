"""Parsing a CSV time column: numbers, or dates and datetimes in one format per column.

Dimension legend: N rows.

A column is read as a whole, so that every row means the same thing:
- If every cell is a finite number, the times are those numbers (years, unix seconds, ...).
- Otherwise every cell must be a date in one and the same format (digits, letters and
  separators in the same places; the sign of a UTC offset may vary). dateutil does the
  parsing; a missing day means the first of the month, a missing year or month is refused.
- Dates written with the day and month first (01/02/2010) are read in one order for the
  whole column: a first number above 12 in any row means day/month/year, a second number
  above 12 means month/day/year, both is a mixed column. When no row decides it, the
  ``date_order`` argument ("dmy" or "mdy", the task's --date-order) must. Dates that start
  with the year are always year/month/day.
- Datetimes with a UTC offset are converted to UTC, their offsets kept beside them (to
  label forecasts in the file's local time); naive ones are kept as they are.
- A quarter (2010-Q1, Q1 2010) is read as its first day and an ISO week (2010-W01) as
  its Monday (or the weekday it writes, 2010-W01-3); forecasts after such rows are
  labelled in the file's notation (period_notation).
- Dates become datetime64 in the coarsest unit that holds every row exactly (days, minutes,
  seconds or microseconds), so day-level data is labelled with plain dates.

Every problem is a one-line UserError naming the column, the file, the line and the value.
"""
from __future__ import annotations

import datetime as dt
import re
import warnings

import numpy as np
from dateutil import parser as dateparser

from recurrent.checks import one_line
from recurrent.datafile import excerpt
from recurrent.errors import UserError

DATE_ORDERS = ("dmy", "mdy")
_ORDER_WORDS = {"dmy": "day/month/year", "mdy": "month/day/year"}

# Two defaults for fields a date leaves out: a field that differs between the two parses
# was not in the text.
_DEFAULT = dt.datetime(2000, 1, 1)
_OTHER_DEFAULT = dt.datetime(2001, 2, 2)
# What _parse raises for a text that is no date (_not_a_date says why).
_NOT_A_DATE = (ValueError, OverflowError, dateparser.UnknownTimezoneWarning)
# Longer cells are no date (the longest written forms, with a weekday and month name, a
# time to the microsecond and an offset, are about 60 characters).
MAX_DATE_CHARS = 100
_UNITS = (("D", 86_400_000_000), ("m", 60_000_000), ("s", 1_000_000), ("us", 1))
# A time of day as a cell of its own (17:24, 17:24:00.5, 5:00 PM): no date, the other
# half of one written in two columns.
TIME_OF_DAY = re.compile(r"\d{1,2}:\d\d(:\d\d(\.\d+)?)?(\s*[ap]\.?m\.?)?", re.I)


def parse_times(texts: list[tuple[int, str]], column: str, label: str,
                date_order: str | None = None, offsets: bool = False,
                saved_order: str | None = None, explain=None):
    """(times, the date order used or None) of a time column, and with ``offsets`` the
    rows' UTC offsets as a third item.

    texts: (file line, stripped cell text) per row. times: (N,) float64 numbers or
    datetime64, strictly increasing. The date order is "dmy"/"mdy" when the column's dates
    start with a day and a month (save it to read later files the same way), else None.
    The offsets: (N,) timedelta64, each row's UTC offset as written (times + offsets are
    the rows' local times), or None for numbers and dates written without one.
    ``saved_order``: the order a run's training dates were read in, used (and named as
    such when a row contradicts it) where ``date_order`` is not given.
    ``explain(i, j, repeat)``: for rows i < j whose times do not increase (``repeat``: j
    repeats i's time; else j follows i and goes back), what the other cells of the file
    say about it (the rest of the refusal), or None; the refusal's advice is then its own.
    """
    where = f"time column {column!r} of {label!r}"
    for line, text in texts:
        if text == "":
            raise UserError(f"time column {column!r} is empty at line {line} of {label!r}")
    numbers = [_number(text) for _, text in texts]
    for (line, text), number in zip(texts, numbers):
        if number is not None and not np.isfinite(number):
            raise UserError(f"{where} has {excerpt(text)} at line {line}: a time must be "
                            f"finite")
    if all(n is not None for n in numbers):
        times, order, zones = np.array(numbers, dtype=np.float64), None, None
    else:
        if any(n is not None for n in numbers):
            (l1, t1), (l2, t2) = (texts[next(i for i, n in enumerate(numbers) if n is None)],
                                  texts[next(i for i, n in enumerate(numbers) if n is not None)])
            # a cell that is no date either (a totals row's "Total") is named as such
            _check_date(where, l1, t1)
            raise UserError(f"{where} mixes dates and numbers: {excerpt(t1)} at line {l1}, "
                            f"{excerpt(t2)} at line {l2}")
        times, order, zones = _parse_dates(texts, where, date_order, saved_order)
    steps = np.diff(times)
    bad = np.flatnonzero(steps <= steps.dtype.type(0))
    if bad.size:
        later = int(bad[0]) + 1
        line, text = texts[later]
        refusal = f"time column {column!r} does not increase at line {line} of {label!r}"
        # the rows before it increase: the row whose time it repeats, if any, is found
        # by bisection among them
        same = int(np.searchsorted(times[:later], times[later]))
        repeat = times[same] == times[later]
        earlier = same if repeat else later - 1
        told = explain(earlier, later, bool(repeat)) if explain is not None else None
        if told is not None:
            raise UserError(f"{refusal}{told}")
        # A local clock without offsets goes back up to an hour when daylight saving
        # ends: sorting cannot fix that, the offsets that tell the two hours apart can.
        clock = (zones is None and times.dtype != np.dtype("datetime64[D]")
                 and np.issubdtype(times.dtype, np.datetime64)
                 and steps[bad[0]] >= -np.timedelta64(1, "h"))
        also = (", or, where the clock goes back for daylight saving, write each time "
                "with its UTC offset, such as 2010-10-31T02:00+01:00" if clock else "")
        if repeat:
            # a repeated time is a duplicated row, or the start of another series that
            # the file holds after (or among) this one's rows
            raise UserError(f"{refusal}: {excerpt(text)} again, as at line {texts[same][0]} "
                            f"(a file of several series needs a file per series; else "
                            f"remove duplicate times{also})")
        raise UserError(f"{refusal} (sort the file by time and remove duplicate times{also})")
    return (times, order, zones) if offsets else (times, order)


# Spreadsheet serial dates (days since 1899-12-30, as Excel and LibreOffice count, a
# fraction being the time of day) from 1950 to 2100: a column of such numbers is more
# likely dates saved without their date format than years, unix seconds or row numbers.
SERIAL_EPOCH = np.datetime64("1899-12-30", "D")
SERIAL_DAYS = (18_264, 73_051)


def serial_date_note(times: np.ndarray | None, column: str | None, label: str) -> str | None:
    """A one-line note for a time column of numbers that all read as dates: where
    spreadsheet serial dates of 1950-2100 fall, or dates written without separators
    (YYYYMMDD or YYYYMM: compact_dates). They are used as the numbers they are (no
    calendar features, no season from dates, forecasts labelled with numbers, so
    20100131 is followed by 20100132), which may not be what the user meant. None for
    other columns: a guess is no reason to refuse a column (a day count or Modified Julian
    Date is read right as numbers)."""
    if times is None or times.size == 0 or np.issubdtype(times.dtype, np.datetime64):
        return None
    low, high = float(times.min()), float(times.max())
    compact = compact_dates(times)
    if compact is not None:
        span = f"{low:.0f} to {high:.0f}"
        advice = (f"if they are dates written without separators ({low:.0f} is {compact}), "
                  f"write them as dates ({compact}) before saving the CSV")
    elif SERIAL_DAYS[0] <= low and high < SERIAL_DAYS[1]:
        span = f"{low:g} to {high:g}"
        first = SERIAL_EPOCH + np.timedelta64(int(low), "D")
        advice = (f"if they are spreadsheet serial dates ({low:g} is {first} in Excel), "
                  f"format the column as dates (2010-01-31) before saving the CSV")
    else:
        return None
    return (f"note: time column {column!r} of {label!r} holds numbers from {span}, used "
            f"as numbers (no calendar features, forecasts labelled with numbers); {advice}")


# The years a number written as a date without separators (YYYYMMDD, YYYYMM) may hold.
COMPACT_YEARS = (1700, 2200)


def compact_dates(times: np.ndarray) -> str | None:
    """The first of ``times`` written as a date (2010-01-31, or 2010-01 for months) when
    every one is a whole number that reads as a valid date without separators: all
    YYYYMMDD (20100131) or all YYYYMM (201001), years in COMPACT_YEARS; else None."""
    # YYYYMM of the first year to YYYYMMDD of the last, whole: the rest are no such
    # dates (and a huge number would not fit the int64 below)
    if not np.all((times >= COMPACT_YEARS[0] * 100) & (times < COMPACT_YEARS[1] * 10_000)
                  & (np.mod(times, 1) == 0)):
        return None
    whole = times.astype(np.int64)
    for digits, unit in ((8, "D"), (6, "M")):
        scale = 10 ** (digits - 4)
        years = whole // scale
        if not np.all((years >= COMPACT_YEARS[0]) & (years < COMPACT_YEARS[1])):
            continue
        months = whole // 10 ** (digits - 6) % 100
        if not np.all((months >= 1) & (months <= 12)):
            continue
        month = ((years - 1970) * 12 + months - 1).astype("datetime64[M]")
        if unit == "M":
            return str(month[np.argmin(whole)])
        days = whole % 100
        day = month.astype("datetime64[D]") + (days - 1)
        if np.all((days >= 1) & (day.astype("datetime64[M]") == month)):
            return str(day[np.argmin(whole)])
    return None


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _shape(text: str) -> str:
    """The format of a date: digit runs -> 0, letter runs -> a, blanks -> one space, the
    sign of a trailing UTC offset (after a time of day, a blank between them or not) -> +."""
    offset = re.search(r"\d\s*([+-])\d\d(:?\d\d)?$", text)
    if offset and ":" in text[:offset.start(1)]:
        text = text[:offset.start(1)] + "+" + text[offset.end(1):]
    text = re.sub(r"\d+", "0", text)
    text = re.sub(r"[^\W\d_]+", "a", text)
    return re.sub(r"\s+", " ", text)


def _parse_dates(texts, where: str, date_order: str | None, saved_order: str | None = None):
    first_line, first = texts[0]
    shape = _shape(first)
    for line, text in texts:
        if _shape(text) != shape:
            # the odd one out may be the first row (a comment or title line under the
            # header) as well as this one: name whichever is no date
            for odd_line, odd in ((first_line, first), (line, text)):
                _check_date(where, odd_line, odd)
            raise UserError(f"{where} mixes date formats: {excerpt(text)} at line {line} is "
                            f"not written like {excerpt(first)} at line {first_line} (use one "
                            f"format)")
    year_first = len(re.match(r"\D*(\d*)", first).group(1)) >= 3
    order = None
    if not year_first and re.match(r"\s*0[/.-]0[/.-]0", shape):
        order = _day_month_order(texts, where, date_order, saved_order)
    dayfirst = order == "dmy"
    try:
        missing = [name for name in ("year", "month")
                   if getattr(_parse(first, dayfirst, year_first, _DEFAULT), name)
                   != getattr(_parse(first, dayfirst, year_first, _OTHER_DEFAULT), name)]
    except _NOT_A_DATE as e:
        raise _not_a_date(where, first_line, first, e) from None
    if missing:
        alone = (f"; write each time with its date in one cell, such as 2010-01-31 {first}"
                 if TIME_OF_DAY.fullmatch(first) else "")
        raise UserError(f"{where} has {excerpt(first)} at line {first_line}: a date needs a "
                        f"year, a month and a day (no {' or '.join(missing)}{alone})")
    values = np.empty(len(texts), dtype=np.int64)  # (N,) microseconds since 1970, UTC
    zones = np.zeros(len(texts), dtype=np.int64)  # (N,) UTC offsets, microseconds
    aware = False
    epoch = dt.datetime(1970, 1, 1)
    for i, (line, text) in enumerate(texts):
        try:
            stamp = _parse(text, dayfirst, year_first, _DEFAULT)
        except _NOT_A_DATE as e:
            raise _not_a_date(where, line, text, e) from None
        if stamp.tzinfo is not None:
            aware = True
            zones[i] = stamp.utcoffset() // dt.timedelta(microseconds=1)
            stamp = stamp.astimezone(dt.timezone.utc).replace(tzinfo=None)
        values[i] = (stamp - epoch) // dt.timedelta(microseconds=1)
    unit, size = next((u, s) for u, s in _UNITS if not np.any(values % s))
    times = (values // size).astype(f"datetime64[{unit}]")
    if not aware:
        return times, order, None
    # a day is no unit of an offset: minutes (+01:00, Z) or finer
    unit, size = next((u, s) for u, s in _UNITS[1:] if not np.any(zones % s))
    return times, order, (zones // size).astype(f"timedelta64[{unit}]")


# Period notations dateutil does not read, as statistical offices and pandas write them:
# a quarter (2010-Q1, 2010Q1, 2010 Q1, Q1 2010) and an ISO 8601 week (2010-W01, 2010W01,
# with a weekday 2010-W01-3).
_QUARTER = re.compile(r"(\d{4})\s*[-/ ]?\s*Q([1-4])|Q([1-4])\s*[-/ ]?\s*(\d{4})", re.I)
_ISO_WEEK = re.compile(r"(\d{4})-?W(\d{2})(?:-?([1-7]))?", re.I)


def _period(text: str) -> dt.datetime | None:
    """The first day of a quarter, or the day of an ISO week (its Monday when no weekday
    is written), for a cell in those notations; None for any other text. ValueError for a
    week the year does not have (2010-W53)."""
    text = text.strip()
    quarter = _QUARTER.fullmatch(text)
    if quarter:
        year, q = int(quarter[1] or quarter[4]), int(quarter[2] or quarter[3])
        return dt.datetime(year, 3 * q - 2, 1)
    week = _ISO_WEEK.fullmatch(text)
    if week:
        day = dt.date.fromisocalendar(int(week[1]), int(week[2]), int(week[3] or 1))
        return dt.datetime(day.year, day.month, day.day)
    return None


def period_notation(text: str) -> str | None:
    """The notation of a quarter or ISO week cell as a str.format template over y (year),
    q (quarter), w (week) and d (weekday), its separators and letters as written
    ("{y}-Q{q}", "Q{q} {y}", "{y}W{w:02d}-{d}"), so that dates forecast after such rows are
    labelled as the file writes them; None for any other cell."""
    text = text.strip()
    quarter, week = _QUARTER.fullmatch(text), _ISO_WEEK.fullmatch(text)
    if quarter:
        fields = [(1, "{y}"), (2, "{q}")] if quarter[1] else [(3, "{q}"), (4, "{y}")]
        match = quarter
    elif week:
        fields = [(1, "{y}"), (2, "{w:02d}")] + ([(3, "{d}")] if week[3] else [])
        match = week
    else:
        return None
    template, at = "", 0
    for group, field in fields:
        template += text[at:match.start(group)].replace("{", "{{").replace("}", "}}") + field
        at = match.end(group)
    return template + text[at:].replace("{", "{{").replace("}", "}}")


def period_text(day: np.datetime64, notation: str) -> str:
    """A date in a period_notation: its quarter (of a quarter's first day) or ISO week."""
    date = day.astype("datetime64[D]").item()
    year, week, weekday = date.isocalendar()
    if "{q}" in notation:
        return notation.format(y=date.year, q=(date.month - 1) // 3 + 1)
    return notation.format(y=year, w=week, d=weekday)


def _parse(text: str, dayfirst: bool, yearfirst: bool, default: dt.datetime) -> dt.datetime:
    if len(text) > MAX_DATE_CHARS:  # dateutil's time grows faster than the text's length
        raise ValueError(f"{len(text)} characters, too long for a date")
    period = _period(text)
    if period is not None:
        return period
    with warnings.catch_warnings():
        # A zone name dateutil does not know would be dropped silently: make it an error.
        warnings.simplefilter("error", dateparser.UnknownTimezoneWarning)
        return dateparser.parse(text, dayfirst=dayfirst, yearfirst=yearfirst, default=default)


def calendar_date(text: str) -> bool:
    """Whether ``text`` is a date with at least its year and month written (2020-01-01,
    01/02/2010, 1949-01, Jan 1949, 2010-Q1): a cell of data, never a column name such as
    "date", "March" or "March 3", which name no year."""
    text = text.strip()
    if not re.search(r"\d", text):
        return False
    try:
        one = _parse(text, False, False, _DEFAULT)
        other = _parse(text, False, False, _OTHER_DEFAULT)
    except _NOT_A_DATE:
        return False
    return (one.year, one.month) == (other.year, other.month)


def _check_date(where: str, line: int, text: str) -> None:
    """_not_a_date's UserError when ``text`` (at ``line``) reads as no date at all."""
    try:
        _parse(text, False, False, _DEFAULT)
    except _NOT_A_DATE as e:
        raise _not_a_date(where, line, text, e) from None


def _not_a_date(where: str, line: int, text: str, exc: Exception) -> UserError:
    if isinstance(exc, dateparser.UnknownTimezoneWarning):
        reason = "unknown time zone name; write it as an offset such as +01:00"
    else:
        detail = one_line(exc).removesuffix(f": {text}")
        reason = f"neither a number nor a date ({detail})"
    return UserError(f"{where} has {excerpt(text)} at line {line}: {reason}")


def _day_month_order(texts, where: str, date_order: str | None,
                     saved_order: str | None = None) -> str:
    """"dmy" or "mdy" for a column of dates that start with two numbers below 32."""
    saved = date_order is None and saved_order is not None
    date_order = date_order or saved_order
    fields = [(line, text, [int(f) for f in re.findall(r"\d+", text)[:2]])
              for line, text in texts]
    day_first = next(((line, text) for line, text, (a, b) in fields if a > 12), None)
    month_first = next(((line, text) for line, text, (a, b) in fields if b > 12), None)
    if day_first and month_first:
        raise UserError(f"{where} mixes day/month orders: {day_first[1]!r} at line "
                        f"{day_first[0]} is day first, {month_first[1]!r} at line "
                        f"{month_first[0]} is month first")
    found = "dmy" if day_first else "mdy" if month_first else None
    if date_order is not None and found is not None and date_order != found:
        line, text = day_first or month_first
        # an order the run saved was not the user's option: say where it comes from and
        # how to read the file otherwise
        why = (f"the order of the run's training dates; write the dates year first "
               f"(2010-01-31), or read them with predict --date-order {found}" if saved
               else f"--date-order {date_order}")
        raise UserError(f"{where} has {excerpt(text)} at line {line}, which is not "
                        f"{_ORDER_WORDS[date_order]} ({why})")
    if date_order is None and found is None:
        raise UserError(f"{where} has dates such as {texts[0][1]!r} that read as day/month "
                        f"or month/day in every row: write them year first (2010-01-31), "
                        f"or say which with --date-order dmy or mdy (train, predict)")
    return date_order or found
