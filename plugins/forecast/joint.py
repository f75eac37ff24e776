"""The learned smoothing trained with the network (--model esrnn --es-train joint), as in
ES-RNN: the smoothing's parameters theta (smoothing.py, per value column) are parameters
of the run (Task.trained_params: recurrent/task_params.py), updated by the network's
optimizer in the same step, from the gradient of the network's training loss.

Dimension legend: N rows, C value columns, W window, H horizon, B windows, K table steps.

theta reaches the loss two ways, and the gradient takes both back to it:
  the anchor: the head's target is y - anchor, the anchor the smoothing's forecast from
    the origin (a row of its forecast table: ets.origin_index); for a loss of
    outputs - targets (mse, mae) d loss / d anchor = d loss / d outputs;
  the inputs: the hybrid's C input columns hold each window step's deseasonalised value
    less the level at the origin (windows.model_inputs); the model's backward gives
    d loss / d inputs.
Both are scattered onto the smoothing's outputs (forecast table, level, deseasonalised
series) at the rows each value was read from (windows.known_rows, for gaps), and the
recursion's reverse pass (smoothing.components_grad) takes them to theta.

--es-train first keeps theta as smoothing.fit learned it on the training rows before the
network (a fit of the smoothing's own multi-step error), fixed while the network trains;
joint starts from that fit.
"""
from __future__ import annotations

import numpy as np

from recurrent.errors import UserError

from . import anchors as anc
from . import ets
from . import smoothing
from . import windows as win

ES_TRAIN = ("joint", "first")  # --es-train
DEFAULT = "joint"
LOSSES = ("mse", "mae")  # losses of outputs - targets: d / d targets = -d / d outputs


def param_name(column: int) -> str:
    return f"es.{column}"


def joint(state: dict) -> bool:
    """Whether a run trains its learned smoothing with the network."""
    return state.get("model") == "esrnn" and state.get("es_train", "first") == "joint"


def check_loss(es_train: str, loss: str | None) -> None:
    """UserError when joint training meets a loss it cannot differentiate through the
    targets (one that is not a function of outputs - targets)."""
    if es_train == "joint" and loss not in (None, *LOSSES):
        raise UserError(f"--es-train joint differentiates the loss through its targets: "
                        f"use --loss {' or '.join(LOSSES)} (or --es-train first)")


def trained_params(state: dict) -> dict:
    """{"es.<column>": theta float32} of a joint run's columns with a fit, else {}."""
    if not joint(state):
        return {}
    return {param_name(c): np.asarray(f["theta"], np.float32)
            for c, f in enumerate(state["es"]) if f is not None}


def with_params(state: dict, values: dict) -> dict:
    """The state with the given theta values in its learned smoothing fits (JSON-able
    floats; alpha and gamma follow)."""
    if not values or "es" not in state:
        return state
    fits = []
    for c, f in enumerate(state["es"]):
        value = values.get(param_name(c))
        if f is None or value is None:
            fits.append(f)
            continue
        theta = [float(v) for v in np.asarray(value, np.float64).reshape(-1)]
        fits.append({**f, "theta": theta, "alpha": smoothing._sigmoid(theta[0]),
                     "gamma": smoothing._sigmoid(theta[1])})
    return {**state, "es": fits}


def es_weights(state: dict) -> np.ndarray:
    """(H,) the learned smoothing's share of each step's anchor ("es": 1, "es+x": 1/2)."""
    anchors = anc.run_anchors(state) or []
    return np.array([a.split("+").count("es") / len(a.split("+")) for a in anchors],
                    dtype=np.float64)


def theta_grads(scaled: np.ndarray, last_seen: np.ndarray, origins: np.ndarray,
                state: dict, d_outputs: np.ndarray, d_inputs: np.ndarray | None) -> dict:
    """{"es.<column>": d loss / d theta} for the windows at ``origins`` (B,), from the
    gradients on the model's outputs d_outputs (B, H*C) and inputs d_inputs (W, B, I)
    of those windows, made with ``state``'s fits; scaled, last_seen (N, C) of the
    series the windows read."""
    n, columns = scaled.shape
    horizon = int(state["horizon"])
    d_anchor = (np.asarray(d_outputs, np.float64).reshape(len(origins), horizon, columns)
                * es_weights(state)[None, :, None])  # (B, H, C)
    index, depth = ets.origin_index(last_seen, origins, horizon)
    d_table = np.zeros((n, depth, columns))
    np.add.at(d_table, index, d_anchor)
    d_level, d_deseason = np.zeros((n, columns)), np.zeros((n, columns))
    if d_inputs is not None and win.hybrid_model(state):
        start = win.hybrid_offset(state)
        d_rest = np.asarray(d_inputs, np.float64)[:, :, start:start + columns]
        d_rest = d_rest.transpose(1, 0, 2)  # (B, W, C)
        cols = np.arange(columns)[None, None, :]
        read = win.known_rows(last_seen, win.input_rows(origins, state["window"]), origins)
        np.add.at(d_deseason, (read, cols), d_rest)
        at_origin = win.known_rows(last_seen, origins[:, None], origins)  # (B, 1, C)
        np.add.at(d_level, (at_origin, cols), -d_rest.sum(axis=1, keepdims=True))
    grads = smoothing.components_grad(scaled, state["es"], d_table, d_level, d_deseason)
    return {param_name(c): g for c, g in enumerate(grads) if g is not None}


def batch_backward(scaled: np.ndarray, last_seen: np.ndarray, origins: np.ndarray,
                   state: dict):
    """A training batch's "backward" (recurrent/task_params.py): (d_outputs, d_inputs,
    rows) -> theta_grads of the batch's windows ``rows``."""
    def backward(d_outputs, d_inputs, rows):
        return theta_grads(scaled, last_seen, origins[rows], state, d_outputs, d_inputs)
    return backward
