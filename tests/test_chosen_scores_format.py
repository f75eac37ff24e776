"""eval's "chosen on validation: ... (valid loss S) over ..." line prints each candidate's
score as the evaluation lines and the training summary print figures
(figures.format_value): a huge validation loss (a held-out outlier) in exponent form, not
as sixty digits, and a loss below 1e-4 not as 0.0000 or 0.0001 for every candidate."""
import json
import math

from helpers import invoke, ok, write_csv

from recurrent.figures import format_value


def _chosen_line(run):
    return next(line for line in ok(invoke("eval", run)).splitlines()
                if line.startswith("chosen on validation: "))


def _scores(run):
    return json.loads((run / "config.json").read_text())["chose"]["scores"]


def test_huge_validation_losses_print_in_exponent_form(tmp_path):
    data = write_csv(tmp_path / "outlier.csv", ("time", "v"),
                     [[i, 1e30 if i == 250 else round(math.sin(i / 5), 6)]
                      for i in range(300)])
    run = tmp_path / "run"
    ok(invoke("train", "forecast", "--data", data, "--steps", 2, "--hidden", 4,
              "--threads", 1, "--quiet", "--no-plot", "--out", run))
    line = _chosen_line(run)
    scores = _scores(run)
    assert min(scores) > 1e9
    for score in scores:
        assert f"(valid loss {format_value(score)})" in line, line
    assert len(line) < 400, line


def test_small_validation_losses_keep_their_digits(tmp_path):
    data = write_csv(tmp_path / "smooth.csv", ("time", "v"),
                     [[i, round(math.sin(i / 5), 6)] for i in range(300)])
    run = tmp_path / "run"
    ok(invoke("train", "forecast", "--data", data, "--steps", 5, "--hidden", 8,
              "--threads", 1, "--quiet", "--no-plot", "--out", run))
    line = _chosen_line(run)
    scores = _scores(run)
    assert min(scores) < 1e-4  # the precondition: a loss .4f would print as 0.0000/0.0001
    for score in scores:
        assert f"(valid loss {format_value(score)})" in line, line
