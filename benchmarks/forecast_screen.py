"""Screen a forecast option against the defaults, candidate by candidate: for each
(dataset, horizon) row of forecast_quality.py's suite and held-out rows and each seed,
train every candidate a default run chooses among (the task's candidates(): each
--window with each --inputs mode) as its own explicit run, with any extra train options
after `--`, and append one JSON line per candidate: its validation loss and MASE, its
test MASE, and the test MASE of naive, seasonal naive and ETS; or, for a candidate whose
training stops with an error (it diverged, or the row's data refuses an option), the
error. Since a default run is these candidates with the lowest validation loss kept (one
that fails left out), the choice a default run would make is simulated exactly from the
lines.

    python benchmarks/forecast_screen.py --out base.jsonl --seeds 0 1 2 [--part 0/2]
    python benchmarks/forecast_screen.py --out mae.jsonl --seeds 0 1 2 -- --loss mae
    python benchmarks/forecast_screen.py --compare base.jsonl mae.jsonl

--part K/N runs every N-th candidate from the K-th (for N processes at once); lines
already in --out are skipped, so an interrupted screen goes on where it stopped (with
the same options after `--` only). --rows fresh, fresh-2, fresh-3 or fresh-4 screens
forecast_quality.py's FRESH, FRESH_2, FRESH_3 or FRESH_4 rows instead of the suite and
held-out ones; --only NAME,NAME keeps the rows of those datasets. --compare A B prints,
per row, the medians over the seeds both files hold of the validation and test MASE of A's
simulated choice and B's, the worst seed's test MASE beside the better of naive and
seasonal naive and ETS, and the counts of rows better and worse on each split.
"""
from __future__ import annotations

import argparse
import collections
import json
import math
import os
import shutil
import statistics
import sys
import tempfile

from _quality import run_cli
from forecast_quality import SETS, only_rows, row_options, write_data

from recurrent.candidates import choose
from recurrent.plugins import get_task


def _candidates():
    """The option overrides of a default run's candidates, in the order it trains them."""
    return get_task("forecast").candidates({})


ROWS = {"suite": SETS["suite"] + SETS["held-out"],  # --rows: the fresh sets by their names
        **{name: rows for name, rows in SETS.items() if name.startswith("fresh")}}


def _rows(which: str, only):
    for label, options, horizons in only_rows(ROWS[which], only):
        for h in horizons:
            yield label.split()[0], options, h


def _done(path, extra):
    """The candidates ``path`` already holds; exits if they were run with other options."""
    if not os.path.exists(path):
        return set()
    with open(path) as f:
        lines = [json.loads(line) for line in f]
    if any(r["extra"] != extra for r in lines):
        sys.exit(f"{path} holds candidates run with other options after `--` than "
                 f"{extra}; give another --out")
    return {(r["row"], r["seed"], r["window"], r["inputs"]) for r in lines}


def screen(args, extra):
    jobs = [(name, options, h, seed, c["window"], c["inputs"])
            for seed in args.seeds for name, options, h in _rows(args.rows, args.only)
            for c in _candidates()]
    part, parts = (int(x) for x in args.part.split("/"))
    done = _done(args.out, extra)
    with tempfile.TemporaryDirectory() as tmp:
        write_data(tmp, args.rows)
        for i, (name, options, h, seed, w, inputs) in enumerate(jobs):
            if i % parts != part or (f"{name}:{h}", seed, w, inputs) in done:
                continue
            options = row_options(options, tmp)
            run = f"{tmp}/run-{i}"
            line = {"row": f"{name}:{h}", "seed": seed, "window": w, "inputs": inputs,
                    "extra": extra}
            try:
                run_cli(["train", "forecast", *options, "--horizon", h, "--seed", seed,
                         "--window", w, "--inputs", inputs, "--threads", "1", "--quiet",
                         "--no-plot", "--out", run, *extra])
            except SystemExit as e:
                if "No such option" in str(e) or "Invalid value for" in str(e):
                    raise  # a mistyped option, not a candidate that fails on its data
                line["error"] = str(e)
                print(f"{line['row']} seed {seed} w{w} {inputs}: {e}", flush=True)
            else:
                test = json.loads(run_cli(["eval", run, "--json", "--threads", "1"]))
                valid = json.loads(run_cli(["eval", run, "--json", "--split", "valid",
                                            "--threads", "1"]))
                base = test["baselines"]
                line.update({"vloss": valid["metrics"]["loss"],
                             "valid": valid["metrics"]["mase"],
                             "test": test["metrics"]["mase"],
                             **{f"{b}_test": base[b]["mase"] if b in base else None
                                for b in ("naive", "seasonal_naive", "ets")}})
                print(f"{line['row']} seed {seed} w{w} {inputs}: valid "
                      f"{line['valid']:.4f} test {line['test']:.4f}", flush=True)
            shutil.rmtree(run, ignore_errors=True)
            with open(args.out, "a") as f:
                f.write(json.dumps(line) + "\n")
    return 0


