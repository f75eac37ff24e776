"""The PyTorch view of a SequenceModel: which torch.nn module holds each parameter.

A SequenceModel binds its modules under the prefixes "embedding", "rnn", "head" and
"wide" (recurrent/model.py) and the recurrent stack names its parameters as torch does
(recurrent/layout.py), so ``model.state_dict()`` already carries PyTorch's names. This
module adds the torch.nn module each prefix stands for (for a stack no torch.nn module
computes, the printed module of torch_loop.py), which cells the ONNX and torch exports
compute, and the Python source of that torch model. Every export format takes its tensor
names from here; an encoder-decoder's are seq2seq_names.py's, its recurrent stacks named
by rnn_param under their own prefixes.

  embedding  torch.nn.Embedding(V, E)                       weight (V, E)
  rnn        torch.nn.RNN/LSTM/GRU(I, H, num_layers=L, bidirectional=...)
  head       torch.nn.Linear(D*H, K)                        weight (K, D*H), bias (K,)
  wide       torch.nn.EmbeddingBag(F, K, mode="sum")        weight (F, K)
"""
from __future__ import annotations

import numpy as np

from ..cellbase import LayerNormLSTMLayout
from ..errors import UserError
from ..layout import GATE_ORDER, PARAM_KINDS, param_name
from ..out_paths import not_utf8, shell_word
from ..wide import Wide
from . import torch_loop

# Built-in cell name -> (torch.nn class, extra constructor keywords).
TORCH_RNN = {
    "rnn_tanh": ("RNN", {"nonlinearity": "tanh"}),
    "rnn_relu": ("RNN", {"nonlinearity": "relu"}),
    "lstm": ("LSTM", {}),
    "gru": ("GRU", {}),
}


def cell_name(model) -> str:
    return model.rnn.cell.name


# The cells the ONNX and torch exports compute: the built-in ones. torch.nn's RNN, LSTM,
# GRU modules (ONNX's operators) hold torch's four; ln_lstm, and any cell with zoneout's
# evaluation blend, are an ONNX Scan over the cell's step (onnx.py) and a printed torch
# module (torch_loop.py).
EXPORT_CELLS = tuple(TORCH_RNN) + ("ln_lstm",)


def check_rnn_cell(rnn, what: str) -> str:
    """The built-in cell name of one Recurrent stack (an encoder-decoder has two, of one
    cell), or a UserError naming a cell that ``what`` ("ONNX", "PyTorch") has no
    equivalent of: one not built in, or without the built-in's parameters."""
    name = rnn.cell.name
    kinds = set(rnn.cell.param_shapes(1, 1))
    if name not in EXPORT_CELLS or name not in GATE_ORDER or kinds != _builtin_kinds(name):
        raise UserError(f"cell {name!r} has no {what} equivalent (only "
                        f"{', '.join(EXPORT_CELLS)} do); export it with --format "
                        f"safetensors")
    return name


def check_onnx_cell(rnn) -> str:
    """The stack's cell name, or a UserError for a cell no ONNX graph of ours computes."""
    return check_rnn_cell(rnn, "ONNX")


def _builtin_kinds(name: str) -> set:
    """The parameter kinds of the built-in cell ``name`` (its layout: recurrent.cellbase)."""
    if name == "ln_lstm":
        return set(LayerNormLSTMLayout().param_shapes(1, 1))
    return set(PARAM_KINDS)


TRAINING_ONLY = tuple(f"wide.{name}" for name in Wide.TRAINING_ONLY)


def training_only(model) -> dict:
    """{name: shape} of the model's parameters that only training reads (the wide part's
    cross-fitted fold models): left out of every export, zeros again on import."""
    return {name: shape for name, shape in model.param_shapes().items()
            if name in TRAINING_ONLY}


def tensors(model, fold_scale=True) -> dict:
    """{PyTorch name: contiguous float32 array} of every parameter an exported model uses
    (not the wide part's training-only fold models), in flat-buffer order. A learned
    wide scale is multiplied into the wide weights (torch and ONNX have no place for it),
    or with ``fold_scale=False`` kept as "wide.scale" (a safetensors file that imports
    back to the very same model)."""
    state = model.state_dict()
    if fold_scale and "wide.scale" in state:  # a learned scale of the wide logits: folded into the weights
        state["wide.weight"] = state["wide.weight"] * state.pop("wide.scale")[0]
    return {name: np.ascontiguousarray(value, dtype=np.float32)
            for name, value in state.items() if name not in TRAINING_ONLY}


def rnn_param(kind: str, layer: int, reverse: bool, prefix: str = "rnn") -> str:
    """The full name of one recurrent parameter in ``tensors``: 'rnn.weight_ih_l0'; with
    ``prefix`` that of another stack's ('decoder.rnn.weight_ih_l0', seq2seq_names.py)."""
    return f"{prefix}.{param_name(kind, layer, reverse)}"


