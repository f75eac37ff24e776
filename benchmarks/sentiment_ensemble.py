"""What an ensemble of seeds would buy the sentiment task, measured on finished runs: each
run's accuracy and the accuracy and macro-F1 of the mean of the runs' class
probabilities, on the validation and test splits.

A measuring tool, not a feature: it reads the runs' probabilities the way `recurrent
eval` does (SentimentTask.probabilities on the run's own split), for runs trained on the
same file with the same split.

    recurrent train sentiment [--data D.csv] --seed S --out RUN_S
    python benchmarks/sentiment_ensemble.py RUN_0 RUN_1 RUN_2
"""
from __future__ import annotations

import numpy as np
from _quality import finished_runs

from recurrent_plugins.sentiment.metrics import classification_metrics


def main(argv=None):
    task, runs = finished_runs(__doc__, "sentiment", argv)
    loaded = [(model, info["task_state"]) for model, info in runs]
    for split in ("valid", "test"):
        probs, singles = [], []
        for model, state in loaded:
            sequences, y = task.split_rows(state, split, {})
            p = task.probabilities(model, sequences)  # (N, K)
            probs.append(p)
            singles.append(classification_metrics(y, p.argmax(axis=1), state["classes"]))
        mean = classification_metrics(y, np.mean(probs, axis=0).argmax(axis=1),
                                      state["classes"])
        print(f"{split}: runs accuracy " + " ".join(f"{m['accuracy']:.4f}" for m in singles)
              + " macro_f1 " + " ".join(f"{m['macro_f1']:.4f}" for m in singles)
              + f" | ensemble of {len(loaded)}: accuracy {mean['accuracy']:.4f} "
                f"macro_f1 {mean['macro_f1']:.4f}")


if __name__ == "__main__":
    main()
