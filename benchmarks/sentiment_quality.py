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

import json
import sys

from _quality import parse_args, train_and_evaluate


def main(argv=None):
    args = parse_args(__doc__, "sentiment", 0.72, "test accuracy to reach", argv)
    rows = []
    for seed, seconds, report in train_and_evaluate("sentiment", args):
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
