"""What a third-party cell's backward or loss returns, checked where training reads it,
and what `recurrent export` says about a plugin's cell. A backward returning the single
state's gradient bare (dh instead of (dh,), as docs/plugins-native.md warns) or a dx of the
wrong shape or dx alone, a loss value that is not a scalar or a third value after the
gradient, a loss of the other target kind than the
task's and a loss that is NaN before any update are each one line naming the plugin's
object; `--format onnx` of a run whose cell has no ONNX operator refuses the cell before
it looks for the onnx package."""
import sys

import numpy as np
import pytest
from helpers import invoke, ok, one_line_error, registered_plugin, tiny_text, train_tiny

from recurrent import hookimpl
from recurrent.errors import UserError


class _GruLike:
    """The registered gru cell under another name, with a backward that breaks the
    protocol as ``mode`` says ("" keeps it right)."""

    def __init__(self, mode):
        # the built-in object itself: get_cell here would rebuild the registry while it
        # is being built
        from recurrent_plugins.cells import BUILTIN_CELLS
        self._base = next(cell for cell in BUILTIN_CELLS if cell.name == "gru")
        self.mode = mode
        self.name = f"protocol_{mode or 'gru'}"

    # its backward takes no precision keyword: fp32 only (the gru's own lists bf16)
    precisions = ("fp32",)

    def __getattr__(self, name):  # everything but backward: the gru's
        if name in ("backward", "_base") or name.startswith("__"):
            raise AttributeError(name)
        return getattr(self._base, name)

    def backward(self, d_out, d_final_states, cache, grads, num_threads):
        dx, d_states = self._base.backward(d_out, d_final_states, cache, grads, num_threads)
        if self.mode == "bare":
            return dx, d_states[0]
        if self.mode == "dx":
            return dx[:, :, :-1], d_states
        if self.mode == "single":
            return dx
        return dx, d_states


class _VectorLoss:
    """A class loss returning one value per row instead of their mean."""
    name = "protocol_vector"
    target_kind = "class"

    def value_and_grad(self, outputs, targets, mask=None):
        return np.ones(outputs.shape[:-1]), np.zeros_like(outputs)


class _TripleLoss:
    """A class loss returning a third value after the value and the gradient."""
    name = "protocol_triple"
    target_kind = "class"

    def value_and_grad(self, outputs, targets, mask=None):
        return 1.0, np.zeros_like(outputs), None


class _NanLoss:
    """A class loss whose value is NaN whatever the outputs."""
    name = "protocol_nan"
    target_kind = "class"

    def value_and_grad(self, outputs, targets, mask=None):
        return float("nan"), np.zeros_like(outputs)


class _Plugin:
    @hookimpl
    def register_cells(self, register):
        for mode in ("", "bare", "dx", "single"):
            register(_GruLike(mode))

    @hookimpl
    def register_losses(self, register):
        register(_VectorLoss())
        register(_TripleLoss())
        register(_NanLoss())


@pytest.fixture
def protocol_plugin():
    with registered_plugin(_Plugin(), "protocol-results"):
        yield


@pytest.mark.parametrize("mode, fragment", [
    ("bare", "returned ndarray initial-state gradients, expected 1 (h) in a tuple"),
    ("dx", "returned a dx of shape (16, 32, 3), expected (16, 32, 4)"),
    ("single", "returned ndarray from backward(), expected (dx, d_states)")])
def test_a_backward_breaking_the_protocol_at_train_time_is_named(protocol_plugin, tmp_path,
                                                                  mode, fragment):
    result = train_tiny(tiny_text(tmp_path), tmp_path / "run", "--cell", f"protocol_{mode}")
    one_line_error(result, f"cell 'protocol_{mode}'", fragment,
                   f"recurrent plugins check protocol_{mode}")
    assert "internal error" not in result.stderr


def test_the_layer_api_refuses_a_bare_state_gradient(protocol_plugin):
    from recurrent.layers import Recurrent
    layer = Recurrent("protocol_bare", input_size=3, hidden_size=4)
    out, _ = layer(np.zeros((5, 2, 3), np.float32), need_grad=True)
    with pytest.raises(UserError, match="initial-state gradients, expected 1"):
        layer.backward(np.ones_like(out))


def test_a_loss_returning_values_per_row_is_named(protocol_plugin, tmp_path):
    result = train_tiny(tiny_text(tmp_path), tmp_path / "run", "--loss", "protocol_vector")
    one_line_error(result, "loss 'protocol_vector' returned a value of type ndarray and "
                           "shape (16, 32), expected a float",
                   "recurrent plugins check protocol_vector")
    assert "internal error" not in result.stderr


def test_a_loss_returning_three_values_is_named_before_the_run_is_made(protocol_plugin,
                                                                      tmp_path):
    result = train_tiny(tiny_text(tmp_path), tmp_path / "run", "--loss", "protocol_triple")
    one_line_error(result, "loss 'protocol_triple' returned 3 values, expected (value, "
                           "gradient)", "recurrent plugins check protocol_triple")
    assert not (tmp_path / "run").exists()


def test_onnx_refuses_a_plugin_cell_before_asking_for_onnx(protocol_plugin, tmp_path,
                                                            monkeypatch):
    run = tmp_path / "run"
    ok(train_tiny(tiny_text(tmp_path), run, "--cell", "protocol_gru"))
    monkeypatch.setitem(sys.modules, "onnx", None)  # the onnx extra not installed
    monkeypatch.delitem(sys.modules, "recurrent.export.onnx", raising=False)
    result = invoke("export", run, "--format", "onnx", "--out", tmp_path / "model.onnx")
    one_line_error(result, "cell 'protocol_gru' has no ONNX equivalent",
                   "--format safetensors")


def test_a_loss_declaring_class_targets_is_refused_on_real_valued_targets(protocol_plugin,
                                                                          tmp_path):
    """target_kind is read before the loss runs: a plugin's class loss on forecast's real
    values is the user's choice refused in one line, before the run directory exists,
    not the plugin's failure on targets it never checks."""
    run = tmp_path / "run"
    result = invoke("train", "forecast", "--model", "rnn", "--loss", "protocol_vector",
                    "--steps", 1, "--hidden", 4, "--threads", 1, "--out", run, "--quiet")
    one_line_error(result, "--loss protocol_vector does not fit task 'forecast' (its default "
                           "is mse): it takes class ids, the task's targets are values of the "
                           "outputs' shape")
    assert not run.exists()


def test_a_loss_nan_before_any_update_does_not_blame_the_learning_rate(protocol_plugin,
                                                                       tmp_path):
    result = train_tiny(tiny_text(tmp_path), tmp_path / "run", "--loss", "protocol_nan")
    one_line_error(result, "training stopped at step 1: loss is nan (before any update, so "
                           "not the learning rate's doing",
                   "`recurrent plugins check protocol_nan`")
    assert "--lr" not in result.stderr
