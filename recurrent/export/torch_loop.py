"""The printed torch module of a recurrent stack torch.nn has no module for: ln_lstm, and
any cell of a run trained with --zoneout (its evaluation mixes each step's states with the
previous ones, s = p s_prev + (1 - p) s_new). `recurrent export --format torch` prints its
class into the model's source (torch_names.torch_source): the parameters under torch.nn's
names (weight_ih_l0, ..., and ln_lstm's ln_gain_ih_l0, ...), so the exported safetensors
file loads with strict=True, and a forward that steps through time as recurrent's
kernels do (the equations of recurrent/reference.py), rows of any length, 0 included.

The printed class compiles with torch.jit.script (for libtorch): TorchScript looks
attributes up by literal names only, so the forward reaches each layer's and direction's
parameters through self.layers, a list of dicts of those very tensors (as torch.nn.LSTM's
_flat_weights), gathered again when .to() or an assigning load replaces them; the state
is typed per cell (a tensor, or (h, c) for lstm and ln_lstm). The annotations are builtin
generics (list[torch.Tensor], X | None): the class needs no import but torch.
"""
from __future__ import annotations

import numpy as np

from ..cellbase import LN_EPS
from ..layout import GATE_ORDER, STATE_NAMES

CLASS = "Recurrent"  # the printed class's name


def constructor(rnn) -> str:
    """The expression that builds the printed module for ``rnn``."""
    return (f"{CLASS}({rnn.input_size}, {rnn.hidden_size}, num_layers={rnn.num_layers}, "
            f"bidirectional={rnn.bidirectional})")


def paired(rnn) -> bool:
    """Whether the stack's state is a pair (h, c), as torch.nn.LSTM's: lstm, ln_lstm."""
    return len(STATE_NAMES[rnn.cell.name]) == 2


def state_type(rnn) -> str:
    """The printed annotation of the stack's state (torch.jit.script reads it)."""
    return "tuple[torch.Tensor, torch.Tensor]" if paired(rnn) else "torch.Tensor"


