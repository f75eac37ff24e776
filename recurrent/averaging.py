"""Weight averaging (--average): evaluate and keep an average of the parameters along the
training trajectory instead of the last ones.

  off      no averaging: evaluation and checkpoints use the trained parameters.
  ema:D    exponential moving average (Polyak averaging) with decay D (0 < D < 1). After
           step n the average is sum_i w_i p_i over the parameters p_1..p_n after steps
           1..n, with w_i proportional to D^(n-i) and normalised to sum to 1: the
           zero-started EMA divided by 1 - D^n (Adam's bias correction), so the first
           steps are not pulled towards the initial parameters.
  swa:S    stochastic weight averaging: the plain mean of the parameters after every step
           from step S+1 on; up to step S the "average" is the current parameters.

Both are one update per optimizer step, avg += r_n (p_n - avg), with r_n = (1 - D) /
(1 - D^n) for ema and 1 / (number of steps averaged) for swa. The average covers the
parameters the optimizer trains (model.num_trained leading entries of the flat buffer);
parameters it keeps fixed are the same in the average. The average is float32, like the
parameters.

The trainer (recurrent/trainer.py) evaluates the averaged parameters, chooses the best
checkpoint by them and writes them as the checkpoints' "param/..." arrays, which eval,
predict, export and after_training read; last.npz also holds the trained parameters
("train/params") and the number of steps averaged (meta "average_count"), so a resumed run
continues both exactly. Every rank of a data-parallel run holds the same parameters after
each step, so every rank's average is the same too.
"""
from __future__ import annotations

import contextlib
import math

import numpy as np

OFF = "off"
KINDS = ("ema", "swa")
HELP = ("Weight averaging: off, ema:D (exponential moving average with decay D, 0<D<1) or "
        "swa:S (mean of the parameters after every step from step S+1 on); evaluation, "
        "the best checkpoint, eval, predict and export use the average.")


def parse(text) -> tuple[str, float] | None:
    """None for "off", else (kind, value); ValueError saying what is accepted."""
    text = str(text).strip().lower()
    if text == OFF:
        return None
    kind, sep, value = text.partition(":")
    expected = "expected off, ema:D with 0 < D < 1, or swa:S with S a step count >= 0"
    if kind not in KINDS or not sep:
        raise ValueError(f"--average {text!r}: {expected}")
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"--average {text!r}: {value!r} is not a number; {expected}") \
            from None
    if kind == "ema" and not 0 < number < 1:
        raise ValueError(f"--average {text!r}: the decay must be between 0 and 1 "
                         f"(exclusive), e.g. ema:0.999")
    if kind == "swa" and not (math.isfinite(number) and number >= 0
                              and number == int(number)):
        raise ValueError(f"--average {text!r}: the start must be a whole number of steps "
                         f">= 0, e.g. swa:500")
    return kind, number


def moot_within(text, total_steps: int, limit: str = "--steps",
                resumed: bool = False) -> str | None:
    """What --average ``text`` would leave undone in a run of ``total_steps`` steps, as a
    sentence naming the option, else None: swa:S averages the parameters after the steps
    from S+1 on, and when the run has at most one such step the average is the trained
    parameters (the mean of one step's parameters is that step's), so the option changes
    nothing. ``limit``: the option whose count ends the run (--steps, or --epochs when an
    epoch count ends it first), which the sentence says to raise; ``resumed``: a resumed
    run, whose --average cannot change, so raising ``limit`` is the only advice."""
    parsed = parse(text)
    if parsed is None or parsed[0] != "swa":
        return None
    start = int(parsed[1])
    if total_steps - start > 1:
        return None
    reach = ("which the run's {} step(s) do not reach" if start >= total_steps else
             "the last of the run's {} step(s) alone").format(total_steps)
    advice = f"more {limit}" if resumed else f"a smaller start, more {limit}, or --average off"
    return (f"--average swa:{start} averages from step {start + 1} on, {reach}: the "
            f"average would be the trained parameters; give {advice}")


class WeightAverage:
    """The running average of a model's trained parameters (see the module docstring)."""

    def __init__(self, kind: str, value: float, size: int):
        self.kind, self.value, self.size = kind, float(value), int(size)
        self.values = None  # (size,) float32 once a step has been averaged
        self.count = 0  # steps folded into the average (swa: from its start on)

    @classmethod
    def from_option(cls, text, model) -> "WeightAverage | None":
        parsed = parse(text)
        return None if parsed is None else cls(*parsed, model.num_trained)

    def rate(self, step: int) -> float:
        """The weight r of the parameters after ``step`` (1-based) in avg += r (p - avg);
        counts the step."""
        if self.kind == "swa" and step <= self.value:
            return 1.0  # not started: the average is the current parameters
        self.count += 1
        if self.kind == "swa":
            return 1.0 / self.count
        decay = self.value
        return (1.0 - decay) / (1.0 - decay ** self.count)

    def update(self, params: np.ndarray, step: int) -> None:
        """Fold in the parameters after optimizer step ``step``."""
        trained = params[:self.size]
        r = self.rate(step)
        if self.values is None or r == 1.0:
            self.values = np.array(trained, dtype=np.float32, copy=True)
            return
        self.values += np.float32(r) * (trained - self.values)

    @contextlib.contextmanager
    def applied(self, model):
        """Inside: the model holds the averaged parameters (unchanged before the first
        step); after: its trained parameters again, bit for bit."""
        if self.values is None:
            yield
            return
        trained = model.params.copy()
        model.params[:self.size] = self.values
        model.params_changed()
        try:
            yield
        finally:
            model.params[...] = trained
            model.params_changed()

    # -- checkpoints ------------------------------------------------------------------
    def to_meta(self) -> dict:
        return {"average_count": self.count}

    def restore(self, averaged: np.ndarray, count: int) -> None:
        """The average from a checkpoint: the averaged flat parameters and the count."""
        self.values = np.array(averaged[:self.size], dtype=np.float32, copy=True)
        self.count = int(count)
