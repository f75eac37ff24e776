"""What the task quality scripts (sentiment_quality.py, forecast_quality.py) share: the
command line (--seeds, --threads, --target, extra train options after `--`) and one real
`recurrent train TASK` + `recurrent eval RUN --json` per seed, timed; and for the scripts
that combine finished runs (sentiment_ensemble.py, forecast_combine.py), their loading.

Imported as `from _quality import ...`: running `python benchmarks/X_quality.py` puts
benchmarks/ on sys.path.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time

from click.testing import CliRunner

from recurrent.cli import cli


def run_cli(args) -> str:
    """`recurrent ARGS...` in this process; its stdout, or exit with its one-line error."""
    result = CliRunner().invoke(cli, [str(a) for a in args])
    if result.exit_code != 0:
        sys.exit(f"recurrent {' '.join(map(str, args))} failed: {result.stderr.strip()}")
    return result.stdout


def parse_args(doc: str, task: str, target: float, target_help: str, argv=None):
    """--seeds (default [0]), --threads (default: recurrent's choice), --target, and the
    extra `recurrent train TASK` options given after `--`."""
    p = argparse.ArgumentParser(
        description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--threads", type=int, default=None, help="kernel threads (default: auto)")
    p.add_argument("--target", type=float, default=target, help=target_help)
    p.add_argument("train_args", nargs="*", help=f"extra `recurrent train {task}` options")
    return p.parse_args(argv)


def train_and_evaluate(task: str, args, valid: bool = False, keep: bool = False):
    """Per seed of ``args.seeds``: train TASK in a temporary run directory, then evaluate it
    on the test split. Yields (seed, training wall seconds, the `eval --json` report); with
    ``valid``, the report's "valid" entry is the `eval --split valid --json` report; with
    ``keep`` the report also has "run", the run directory (valid until the next seed)."""
    threads = ["--threads", args.threads] if args.threads else []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            run = f"{tmp}/seed{seed}"
            t0 = time.perf_counter()
            run_cli(["train", task, "--out", run, "--seed", seed, "--quiet", "--no-plot",
                     *threads, *args.train_args])
            seconds = time.perf_counter() - t0
            report = json.loads(run_cli(["eval", run, "--json", *threads]))
            if valid:
                report["valid"] = json.loads(run_cli(["eval", run, "--split", "valid",
                                                      "--json", *threads]))
            if keep:
                report["run"] = run
            yield seed, seconds, report


def finished_runs(doc: str, task_name: str, argv=None):
    """(task, [(model, info), ...]) of the run directories named on the command line, each
    loaded as `recurrent eval` loads it (best checkpoint, eval mode, 1 thread)."""
    from recurrent.checkpoint import RunDir
    from recurrent.plugins import get_task
    from recurrent.runs import load_model
    parser = argparse.ArgumentParser(
        description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+",
                        help=f"{task_name} run directories (same data, split and options)")
    args = parser.parse_args(argv)
    return get_task(task_name), [load_model(RunDir.open(p), threads=1) for p in args.runs]