def class_source(rnn) -> list[str]:
    """Python lines defining the printed class for ``rnn`` (a built-in cell)."""
    cell, p = rnn.cell.name, float(rnn.zoneout)
    two = paired(rnn)
    ln = cell == "ln_lstm"
    lines = [
        f"class {CLASS}(torch.nn.Module):",
        f'    """recurrent\'s {cell} stack'
        + (f", zoneout {p} in evaluation" if p else "") + ": x (T, B, I) time-major,",
        "    lengths (B,) int64 (0 allowed) -> (out (T, B, D*H), zero past each row's length;",
        "    the final state as torch.nn's modules give it"
        + (": (h_n, c_n), each (L*D, B, H))." if two else ": h_n (L*D, B, H))."),
        "    The parameters are named as torch.nn's (weight_ih_l0, ...)"
        + (', with ln_gain_ih_l0,' if ln else '.'),
    ] + (['    ln_gain_hh_l0, ln_gain_c_l0, ln_bias_c_l0.'] if ln else []) + [
        "    torch.jit.script compiles it; self.layers[k * D + d] holds the parameters of",
        '    layer k, direction d (1: reverse) by kind, the very tensors of the attributes."""',
        "",
        "    def __init__(self, input_size, hidden_size, num_layers=1, bidirectional=False):",
        "        super().__init__()",
        "        self.hidden_size, self.num_layers = hidden_size, num_layers",
        "        self.directions = 2 if bidirectional else 1",
        f"        G = {len(GATE_ORDER[cell])} * hidden_size",
        "        for k in range(num_layers):",
        "            inputs = input_size if k == 0 else self.directions * hidden_size",
        "            shapes = {\"weight_ih\": (G, inputs), \"weight_hh\": (G, hidden_size),",
        "                      \"bias_ih\": (G,), \"bias_hh\": (G,)" + ("," if ln else "}"),
    ]
    if ln:
        lines += ["                      \"ln_gain_ih\": (G,), \"ln_gain_hh\": (G,),",
                  "                      \"ln_gain_c\": (hidden_size,), "
                  "\"ln_bias_c\": (hidden_size,)}"]
    lines += [
        "            for suffix in (\"\", \"_reverse\")[:self.directions]:",
        "                for kind, shape in shapes.items():",
        "                    setattr(self, f\"{kind}_l{k}{suffix}\",",
        "                            torch.nn.Parameter(torch.zeros(shape)))",
        "        self.gather()",
        "",
        "    def gather(self):",
        '        """self.layers: each layer\'s and direction\'s parameters by kind, which the',
        '        compiled forward indexes (it cannot look attributes up by a computed name)."""',
        "        kinds = (\"weight_ih\", \"weight_hh\", \"bias_ih\", \"bias_hh\""
        + ("," if ln else ")"),
    ] + (["                 \"ln_gain_ih\", \"ln_gain_hh\", \"ln_gain_c\", \"ln_bias_c\")"]
         if ln else []) + [
        "        self.layers = [{kind: getattr(self, f\"{kind}_l{k}{suffix}\") for kind in kinds}",
        "                       for k in range(self.num_layers)",
        "                       for suffix in (\"\", \"_reverse\")[:self.directions]]",
        "",
        "    def _apply(self, fn, recurse=True):",
        '        """.to(), .double(), ... may replace the parameters: gather the new ones."""',
        "        module = super()._apply(fn, recurse)",
        "        self.gather()",
        "        return module",
        "",
        "    def __setattr__(self, name, value):",
        '        """A parameter set anew (load_state_dict(..., assign=True)) is gathered too."""',
        "        super().__setattr__(name, value)",
        "        if isinstance(value, torch.nn.Parameter) and \"layers\" in self.__dict__:",
        "            self.gather()",
        "",
    ]
    if ln:
        lines += [
            "    def norm(self, v, blocks: int):",
            f'        """Each of the blocks of v\'s last axis normalised on its own, eps '
            f'{LN_EPS}."""',
            "        v = v.unflatten(-1, (blocks, -1))",
            "        return torch.nn.functional.layer_norm(v, v.shape[-1:],",
            f"                                              eps={LN_EPS}).flatten(-2)",
            "",
        ]
    lines += ["    def inputs(self, x, w: dict[str, torch.Tensor]):",
              '        """The input part of every step, (T, B, G), from one layer\'s and',
              '        direction\'s parameters w."""']
    if ln:
        lines.append("        return (self.norm(x @ w[\"weight_ih\"].T, 4) * w[\"ln_gain_ih\"]"
                     " + w[\"bias_ih\"])")
    elif cell == "gru":  # b_hh stays with the recurrent part (b_hn inside the reset)
        lines.append("        return x @ w[\"weight_ih\"].T + w[\"bias_ih\"]")
    else:
        lines.append("        return x @ w[\"weight_ih\"].T + w[\"bias_ih\"] + w[\"bias_hh\"]")
    lines += ["",
              "    def step(self, a_x, state: list[torch.Tensor],",
              "             w: dict[str, torch.Tensor]) -> list[torch.Tensor]:",
              '        """One step of every row from its input part a_x (B, G) and state '
              + ('[h, c]."""' if two else '[h]."""'),
              "        h = state[0]",
              "        hw = h @ w[\"weight_hh\"].T"]
    if cell in ("rnn_tanh", "rnn_relu"):
        act = "torch.relu" if cell == "rnn_relu" else "torch.tanh"
        lines.append(f"        new = [{act}(a_x + hw)]")
    elif cell == "gru":
        lines += ["        x_r, x_z, x_n = a_x.chunk(3, 1)",
                  "        h_r, h_z, h_n = (hw + w[\"bias_hh\"]).chunk(3, 1)",
                  "        r, z = torch.sigmoid(x_r + h_r), torch.sigmoid(x_z + h_z)",
                  "        n = torch.tanh(x_n + r * h_n)",
                  "        new = [n + z * (h - n)]"]
    else:
        if ln:
            lines.append("        hw = self.norm(hw, 4) * w[\"ln_gain_hh\"] + w[\"bias_hh\"]")
        lines += ["        i, f, g, o = (a_x + hw).chunk(4, 1)",
                  "        c = torch.sigmoid(f) * state[1] + torch.sigmoid(i) * torch.tanh(g)"]
        if ln:
            lines.append("        shown = self.norm(c, 1) * w[\"ln_gain_c\"] + w[\"ln_bias_c\"]")
        lines.append(f"        new = [torch.sigmoid(o) * torch.tanh({'shown' if ln else 'c'}), c]")
    if p:  # the shortest decimals of the float32 values the kernels use
        keep, rest = str(np.float32(p)), str(np.float32(1) - np.float32(p))
        lines.append(f"        new = [{keep} * s + {rest} * n for s, n in zip(state, new)]"
                     f"  # zoneout")
    zeros = "x.new_zeros(L * D, B, H)"
    lines += [
        "        return new",
        "",
        f"    def forward(self, x, lengths, state: {state_type(rnn)} | None = None",
        f"                ) -> tuple[torch.Tensor, {state_type(rnn)}]:",
        "        T, B = x.shape[0], x.shape[1]",
        "        H, L, D = self.hidden_size, self.num_layers, self.directions",
        "        if state is None:",
        f"            state = ({zeros}, {zeros})" if two else f"            state = {zeros}",
        "        states = [state[0], state[1]]" if two else "        states = [state]",
        "        time = torch.arange(T, device=lengths.device)",
        "        valid = (time[:, None] < lengths[None, :])[:, :, None]  # (T, B, 1)",
        "        finals: list[list[torch.Tensor]] = []  # [k * D + d]: that one's final state",
        "        for k in range(L):",
        "            outs: list[torch.Tensor] = []",
        "            for d in range(D):",
        "                w = self.layers[k * D + d]",
        "                s = [st[k * D + d] for st in states]",
        "                a_x = self.inputs(x, w)",
        "                out = x.new_zeros(T, B, H)",
        "                for i in range(T):",
        "                    t = T - 1 - i if d == 1 else i  # the reverse direction: last first",
        "                    new = self.step(a_x[t], s, w)",
        "                    out[t] = torch.where(valid[t], new[0], 0.0)",
        "                    s = [torch.where(valid[t], n, o) for n, o in zip(new, s)]",
        "                outs.append(out)",
        "                finals.append(s)",
        "            x = torch.cat(outs, dim=2)",
        "        h_n = torch.stack([s[0] for s in finals])",
        ("        return x, (h_n, torch.stack([s[1] for s in finals]))" if two
         else "        return x, h_n"),
    ]
    return lines
