"""The export of an ensemble run (recurrent/ensemble.py): how its members' outputs
combine (COMBINE, which the ONNX graph of onnx.py and the printed torch module here
both follow), its file (`--format torch`, and `--format safetensors`, which `recurrent
import` makes the ensemble again from) and its torch module.

The file holds each member the combined model is made of (the members left out because
their training diverged are not in it) under the prefix "members.{k}." before the names
torch_names.tensors gives one network's (members.0.rnn.weight_ih_l0, members.0.head.bias,
...), k counting the members exported (so the printed module's torch.nn.ModuleList
``members`` loads them strictly). The printed module is torch_names' class Model, one
network, and a class Ensemble holding the members, whose forward takes Model.forward's
arguments (its state one per member) and returns the combined outputs and the members'
final states.
"""
from __future__ import annotations

import os

from ..checkpoint import DIVERGED, read_json
from ..errors import UserError
from . import torch_loop, torch_names

# How an ensemble's members' outputs combine, by the run's loss, as the losses' combine()
# do (plugins/losses.py): "log_mean_softmax", the log of the mean of the members' softmax
# probabilities (softmax logits); "log_mean_sigmoid", the logit of the mean of their
# sigmoid probabilities (sigmoid logits); "mean" (combine_rule) for losses without a
# combine(), as recurrent.ensemble.combine takes their mean.
COMBINE = {"cross_entropy": "log_mean_softmax", "binary_cross_entropy": "log_mean_sigmoid"}

MEMBER_PREFIX = "members.{}."

# The key of the run info an ensemble's file carries as metadata (safetensors.write) that
# says which members it holds: {"kept": the member numbers of members.0, members.1, ...,
# "left_out": {member number: its DIVERGED record}}, so that `recurrent import` makes the
# run again with the same members.
MEMBERS_KEY = "ensemble_members"

_RULE_TEXT = {"log_mean_softmax": "the log of the mean of the members' softmax "
                                  "probabilities",
              "log_mean_sigmoid": "the logit of the mean of the members' sigmoid "
                                  "probabilities",
              "mean": "the mean of the members' outputs"}


def combine_rule(loss: str | None) -> str:
    """The COMBINE rule of the run's loss ``loss`` ("mean" for a loss without one)."""
    return COMBINE.get(loss, "mean")


def check_combine(model, loss: str | None, fmt: str) -> None:
    """UserError for an ensemble whose plugin loss combines members its own way
    (Loss.combine) with no COMBINE rule: neither format ``fmt`` (onnx, torch) computes
    it."""
    if hasattr(model.loss, "combine") and loss not in COMBINE:
        raise UserError(f"--format {fmt}: the loss {loss!r} combines ensemble members its "
                        f"own way (Loss.combine), which the exported model cannot "
                        f"express; export each member")


def tensors(model, fold_scale=True) -> dict:
    """{name: float32 array} of every member of the EnsembleModel ``model``: each
    member's torch_names.tensors (``fold_scale``: a learned wide scale folded in, else
    kept) under its prefix."""
    return {MEMBER_PREFIX.format(k) + name: value
            for k, member in enumerate(model.members)
            for name, value in torch_names.tensors(member, fold_scale).items()}


def rnn_weights(model) -> list[str]:
    """The names in ``tensors`` of every member's recurrent weight matrices (what int8
    quantises: torch_names.rnn_weights)."""
    return [MEMBER_PREFIX.format(k) + name for k, member in enumerate(model.members)
            for name in torch_names.rnn_weights(member)]


def members_record(model) -> dict:
    """The MEMBERS_KEY record of the EnsembleModel ``model`` loaded from a run
    (runs.load_model): the number of each member exported, in file order, and the
    DIVERGED record of each member left out."""
    def number(member):
        return int(os.path.basename(member.path).rpartition("-")[2])

    def diverged(member):
        try:
            return read_json(member.file(DIVERGED))
        except UserError:  # unreadable: the file's presence is what leaves it out
            return {"status": "diverged"}

    return {"kept": [number(m) for m in model.kept],
            "left_out": {str(number(m)): diverged(m) for m in model.left_out}}


def read_members_record(info: dict, count: int, path: str) -> tuple[list, dict]:
    """(the member numbers of members.0, members.1, ..., {member number: DIVERGED record}
    of each member left out) from the MEMBERS_KEY record of an exported ensemble's run
    ``info`` of ``count`` members, checked: every member number once, kept or left out,
    at least one kept (UserError naming ``path``). A file without the record (written
    before it was kept) holds every member in order."""
    record = info.get(MEMBERS_KEY)
    if record is None:
        return list(range(count)), {}
    corrupted = UserError(f"{path}: its {MEMBERS_KEY} metadata is corrupted (expected the "
                          f"numbers 0-{count - 1} of the ensemble's members, each kept or "
                          f"left out, one at least kept)")
    kept = record.get("kept") if isinstance(record, dict) else None
    left_out = record.get("left_out") if isinstance(record, dict) else None
    if not (isinstance(kept, list) and kept and isinstance(left_out, dict)):
        raise corrupted
    if not (all(type(k) is int for k in kept)
            and all(isinstance(k, str) and _number(k) and isinstance(summary, dict)
                    for k, summary in left_out.items())):
        raise corrupted
    left_out = {int(k): summary for k, summary in left_out.items()}
    if sorted(kept + list(left_out)) != list(range(count)):
        raise corrupted
    return kept, left_out


