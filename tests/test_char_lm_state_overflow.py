"""A char-lm model whose recurrent state overflows (an unbounded cell, rnn_relu, with
weights a high learning rate grew) is a model whose figures are not numbers: evaluate()
carries the state from one chunk of the validation text to the next, and a state that
is no longer finite ends the split's figures as NaN, so training stops with its one-line
divergence error, without numpy's overflow warnings and without an internal error. The
error says what the checkpoint left is for: resuming repeats the same steps."""
import warnings

from helpers import invoke, one_line_error


def test_training_whose_validation_state_overflows_stops_as_diverged(tmp_path):
    text = tmp_path / "text.txt"
    # a validation split longer than one evaluation chunk per stream
    text.write_text("the quick brown fox jumps over the lazy dog.\n" * 1000,
                    encoding="utf-8")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = invoke("train", "char-lm", "--data", text, "--cell", "rnn_relu",
                        "--steps", 6,
                        "--hidden", 8, "--seq-len", 16, "--batch-size", 4, "--lr", 30,
                        "--optimizer", "sgd", "--clip-norm", 0, "--eval-every", 1,
                        "--threads", 1, "--quiet", "--no-plot", "--out", tmp_path / "run")
    line = one_line_error(result, "training stopped after step ",
                          "the validation loss is nan", "try a lower --lr",
                          "--resume would repeat these steps bit for bit")
    assert "internal error" not in result.stderr
    # nor numpy's overflow warnings, printed before that line
    assert [str(w.message) for w in caught] == []
    again = invoke("train", "--resume", tmp_path / "run")
    assert one_line_error(again, "training stopped after step ") == line
