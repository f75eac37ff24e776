"""A third-party cell whose forward breaks the Cell protocol at train time. Returning fewer
final states than its state_names was accepted silently: the layer's final state stayed
np.empty memory, carried into the next batch, and training "succeeded" (exit 0) with a
loss like 2e34. Outputs of the wrong shape failed as an "internal error" about a numpy
matmul. Both are now one line naming the cell, as are outputs of another dtype than the
inputs' and an infer() returning forward()'s three values."""
import numpy as np
import pytest
from helpers import one_line_error, registered_plugin, tiny_text, train_tiny

from recurrent import hookimpl


class _Broken:
    """The registered gru cell, with a forward that breaks the protocol as ``mode`` says."""

    def __init__(self, mode):
        # the built-in object itself: get_cell here would rebuild the registry while it
        # is being built
        from recurrent_plugins.cells import BUILTIN_CELLS
        self._base = next(cell for cell in BUILTIN_CELLS if cell.name == "gru")
        self.mode = mode
        self.name = f"broken_{mode}"

    def __getattr__(self, name):  # everything but forward and infer: the gru's
        if name == "infer" and self.mode == "infer":  # forward's triple
            return self.forward
        if name in ("forward", "infer", "_base") or name.startswith("__"):
            raise AttributeError(name)
        return getattr(self._base, name)

    def forward(self, x, states, params, lengths, num_threads, **extra):
        out, finals, cache = self._base.forward(x, states, params, lengths, num_threads,
                                                **extra)
        if self.mode == "states":
            return out, finals[:0], cache
        if self.mode == "float64":
            return out.astype(np.float64), finals, cache
        if self.mode == "infer":
            return out, finals, cache
        return out[:, :, :-1], finals, cache


MODES = ("states", "outputs", "float64", "infer")


class _Plugin:
    @hookimpl
    def register_cells(self, register):
        for mode in MODES:
            register(_Broken(mode))


@pytest.fixture
def broken_cells():
    with registered_plugin(_Plugin(), "broken-cells"):
        yield


@pytest.fixture
def text(tmp_path):
    return tiny_text(tmp_path)


@pytest.mark.parametrize("mode, fragment", [
    ("states", "0 final states, expected 1 (h)"),
    ("outputs", "outputs of shape"),
    ("float64", "returned outputs of dtype float64, expected float32 (the inputs' dtype)"),
    ("infer", "returned 3 values from infer(), expected (out, final_states)")])
def test_a_cell_breaking_the_protocol_at_train_time_is_named(broken_cells, text, tmp_path,
                                                              mode, fragment):
    result = train_tiny(text, tmp_path / "run", "--cell", f"broken_{mode}")
    one_line_error(result, f"cell 'broken_{mode}'", fragment, "recurrent plugins check")
    assert "internal error" not in result.stderr


def test_the_layer_api_refuses_it_too(broken_cells):
    from recurrent.errors import UserError
    from recurrent.layers import Recurrent
    layer = Recurrent("broken_states", input_size=3, hidden_size=4)
    with pytest.raises(UserError, match="0 final states"):
        layer(np.zeros((5, 2, 3), np.float32), need_grad=True)


class _Shapes:
    """The registered gru cell under another name, with a param_shapes that breaks the
    protocol as ``mode`` says: (kind, shape) pairs instead of a dict, or shapes of floats."""

    def __init__(self, mode):
        from recurrent_plugins.cells import BUILTIN_CELLS
        self._base = next(cell for cell in BUILTIN_CELLS if cell.name == "gru")
        self.mode = mode
        self.name = f"shapes_{mode}"

    def __getattr__(self, name):  # everything but param_shapes: the gru's
        if name == "_base" or name.startswith("__"):
            raise AttributeError(name)
        return getattr(self._base, name)

    def param_shapes(self, input_size, hidden_size):
        shapes = self._base.param_shapes(input_size, hidden_size)
        if self.mode == "pairs":
            return list(shapes.items())
        return {kind: tuple(float(n) for n in shape) for kind, shape in shapes.items()}


class _ShapesPlugin:
    @hookimpl
    def register_cells(self, register):
        for mode in ("pairs", "floats"):
            register(_Shapes(mode))


@pytest.mark.parametrize("mode, fragment", [
    ("pairs", "returned list from param_shapes(), expected a dict of {kind: shape}"),
    ("floats", "of 'weight_ih' from param_shapes(), expected a tuple of positive whole "
               "numbers")])
def test_a_cell_whose_param_shapes_break_the_protocol_is_named(text, tmp_path, mode,
                                                               fragment):
    """(kind, shape) pairs, or shapes of floats (which int() would truncate unseen), are
    one line naming the cell from training, the layer API and the conformance kit."""
    from recurrent.conformance import check_cell
    from recurrent.errors import UserError
    from recurrent.layers import Recurrent
    with registered_plugin(_ShapesPlugin(), "shapes-cells"):
        result = train_tiny(text, tmp_path / "run", "--cell", f"shapes_{mode}")
        with pytest.raises(UserError, match="from param_shapes"):
            Recurrent(f"shapes_{mode}", input_size=3, hidden_size=4)
        failed = [r for r in check_cell(_Shapes(mode)) if not r.passed]
    one_line_error(result, f"cell 'shapes_{mode}'", fragment, "recurrent plugins check")
    assert not (tmp_path / "run").exists()
    assert [r.name for r in failed] == ["parameters"]
    assert "from param_shapes()" in failed[0].detail
