"""A base for cells with PyTorch's parameter layout: public, for built-in and plugin cells.

A cell whose parameters are torch's four kinds (G = num_gates * H rows, gate blocks in the
cell's order, see recurrent/layout.py)

    weight_ih (G, I)   weight_hh (G, H)   bias_ih (G,)   bias_hh (G,)

inherits ``param_shapes`` and ``init_params`` of recurrent.protocols.Cell from
``TorchLayoutCell`` and sets ``num_gates``. Both the numpy reference cells and the compiled
built-in ones do. A cell with extra kinds (peepholes, layer-norm gains) can still call
``torch_default_init`` for its own ``init_params``, as ``LayerNormLSTMLayout`` (the
ln_lstm cell's parameters, shared by its reference and compiled versions) does.
"""
from __future__ import annotations

import numpy as np

from .layout import PARAM_KINDS


def torch_default_init(params, hidden_size, rng):
    """PyTorch's default for every recurrent parameter: U(-1/sqrt(H), 1/sqrt(H)), in place."""
    bound = 1.0 / np.sqrt(hidden_size)
    for array in params.values():
        array[...] = rng.uniform(-bound, bound, size=array.shape)


class TorchLayoutCell:
    """param_shapes and init_params of a cell with torch's four parameter kinds."""

    num_gates: int

    def param_shapes(self, input_size, hidden_size):
        G = self.num_gates * hidden_size
        shapes = {"weight_ih": (G, input_size), "weight_hh": (G, hidden_size),
                  "bias_ih": (G,), "bias_hh": (G,)}
        return {kind: shapes[kind] for kind in PARAM_KINDS}  # flat-buffer order

    def init_params(self, params, hidden_size, rng):
        torch_default_init(params, hidden_size, rng)


# Added inside the square root of every layer normalisation of ln_lstm (torch.nn.LayerNorm's
# default).
LN_EPS = 1e-5


class LayerNormLSTMLayout(TorchLayoutCell):
    """Parameters of the layer-normalised LSTM (ln_lstm): torch's four kinds, then

        ln_gain_ih (G,)   gains of LN(x W_ih^T), per gate block
        ln_gain_hh (G,)   gains of LN(h W_hh^T), per gate block
        ln_gain_c  (H,)   gain of LN(c_t) before the output tanh
        ln_bias_c  (H,)   shift of LN(c_t)

    The shifts of the two gate-side normalisations are bias_ih and bias_hh themselves
    (a = g_ih * LN(x W_ih^T) + b_ih + g_hh * LN(h W_hh^T) + b_hh), so a layer's bias
    option and forget_bias keep their meaning. Init: torch's default for the four kinds,
    gains 1, shift 0 (the normalisations start as plain standardisation)."""

    num_gates = 4

    def param_shapes(self, input_size, hidden_size):
        G, H = 4 * hidden_size, hidden_size
        shapes = super().param_shapes(input_size, hidden_size)
        shapes.update({"ln_gain_ih": (G,), "ln_gain_hh": (G,), "ln_gain_c": (H,),
                       "ln_bias_c": (H,)})
        return shapes

    def init_params(self, params, hidden_size, rng):
        torch_default_init({kind: params[kind] for kind in PARAM_KINDS if kind in params},
                           hidden_size, rng)
        for kind in ("ln_gain_ih", "ln_gain_hh", "ln_gain_c"):
            params[kind][...] = 1
        params["ln_bias_c"][...] = 0
