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
    finished: bool = False  # the run reached its end (epochs / steps)
    # the cosine schedule's first horizon and its extensions (optim.Schedule): a resumed
    # run given another horizon continues the curve it was on (0 / []: not started or
    # not a cosine)
    lr_horizon: int = dataclasses.field(default=0, metadata={"optional": True})
    lr_extensions: list = dataclasses.field(default_factory=list,
                                            metadata={"optional": True})
    # the best evaluation's --select-by score (recurrent/selection.py; lower is better),
    # when that is not the loss
    best_score: float = dataclasses.field(default=math.inf, metadata={"optional": True})

    def to_meta(self) -> dict:
        """The fields as JSON values (an infinite best_loss as null)."""
        meta = dataclasses.asdict(self)
        for name in INFINITE_WHEN_UNSET:
            if not math.isfinite(meta[name]):
                meta[name] = None
        return meta

    @classmethod
    def from_meta(cls, meta: dict) -> "Position":
        """Inverse of to_meta; KeyError, ValueError or TypeError for a damaged ``meta``."""
        values = {}
        for field in dataclasses.fields(cls):
            if field.metadata.get("optional") and field.name not in meta:
                continue  # a checkpoint written before the field existed: its default
            value = meta[field.name]
            if field.name in INFINITE_WHEN_UNSET and value is None:
                value = math.inf
            kind = list if field.default is dataclasses.MISSING else type(field.default)
            values[field.name] = kind(value)
        return cls(**values)
