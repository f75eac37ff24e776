"""Markdown tables from several `recurrent bench --json` files (sittings), one row per cell,
size and thread setting: each side's median ms and the ratio ours / torch as the median over
the sittings, with the lowest and highest sitting's ratio when they differ.

One sitting on a shared machine can catch a slow spell on one side; the bench's interleaved
rounds absorb drift within a sitting, several sittings show how far a ratio moves between
them. Usage:

    python benchmarks/summarize_sittings.py train-*.json infer-*.json
"""
import argparse
import json
import statistics
from collections import defaultdict


def load_rows(paths):
    """{(threads, cell, (T, B, I, H)): {mode: [row, ...]}} over all files, in the order
    the bench ran them."""
    rows = defaultdict(lambda: defaultdict(list))
    for path in paths:
        with open(path) as f:
            for row in json.load(f)["rows"]:
                size = tuple(row[k] for k in "TBIH")
                rows[(str(row["threads"]), row["cell"], size)][row["mode"]].append(row)
    return rows


def cell_text(runs):
    """'ours / torch ms | ratio [lo-hi]' over the sittings of one row and mode."""
    if not runs:
        return "- | -"
    ours = statistics.median(r["ours"]["median_ms"] for r in runs)
    torch = statistics.median(r["torch"]["median_ms"] for r in runs)
    ratios = [r["ratio"] for r in runs]
    spread = f" [{min(ratios):.2f}-{max(ratios):.2f}]" if len(runs) > 1 else ""
    return f"{ours:.2f} / {torch:.2f} | {statistics.median(ratios):.2f}{spread}"


def speedups(rows, mode):
    """ours, 1 thread / 2 threads: the median over sittings of each sitting's ratio."""
    out = {}
    for (threads, cell, size), by_mode in rows.items():
        two = rows.get(("2", cell, size), {}).get(mode, [])
        if threads != "1" or not two:
            continue
        pairs = zip(by_mode[mode], two)  # the n-th file of each: the same sitting
        out[(cell, size)] = statistics.median(
            a["ours"]["median_ms"] / b["ours"]["median_ms"] for a, b in pairs)
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", help="JSON files written by recurrent bench --json")
    rows = load_rows(parser.parse_args().files)
    for threads in dict.fromkeys(k[0] for k in rows):
        print(f"\n### threads: {threads}\n")
        print("| cell | (T, B, I, H) | train: ours / torch ms | ratio | "
              "infer: ours / torch ms | ratio |")
        print("|---|---|---|---|---|---|")
        for key in (k for k in rows if k[0] == threads):
            by_mode = rows[key]
            print(f"| {key[1]} | {key[2]} | {cell_text(by_mode['train'])} | "
                  f"{cell_text(by_mode['infer'])} |")
    for mode in ("train", "infer"):
        ups = speedups(rows, mode)
        if ups:
            print(f"\n2 threads vs 1 ({mode}, ours): " + ", ".join(
                f"{cell} {size}: {x:.2f}x" for (cell, size), x in ups.items()))


if __name__ == "__main__":
    main()
