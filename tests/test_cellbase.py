"""recurrent.cellbase: the parameter layout and default init the built-in, reference and
plugin cells share."""
import numpy as np

from recurrent.cellbase import TorchLayoutCell, torch_default_init
from recurrent.plugins import get_cell
from recurrent.reference import get_reference_cell


def test_shapes_follow_torch_layout_in_flat_buffer_order():
    class ThreeGates(TorchLayoutCell):
        num_gates = 3

    shapes = ThreeGates().param_shapes(input_size=5, hidden_size=4)
    assert list(shapes.items()) == [("weight_ih", (12, 5)), ("weight_hh", (12, 4)),
                                    ("bias_ih", (12,)), ("bias_hh", (12,))]
    for name in ("rnn_tanh", "lstm", "gru"):  # compiled and reference cells agree
        assert get_cell(name).param_shapes(5, 4) == get_reference_cell(name).param_shapes(5, 4)


def test_default_init_is_uniform_within_one_over_sqrt_hidden():
    params = {"weight_hh": np.zeros((64, 16)), "peephole": np.zeros(16)}
    torch_default_init(params, 16, np.random.default_rng(0))
    for array in params.values():  # every kind, extra ones too
        assert np.abs(array).max() <= 0.25 and np.all(array != 0)
    big = params["weight_hh"]  # 1024 draws: spans the interval, centred
    assert np.abs(big).max() > 0.24 and abs(big.mean()) < 0.02