def rnn_weights(model) -> list[str]:
    """The names in ``tensors`` of the recurrent stack's weight matrices (W_ih, W_hh of
    every layer and direction): what int8 inference quantises."""
    return stack_weights(model.rnn)


def stack_weights(rnn, prefix: str = "rnn") -> list[str]:
    """The weight matrices' names of one recurrent stack exported under ``prefix``."""
    return [rnn_param(kind, layer, reverse, prefix) for layer in range(rnn.num_layers)
            for reverse in (False, True)[:rnn.num_directions]
            for kind in ("weight_ih", "weight_hh")]


def loops(rnn) -> bool:
    """Whether the stack is printed as torch_loop's module (no torch.nn module computes
    it: ln_lstm, and zoneout's evaluation) rather than torch.nn.RNN/LSTM/GRU."""
    return rnn.cell.name not in TORCH_RNN or rnn.zoneout > 0


def stack_constructor(rnn) -> str:
    """The expression building the torch module of one recurrent stack (of a cell
    check_rnn_cell has checked): torch.nn.RNN/LSTM/GRU, or torch_loop's printed
    Recurrent where ``loops``."""
    if loops(rnn):
        return torch_loop.constructor(rnn)
    cls, extra = TORCH_RNN[rnn.cell.name]
    keywords = "".join(f", {k}={v!r}" for k, v in extra.items())
    return (f"torch.nn.{cls}({rnn.input_size}, {rnn.hidden_size}, "
            f"num_layers={rnn.num_layers}, bidirectional={rnn.bidirectional}{keywords})")


def torch_modules(model) -> list[tuple[str, str]]:
    """[(attribute, constructor expression)] of the torch modules holding the parameters
    (of a model whose cell torch_source has checked)."""
    rnn = model.rnn
    modules = []
    if model.embedding is not None:
        e = model.embedding
        modules.append(("embedding", f"torch.nn.Embedding({e.num_embeddings}, "
                                     f"{e.embedding_dim})"))
    modules.append(("rnn", stack_constructor(rnn)))
    modules.append(("head", f"torch.nn.Linear({model.head.in_features}, "
                            f"{model.head.out_features})"))
    if model.wide is not None:
        features, classes = model.layout["wide.weight"][1]
        modules.append(("wide", f"torch.nn.EmbeddingBag({features}, {classes}, "
                                f"mode='sum')"))
    return modules


def torch_source(model, path: str) -> list[str]:
    """Python lines defining the torch model (its modules and its forward) and loading
    ``path`` into it (strict)."""
    return model_source(model) + ["", *load_lines("Model", path)]


def model_source(model, imports=()) -> list[str]:
    """Python lines defining the torch model of ``model``, class Model (its modules and
    its forward), after the imports (source_start's, and the ``imports`` lines given);
    UserError for a cell torch has no module of."""
    check_rnn_cell(model.rnn, "PyTorch")
    lines = source_start(model.rnn, imports)
    lines += ["",
             "class Model(torch.nn.Module):",
             "    def __init__(self):",
             "        super().__init__()"]
    lines += [f"        self.{attr} = {expr}" for attr, expr in torch_modules(model)]
    methods = _forward_source(model)
    if not loops(model.rnn):
        methods += [""] + _run_rnn_source(model.rnn)
    lines += [""] + [f"    {line}" if line else "" for line in methods]
    return lines


def load_lines(cls: str, path: str) -> list[str]:
    """The printed lines making ``model``, an instance of the printed class ``cls``,
    and loading ``path`` into it (strict: every tensor of the file, and no other).
    UserError for a path that is not UTF-8 (a name's byte read with surrogateescape):
    safetensors' load_file refuses such a path, so the printed code could not load it."""
    if not_utf8(path):
        raise UserError(f"--out {shell_word(path)}: the printed module loads the file with "
                        f"safetensors' load_file, which takes UTF-8 paths only; give an "
                        f"--out whose name is UTF-8")
    return ["model = " + cls + "()",
            f"model.load_state_dict(load_file({path!r}), strict=True)"]


def source_start(rnn, imports=()) -> list[str]:
    """The first lines of a printed torch model whose stacks are like ``rnn``: the
    imports (and the ``imports`` lines given), then torch_loop's Recurrent class when
    ``loops``, else the import of torch's packed sequences."""
    lines = ["import torch", "from safetensors.torch import load_file", *imports]
    if loops(rnn):
        return lines + [""] + torch_loop.class_source(rnn) + [""]
    return lines + ["from torch.nn.utils.rnn import pack_padded_sequence, "
                    "pad_packed_sequence"]