def _choices(path):
    """(row, seed) -> the candidate line a default run keeps, chosen as
    recurrent/candidates.py chooses (lowest validation loss, a tie to the earlier
    candidate, one that failed left out), for the pairs with every candidate's line and
    one that trained; and the number of the file's other pairs."""
    order = [(c["window"], c["inputs"]) for c in _candidates()]
    found = collections.defaultdict(dict)
    with open(path) as f:
        for r in map(json.loads, f):
            found[(r["row"], r["seed"])][(r["window"], r["inputs"])] = r
    chosen = {}
    for key, lines in found.items():
        if len(lines) == len(order) and any("error" not in r for r in lines.values()):
            ranked = [lines[c] for c in order]
            chosen[key] = ranked[choose([r.get("vloss", math.nan) for r in ranked])]
    return chosen, len(found) - len(chosen)


def compare(path_a, path_b):
    (a, a_left), (b, b_left) = _choices(path_a), _choices(path_b)
    rows = collections.defaultdict(list)
    for key in sorted(set(a) & set(b)):
        rows[key[0]].append((a[key], b[key]))
    print(f"A: {path_a}\nB: {path_b}")
    print(f"(row, seed) pairs left out, incomplete or with no candidate trained: "
          f"A {a_left}, B {b_left}\n")
    print("| row | seeds | valid MASE A -> B | test MASE A -> B | worst seed A -> B | "
          "better of naive, seasonal naive | ETS |")
    print("|---|---|---|---|---|---|---|")
    counts = collections.Counter()
    for row, pairs in rows.items():
        med = {k: statistics.median(p[i][s] for p in pairs)
               for k, (i, s) in {"va": (0, "valid"), "vb": (1, "valid"),
                                 "ta": (0, "test"), "tb": (1, "test")}.items()}
        worst = [max(p[i]["test"] for p in pairs) for i in (0, 1)]
        first = pairs[0][0]
        floor = min(v for v in (first["naive_test"], first["seasonal_naive_test"])
                    if v is not None)
        ets = first["ets_test"]
        counts["valid better"] += med["vb"] < med["va"]
        counts["valid worse"] += med["vb"] > med["va"]
        counts["test better"] += med["tb"] < med["ta"]
        counts["test worse"] += med["tb"] > med["ta"]
        for i, side in enumerate("AB"):
            counts[f"{side} worst seed beats the floor"] += worst[i] < floor
            counts[f"{side} median beats ETS"] += ets is not None and \
                med["tb" if i else "ta"] < ets
        print(f"| {row} | {len(pairs)} | {med['va']:.4f} -> {med['vb']:.4f} | "
              f"{med['ta']:.4f} -> {med['tb']:.4f} | {worst[0]:.4f} -> {worst[1]:.4f} | "
              f"{floor:.4f} | {'-' if ets is None else f'{ets:.4f}'} |")
    print("\n" + "; ".join(f"{k}: {v}" for k, v in counts.items()))
    return 0


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = []
    if "--" in argv:
        i = argv.index("--")
        argv, extra = argv[:i], argv[i + 1:]
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--part", default="0/1")
    parser.add_argument("--rows", choices=ROWS, default="suite")
    parser.add_argument("--only", type=lambda s: s.split(","))
    parser.add_argument("--compare", nargs=2, metavar=("A", "B"))
    args = parser.parse_args(argv)
    if args.compare:
        return compare(*args.compare)
    if not args.out:
        parser.error("give --out FILE (or --compare A B)")
    return screen(args, extra)


if __name__ == "__main__":
    sys.exit(main())
