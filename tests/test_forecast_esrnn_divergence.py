"""A forecast run with the learned smoothing (--model esrnn, --es-train joint) whose
training diverges stops with the one-line divergence error alone: the smoothing's
coefficients, grown huge by the update, saturate its sigmoid, which numpy computed
with a RuntimeWarning (overflow in exp) that the command printed before the error."""
import warnings

from helpers import invoke, one_line_error


def test_a_diverging_esrnn_run_prints_only_its_error(tmp_path):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = invoke("train", "forecast", "--model", "esrnn", "--es-train", "joint",
                        "--window", 8, "--inputs", "level", "--steps", 10, "--hidden", 8,
                        "--lr", 1e30, "--optimizer", "sgd", "--clip-norm", 0,
                        "--threads", 1, "--quiet", "--no-plot", "--out", tmp_path / "run")
    one_line_error(result, "training stopped at step 2", "try a lower --lr")
    assert [str(w.message) for w in caught] == []
