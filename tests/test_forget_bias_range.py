"""--forget-bias 1e308 passed the finite check, became inf in the float32 bias (a numpy
RuntimeWarning line on stderr), and the run failed at step 1 blaming the update ("the
update made the parameters non-finite (try a lower --lr or --clip-norm)"), leaving a run
directory. Refused up front, in one line that names the option."""
import pytest
from helpers import invoke, ok, one_line_error, tiny_text, train_tiny


@pytest.fixture
def text(tmp_path):
    return tiny_text(tmp_path)


def _train(text, out, bias):
    return train_tiny(text, out, "--forget-bias", bias)


@pytest.mark.parametrize("bias", ["1e308", "-1e39"])
def test_a_forget_bias_beyond_float32_is_refused_before_the_run_starts(text, tmp_path, bias):
    result = _train(text, tmp_path / "run", bias)
    one_line_error(result, "--forget-bias", "float32")
    assert "RuntimeWarning" not in result.stderr
    assert not (tmp_path / "run").exists()


def test_an_ordinary_forget_bias_trains(text, tmp_path):
    ok(_train(text, tmp_path / "run", "1.0"))


def test_eval_reads_a_run_whose_saved_forget_bias_is_beyond_float32(text, tmp_path):
    """The forget-gate bias is only an initial value: eval and predict replace every
    parameter with the checkpoint's. A config.json edited to hold 1e39 (which a resume
    refuses) still evaluates, to the same figures, without a numpy overflow warning."""
    import json
    import warnings
    run = tmp_path / "run"
    ok(_train(text, run, "1.0"))
    before = ok(invoke("eval", run, "--json"))
    info = json.loads((run / "config.json").read_text())
    info["config"]["forget_bias"] = 1e39
    (run / "config.json").write_text(json.dumps(info))
    with warnings.catch_warnings():  # numpy's overflow warning, raised
        warnings.simplefilter("error", RuntimeWarning)
        result = invoke("eval", run, "--json")
    assert ok(result) == before
