"""Data-parallel training throughput: the char-lm training step at several rank x thread
layouts, and the allreduce's share of it.

    python benchmarks/bench_distributed.py                     # the table (markdown)
    python benchmarks/bench_distributed.py --models default    # only the default char-lm

For each model and layout it runs this script under `mpiexec -n RANKS` (plain python for
one rank) as a worker: the worker trains char-lm on the bundled Shakespeare through the
real Trainer (its _train_window: shard, forward, backward, allreduce, clip, Adam), WARMUP
steps untimed, then STEPS timed steps between barriers, and reports tokens/s of the
global batch and the median time of one allreduce of the gradient buffer alone. The global
batch is the same at every layout (data parallelism splits its rows).

Models: "default" is `recurrent train char-lm`'s model (LSTM 256, batch 32 x 64 steps);
"large" is a 2 x 512 LSTM at batch 64 x 64 steps.

    python benchmarks/bench_distributed.py --time-to-loss 1.6

trains the default char-lm through the CLI (`recurrent train char-lm --eval-every 100`,
`mpiexec -n RANKS` for several ranks) at each layout until its validation loss reaches
the target (or --max-steps), and reports the wall time from the run directory's creation
to the first evaluation at or below it (evaluations included, the same count for every
layout: the loss curve does not depend on the layout).
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

MODELS = {"default": {},
          "large": {"hidden": 512, "layers": 2, "batch_size": 64}}
LAYOUTS = [(1, 1), (1, 2), (2, 1)]  # (ranks, threads per rank)


def worker(model: str, threads: int, steps: int, warmup: int) -> None:
    from recurrent import distributed, plugins
    from recurrent.config import TrainingConfig

    world = distributed.world()
    task = plugins.get_task("char-lm")
    config = TrainingConfig.resolve(task, {**MODELS[model], "threads": threads,
                                           "quiet": True, "plot": False})
    config["loss"] = task.loss
    out = tempfile.mkdtemp(prefix="bench-dp-") if world.is_root else None
    try:
        _time_steps(model, threads, steps, warmup, world, task, config, out)
    finally:  # the run directory only served the trainer: none is left behind
        if out is not None:
            shutil.rmtree(out, ignore_errors=True)


def _time_steps(model, threads, steps, warmup, world, task, config, out):
    import numpy as np

    from recurrent.interrupt import Interrupt
    from recurrent.runs import parallel_trainer, start_run
    from recurrent.step import windows
    from recurrent.threads import single_threaded_blas

    trainer = parallel_trainer(task, world, lambda: start_run(
        task, config, os.path.join(out, "run"), lambda line: None, world))

    # a request state that no signal handler feeds: the timed steps are never stopped
    trainer.interrupt = Interrupt()
    batches = list(itertools.islice(trainer._epoch_batches(0), warmup + steps))
    tokens = sum(int(np.prod(np.shape(b["x"])[:2])) for b in batches[warmup:])
    with single_threaded_blas():
        for b in batches[:warmup]:
            for x, y, lengths in windows(b, 0, True):
                trainer._train_window(x, y, lengths, 1e-3)
        world.allreduce(np.zeros(1))
        start = time.perf_counter()
        for b in batches[warmup:]:
            for x, y, lengths in windows(b, 0, True):
                trainer._train_window(x, y, lengths, 1e-3)
        world.allreduce(np.zeros(1))
        elapsed = time.perf_counter() - start
        buffer = trainer.model.grads.copy()
        reduce_times = []
        for _ in range(21):
            t0 = time.perf_counter()
            world.allreduce(buffer)
            reduce_times.append(time.perf_counter() - t0)
    if world.is_root:
        print(json.dumps({"model": model, "ranks": world.size, "threads": threads,
                          "params": int(trainer.model.num_params),
                          "tokens_per_s": tokens / elapsed,
                          "step_ms": 1e3 * elapsed / steps,
                          "allreduce_ms": 1e3 * statistics.median(reduce_times)}), flush=True)


def orchestrate(models, steps, warmup) -> None:
    from recurrent.launch import mpiexec
    print(f"| model | params | ranks x threads | tokens/s | step ms | allreduce ms | "
          f"vs 1 x 1 |")
    print("|---|---|---|---|---|---|---|")
    for model in models:
        base = None
        for ranks, threads in LAYOUTS:
            cmd = [sys.executable, __file__, "--worker", model, "--threads", str(threads),
                   "--steps", str(steps), "--warmup", str(warmup)]
            if ranks > 1:
                cmd = [mpiexec(), "-n", str(ranks), *cmd]
            env = {k: v for k, v in os.environ.items() if k != "RECURRENT_NUM_THREADS"}
            out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
            r = json.loads(out.stdout.strip().splitlines()[-1])
            base = base or r["tokens_per_s"]
            print(f"| {model} | {r['params']:,} | {ranks} x {threads} | "
                  f"{r['tokens_per_s']:,.0f} | {r['step_ms']:.1f} | "
                  f"{r['allreduce_ms'] if ranks > 1 else 0:.2f} | "
                  f"{r['tokens_per_s'] / base:.2f} |", flush=True)


def time_to_loss(target: float, max_steps: int) -> None:
    from recurrent.launch import mpiexec
    print(f"| ranks x threads | steps to valid loss <= {target} | wall s | vs 1 x 1 |")
    print("|---|---|---|---|")
    base = None
    for ranks, threads in LAYOUTS:
        with tempfile.TemporaryDirectory() as tmp:
            run = os.path.join(tmp, "run")
            cmd = [sys.executable, "-m", "recurrent", "train", "char-lm", "--out", run,
                   "--threads", str(threads), "--eval-every", "100", "--steps",
                   str(max_steps), "--quiet", "--no-plot"]
            if ranks > 1:
                cmd = [mpiexec(), "-n", str(ranks), *cmd]
            env = {k: v for k, v in os.environ.items() if k != "RECURRENT_NUM_THREADS"}
            start = time.time()
            proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL)
            reached = None
            while proc.poll() is None and reached is None:
                time.sleep(0.5)
                reached = _reached(os.path.join(run, "metrics.jsonl"), target)
            if proc.poll() is None:
                proc.terminate()
            proc.wait()
            reached = reached or _reached(os.path.join(run, "metrics.jsonl"), target)
            if reached is None:
                print(f"| {ranks} x {threads} | not reached in {max_steps} | | |")
                continue
            step, when = reached
            seconds = when - start
            base = base or seconds
            print(f"| {ranks} x {threads} | {step} | {seconds:.1f} | {base / seconds:.2f} |",
                  flush=True)


def _reached(metrics: str, target: float):
    """(step, time) of the first evaluation with validation loss <= target, or None."""
    if not os.path.exists(metrics):
        return None
    with open(metrics) as f:
        for line in f:
            try:
                r = json.loads(line)
            except ValueError:
                continue
            if r.get("kind") == "eval" and r["metrics"]["loss"] <= target:
                return r["step"], r["time"]
    return None


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", choices=list(MODELS))
    parser.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--time-to-loss", type=float, default=None, metavar="LOSS")
    parser.add_argument("--max-steps", type=int, default=2000)
    args = parser.parse_args(argv)
    if args.time_to_loss is not None:
        time_to_loss(args.time_to_loss, args.max_steps)
    elif args.worker:
        worker(args.worker, args.threads, args.steps, args.warmup)
    else:
        orchestrate(args.models, args.steps, args.warmup)


if __name__ == "__main__":
    main()
