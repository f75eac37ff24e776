"""What an ensemble of separately trained sentiment runs scores: each run's accuracy and
macro-F1 and those of their combination (recurrent.ensemble.EnsembleModel: the mean of
the runs' class probabilities), on the validation and test splits, for runs trained on
the same file with the same split. `recurrent train sentiment --ensemble K` trains such
an ensemble as one run; this script combines runs that already exist.

    recurrent train sentiment [--data D.csv] --ensemble 1 --seed S --out RUN_S
    python benchmarks/sentiment_ensemble.py RUN_0 RUN_1 RUN_2
"""
from __future__ import annotations

from _quality import finished_runs

from recurrent.ensemble import EnsembleModel
from recurrent.plugins import get_loss


def main(argv=None):
    task, runs = finished_runs(__doc__, "sentiment", argv)
    models = [model for model, _ in runs]
    state, config = runs[0][1]["task_state"], runs[0][1]["config"]
    ensemble = EnsembleModel(models, get_loss(config.get("loss") or task.loss))
    for split in ("valid", "test"):
        singles = [task.evaluate(info["task_state"], split, {}, model.runner())
                   for model, info in runs]
        mean = task.evaluate(state, split, {}, ensemble.runner())
        print(f"{split}: runs accuracy " + " ".join(f"{m['accuracy']:.4f}" for m in singles)
              + " macro_f1 " + " ".join(f"{m['macro_f1']:.4f}" for m in singles)
              + f" | ensemble of {len(models)}: accuracy {mean['accuracy']:.4f} "
                f"macro_f1 {mean['macro_f1']:.4f}")


if __name__ == "__main__":
    main()
