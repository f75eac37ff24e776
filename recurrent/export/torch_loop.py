"""The printed torch module of a recurrent stack torch.nn has no module for: ln_lstm, and
any cell of a run trained with --zoneout (its evaluation mixes each step's states with the
previous ones, s = p s_prev + (1 - p) s_new). `recurrent export --format torch` prints its
class into the model's source (torch_names.torch_source): the parameters under torch.nn's
names (weight_ih_l0, ..., and ln_lstm's ln_gain_ih_l0, ...), so the exported safetensors
file loads with strict=True, and a forward that steps through time as recurrent's
kernels do (the equations of recurrent/reference.py), rows of any length, 0 included.
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


def class_source(rnn) -> list[str]:
    """Python lines defining the printed class for ``rnn`` (a built-in cell)."""
    cell, p = rnn.cell.name, float(rnn.zoneout)
    two = len(STATE_NAMES[cell]) == 2
    ln = cell == "ln_lstm"
    lines = [
        f"class {CLASS}(torch.nn.Module):",
        f'    """recurrent\'s {cell} stack'
        + (f", zoneout {p} in evaluation" if p else "") + ": x (T, B, I) time-major,",
        "    lengths (B,) int64 (0 allowed) -> (out (T, B, D*H), zero past each row's length;",
        "    the final state as torch.nn's modules give it"
        + (": (h_n, c_n), each (L*D, B, H))." if two else ": h_n (L*D, B, H))."),
        "    The parameters are named as torch.nn's (weight_ih_l0, ...)"
        + (', with ln_gain_ih_l0,' if ln else '."""'),
    ] + (['    ln_gain_hh_l0, ln_gain_c_l0, ln_bias_c_l0."""'] if ln else []) + [
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
        "",
    ]
    if ln:
        lines += [
            "    @staticmethod",
            "    def norm(v, blocks):",
            f'        """Each of the blocks of v\'s last axis normalised on its own, eps '
            f'{LN_EPS}."""',
            "        v = v.unflatten(-1, (blocks, -1))",
            "        return torch.nn.functional.layer_norm(v, v.shape[-1:],",
            f"                                              eps={LN_EPS}).flatten(-2)",
            "",
        ]
    lines += ["    def inputs(self, x, p):",
              '        """The input part of every step, (T, B, G)."""']
    if ln:
        lines.append("        return (self.norm(x @ p(\"weight_ih\").T, 4) * p(\"ln_gain_ih\")"
                     " + p(\"bias_ih\"))")
    elif cell == "gru":  # b_hh stays with the recurrent part (b_hn inside the reset)
        lines.append("        return x @ p(\"weight_ih\").T + p(\"bias_ih\")")
    else:
        lines.append("        return x @ p(\"weight_ih\").T + p(\"bias_ih\") + p(\"bias_hh\")")
    lines += ["",
              "    def step(self, a_x, state, p):",
              '        """One step of every row from its input part a_x (B, G) and state."""',
              "        h = state[0]",
              "        hw = h @ p(\"weight_hh\").T"]
    if cell in ("rnn_tanh", "rnn_relu"):
        act = "torch.relu" if cell == "rnn_relu" else "torch.tanh"
        lines.append(f"        new = ({act}(a_x + hw),)")
    elif cell == "gru":
        lines += ["        x_r, x_z, x_n = a_x.chunk(3, 1)",
                  "        h_r, h_z, h_n = (hw + p(\"bias_hh\")).chunk(3, 1)",
                  "        r, z = torch.sigmoid(x_r + h_r), torch.sigmoid(x_z + h_z)",
                  "        n = torch.tanh(x_n + r * h_n)",
                  "        new = (n + z * (h - n),)"]
    else:
        if ln:
            lines.append("        hw = self.norm(hw, 4) * p(\"ln_gain_hh\") + p(\"bias_hh\")")
        lines += ["        i, f, g, o = (a_x + hw).chunk(4, 1)",
                  "        c = torch.sigmoid(f) * state[1] + torch.sigmoid(i) * torch.tanh(g)"]
        if ln:
            lines.append("        shown = self.norm(c, 1) * p(\"ln_gain_c\") + p(\"ln_bias_c\")")
        lines.append(f"        new = (torch.sigmoid(o) * torch.tanh({'shown' if ln else 'c'}), c)")
    if p:  # the shortest decimals of the float32 values the kernels use
        keep, rest = str(np.float32(p)), str(np.float32(1) - np.float32(p))
        lines.append(f"        new = tuple({keep} * s + {rest} * n for s, n in zip(state, new))"
                     f"  # zoneout")
    lines += [
        "        return new",
        "",
        "    def forward(self, x, lengths, state=None):",
        "        T, B = x.shape[0], x.shape[1]",
        "        H, L, D = self.hidden_size, self.num_layers, self.directions",
        "        if state is None:",
        f"            state = tuple(x.new_zeros(L * D, B, H) for _ in range({2 if two else 1}))",
        "        states = state if isinstance(state, tuple) else (state,)",
        "        time = torch.arange(T, device=lengths.device)",
        "        valid = (time[:, None] < lengths[None, :])[:, :, None]  # (T, B, 1)",
        "        finals = [[] for _ in states]",
        "        for k in range(L):",
        "            outs = []",
        "            for d, suffix in enumerate((\"\", \"_reverse\")[:D]):",
        "                def p(kind, k=k, suffix=suffix):",
        "                    return getattr(self, f\"{kind}_l{k}{suffix}\")",
        "                s = tuple(st[k * D + d] for st in states)",
        "                a_x = self.inputs(x, p)",
        "                out = x.new_zeros(T, B, H)",
        "                for t in (range(T - 1, -1, -1) if d else range(T)):",
        "                    new = self.step(a_x[t], s, p)",
        "                    out[t] = torch.where(valid[t], new[0], 0.0)",
        "                    s = tuple(torch.where(valid[t], n, o) for n, o in zip(new, s))",
        "                outs.append(out)",
        "                for final, value in zip(finals, s):",
        "                    final.append(value)",
        "            x = torch.cat(outs, dim=2)",
        "        finals = tuple(torch.stack(f) for f in finals)",
        "        return x, finals if len(finals) > 1 else finals[0]",
    ]
    return lines
