"""--forget-bias 1e308 passed the finite check, became inf in the float32 bias (a numpy
RuntimeWarning line on stderr), and the run failed at step 1 blaming the update ("the
update made the parameters non-finite (try a lower --lr or --clip-norm)"), leaving a run
directory. Refused up front, in one line that names the option."""
import pytest
from helpers import invoke, ok, one_line_error


@pytest.fixture
def text(tmp_path):
    path = tmp_path / "text.txt"
    path.write_text("the quick brown fox jumps over the lazy dog.\n" * 60, encoding="utf-8")
    return path


def _train(text, out, bias):
    return invoke("train", "char-lm", "--data", text, "--steps", 2, "--hidden", 8,
                  "--embed-dim", 4, "--seq-len", 16, "--threads", 1, "--quiet", "--no-plot",
                  "--forget-bias", bias, "--out", out)


@pytest.mark.parametrize("bias", ["1e308", "-1e39"])
def test_a_forget_bias_beyond_float32_is_refused_before_the_run_starts(text, tmp_path, bias):
    result = _train(text, tmp_path / "run", bias)
    one_line_error(result, "--forget-bias", "float32")
    assert "RuntimeWarning" not in result.stderr
    assert not (tmp_path / "run").exists()


def test_an_ordinary_forget_bias_trains(text, tmp_path):
    ok(_train(text, tmp_path / "run", "1.0"))
