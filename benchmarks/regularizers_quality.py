"""Recurrent dropout and zoneout against the plain default runs of char-lm and sentiment:
one real `recurrent train TASK` + `recurrent eval RUN --json` per seed and variant, through
the CLI (benchmarks/_quality.py), printing one JSON line per run and a median table.

    python benchmarks/regularizers_quality.py --seeds 0 1 2 --threads 1
    python benchmarks/regularizers_quality.py --tasks char-lm --steps 1000 --seeds 0 1 2

Variants: plain, --recurrent-dropout P, --zoneout Q (P, Q from --recurrent-dropout and
--zoneout). char-lm reports the validation loss (nats/char, lower is better), sentiment
the validation and test accuracy. --steps N cuts every run at N optimizer steps (0: the
task's default run).
"""
from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time

from _quality import run_cli


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tasks", nargs="+", default=["char-lm", "sentiment"])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--steps", type=int, default=0, help="cut each run (0: task default)")
    p.add_argument("--recurrent-dropout", type=float, default=0.25)
    p.add_argument("--zoneout", type=float, default=0.1)
    args = p.parse_args(argv)
    variants = {"plain": [],
                f"recurrent-dropout {args.recurrent_dropout}":
                    ["--recurrent-dropout", args.recurrent_dropout],
                f"zoneout {args.zoneout}": ["--zoneout", args.zoneout]}
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for task in args.tasks:
            for seed in args.seeds:   # variants interleaved: the machine's load hits all
                for name, extra in variants.items():
                    run = f"{tmp}/{task}-{seed}-{len(results)}"
                    steps = ["--steps", args.steps] if args.steps else []
                    t0 = time.perf_counter()
                    run_cli(["train", task, "--out", run, "--seed", seed, "--quiet",
                             "--no-plot", "--threads", args.threads, *steps, *extra])
                    seconds = time.perf_counter() - t0
                    valid = json.loads(run_cli(["eval", run, "--split", "valid", "--json",
                                                "--threads", args.threads]))
                    row = {"task": task, "variant": name, "seed": seed,
                           "train_seconds": round(seconds, 1),
                           "valid": valid["metrics"]}
                    if task == "sentiment":
                        test = json.loads(run_cli(["eval", run, "--json", "--threads",
                                                   args.threads]))
                        row["test"] = test["metrics"]
                    results[(task, name, seed)] = row
                    print(json.dumps(row), flush=True)
    print()
    print("| task | variant | valid loss | valid accuracy | test accuracy | train s |")
    print("|---|---|---|---|---|---|")
    for task in args.tasks:
        for name in variants:
            rows = [results[(task, name, s)] for s in args.seeds]

            def med(get):
                values = [get(r) for r in rows if get(r) is not None]
                if not values:
                    return "-"
                return (f"{statistics.median(values):.4f} "
                        f"[{min(values):.4f}-{max(values):.4f}]")
            print(f"| {task} | {name} | {med(lambda r: r['valid'].get('loss'))} | "
                  f"{med(lambda r: r['valid'].get('accuracy'))} | "
                  f"{med(lambda r: r.get('test', {}).get('accuracy'))} | "
                  f"{statistics.median(r['train_seconds'] for r in rows):.0f} |")


if __name__ == "__main__":
    main()
