"""What combining forecasts would buy, measured on finished forecast runs: the mean of
several runs' forecasts (an ensemble of seeds) and each run's forecast mixed with a
baseline's (w * model + (1 - w) * baseline, for ETS and seasonal naive), scored by the
task's own MASE on the validation and test splits, beside the baselines.

A measuring tool, not a feature: it reads the forecast task's forecasts and scoring the
way `recurrent eval` does (ForecastTask._scaled_forecasts, _baseline_forecasts, _score),
for runs trained on the same file with the same horizon.

    recurrent train forecast --data D.csv --time-column time --horizon H --seed S --out RUN_S
    python benchmarks/forecast_combine.py RUN_0 RUN_1 RUN_2

Prints one line per split: each run's MASE, the ensemble mean's, each baseline's, and for
each baseline and weight w the median over runs of the mixture's MASE.
"""
from __future__ import annotations

import numpy as np
from _quality import finished_runs

from recurrent.config import TrainingConfig

WEIGHTS = (1.0, 0.75, 0.5, 0.25, 0.0)  # the model's share in a mixture


def main(argv=None):
    task, runs = finished_runs(__doc__, "forecast", argv)
    loaded = []
    for model, info in runs:
        state = info["task_state"]
        loaded.append((model, state, task.load(state, TrainingConfig(info["config"]))))
    for split in ("valid", "test"):
        forecasts, singles, mixes, baselines = [], [], {}, {}
        for model, state, prepared in loaded:
            origins = task._origins(state, prepared, split)
            f = task._scaled_forecasts(state, prepared, origins, model.runner())
            forecasts.append(f)
            singles.append(task._score(state, prepared, origins, f)["mase"])
            for name, (g, _) in task._baseline_forecasts(state, prepared, origins).items():
                baselines[name] = task._score(state, prepared, origins, g)["mase"]
                for w in WEIGHTS:
                    mix = task._score(state, prepared, origins, w * f + (1 - w) * g)["mase"]
                    mixes.setdefault(name, {}).setdefault(w, []).append(mix)
        # the runs share data, split and scaling: their scaled forecasts are comparable
        ensemble = task._score(state, prepared, origins, np.mean(forecasts, axis=0))["mase"]
        parts = [f"{split}: runs " + " ".join(f"{m:.4f}" for m in singles),
                 f"ensemble mean {ensemble:.4f}",
                 "baselines " + " ".join(f"{n} {m:.4f}" for n, m in baselines.items())]
        for name, by_weight in mixes.items():
            if name == "naive":
                continue
            parts.append(f"w*model+(1-w)*{name}, median over runs: " + " ".join(
                f"{w}:{np.median(v):.4f}" for w, v in by_weight.items()))
        print(" | ".join(parts))


if __name__ == "__main__":
    main()
