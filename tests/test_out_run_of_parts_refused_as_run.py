"""`train --out DIR` where DIR holds an ensemble or a run of candidates (one made before,
or by another `train --out DIR` started at the same moment) is refused as that run:
the one line names DIR and `--resume DIR`, not one of its parts, whose resume alone would
train that part only."""
from __future__ import annotations

import os

from helpers import invoke, ok, one_line_error, tiny_text, train_tiny

SMALL_FORECAST = ["--hidden", "4", "--steps", "2", "--threads", "1", "--quiet", "--no-plot"]


def test_an_ensemble_there_is_refused_as_the_ensemble(tmp_path):
    text = tiny_text(tmp_path)
    run = tmp_path / "ens"
    ok(train_tiny(text, run, "--ensemble", "2"))
    before = sorted(os.listdir(run / "member-0"))
    result = train_tiny(text, run, "--ensemble", "2")
    one_line_error(result, f"{run} already holds a run: continue it with --resume {run} ")
    assert "member-0" not in result.stderr, result.stderr
    assert sorted(os.listdir(run / "member-0")) == before


def test_a_run_of_candidates_there_is_refused_as_that_run(tmp_path):
    run = tmp_path / "chose"
    ok(invoke("train", "forecast", "--out", run, *SMALL_FORECAST))
    result = invoke("train", "forecast", "--out", run, *SMALL_FORECAST)
    one_line_error(result, f"{run} already holds a run: continue it with --resume {run} ")
    assert "candidate-0" not in result.stderr, result.stderr
