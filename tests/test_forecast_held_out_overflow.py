"""A forecast file whose validation or test rows hold a value that, scaled with the
training rows' scaler, overflows the model's float32 inputs (a glitch such as 1e40 among
values near 1) is refused by `train` in one line naming the value, its line and its split,
before any training and before the run directory is made, rather than at the first
evaluation, which left a half-made run that `--resume` stops on again."""
import math

import pytest
from helpers import invoke, ok, one_line_error, write_csv


def rows(glitch_at=None, value=1e40):
    return [[i, value if i == glitch_at else round(math.sin(i / 5), 6)] for i in range(300)]


@pytest.mark.parametrize("at, split", [(250, "validation"), (290, "test")])
def test_a_held_out_value_beyond_the_inputs_range_is_refused_before_training(
        tmp_path, at, split):
    data = write_csv(tmp_path / "glitch.csv", ("time", "v"), rows(at))
    out = tmp_path / "run"
    result = invoke("train", "forecast", "--data", data, "--steps", 2, "--hidden", 4,
                    "--threads", 1, "--quiet", "--no-plot", "--out", out)
    one_line_error(result, "column 'v'", "1e+40", f"line {at + 2}", f"a {split} row",
                   "float32")
    assert not out.exists()


def test_a_held_out_value_within_the_inputs_range_still_trains(tmp_path):
    """A large held-out value the inputs hold (1e30 scaled is about 1e30) trains as before:
    only values the model could not read at all are refused."""
    data = write_csv(tmp_path / "big.csv", ("time", "v"), rows(250, 1e30))
    ok(invoke("train", "forecast", "--data", data, "--window", 8, "--inputs", "level",
              "--model", "rnn", "--steps", 2, "--hidden", 4, "--threads", 1, "--quiet",
              "--no-plot", "--out", tmp_path / "run"))
