"""Gate order and parameter naming: the ONE place that fixes them.

Kernels (recurrent/_kernels), the numpy reference (recurrent/reference.py) and checkpoints
all follow this module, and it is PyTorch's layout, so a torch.nn.RNN/LSTM/GRU state_dict
converted to numpy loads as-is.

Legend: I input size, H hidden size, G = gates * H rows of the stacked weight matrices.

  weight_ih_l{k}[_reverse]  (G, I)   rows grouped by gate, in GATE_ORDER
  weight_hh_l{k}[_reverse]  (G, H)
  bias_ih_l{k}[_reverse]    (G,)
  bias_hh_l{k}[_reverse]    (G,)     for GRU, b_hn stays inside the reset product:
                                      n = tanh(W_in x + b_in + r * (W_hn h + b_hn))

ln_lstm (no torch.nn module) adds its layer-norm gains and cell shift after these four
(recurrent/cellbase.py: LayerNormLSTMLayout):
  ln_gain_ih_l{k}[_reverse] (G,)  ln_gain_hh_l{k}[_reverse] (G,)
  ln_gain_c_l{k}[_reverse]  (H,)  ln_bias_c_l{k}[_reverse]  (H,)
"""

# Gate blocks, in row order of weight_ih / weight_hh, per built-in cell.
GATE_ORDER = {
    "rnn_tanh": ("h",),
    "rnn_relu": ("h",),
    "lstm": ("i", "f", "g", "o"),  # input, forget, cell candidate, output
    "gru": ("r", "z", "n"),  # reset, update, new
    "ln_lstm": ("i", "f", "g", "o"),  # the LSTM's, each block layer-normalised
}

# Recurrent state tensors carried between steps, per built-in cell.
STATE_NAMES = {
    "rnn_tanh": ("h",),
    "rnn_relu": ("h",),
    "lstm": ("h", "c"),
    "gru": ("h",),
    "ln_lstm": ("h", "c"),
}

# The per-direction parameters of one layer, in flat-buffer order.
PARAM_KINDS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")


def param_name(kind: str, layer: int, reverse: bool = False) -> str:
    """PyTorch's name for one parameter: param_name('weight_ih', 0, True) -> 'weight_ih_l0_reverse'."""
    return f"{kind}_l{layer}{'_reverse' if reverse else ''}"


def gate_slice(cell: str, gate: str, hidden_size: int) -> slice:
    """Rows of weight_ih/weight_hh/biases belonging to one gate of a built-in cell."""
    k = GATE_ORDER[cell].index(gate)
    return slice(k * hidden_size, (k + 1) * hidden_size)
