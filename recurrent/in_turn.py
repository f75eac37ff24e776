"""Runs made of parts trained one after another (an ensemble's members, a run's
candidates): each part a complete run directory trained by the plain Trainer, a Ctrl-C
stopping before the next part, and --resume going on from the part that stopped."""
from __future__ import annotations

import os

from .checkpoint import DIVERGED, LAST, METRICS, RunDir, read_json, write_json
from .errors import Diverged
from .interrupt import Interrupt


def _from_root(world, read):
    """``read()`` on rank 0 (the rank that reads and writes files), its result sent to
    the others; they do not call it."""
    found = read() if world.is_root else None
    return world.bcast(found) if world.size > 1 else found


def started(world, path: str) -> bool:
    """Whether the part in ``path`` has a checkpoint to resume from (rank 0 looks; a part
    that never saved one starts again, without the records of its first attempt)."""
    def look():
        part = RunDir(path)
        if not part.has(LAST) and part.has(METRICS):
            os.remove(part.file(METRICS))
        return part.has(LAST)
    return _from_root(world, look)


def diverged(world, path: str) -> dict | None:
    """The summary a part left when its training diverged (its DIVERGED file), or None
    (rank 0 reads it, the others receive it)."""
    def look():
        part = RunDir(path)
        return read_json(part.file(DIVERGED)) if part.has(DIVERGED) else None
    return _from_root(world, look)


def all_diverged(paths: list[str]) -> bool:
    """Whether every part of a run (their directories, ``paths``) diverged in training,
    each leaving its DIVERGED record (train), so that no resume can make the run a
    model."""
    return bool(paths) and all(RunDir(path).has(DIVERGED) for path in paths)


def all_diverged_text(path: str, noun: str) -> str:
    """The one line for the run in ``path`` whose every ``noun`` ("candidate", "member")
    diverged (eval, predict, resume)."""
    return (f"every {noun} of {path} diverged in training, so it holds no model: start a "
            f"new run with a lower --lr or --clip-norm")


def num_params(config: dict, spec: dict) -> int:
    """The parameter count of one part's model (the parts share their model spec)."""
    from .config import TrainingConfig
    return TrainingConfig(config).build_model(spec).num_params


def validation_metrics(task, path: str) -> dict:
    """The task's validation metrics of the finished run in ``path`` (of its best
    checkpoint, with its task state as training left it)."""
    from .runs import load_model
    model, info = load_model(RunDir(path))
    return task.evaluate(info["task_state"], "valid", info["config"], model.runner())


def limit_text(summaries: list[dict]) -> str | None:
    """The note of the limit that ended the trained parts (Trainer.fit's "limit"), for
    the run's summary: the parts' own when every trained part has it, marked "for some"
    when only some have (the others reached --steps or stopped early), else None."""
    limits = [s.get("limit") for s in summaries if s["status"] != "diverged"]
    found = [text for text in limits if text]
    if not found:
        return None
    return found[0] if len(found) == len(limits) else f"{found[0]} for some"


def train(make, count: int, noun: str, world, resume: bool, quiet: bool, echo):
    """Train parts 0..count-1 in turn; ``make(k)`` -> (the part's Trainer, what sets it
    apart, e.g. "seed 7"). Returns (the parts' summaries, None), or (those so far, the
    summary of the interruption: "part" says which was cut short, e.g. "member 2/3", or
    "before" which would have started next after a Ctrl-C between parts). A part whose
    training diverges (errors.Diverged) is left out: its summary is {"status":
    "diverged", "error": the message, "step": the last step completed}, kept in the
    part's DIVERGED file so that a resume leaves it out too rather than training it
    again, and the next part trains."""
    summaries = []
    with Interrupt() as interrupt:  # a Ctrl-C between parts stops before the next
        for k in range(count):
            trainer, text = make(k)
            path = trainer.run.path
            if not quiet:
                echo(f"{noun} {k + 1}/{count} ({text}) in {path}")
            summary = diverged(world, path) if resume else None
            if summary is None:
                try:
                    summary = trainer.fit(resume=resume and started(world, path))
                except Diverged as e:  # every rank raises it at the same step
                    summary = {"status": "diverged", "error": str(e), "step": e.step}
                    if world.is_root:
                        write_json(RunDir(path).file(DIVERGED), summary)
            if summary["status"] == "diverged" and not quiet:
                echo(f"{noun} {k + 1}/{count} ({text}) left out: {summary['error']}")
            summaries.append(summary)
            stop = world.bcast(interrupt.signal) if world.size > 1 else interrupt.signal
            if summary["status"] == "interrupted":
                return summaries, {**summary, "part": f"{noun} {k + 1}/{count}"}
            if stop and k + 1 < count:  # this part ended (or diverged): none is cut short
                return summaries, {**summary, "status": "interrupted", "signal": stop,
                                   "before": f"{noun} {k + 2}/{count}"}
    return summaries, None
