"""Whether forecast runs and their baselines differ on the test split by more than the
split's noise: per run, the task's paired tests (ForecastTask.paired, recurrent/paired.py:
the Diebold-Mariano test of equal MASE over the split's windows, with an EWC long-run
variance) against naive, seasonal naive and ETS, one line per run. `recurrent eval RUN`
prints the same tests for one run under its report; this script lines up several
seeds' runs.

    recurrent train forecast --data D.csv --time-column time --horizon H --seed S --out RUN_S
    python benchmarks/forecast_paired.py RUN_0 RUN_1 RUN_2
"""
from __future__ import annotations

from _quality import finished_runs


def main(argv=None):
    task, runs = finished_runs(__doc__, "forecast", argv)
    for model, info in runs:
        state, config = info["task_state"], info["config"]
        metrics = task.evaluate(state, "test", config, model.runner())
        baselines = task.baselines(state, "test", config)
        tests = task.paired(state, "test", config, model.runner())
        windows = next(iter(tests.values()))["items"]
        print(f"seed {config.get('seed')}: {windows} tested windows of {metrics['windows']}, "
              f"h={state['horizon']}, model {metrics['mase']:.3f}; " + "; ".join(
                  f"{name} {baselines[name]['mase']:.3f} (difference {r['difference']:+.3f}, "
                  f"{_p(r['p'])})" for name, r in tests.items()), flush=True)


def _p(p):
    return "no test" if p is None else f"p = {p:.3f}"


if __name__ == "__main__":
    main()
