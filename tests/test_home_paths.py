"""Paths a shell leaves with their leading ~ (after an option's "=", `--out=~/runs/a`, or
in quotes): every path option reads it as the home directory, as char-lm's and seq2seq's
--data always did, rather than making a directory named "~" in the working directory or
not finding a file that is there."""
from __future__ import annotations

import json
import math

import pytest

from helpers import TINY_RUN, invoke, ok, tiny_text, write_csv


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A home directory of its own, and a working directory elsewhere."""
    home = tmp_path / "home"
    home.mkdir()
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(work)
    return home


def test_a_new_run_resumed_and_exported_under_the_home_directory(home):
    tiny_text(home)
    ok(invoke("train", "char-lm", "--data=~/text.txt", *TINY_RUN, "--no-plot",
              "--out=~/runs/a"))
    run = home / "runs" / "a"
    assert (run / "config.json").is_file() and (run / "best.npz").is_file()
    assert not (home.parent / "work" / "~").exists()
    ok(invoke("train", "--resume=~/runs/a", "--steps", 3, "--data=~/text.txt", "--quiet"))
    assert json.loads((run / "config.json").read_text())["config"]["steps"] == 3
    assert json.loads(ok(invoke("eval", "~/runs/a", "--json")))["checkpoint"] == "best"
    ok(invoke("export", run, "--format", "safetensors", "--out=~/a.safetensors"))
    assert (home / "a.safetensors").is_file()
    ok(invoke("export", "~/runs/a", "--format", "safetensors"))  # beside the run
    assert (home / "runs" / "a.safetensors").is_file()
    ok(invoke("import", home / "a.safetensors", "--out=~/imported"))
    assert (home / "imported" / "config.json").is_file()
    assert list((home.parent / "work").iterdir()) == []


def test_forecast_data_under_the_home_directory(home):
    values = [math.sin(i / 3) + i / 50 for i in range(120)]
    write_csv(home / "series.csv", ("t", "y"), [[i, repr(v)] for i, v in enumerate(values)])
    ok(invoke("train", "forecast", "--data=~/series.csv", "--time-column", "t",
              "--window", 8, "--inputs", "level", "--steps", 2, "--hidden", 8,
              "--threads", 1, "--quiet", "--no-plot", "--out", home / "fc"))
    plain = json.loads(ok(invoke("eval", home / "fc", "--json", "--data",
                                 home / "series.csv")))
    tilde = json.loads(ok(invoke("eval", home / "fc", "--json", "--data=~/series.csv")))
    assert tilde["metrics"] == plain["metrics"]


def test_a_run_saved_with_a_tilde_data_path_resumes_with_that_file_given_again(home):
    """A run whose config.json keeps --data as typed, "~/text.txt" (char-lm read it as
    the home directory's file before every path option did)."""
    text = tiny_text(home)
    run = home / "run"
    ok(invoke("train", "char-lm", "--data", text, *TINY_RUN, "--no-plot", "--out", run))
    info = json.loads((run / "config.json").read_text())
    info["config"]["data"] = "~/text.txt"
    (run / "config.json").write_text(json.dumps(info))
    ok(invoke("train", "--resume", run, "--steps", 3, "--data", text, "--quiet"))
    assert json.loads((run / "config.json").read_text())["config"]["steps"] == 3
