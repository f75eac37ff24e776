"""Throwaway task plugins for the trainer and CLI tests, on small generated data with a
learnable signal. ``registered()`` adds them (and the plain-numpy reference cells under
"ref_*" names, so these tests do not depend on the compiled kernels) and always removes
them again.

  toy-lm    next token of a noisy period-5 cycle; tokens in, sequence out, stateful streams
            (reset only at an epoch's first batch), cross_entropy
  toy-sign  is the sum of a variable-length sequence positive? features in, --pooling
            last (default), mean or max, cross_entropy, lengths
  toy-wave  next value of a noisy sine wave; features in, sequence out, mse; --spike-at B
            puts an infinite target into batch B (a non-finite loss)

--interrupt-at B (every task) sends this process SIGINT before yielding batch B of epoch 0:
a real Ctrl-C at a known point.
"""
from __future__ import annotations

import contextlib
import math
import signal

import click
import numpy as np
from helpers import registered_plugin

import recurrent
from recurrent import plugins
from recurrent.errors import UserError
from recurrent.reference import get_reference_cell

PERIOD = 5


class _RefCell:
    """A reference cell under another registry name (the object is otherwise unchanged)."""

    def __init__(self, cell, name):
        self._cell, self.name = cell, name

    def __getattr__(self, attr):
        return getattr(self._cell, attr)


def _interrupt_hook(config, epoch_rng_used, index):
    if config.get("interrupt_at") is not None and index == config["interrupt_at"] \
            and epoch_rng_used:
        signal.raise_signal(signal.SIGINT)


def _first_epoch(rng, seed):
    """True when rng is epoch 0's generator of this seed (the trainer seeds [seed, epoch])."""
    probe = np.random.default_rng([seed, 0]).bit_generator.state["state"]["state"]
    return rng is not None and rng.bit_generator.state["state"]["state"] == probe


