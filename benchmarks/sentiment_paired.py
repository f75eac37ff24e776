"""Whether a sentiment run and its strongest baseline differ on the test split by more
than the split's sampling noise: both classify the same rows, so the comparison is
paired. Per run: each one's accuracy, the rows only one of them gets right, McNemar's
exact test on those rows (recurrent/paired.py, as `recurrent eval RUN` prints it for
every baseline) and a 95% bootstrap interval of the accuracy difference (rows resampled
with replacement, 10,000 draws, seeded).

    recurrent train sentiment [--data D.csv] --seed S --out RUN_S
    python benchmarks/sentiment_paired.py RUN_0 RUN_1 RUN_2
"""
from __future__ import annotations

import numpy as np
from _quality import finished_runs

from recurrent.paired import mcnemar

BASELINE = "nb_logreg"
DRAWS = 10_000


def main(argv=None):
    task, runs = finished_runs(__doc__, "sentiment", argv)
    rng = np.random.default_rng(0)
    for model, info in runs:
        state = info["task_state"]
        y, baselines = task.baseline_probabilities(state, "test", {})
        sequences, _ = task.split_rows(state, "test", {})
        ours = task.probabilities(model.runner(), sequences).argmax(axis=1) == y
        theirs = baselines[BASELINE].argmax(axis=1) == y
        only_ours, only_theirs = int((ours & ~theirs).sum()), int((~ours & theirs).sum())
        p = mcnemar(ours, theirs)
        rows = rng.integers(0, len(y), size=(DRAWS, len(y)))
        low, high = np.percentile(ours[rows].mean(axis=1) - theirs[rows].mean(axis=1),
                                  [2.5, 97.5])
        print(f"seed {info['config'].get('seed')}: "
              f"{len(y)} test rows, model {ours.mean():.4f}, {BASELINE} {theirs.mean():.4f}; "
              f"right only by the model {only_ours}, only by {BASELINE} {only_theirs}; "
              f"McNemar p = {p:.3f}; 95% interval of the difference [{low:+.4f}, {high:+.4f}]")


if __name__ == "__main__":
    main()
