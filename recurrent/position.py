"""Where a training run is and what it has counted so far: the part of last.npz that
lets a resumed run continue exactly where it stopped. The dataclass fields are the one
list of what is saved and restored."""
from __future__ import annotations

import dataclasses
import math

INFINITE_WHEN_UNSET = ("best_loss", "best_score")  # saved as null before any evaluation


@dataclasses.dataclass
class Position:
    epoch: int = 0  # epochs completed
    batch: int = 0  # batches of the current epoch completed
    window: int = 0  # TBPTT windows of the current batch completed
    step: int = 0  # optimizer steps taken
    best_loss: float = math.inf  # validation loss of the best evaluation so far
    bad_evals: int = 0  # evaluations since the best one
    clipped_steps: int = 0  # steps whose gradient was clipped
    loss_sum: float = 0.0  # training loss since the last "train" log record
    loss_count: int = 0
    eval_sum: float = 0.0  # training loss since the last evaluation
    eval_count: int = 0
    last_eval_step: int = -1
    # the run reached its end (epochs, steps or patience) and its last.npz was written
    # after every final file but loss.png: a resume to the same end trains nothing
    finished: bool = False
    # the cosine schedule's first horizon and its extensions (optim.Schedule): a resumed
    # run given another horizon continues the curve it was on (0 / []: not started or
    # not a cosine)
    lr_horizon: int = dataclasses.field(default=0, metadata={"optional": True})
    lr_extensions: list = dataclasses.field(default_factory=list,
                                            metadata={"optional": True})
    # the best evaluation's --select-by score (recurrent/selection.py; lower is better),
    # when that is not the loss
    best_score: float = dataclasses.field(default=math.inf, metadata={"optional": True})

    def step_epoch(self) -> int:
        """The epoch, counted from 1 as the progress line prints it, that the latest
        step was taken in (0 before the first step): metrics.jsonl's "epoch". After the
        last step of an epoch ``epoch`` already counts that epoch and batch and window
        start the next one."""
        at_epoch_start = self.batch == 0 and self.window == 0
        return self.epoch if at_epoch_start else self.epoch + 1

    def to_meta(self) -> dict:
        """The fields as JSON values (an infinite best_loss as null)."""
        meta = dataclasses.asdict(self)
        for name in INFINITE_WHEN_UNSET:
            if not math.isfinite(meta[name]):
                meta[name] = None
        return meta

    @classmethod
    def from_meta(cls, meta: dict) -> "Position":
        """Inverse of to_meta; KeyError, ValueError or TypeError for a damaged ``meta``:
        a value of another type than to_meta writes, a count below zero, or counts that
        contradict each other, which a resumed run would otherwise train from (a negative
        step count, a schedule it cannot read) or report as its result."""
        values = {}
        for field in dataclasses.fields(cls):
            if field.metadata.get("optional") and field.name not in meta:
                continue  # a checkpoint written before the field existed: its default
            value = meta[field.name]
            if field.name in INFINITE_WHEN_UNSET and value is None:
                value = math.inf
            values[field.name] = _checked(field.name, value, field.default)
        position = cls(**values)
        for count in ("clipped_steps", "loss_count", "eval_count", "last_eval_step"):
            if getattr(position, count) > position.step:
                raise ValueError(f"{count} {getattr(position, count)} exceeds step "
                                 f"{position.step}")
        return position


def _checked(name: str, value, default):
    """``value`` of the Position field ``name`` (whose default is ``default``) as saved
    by to_meta; ValueError otherwise."""
    def number(x, what):
        if isinstance(x, bool) or not isinstance(x, (int, float)) or math.isnan(x):
            raise ValueError(f"{what} is {x!r}, not a number")
        return x

    if name == "lr_extensions":  # (start step, its rate, end step) triples
        if not isinstance(value, list) or not all(
                isinstance(e, list) and len(e) == 3 for e in value):
            raise ValueError(f"lr_extensions is {value!r}, not a list of triples")
        return [[_checked("lr_extensions start", start, 0),
                 number(rate, "an lr_extensions rate"),
                 _checked("lr_extensions end", end, 0)] for start, rate, end in value]
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ValueError(f"{name} is {value!r}, not true or false")
        return value
    if isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int) or value < min(default, 0):
            raise ValueError(f"{name} is {value!r}, not a whole number >= {min(default, 0)}")
        return value
    value = float(number(value, name))
    if not math.isfinite(value) and name not in INFINITE_WHEN_UNSET:
        raise ValueError(f"{name} is {value!r}, not a finite number")
    return value
