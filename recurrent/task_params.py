"""Parameters a task trains together with the network (the optional Task.trained_params).

A task may own parameters that shape its batches: the inputs and targets it yields are
functions of them (the forecast task's learned exponential smoothing, whose level and
season normalise the window and whose forecast the network corrects). The trainer keeps
them in ONE float32 buffer of their own beside the model's, with a gradient buffer of the
same length, and updates both in the same step: the global gradient norm and its
clipping span both buffers, a data-parallel run all-reduces both, and an optimizer of the
same kind and settings steps each (every optimizer here is elementwise, so two of them
over two buffers make exactly the updates one would make over the two joined).

Flow of one step (recurrent.step.train_step): the task's batch carries "backward", a
function of (d_outputs, d_inputs, rows) -> {name: gradient}: the gradient of the loss
with respect to the task's parameters, from the gradient on the model's outputs (the
loss's, which for a loss of outputs - targets also gives the one on the targets) and on
its inputs (the model's backward returns it for feature inputs), for the batch rows
``rows`` (a data-parallel rank's share). The task reads the parameters' current values
when it makes each batch, from the live arrays the trainer hands to batches() as
``params``.

Checkpoints: "task/<name>" arrays in best.npz and last.npz (and the optimizer state as
"task_optim/<key>" in last.npz); Task.with_params folds values into the task state, so
evaluation, prediction and export read the learned values (recurrent.runs.load_model).
"""
from __future__ import annotations

import numpy as np

PREFIX = "task/"
OPTIM_PREFIX = "task_optim/"


def owned(task, state: dict, config) -> dict:
    """The task's trained parameters in a run with these options ({name: initial
    value}; {} for a task without Task.trained_params or none in this run)."""
    if not hasattr(task, "trained_params"):
        return {}
    return task.trained_params(state, config) or {}


class TaskParams:
    """{name: array} of a task's trained parameters in one flat float32 buffer ``params``
    (P,) with its gradient buffer ``grads`` (P,); ``named`` and ``named_grads`` are the
    live views, shaped as given, in name order."""

    def __init__(self, values: dict):
        shapes = {name: np.shape(v) for name, v in sorted(values.items())}
        sizes = [int(np.prod(s)) for s in shapes.values()]
        self.params = np.zeros(sum(sizes), np.float32)
        self.grads = np.zeros_like(self.params)
        self.named, self.named_grads = {}, {}
        offset = 0
        for (name, shape), size in zip(shapes.items(), sizes):
            self.named[name] = self.params[offset:offset + size].reshape(shape)
            self.named_grads[name] = self.grads[offset:offset + size].reshape(shape)
            offset += size
        self.load(values)

    def shapes(self) -> dict:
        return {name: v.shape for name, v in self.named.items()}

    def values(self) -> dict:
        """{name: copy of the current values}."""
        return {name: v.copy() for name, v in self.named.items()}

    def load(self, values: dict, what: str = "task parameters") -> None:
        """Copy every value in (ValueError naming missing, unexpected or misshapen ones)."""
        from .params import check_named_arrays
        check_named_arrays(values, self.shapes(), what)
        for name, v in values.items():
            value = np.asarray(v)
            if not np.isfinite(value).all():
                raise ValueError(f"{what}: {name} contains NaN or infinity")
            self.named[name][...] = value

    def add_grads(self, grads: dict) -> None:
        """Add {name: gradient} (any subset, shaped as the parameter) into ``grads``."""
        for name, g in grads.items():
            self.named_grads[name] += np.asarray(g, np.float32).reshape(
                self.named_grads[name].shape)

    def arrays(self) -> dict:
        """The checkpoint arrays of the values: {"task/<name>": array}."""
        return {PREFIX + name: v for name, v in self.named.items()}


def from_arrays(arrays: dict) -> dict:
    """{name: value} of a checkpoint's "task/<name>" arrays ({} when it has none)."""
    return {k[len(PREFIX):]: np.asarray(v) for k, v in arrays.items() if k.startswith(PREFIX)}
