"""Quality of `recurrent train forecast` on a bundled series: test-split RMSE, MAE, MAPE,
sMAPE and MASE of the model beside the naive and seasonal-naive baselines, per seed.

Runs the real CLI (`recurrent train forecast --out RUN --seed S ...`, then
`recurrent eval RUN --json`) once per seed; any extra arguments after `--` go to train.

    python benchmarks/forecast_quality.py                              # defaults: sunspots
    python benchmarks/forecast_quality.py --seeds 0 1 2 3 4 --threads 1
    python benchmarks/forecast_quality.py -- --data co2 --window 60    # weekly CO2

Prints a markdown table (one block of rows per seed: model, naive, seasonal naive) and a
summary line; exit code 0 if every seed's model MASE is below --target (1.0: more accurate
than the in-sample one-step naive forecast).
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time

from click.testing import CliRunner

from recurrent.cli import cli

METRICS = ("rmse", "mae", "mape", "smape", "mase")


def run_cli(args):
    result = CliRunner().invoke(cli, [str(a) for a in args])
    if result.exit_code != 0:
        sys.exit(f"recurrent {' '.join(map(str, args))} failed: {result.stderr.strip()}")
    return result.stdout


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--threads", type=int, default=None, help="kernel threads (default: auto)")
    p.add_argument("--target", type=float, default=1.0, help="model test MASE to stay below")
    p.add_argument("train_args", nargs="*", help="extra `recurrent train forecast` options")
    args = p.parse_args(argv)
    threads = ["--threads", args.threads] if args.threads else []
    header = "| seed | forecaster | " + " | ".join(METRICS) + " | train s |"
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    mases, seconds = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            run = f"{tmp}/seed{seed}"
            t0 = time.perf_counter()
            run_cli(["train", "forecast", "--out", run, "--seed", seed, "--quiet", "--no-plot",
                     *threads, *args.train_args])
            seconds.append(time.perf_counter() - t0)
            report = json.loads(run_cli(["eval", run, "--json", *threads]))
            rows = [("model", report["metrics"])]
            rows += [(name, b) for name, b in report["baselines"].items()]
            for name, m in rows:
                label = f"{name} (m={m['season']})" if "season" in m else name
                cells = " | ".join(f"{m[k]:.3f}" for k in METRICS)
                took = f"{seconds[-1]:.1f}" if name == "model" else ""
                print(f"| {seed} | {label} | {cells} | {took} |", flush=True)
            mases.append(report["metrics"]["mase"])
    print(json.dumps({"summary": True, "seeds": args.seeds, "threads": args.threads or "auto",
                      "extra_args": args.train_args,
                      "median_model_mase": round(statistics.median(mases), 4),
                      "max_model_mase": round(max(mases), 4),
                      "median_train_seconds": round(statistics.median(seconds), 1),
                      "target": args.target}))
    return 0 if max(mases) < args.target else 1


if __name__ == "__main__":
    sys.exit(main())
