"""Quality of `recurrent train sentiment` with its defaults on the bundled Rotten Tomatoes
snippets: test-split accuracy and macro-F1 beside the majority-class and bag-of-words
logistic-regression baselines, and the wall time of training.

Runs the real CLI (`recurrent train sentiment --out RUN --seed S`, then
`recurrent eval RUN --json`) once per seed; any extra arguments after `--` go to train.

    python benchmarks/sentiment_quality.py                      # seed 0, default threads
    python benchmarks/sentiment_quality.py --seeds 0 1 2 --threads 1
    python benchmarks/sentiment_quality.py -- --pooling max     # a non-default option

Prints one JSON line per seed and a summary line (mean test accuracy over seeds); exit code 0
if every seed reaches --target test accuracy (0.72 by default).
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time

from click.testing import CliRunner

from recurrent.cli import cli


def run_cli(args):
    result = CliRunner().invoke(cli, [str(a) for a in args])
    if result.exit_code != 0:
        sys.exit(f"recurrent {' '.join(map(str, args))} failed: {result.stderr.strip()}")
    return result.stdout


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--threads", type=int, default=None, help="kernel threads (default: auto)")
    p.add_argument("--target", type=float, default=0.72, help="test accuracy to reach")
    p.add_argument("train_args", nargs="*", help="extra `recurrent train sentiment` options")
    args = p.parse_args(argv)
    threads = ["--threads", args.threads] if args.threads else []
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            run = f"{tmp}/seed{seed}"
            t0 = time.perf_counter()
            run_cli(["train", "sentiment", "--out", run, "--seed", seed, "--quiet", "--no-plot",
                     *threads, *args.train_args])
            seconds = time.perf_counter() - t0
            report = json.loads(run_cli(["eval", run, "--json", *threads]))
            m, b = report["metrics"], report["baselines"]
            row = {"seed": seed, "train_seconds": round(seconds, 1),
                   "threads": args.threads or "auto",
                   "test_accuracy": round(m["accuracy"], 4),
                   "test_macro_f1": round(m["macro_f1"], 4),
                   "test_loss": round(m["loss"], 4),
                   "majority_accuracy": round(b["majority"]["accuracy"], 4),
                   "bow_logreg_accuracy": round(b["bow_logreg"]["accuracy"], 4),
                   "bow_logreg_macro_f1": round(b["bow_logreg"]["macro_f1"], 4),
                   "extra_args": args.train_args}
            rows.append(row)
            print(json.dumps(row), flush=True)
    accs = [r["test_accuracy"] for r in rows]
    secs = [r["train_seconds"] for r in rows]
    print(json.dumps({"summary": True, "seeds": args.seeds,
                      "mean_test_accuracy": round(sum(accs) / len(accs), 4),
                      "min_test_accuracy": min(accs),
                      "median_train_seconds": sorted(secs)[len(secs) // 2],
                      "target": args.target}))
    return 0 if min(accs) >= args.target else 1


if __name__ == "__main__":
    sys.exit(main())
