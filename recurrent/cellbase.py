"""A base for cells with PyTorch's parameter layout: public, for built-in and plugin cells.

A cell whose parameters are torch's four kinds (G = num_gates * H rows, gate blocks in the
cell's order, see recurrent/layout.py)

    weight_ih (G, I)   weight_hh (G, H)   bias_ih (G,)   bias_hh (G,)

inherits ``param_shapes`` and ``init_params`` of recurrent.protocols.Cell from
``TorchLayoutCell`` and sets ``num_gates``. Both the numpy reference cells and the compiled
built-in ones do. A cell with extra kinds (peepholes, layer-norm gains) can still call
``torch_default_init`` for its own ``init_params``.
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
