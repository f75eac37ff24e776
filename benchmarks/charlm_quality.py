"""Time to quality of `recurrent train char-lm` with its defaults on the bundled corpus.

Runs the real trainer (recurrent.trainer) with exactly the configuration the CLI resolves
for `recurrent train char-lm` (shared defaults + the task's defaults), adding only an
evaluation cadence, and reports the training wall time until validation cross-entropy
first reaches --target nats/char (1.5 by default). Evaluation time is excluded, as in
benchmarks/charlm_torch.py (the PyTorch twin), so the two figures compare engines.

    python benchmarks/charlm_quality.py --threads 2            # stop at the target
    python benchmarks/charlm_quality.py --threads 2 --full     # the whole default run

Prints one JSON line per evaluation and a summary line; exit code 0 if the target was met.
On a shared machine the wall time swings with the load; the summary also gives the median
step time and median x steps, which resist bursts of contention.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time

from recurrent.config import TrainingConfig
from recurrent.runs import start_run
from recurrent.trainer import Trainer
from recurrent_plugins.char_lm.task import TASK


class TimedTrainer(Trainer):
    """The framework's Trainer, timing its evaluations and stopping at the target."""

    def __init__(self, *args, target, stop_at_target, **kw):
        super().__init__(*args, **kw)
        self.target, self.stop_at_target = target, stop_at_target
        self.started = None
        self.eval_seconds = 0.0
        self.reached = None  # training seconds when validation first met the target
        self.step_seconds = []  # per optimizer step: the median resists a busy machine

    def train_seconds(self):
        return time.perf_counter() - self.started - self.eval_seconds

    def evaluate(self, progress, baselines):
        train_seconds = self.train_seconds()
        t0 = time.perf_counter()
        stop = super().evaluate(progress, baselines)
        self.eval_seconds += time.perf_counter() - t0
        evals = [r for r in self.run.read_metrics() if r.get("kind") == "eval"]
        latest = float(evals[-1]["metrics"]["loss"])
        print(json.dumps({"engine": "recurrent", "step": self.position.step,
                          "epoch": self.position.epoch,
                          "train_seconds": round(train_seconds, 2),
                          "valid_loss": round(float(latest), 4)}), flush=True)
        if self.reached is None and latest <= self.target:
            self.reached = train_seconds
            return True if self.stop_at_target else stop
        return stop

    def _train_window(self, *args, **kwargs):  # the step timed, whatever it takes
        t0 = time.perf_counter()
        result = super()._train_window(*args, **kwargs)
        self.step_seconds.append(time.perf_counter() - t0)
        return result

    def fit(self, resume=False):
        self.started = time.perf_counter()
        return super().fit(resume)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--target", type=float, default=1.5, help="validation nats/char to reach")
    p.add_argument("--eval-every", type=int, default=250, help="steps between evaluations")
    p.add_argument("--full", action="store_true", help="train the whole default run")
    p.add_argument("--out", default=None, help="run directory (default: a temporary one)")
    args = p.parse_args(argv)

    config = TrainingConfig.resolve(TASK, {"threads": args.threads, "eval_every": args.eval_every,
                                   "quiet": True})
    config["loss"] = TASK.loss
    out = args.out or tempfile.mkdtemp(prefix="charlm-quality-") + "/run"
    first = start_run(TASK, config, out, echo=print)
    trainer = TimedTrainer(TASK, first.run, echo=print, target=args.target,
                           stop_at_target=not args.full)
    summary = trainer.fit()
    median = statistics.median(trainer.step_seconds)
    keys = ("cell", "hidden", "layers", "seq_len", "batch_size", "lr", "schedule", "epochs")
    print(json.dumps({"engine": "recurrent", "threads": args.threads, "target": args.target,
                      "reached": trainer.reached is not None,
                      "seconds_to_target": trainer.reached, "steps": summary["step"],
                      "train_seconds": round(trainer.train_seconds(), 2),
                      "median_step_ms": round(1000 * median, 2),
                      "median_seconds_to_target": round(median * summary["step"], 1)
                      if trainer.reached is not None else None,
                      "best_valid_loss": summary["best_loss"], "run": out,
                      **{k: config[k] for k in keys}}), flush=True)
    return 0 if trainer.reached is not None else 1


if __name__ == "__main__":
    sys.exit(main())
