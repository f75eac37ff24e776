"""Which validation figure picks the best checkpoint (--select-by): the one place that
reads the option, scores an evaluation and names the choice.

"loss" (the default) keeps the checkpoint with the lowest validation loss. "NAME:max" or
"NAME:min" keeps the one with the highest or lowest validation metric NAME, any number
the task's evaluate() reports (accuracy, macro_f1, mase, bleu, ...): the direction is
always spelt out, as no name says on its own whether more is better. Early stopping
(--patience) counts evaluations without improvement of the same figure.
"""
from __future__ import annotations

import math
import numbers
from typing import NamedTuple

import numpy as np

from .errors import UserError
from .figures import counted, format_value

DEFAULT = "loss"
DIRECTIONS = ("max", "min")


class Selection(NamedTuple):
    metric: str  # a key of the task's validation metrics
    direction: str  # "max" or "min"

    def score(self, metrics: dict) -> float:
        """The figure to minimise: the metric, negated for "max" (NaN when the metric is
        not a number this time, e.g. a MASE over a constant series: such an evaluation,
        as one whose figure is infinite, is never the best: improves). KeyError naming
        the metrics there are when the task reports no such number."""
        value = metrics.get(self.metric)
        if not _is_number(value):
            names = ", ".join(numeric_names(metrics))
            raise KeyError(f"--select-by {self.text}: the task's validation metrics have no "
                           f"number {self.metric!r} (they have: {names})")
        return self.value(float(value))  # the same sign flip, either way round

    def checked_score(self, metrics: dict) -> float:
        """score() for a run being trained or chosen: a metric the task does not report
        is the user's option error (UserError, one line)."""
        try:
            return self.score(metrics)
        except KeyError as e:
            raise UserError(e.args[0]) from None

    @property
    def is_loss(self) -> bool:
        """The default choice: the lowest validation loss."""
        return self == LOSS

    @property
    def text(self) -> str:
        return DEFAULT if self.is_loss else f"{self.metric}:{self.direction}"

    def value(self, score: float) -> float:
        """The metric as measured, from its score (score() negates "max" metrics)."""
        return -score if self.direction == "max" else score

    def describe(self, score: float) -> str:
        """'valid loss 0.4552' / 'valid accuracy 0.7882': the best score, as measured and
        as the evaluation lines print it (format_value: a loss below 1e-4 is not 0.0000)."""
        return f"valid {self.metric} {format_value(self.value(score))}"

    def describe_missing(self, evaluations: int) -> str:
        """What a run has in place of its best figure when that figure was never finite
        (improves): no best checkpoint, and the parameters used instead."""
        return (f"no best checkpoint (valid {self.metric} was not a finite number at any "
                f"of the {counted(evaluations, 'evaluation')}; eval, "
                f"predict and export use last.npz)")


LOSS = Selection("loss", "min")


def parse(text: str | None) -> Selection:
    """"loss" | "NAME:max" | "NAME:min" -> Selection; ValueError in one line otherwise."""
    text = DEFAULT if text is None else str(text)
    if text == DEFAULT:
        return LOSS
    name, sep, direction = text.rpartition(":")
    if not sep or not name or direction not in DIRECTIONS:
        raise ValueError(f"--select-by {text!r}: expected 'loss' or a validation metric "
                         f"with its direction, NAME:max or NAME:min (e.g. accuracy:max)")
    return Selection(name, direction)


def improves(score: float, best: float) -> bool:
    """Whether a score beats the best one so far (a best that is not finite: none yet).
    Only a finite score can: NaN compares with nothing, and an infinite one would stay
    the best for good (no later score could beat it), so neither ever makes a
    checkpoint, or a candidate, the best."""
    return math.isfinite(score) and (score < best or not math.isfinite(best))


def numeric_names(metrics: dict) -> list[str]:
    """The names of the numeric entries of a task's metrics."""
    return [k for k, v in metrics.items() if _is_number(v)]


def _is_number(value) -> bool:
    """A real number, Python's or numpy's (tasks return either), not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))
