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

import json
import statistics
import sys

from _quality import parse_args, train_and_evaluate

METRICS = ("rmse", "mae", "mape", "smape", "mase")


def main(argv=None):
    args = parse_args(__doc__, "forecast", 1.0, "model test MASE to stay below", argv)
    header = "| seed | forecaster | " + " | ".join(METRICS) + " | train s |"
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    mases, seconds = [], []
    for seed, took, report in train_and_evaluate("forecast", args):
        seconds.append(took)
        rows = [("model", report["metrics"])]
        rows += [(name, b) for name, b in report["baselines"].items()]
        for name, m in rows:
            label = f"{name} (m={m['season']})" if "season" in m else name
            cells = " | ".join(f"{m[k]:.3f}" for k in METRICS)
            time_cell = f"{took:.1f}" if name == "model" else ""
            print(f"| {seed} | {label} | {cells} | {time_cell} |", flush=True)
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
