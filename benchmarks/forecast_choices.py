"""What the forecast task's choices on the validation split would buy: per suite row, the
validation / test MASE (median of the seeds) of the default run's forecast, of the
baselines alone, of their mean with the model, of the seeds' mean forecast, and of
choice rules that pick among them on validation.

    python benchmarks/forecast_choices.py --seeds 0 1 2 --threads 1 [--rows LABEL...] [-- train options]

Each seed is one real `recurrent train forecast` run (default options, as
forecast_quality.py --suite); the candidates are scored from the saved run with the
task's own forecasts, so nothing here is tuned on the test rows: the rules read only the
validation figures, the test column is for the record.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile

import numpy as np

from _quality import run_cli
from forecast_quality import HELD_OUT, SUITE, row_options


def _forecasts(run, split, threads):
    """name -> (B, H, C) scaled forecasts of one run on one split, and (actual, observed,
    scale) to score them."""
    from recurrent.checkpoint import RunDir
    from recurrent.plugins import get_task
    from recurrent.runs import load_model
    from recurrent_plugins.forecast import windows as win
    rundir = RunDir.open(run)
    info = rundir.info()
    task = get_task(info["task"])
    model, info = load_model(rundir, "best", threads)
    state = info["task_state"]
    prepared = task.load(state, dict(info["config"]))
    origins = task._origins(state, prepared, split)
    out = {"model": task._scaled_forecasts(state, prepared, origins, model.runner())}
    for name, (forecast, _) in task._baseline_forecasts(state, prepared, origins).items():
        out[name] = forecast
    rows = win.target_rows(origins, state["horizon"])
    scale = np.asarray(state["mase_scale"]) / np.asarray(state["scaler"]["scale"])
    return out, (prepared.scaled[rows], prepared.observed[rows], scale)


def _mase(forecast, target):
    from recurrent_plugins.forecast.anchors import scaled_mase
    return scaled_mase(forecast, *target)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--rows", nargs="*", default=None, help="dataset labels' first words")
    p.add_argument("--held-out", action="store_true")
    p.add_argument("train_args", nargs="*")
    args = p.parse_args(argv)
    import forecast_data
    rows = HELD_OUT if args.held_out else SUITE
    if args.rows:
        rows = [r for r in rows if r[0].split()[0] in args.rows]
    with tempfile.TemporaryDirectory() as data, tempfile.TemporaryDirectory() as tmp:
        forecast_data.main(data)
        names = None
        for label, options, horizons in rows:
            options = row_options(options, data)
            for h in horizons:
                per_seed = []
                for seed in args.seeds:
                    run = f"{tmp}/{label.split()[0]}-{h}-{seed}"
                    run_cli(["train", "forecast", "--out", run, "--seed", seed, "--quiet",
                             "--no-plot", "--threads", args.threads, *options,
                             "--horizon", h, *args.train_args])
                    per_seed.append({s: _forecasts(run, s, args.threads)
                                     for s in ("valid", "test")})
                scores = {}  # candidate -> split -> [per seed]
                for split in ("valid", "test"):
                    mean_model = np.mean([f[split][0]["model"] for f in per_seed], axis=0)
                    for f in per_seed:
                        fc, target = f[split]
                        cands = dict(fc)
                        for base in ("ets", "seasonal_naive"):
                            if base in fc:
                                cands[f"model+{base}"] = (fc["model"] + fc[base]) / 2
                        cands["seed_mean"] = mean_model
                        for name, forecast in cands.items():
                            scores.setdefault(name, {}).setdefault(split, []).append(
                                _mase(forecast, target))
                rules = {
                    "pick_base": ["model", "naive", "seasonal_naive", "ets"],
                    "pick_all": [n for n in scores if n != "seed_mean"],
                }
                for rule, pool in rules.items():
                    pool = [n for n in pool if n in scores]
                    for split in ("valid", "test"):
                        scores.setdefault(rule, {})[split] = [
                            scores[min(pool, key=lambda n: scores[n]["valid"][i])][split][i]
                            for i in range(len(args.seeds))]
                if names is None:
                    names = list(scores)
                    print("| dataset | h | " + " | ".join(names) + " |")
                    print("|---|---|" + "---|" * len(names))
                cells = []
                for n in names:
                    s = scores.get(n)
                    cells.append("-" if s is None else
                                 f"{statistics.median(s['valid']):.3f} / "
                                 f"{statistics.median(s['test']):.3f}")
                print(f"| {label} | {h} | " + " | ".join(cells) + " |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
