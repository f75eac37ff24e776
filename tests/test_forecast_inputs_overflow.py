"""eval/predict --data (and predict --stream) of a forecast run with a value far outside
the training range (a glitch such as 1e40, finite and read fine) overflowed the model's
float32 inputs once scaled with the run's scaler: a numpy RuntimeWarning, then
"internal error (ValueError: x: contains NaN or infinity)"; in --stream the internal
error ended the whole stream instead of answering that line with {"error": ...}."""
import json
import math

import pytest
from click.testing import CliRunner
from helpers import invoke, ok, one_line_error, write_csv

from recurrent.cli import cli


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("fc")
    data = write_csv(root / "fc.csv", ("t", "value"),
                     [[i, round(math.sin(i / 5) * 10 + i * 0.1, 3)] for i in range(120)])
    path = root / "run"
    ok(invoke("train", "forecast", "--data", data, "--time-column", "t", "--window", 8,
              "--inputs", "level", "--model", "rnn", "--steps", 2, "--hidden", 4,
              "--threads", 1, "--quiet", "--no-plot", "--out", path))
    return path


@pytest.fixture
def glitch(tmp_path):
    return write_csv(tmp_path / "glitch.csv", ("t", "value"),
                     [[i, 1e40 if i == 115 else round(math.sin(i / 5) * 10, 3)]
                      for i in range(120)])


@pytest.mark.parametrize("command", ["eval", "predict"])
def test_data_overflowing_the_models_inputs_is_one_clear_line(run, glitch, command):
    result = invoke(command, run, "--data", glitch)
    one_line_error(result, "far outside the range the run was trained on")
    assert "internal error" not in result.stderr


def test_the_stream_answers_that_line_with_an_error_and_goes_on(run):
    result = CliRunner().invoke(cli, ["predict", str(run), "--stream"], input="1e40\n3.5\n")
    answers = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(answers) == 2, result.stdout + result.stderr
    assert "far outside" in answers[0]["error"]
    assert "forecast" in answers[1]
    assert result.exit_code == 1


def test_a_glitch_read_only_by_the_seasonal_inputs_is_one_clear_line(tmp_path):
    """With seasonal inputs the model also reads y(s) - y(s-m), one season before the
    window: a glitch there (not in the window itself) overflowed those columns alone."""
    def rows(glitch_at=None):
        return [[i, 1e40 if i == glitch_at else
                 round(20 + 5 * math.sin(2 * math.pi * i / 12) + 0.05 * i, 3)]
                for i in range(240)]
    data = write_csv(tmp_path / "seas.csv", ("t", "value"), rows())
    run = tmp_path / "run"
    ok(invoke("train", "forecast", "--data", data, "--time-column", "t", "--season", 12,
              "--window", 8, "--model", "rnn", "--inputs", "level", "--steps", 2,
              "--hidden", 4, "--threads", 1, "--quiet", "--no-plot", "--out", run))
    with open(run / "config.json", encoding="utf-8") as f:
        assert json.load(f)["task_state"].get("seasonal_inputs")
    # the last origin's window is rows 232-239; its seasonal lags reach back to row 220
    glitch = write_csv(tmp_path / "glitch.csv", ("t", "value"), rows(glitch_at=225))
    result = invoke("predict", run, "--data", glitch)
    one_line_error(result, "far outside the range the run was trained on")
    assert "internal error" not in result.stderr
