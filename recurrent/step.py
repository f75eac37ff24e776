"""One training step, the ONE place that orders it:

    model.forward -> loss.value_and_grad -> model.backward -> clip -> optimizer.step(lr)

and the batch cut into truncated-BPTT windows, each a step of its own.
"""
from __future__ import annotations

import math

import numpy as np

from .clip import clip_grad_norm, clip_grad_value, total_norm
from .errors import broken_protocol
from .lengths import valid_mask


class NonFinite(Exception):
    """The loss or the gradient norm of a step is not finite (raised before the update),
    (``updated``) the parameters after its update, or (``evaluated``) the validation loss
    after a step."""

    def __init__(self, message: str, evaluated: bool = False, updated: bool = False):
        super().__init__(message)
        self.evaluated = evaluated
        self.updated = updated


def batch_problem(batch) -> str | None:
    """What keeps a task's batch from being a training batch at all (it is not a dict
    holding "x" and "y", the keys every step reads), or None; its arrays are checked by
    the model and the loss that take them."""
    if not isinstance(batch, dict):
        return f"a {type(batch).__name__}, not a dict with 'x' and 'y'"
    missing = [key for key in ("x", "y") if key not in batch]
    if missing:
        return f"a dict without {' and '.join(map(repr, missing))}"
    return None


def windows(batch: dict, K: int, sequence_output: bool) -> list:
    """A task's batch as a list of (x, y, lengths) windows: one window without truncation
    (K = 0) or for pooled outputs (the model truncates those itself), else consecutive
    windows of K steps. lengths are per window (0 for a row that ended before it); a
    window that no row reaches ends the list."""
    x, y = batch["x"], batch["y"]
    lengths = batch.get("lengths")
    if lengths is not None:
        lengths = np.asarray(lengths, np.int64)
    T = np.shape(x)[0]
    if not K or K >= T or not sequence_output:
        return [(x, y, lengths)]
    out = []
    for t0 in range(0, T, K):
        t1 = min(T, t0 + K)
        lw = None if lengths is None else np.clip(lengths - t0, 0, t1 - t0)
        if lw is not None and not lw.any():
            break  # every row ended before this window
        out.append((np.ascontiguousarray(x[t0:t1]), np.ascontiguousarray(y[t0:t1]), lw))
    return out


def train_step(model, loss_fn, optimizer, x, y, lengths, state, lr, clip_norm=5.0,
               clip_value=None, truncate=0, reduce=None, task_params=None,
               task_backward=None):
    """forward -> loss -> backward -> [reduce] -> clip -> update, on one batch or TBPTT
    window.

    x, y, lengths: as a task yields them (lengths may be None: all rows full); a row of
    length 0 counts in no loss and keeps ``state``. state: the carried recurrent state or
    None. truncate=K: truncated BPTT of a pooled model (see SequenceModel.forward).
    reduce(grads, loss) -> loss: data-parallel training's reduction of the gradient
    buffers (a list) and the loss over the ranks (recurrent/data_parallel.py); a rank
    may then hold no rows of the window (x with 0 rows), and contributes zero.
    task_params: the task's trained parameters (recurrent.task_params.TaskParams, with
    its ``optimizer``), updated in the same step from task_backward(d_outputs, d_inputs)
    -> {name: gradient}, the batch's "backward" for this window's rows.
    Returns (loss, pre-clip gradient norm, clipped?, new state). Raises NonFinite before
    the update when the loss or the gradient norm is not finite, so the parameters stay
    those of the last good step, and after it when the update itself overflowed the
    parameters (the last checkpoint is then the last good state).
    """
    # The step reports a loss or gradient norm that is not finite itself, in one line;
    # numpy's overflow warnings on the way there would only come before it as noise.
    with np.errstate(over="ignore", invalid="ignore"):
        return _step(model, loss_fn, optimizer, x, y, lengths, state, lr, clip_norm,
                     clip_value, truncate, reduce, task_params, task_backward)


def _step(model, loss_fn, optimizer, x, y, lengths, state, lr, clip_norm, clip_value,
          truncate, reduce, task_params, task_backward):
    model.zero_grad()
    buffers = [model.grads]
    if task_params is not None:
        task_params.grads.fill(0)
        buffers.append(task_params.grads)
    if np.shape(x)[1] == 0 and reduce is not None:
        loss, new_state = 0.0, state
    else:
        outputs, new_state = model.forward(x, lengths=lengths, state=state,
                                           truncate=truncate)
        mask = None
        if model.output == "sequence" and lengths is not None:
            mask = valid_mask(lengths, outputs.shape[0], outputs.shape[1])  # (T, B)
        loss, d_outputs = loss_result(loss_fn, loss_fn.value_and_grad(outputs, y, mask),
                                      outputs)
        if not math.isfinite(loss) and reduce is None:
            raise NonFinite(f"loss is {loss}")
        d_inputs = model.backward(d_outputs)
        if task_params is not None:
            task_params.add_grads(task_backward(d_outputs, d_inputs))
    if reduce is not None:  # every rank gets the same loss: they all raise or none does
        loss = reduce(buffers, loss)
        if not math.isfinite(loss):
            raise NonFinite(f"loss is {loss}")
    norm, clipped = clip_gradients(buffers if len(buffers) > 1 else model.grads,
                                   clip_norm, clip_value)
    if not math.isfinite(norm):
        raise NonFinite(f"gradient norm is {norm}")
    optimizer.step(lr)
    if task_params is not None:
        task_params.optimizer.step(lr)
    model.params_changed()
    # A finite gradient times a huge learning rate can still overflow: stop here, in one
    # line, rather than at the next forward's input check (every rank holds the same
    # parameters, so a data-parallel run stops on all of them).
    if not np.isfinite(model.params).all():
        raise NonFinite("the update made the parameters non-finite", updated=True)
    return loss, norm, clipped, new_state


