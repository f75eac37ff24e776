"""The share of clipped steps that a run prints (the summary line and each evaluation
line) never reads "0%" when some steps are clipped, nor "100%" when some are not."""
from __future__ import annotations

import pytest
from click.testing import CliRunner

import train_toys
from recurrent.checkpoint import RunDir
from recurrent.cli import cli
from recurrent.progress import share_text


@pytest.fixture(autouse=True)
def toys():
    with train_toys.registered():
        yield


def test_a_few_clipped_steps_are_not_printed_as_none(tmp_path):
    # toy-wave, 30 epochs of 7 steps: only the first step's gradient norm (0.518) is
    # above 0.5, so 1 step in 210 is clipped
    out = tmp_path / "run"
    result = CliRunner().invoke(cli, ["train", "toy-wave", "--out", str(out), "--threads",
                                      "1", "--epochs", "30", "--clip-norm", "0.5",
                                      "--log-every", "1", "--no-plot"])
    assert result.exit_code == 0, result.output
    records = RunDir(str(out)).read_metrics()
    train = [r for r in records if r["kind"] == "train"]
    clipped = sum(r["grad_norm"] > 0.5 for r in train)
    assert len(train) == 210 and 0 < clipped < 210 * 0.005  # rounds to 0%
    summary = result.output.strip().splitlines()[-1]
    assert "clipped <1% of steps" in summary, summary
    evals = [line for line in result.output.splitlines() if line.startswith("eval step")]
    assert evals and all("clipped 0%" not in line for line in evals)
    # the share counts every step so far, not the steps since the last evaluation
    # (which the train loss beside it covers): none of epoch 2's steps was clipped
    assert [r["step"] for r in train if r["grad_norm"] > 0.5] == [1]
    assert evals[1].endswith(f"clipped {share_text(1 / 14)} of steps so far)"), evals[1]


@pytest.mark.parametrize("fraction, text", [
    (0.0, "0%"), (1 / 400, "<1%"), (0.005, "<1%"), (0.12, "12%"), (0.995, ">99%"),
    (399 / 400, ">99%"), (1.0, "100%")])
def test_share_text(fraction, text):
    assert share_text(fraction) == text
