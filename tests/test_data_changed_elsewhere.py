"""A run trained on a data file given by a relative path, opened from another directory
after the file changed: the refusal names the file the run reads (its absolute path), not
the path as typed, which from there names another file of that name (that `--data`
would then evaluate) or none."""
from __future__ import annotations

import math

from helpers import TINY_RUN, invoke, ok, one_line_error, tiny_text, write_csv


def _two_directories(tmp_path, monkeypatch):
    """(where the run is trained, another working directory)."""
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    monkeypatch.chdir(first)
    return first, second


def test_forecast_names_the_changed_file_it_reads(tmp_path, monkeypatch):
    first, second = _two_directories(tmp_path, monkeypatch)
    rows = [[i, repr(math.sin(i / 3) + i / 50)] for i in range(120)]
    write_csv(first / "series.csv", ("t", "y"), rows)
    ok(invoke("train", "forecast", "--data", "series.csv", "--time-column", "t",
              "--window", 8, "--inputs", "level", "--steps", 2, "--hidden", 8,
              "--threads", 1, "--quiet", "--no-plot", "--out", first / "run"))
    write_csv(first / "series.csv", ("t", "y"), [[t, repr(float(y) + 1)] for t, y in rows])
    write_csv(second / "series.csv", ("t", "y"), rows)  # another file of that name
    monkeypatch.chdir(second)
    one_line_error(invoke("eval", first / "run"),
                   f"the training data {str(first / 'series.csv')!r} changed since training")


def test_char_lm_names_the_changed_file_it_reads(tmp_path, monkeypatch):
    first, second = _two_directories(tmp_path, monkeypatch)
    text = tiny_text(first)
    ok(invoke("train", "char-lm", "--data", text.name, *TINY_RUN, "--no-plot",
              "--out", first / "run"))
    text.write_text(text.read_text(encoding="utf-8").upper(), encoding="utf-8")
    monkeypatch.chdir(second)
    one_line_error(invoke("eval", first / "run"), f"{text} changed since this run was trained")


def test_seq2seq_names_the_changed_file_it_reads(tmp_path, monkeypatch):
    first, second = _two_directories(tmp_path, monkeypatch)
    pairs = first / "pairs.tsv"
    words = ["cat", "dog", "bird", "fish", "horse", "mouse", "sheep", "goat", "lion", "wolf"]
    pairs.write_text("".join(f"{w}{i}\t{w[::-1]}{i}\n" for i in range(12) for w in words),
                     encoding="utf-8")
    ok(invoke("train", "seq2seq", "--data", pairs.name, "--steps", 2, "--hidden", 8,
              "--threads", 1, "--quiet", "--no-plot", "--out", first / "run"))
    pairs.write_text(pairs.read_text(encoding="utf-8").upper(), encoding="utf-8")
    monkeypatch.chdir(second)
    one_line_error(invoke("eval", first / "run"), f"{pairs} changed since this run was trained")