def loss_result(loss_fn, result, outputs):
    """(value as a float, gradient) of what ``loss_fn.value_and_grad`` returned for
    ``outputs``; UserError naming the loss when it breaks recurrent.protocols.Loss (a
    plugin's bug, named here: unpacking would only say how many values there were,
    model.backward that the shape is wrong, float() that the value is not a scalar)."""
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        got = (f"{len(result)} values" if isinstance(result, (tuple, list))
               else type(result).__name__)
        _loss_broke(loss_fn, f"{got}, expected (value, gradient)")
    loss, d_outputs = result
    if np.shape(d_outputs) != outputs.shape:
        _loss_broke(loss_fn, f"a gradient of shape {np.shape(d_outputs)}, expected "
                             f"{outputs.shape} (the outputs' shape)")
    value = np.asarray(loss)
    if value.ndim != 0 or value.dtype.kind not in "fiu":
        _loss_broke(loss_fn, f"a value of type {type(loss).__name__} and shape "
                             f"{value.shape}, expected a float (the mean over valid rows)")
    return float(loss), d_outputs


def _loss_broke(loss_fn, problem):
    raise broken_protocol("loss", loss_fn.name, problem)


def clip_gradients(grads, clip_norm=None, clip_value=None):
    """Clip the flat gradient buffer, or a list of them clipped together (by value, then
    by their global L2 norm; either may be off). Returns (global L2 norm before any
    clipping, whether anything was clipped)."""
    arrays = list(grads) if isinstance(grads, (list, tuple)) else [grads]
    clipped = False
    norm = None
    if clip_value:
        norm = _global_norm(arrays)
        clipped = any(g.size and np.abs(g).max() > clip_value for g in arrays)
        clip_grad_value(arrays, clip_value)
    if clip_norm:
        before = float(clip_grad_norm(arrays, clip_norm))  # norm before this clip
        norm = before if norm is None else norm
        clipped = clipped or before > clip_norm
    if norm is None:
        norm = _global_norm(arrays)
    return norm, bool(clipped)


def _global_norm(arrays) -> float:
    # numpy's norm (BLAS, in the arrays' dtype) is faster than the double sums of
    # total_norm, but its float32 squares overflow for finite gradients above ~1e19: then
    # the double sums decide.
    with np.errstate(over="ignore"):
        norm = math.sqrt(sum(float(np.linalg.norm(g)) ** 2 for g in arrays))
    return norm if math.isfinite(norm) else total_norm(arrays)


# A built-in task's state records "valid_loss": VALID_LOSS_RUN when the "loss" of its
# evaluate() is the run's --loss. A run saved without it scored every evaluation by the
# task's own loss (char-lm's and sentiment's cross-entropy, forecast's scaled mse,
# seq2seq's default loss) whatever its --loss, its best checkpoint included, and keeps
# being scored so (valid_loss_name), so that its figures and a resumed run's comparisons
# with that best stay on one loss.
VALID_LOSS_RUN = "run"


def valid_loss_name(state: dict, config: dict, default: str) -> str:
    """The loss that scores a built-in task's evaluations of a run: its --loss (else
    ``default``, the task's own loss), or ``default`` for a run whose task state does not
    record "valid_loss" (VALID_LOSS_RUN)."""
    if state.get("valid_loss") != VALID_LOSS_RUN:
        return default
    return config.get("loss") or default


class SplitLoss:
    """The run's training loss (--loss, else the task's own) over a split, for a task's
    evaluate(): its "loss" picks the best checkpoint, so it must be the loss training
    minimises. Each batch is scored as a training step scores it (value_and_grad: the
    mean over the batch's valid rows) and ``value`` is the mean over all the valid rows
    added. ``own`` is True when the run trains with the task's own loss, which a task
    may keep computing its own way (its cross-entropy also gives bits per character,
    perplexity...), so that default runs record the figures they always have."""

    def __init__(self, task, config):
        from .config import run_loss
        self.loss_fn = run_loss(task, config.get("loss"))
        self.own = self.loss_fn.name == task.loss
        self.total = 0.0  # sum over batches of mean loss * valid rows
        self.count = 0  # valid rows

    def add(self, outputs, targets, mask=None) -> None:
        """Score one batch: outputs (..., K), targets and mask (...) as training gives
        them to the loss (mask None: every row counts)."""
        rows = (int(np.prod(np.shape(outputs)[:-1])) if mask is None
                else int(np.count_nonzero(mask)))
        if not rows:  # nothing to score (a plugin's loss need not take an empty batch)
            return
        value, _ = loss_result(self.loss_fn, self.loss_fn.value_and_grad(
            outputs, targets, mask), outputs)
        self.total += value * rows
        self.count += rows

    @property
    def value(self) -> float:
        """The mean loss over every valid row added (0 for none, as the losses say)."""
        return self.total / self.count if self.count else 0.0