def _number(text: str) -> bool:
    """Whether ``text`` is a member number as a file names one: ASCII digits (str.isdigit
    also takes digits such as '²', which int() refuses)."""
    return text.isascii() and text.isdigit()


def member_tensors(tensors: dict, count: int) -> list[dict]:
    """``tensors`` of an exported ensemble of ``count`` members as one dict per member,
    its prefix taken off; ValueError naming a tensor of no member."""
    parts = [{} for _ in range(count)]
    for name, value in tensors.items():
        head, dot, rest = name.partition(".")
        k, dot2, own = rest.partition(".")
        if head != "members" or not dot or not dot2 or not _number(k) or int(k) >= count \
                or MEMBER_PREFIX.format(int(k)) + own != name:
            raise ValueError(f"tensor {name!r} belongs to none of its {count} members "
                             f"(members.0. ... members.{count - 1}.)")
        parts[int(k)][own] = value
    return parts


def header_lines(model, loss: str | None) -> list[str]:
    """The printed file's lines (commented by the caller) saying which member directory
    each exported member is, which are left out, and how the outputs combine."""
    lines = [f"outputs: {_RULE_TEXT[combine_rule(loss)]}",
             "members (the Ensemble's torch.nn.ModuleList `members`):"]
    lines += [f"  members.{k}: {os.path.basename(member.path)}"
              for k, member in enumerate(model.kept)]
    lines += [f"  {os.path.basename(member.path)}: diverged in training, left out"
              for member in model.left_out]
    return lines


def torch_source(model, path: str, loss: str | None) -> list[str]:
    """Python lines defining the torch modules of the EnsembleModel ``model``, class
    Model (one member, torch_names.model_source) and class Ensemble, whose forward
    combines the members' outputs as the run's ``loss`` does (COMBINE), and loading
    ``path`` into an Ensemble (strict)."""
    first = model.members[0]
    lines = torch_names.model_source(first, ["import math"])
    lines += ["", *_ensemble_source(first, len(model.members), combine_rule(loss)), ""]
    return lines + torch_names.load_lines("Ensemble", path)


def _ensemble_source(first, count: int, rule: str) -> list[str]:
    """The lines of class Ensemble: ``count`` members like ``first``, combined by
    ``rule``."""
    wide = first.wide is not None
    state = torch_loop.state_type(first.rnn)
    features = ", wide_ids, wide_offsets" if wide else ""
    lines = ["class Ensemble(torch.nn.Module):",
             "    def __init__(self):",
             "        super().__init__()",
             f"        self.members = torch.nn.ModuleList([Model() for _ in range({count})])",
             "",
             f"    def forward(self, x, lengths{features},",
             f"                state: list[{state}] | None = None):",
             '        """Model.forward\'s arguments, state a list of one state per member',
             "        (None: zeros) -> (outputs, final states): the outputs are",
             f"        {_RULE_TEXT[rule]}",
             "        (as recurrent combines them), the final states the list of the",
             "        members', in member order.",
             '        """']
    lines += [f"        finals: list[{state}] = []",
              "        outputs: list[torch.Tensor] = []",
              "        k = 0",
              "        for member in self.members:",
              f"            given: {state} | None = None",
              "            if state is not None:",
              "                given = state[k]",
              f"            y, final = member(x, lengths{features}, state=given)",
              "            outputs.append(y)",
              "            finals.append(final)",
              "            k += 1",
              "        z = torch.stack(outputs)  # (members, ...)"]
    if rule == "log_mean_softmax":
        lines += ["        y = torch.logsumexp(torch.log_softmax(z, dim=-1), dim=0) - "
                  "math.log(len(outputs))"]
    elif rule == "log_mean_sigmoid":  # log p = -softplus(-z), log(1 - p) = -softplus(z)
        lines += ["        softplus = torch.nn.functional.softplus",
                  "        y = (torch.logsumexp(-softplus(-z), dim=0)",
                  "             - torch.logsumexp(-softplus(z), dim=0))"]
    else:
        lines += ["        y = z.mean(dim=0)"]
    if first.output == "sequence":  # padded steps stay zero, as each member's are
        lines += ["        time = torch.arange(x.shape[0], device=lengths.device)",
                  "        y = y * (time[:, None] < lengths[None, :])[:, :, None]"]
    lines.append("        return y, finals")
    return lines