def _forward_source(model) -> list[str]:
    """The lines of Model.forward: recurrent's computation with the torch modules,
    time-major, the stack run by Model.run_rnn (_run_rnn_source) for torch.nn's modules,
    or by the printed Recurrent (torch_loop.py): both take rows of length 0 and T = 0."""
    wide = model.wide is not None
    inputs = "(T, B) int64 token ids" if model.tokens else "(T, B, I) float32 features"
    state = f"state: {torch_loop.state_type(model.rnn)} | None = None"  # for torch.jit.script
    if wide:
        lines = ["def forward(self, x, lengths, wide_ids, wide_offsets,",
                 f"            {state}):"]
    else:
        lines = [f"def forward(self, x, lengths, {state}):"]
    lines += [f'    """x {inputs}, lengths (B,) int64 -> (outputs, final',
              "    state) as recurrent computes them (padded steps' outputs zero). state: the",
              "    initial one as torch's rnn takes it (None: zeros), e.g. the final state of",
              "    the call before, to continue sequences (char-lm sampling)."]
    if wide:
        lines += ["    wide_ids, wide_offsets: the wide part's features of each row: of",
                  f"    f = recurrent.wide.ngram_features(x, lengths, "
                  f"{model.wide.vocab_size}, {model.wide.bigram_buckets}),",
                  "    f.indices and f.indptr[:-1] (int64); without recurrent, wide_features",
                  f"    (docs/export.md) gives them: wide_features(x, lengths, "
                  f"{model.wide.vocab_size}, {model.wide.bigram_buckets})."]
    lines += ['    """',
              "    T = x.shape[0]",
              f"    inputs = {'self.embedding(x)' if model.tokens else 'x'}"]
    run = "self.rnn" if loops(model.rnn) else "self.run_rnn"
    lines.append(f"    out, state = {run}(inputs, lengths, state)  # (T, B, D*H)")
    if model.output == "last":
        lines.append("    h_n = state[0]  # (h_n, c_n)" if torch_loop.paired(model.rnn)
                     else "    h_n = state")
    else:
        lines += ["    time = torch.arange(T, device=lengths.device)",
                  "    mask = (time[:, None] < lengths[None, :])[:, :, None]"]
    if model.output == "max":  # amax refuses a batch of no steps (T = 0), which pools to 0
        lines.append("    top = (out.masked_fill(~mask, float('-inf')).amax(0) if T else "
                     "out.new_zeros(out.shape[1:]))")
    pooled = {"sequence": None,
              "last": (f"torch.where((lengths > 0)[:, None], "
                       f"torch.cat(list(h_n[-{model.num_directions}:]), dim=1), 0.0)"),
              "mean": "out.sum(0) / mask.sum(0).clamp(min=1)",
              "max": "torch.where(mask.any(0), top, 0.0)"}[model.output]
    if pooled is None:
        lines.append("    y = self.head(out) * mask")
    else:
        lines.append(f"    y = self.head({pooled})")
    if wide:
        lines.append("    y = y + self.wide(wide_ids, wide_offsets)")
    lines.append("    return y, state")
    return lines


def _run_rnn_source(rnn) -> list[str]:
    """The lines of Model.run_rnn: the stack ``rnn`` run by its torch.nn module on packed
    sequences of the rows of length >= 1 (the only rows packed sequences hold; every
    row, in its order, when none is empty), while a row of length 0 keeps its initial
    state and outputs zeros, as in recurrent."""
    state = torch_loop.state_type(rnn)
    two = torch_loop.paired(rnn)
    D = rnn.num_directions
    parts = ("state[0]", "state[1]") if two else ("state",)

    def pair(items):
        return f"({', '.join(items)})" if two else items[0]

    zeros = f"inputs.new_zeros({rnn.num_layers * D}, B, {rnn.hidden_size})"
    return [
        f"def run_rnn(self, inputs, lengths, state: {state} | None",
        f"            ) -> tuple[torch.Tensor, {state}]:",
        '    """self.rnn over each row\'s steps -> (out (T, B, D*H), zero past each row\'s',
        "    length; the final state). Packed sequences hold rows of length >= 1 only: the",
        "    module runs those rows, and a row of length 0 (every row when T = 0) keeps its",
        '    initial state and outputs zeros, as in recurrent."""',
        "    T, B = inputs.shape[0], inputs.shape[1]",
        "    if state is None:",
        f"        state = {pair([zeros] * len(parts))}",
        f"    out = inputs.new_zeros(T, B, {D * rnn.hidden_size})",
        "    steps = torch.nonzero(lengths > 0).flatten()  # the rows with steps, in order",
        "    if steps.numel() == 0:",
        "        return out, state",
        "    rows = steps.to(inputs.device)  # lengths may stay on the CPU, as packing wants",
        "    packed = pack_padded_sequence(inputs.index_select(1, rows),",
        "                                  lengths.index_select(0, steps).cpu(),",
        "                                  enforce_sorted=False)",
        f"    given = {pair([f'{p}.index_select(1, rows)' for p in parts])}",
        "    ran, final = self.rnn(packed, given)",
        "    ran, _ = pad_packed_sequence(ran, total_length=T)",
        "    out = out.index_copy(1, rows, ran)",
    ] + (["    return out, (state[0].index_copy(1, rows, final[0]),",
          "                 state[1].index_copy(1, rows, final[1]))"] if two else
         ["    return out, state.index_copy(1, rows, final)"])