class ToyLM:
    name = "toy-lm"
    help = "Test task: next token of a noisy period-5 cycle."
    loss = "cross_entropy"

    def options(self):
        return [click.Option(["--length"], type=int, default=1200, help="Stream length."),
                click.Option(["--noise"], type=float, default=0.1, help="Random-token rate."),
                click.Option(["--interrupt-at"], type=int, default=None)]

    def defaults(self):
        return {"cell": "ref_gru", "hidden": 8, "seq_len": 10, "batch_size": 4, "epochs": 2,
                "lr": 0.05, "log_every": 5, "plot": False}

    def prepare(self, config):
        if config["length"] < 100:
            raise UserError(f"--length must be >= 100, got {config['length']}")
        return {"length": config["length"], "noise": config["noise"], "seed": config["seed"]}

    def _stream(self, state):
        rng = np.random.default_rng(state["seed"])
        ids = np.arange(state["length"]) % PERIOD
        noisy = rng.random(state["length"]) < state["noise"]
        ids[noisy] = rng.integers(0, PERIOD, noisy.sum())
        cut = int(state["length"] * 0.8)
        return ids[:cut], ids[cut:]

    def model_spec(self, state, config):
        return {"input": "tokens", "vocab_size": PERIOD, "embed_dim": 3, "output": "sequence",
                "output_size": PERIOD}

    def batches(self, state, split, config, rng):
        train, valid = self._stream(state)
        ids = train if split == "train" else valid
        first = _first_epoch(rng, config["seed"])
        B, T = config["batch_size"], config["seq_len"]
        per_row = (len(ids) - 1) // B // T * T
        offset = int(rng.integers(0, len(ids) - 1 - B * per_row + 1)) if rng else 0
        x = ids[offset:offset + B * per_row].reshape(B, per_row)
        y = ids[offset + 1:offset + 1 + B * per_row].reshape(B, per_row)
        for w in range(per_row // T):
            _interrupt_hook(config, first, w)
            cols = slice(w * T, (w + 1) * T)
            yield {"x": np.ascontiguousarray(x[:, cols].T), "y": np.ascontiguousarray(y[:, cols].T),
                   "lengths": None, "reset": w == 0}

    def evaluate(self, state, split, config, model):
        _, valid = self._stream(state)
        logits, _ = model.forward(valid[:-1, None])  # (N, 1, V)
        logits = logits[:, 0].astype(np.float64)
        shifted = logits - logits.max(axis=1, keepdims=True)
        logp = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        target = valid[1:]
        return {"loss": float(-logp[np.arange(len(target)), target].mean()),
                "accuracy": float((logits.argmax(axis=1) == target).mean())}

    def baselines(self, state, split, config):
        return {"uniform": {"loss": math.log(PERIOD), "accuracy": 1 / PERIOD}}

    def predict_options(self):
        return [click.Option(["--count"], type=click.IntRange(min=1), default=8),
                click.Option(["--start"], type=click.IntRange(0, PERIOD - 1), default=0)]

    def predict(self, state, config, model, options):
        token, h = np.array([options["start"]]), None
        out = []
        for _ in range(options["count"]):
            logits, h = model.step(token, h)
            token = logits.argmax(axis=1)
            out.append(str(int(token[0])))
        yield " ".join(out)


class ToySign:
    name = "toy-sign"
    help = "Test task: is the sum of a variable-length sequence positive?"
    loss = "cross_entropy"

    def options(self):
        return [click.Option(["--samples"], type=int, default=192),
                click.Option(["--pooling"], type=click.Choice(["last", "mean", "max"]),
                             default="last"),
                click.Option(["--interrupt-at"], type=int, default=None)]

    def defaults(self):
        return {"cell": "ref_gru", "hidden": 8, "batch_size": 16, "epochs": 3, "lr": 0.05,
                "plot": False}

    def prepare(self, config):
        return {"samples": config["samples"], "seed": config["seed"]}

    def _data(self, state):
        rng = np.random.default_rng(state["seed"] + 1)
        n, T = state["samples"], 8
        lengths = rng.integers(2, T + 1, n)
        x = rng.standard_normal((T, n, 1)).astype(np.float32)
        x *= (np.arange(T)[:, None] < lengths)[:, :, None]
        y = (x[:, :, 0].sum(axis=0) > 0).astype(np.int64)
        return x, lengths, y

    def model_spec(self, state, config):
        return {"input": "features", "input_size": 1,
                "output": config.get("pooling") or "last", "output_size": 2}

    def batches(self, state, split, config, rng):
        first = _first_epoch(rng, config["seed"])
        x, lengths, y = self._data(state)
        cut = int(len(y) * 0.75)
        rows = np.arange(cut) if split == "train" else np.arange(cut, len(y))
        if rng is not None:
            rows = rng.permutation(rows)
        B = config["batch_size"]
        for i, start in enumerate(range(0, len(rows), B)):
            _interrupt_hook(config, first, i)
            r = rows[start:start + B]
            yield {"x": np.ascontiguousarray(x[:, r]), "lengths": lengths[r], "y": y[r]}

    def evaluate(self, state, split, config, model):
        total, correct, n = 0.0, 0, 0
        for batch in self.batches(state, "valid", config, None):
            logits, _ = model.forward(batch["x"], lengths=batch["lengths"])
            logits = logits.astype(np.float64)
            logp = logits - np.logaddexp(logits[:, :1], logits[:, 1:])
            total -= logp[np.arange(len(batch["y"])), batch["y"]].sum()
            correct += int((logits.argmax(1) == batch["y"]).sum())
            n += len(batch["y"])
        # numpy scalars on purpose: tasks often return them; logs and JSON must cope
        return {"loss": np.float64(total / n), "accuracy": np.float32(correct / n),
                "count": np.int64(n)}

    def baselines(self, state, split, config):
        _, _, y = self._data(state)
        p = y[int(len(y) * 0.75):].mean()
        return {"majority": {"accuracy": float(max(p, 1 - p))}}

    def predict_options(self):
        return [click.Argument(["values"], nargs=-1, type=float)]

    def predict(self, state, config, model, options):
        values = np.array(options["values"], np.float32)
        if values.size == 0:
            raise UserError("give at least one value")
        logits, _ = model.forward(values[:, None, None])
        yield "positive" if logits[0].argmax() == 1 else "negative"


class ToyWave:
    name = "toy-wave"
    help = "Test task: next value of a noisy sine wave."
    loss = "mse"

    def options(self):
        return [click.Option(["--spike-at"], type=int, default=None),
                click.Option(["--interrupt-at"], type=int, default=None)]

    def defaults(self):
        return {"cell": "ref_lstm", "hidden": 6, "batch_size": 4, "seq_len": 20, "epochs": 2,
                "lr": 0.03, "plot": False}

    def prepare(self, config):
        return {"seed": config["seed"]}

    def model_spec(self, state, config):
        return {"input": "features", "input_size": 1, "output": "sequence", "output_size": 1}

    def _series(self, state, n=801):
        rng = np.random.default_rng(state["seed"] + 2)
        t = np.arange(n)
        return (np.sin(t * 2 * np.pi / 16) + 0.05 * rng.standard_normal(n)).astype(np.float32)

    def batches(self, state, split, config, rng):
        first = _first_epoch(rng, config["seed"])
        s = self._series(state)
        s = s[:640] if split == "train" else s[640:]
        T, B = config["seq_len"], config["batch_size"]
        starts = np.arange(0, len(s) - T - 1, T)
        if rng is not None:
            starts = rng.permutation(starts)
        for i, begin in enumerate(range(0, len(starts) - B + 1, B)):
            _interrupt_hook(config, first, i)
            idx = starts[begin:begin + B][None, :] + np.arange(T)[:, None]  # (T, B)
            y = s[idx + 1][:, :, None].copy()
            if config.get("spike_at") is not None and i == config["spike_at"] and first:
                y[0, 0, 0] = np.inf
            yield {"x": s[idx][:, :, None].copy(), "y": y, "lengths": None}

    def evaluate(self, state, split, config, model):
        errors = []
        for batch in self.batches(state, "valid", config, None):
            out, _ = model.forward(batch["x"])
            errors.append(((out - batch["y"]) ** 2).ravel())
        return {"loss": float(np.concatenate(errors).mean())}

    def baselines(self, state, split, config):
        s = self._series(state)[640:]
        return {"last-value": {"loss": float(((s[1:] - s[:-1]) ** 2).mean())}}

    def predict_options(self):
        return []

    def predict(self, state, config, model, options):
        s = self._series(state)[-40:]
        out, _ = model.forward(s[:, None, None])
        yield f"{float(out[-1, 0, 0]):.4f}"


class SpikeInLaterMembers(ToyWave):
    """toy-wave whose training targets hold an infinity in batch 2 for every member of an
    ensemble but the first (a member's seed is not the run's): member 2 diverges at step
    3, member 1 does not."""

    def batches(self, state, split, config, rng):
        for i, batch in enumerate(super().batches(state, split, config, rng)):
            if split == "train" and i == 2 and config["seed"] != state["seed"]:
                batch["y"][0, 0, 0] = np.inf
            yield batch


class _Plugin:
    """The plugin object: registers the three tasks and the reference cells."""

    @recurrent.hookimpl
    def register_tasks(self, register):
        for task in (ToyLM(), ToySign(), ToyWave()):
            register(task)

    @recurrent.hookimpl
    def register_cells(self, register):
        for name in ("gru", "lstm"):
            register(_RefCell(get_reference_cell(name), f"ref_{name}"))


PLUGIN_NAME = "test-train-toys"


@contextlib.contextmanager
def registered():
    with registered_plugin(_Plugin(), PLUGIN_NAME):
        yield


def resume_uninterrupted(path, task_name):
    """The Trainer of the run at ``path`` resumed with its --interrupt-at cleared (so the
    resumed run trains to its end), not yet fitted."""
    from recurrent.checkpoint import RunDir
    from recurrent.runs import resume_run
    run = RunDir.open(str(path))
    config = run.info()["config"]
    config["interrupt_at"] = None
    run.update_config(config)
    return resume_run(plugins.get_task(task_name), run, echo=lambda line: None)
