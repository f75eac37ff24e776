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
import sys
from collections import defaultdict


def load_rows(paths):
    """{(threads, precisions, cell, (T, B, I, H)): {mode: [row, ...]}} over all files, in
    the order the bench ran them, each row with "sitting": the index of its file.
    precisions is "" for recurrent float32 against torch float32, else e.g. "recurrent
    int8, torch fp32": rows of other precisions are summarised apart, never as one. Rows
    without a torch side (--vs none or --vs CELL, a cell torch lacks) are left out;
    returns (rows, how many were left out, the files of runs that stopped early as {path:
    their error}: such a file holds only the rows measured before the stop, so its sitting
    is missing from the others). A file that is not a `recurrent bench --json` result is a
    ValueError naming it."""
    rows = defaultdict(lambda: defaultdict(list))
    left_out = 0
    incomplete = {}
    for sitting, path in enumerate(paths):
        try:
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
        except OSError as e:
            raise ValueError(f"{path}: cannot read it ({e.strerror})") from None
        except ValueError as e:
            raise ValueError(f"{path}: not a recurrent bench --json result ({e})") from None
        found = data.get("rows") if isinstance(data, dict) else None
        if not isinstance(found, list):
            raise ValueError(f"{path}: not a recurrent bench --json result (no rows)")
        if data.get("error"):
            incomplete[path] = data["error"]
        for row in found:
            if "torch" not in row:
                left_out += 1
                continue
            ours, theirs = row.get("precision", "fp32"), row.get("torch_precision", "fp32")
            precisions = ("" if (ours, theirs) == ("fp32", "fp32")
                          else f"recurrent {ours}, torch {theirs}")
            size = tuple(row[k] for k in "TBIH")
            rows[(str(row["threads"]), precisions, row["cell"], size)][row["mode"]].append(
                {**row, "sitting": sitting})
    return rows, left_out, incomplete


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
    """ours, 1 thread / 2 threads: the median over sittings of each sitting's ratio (a
    sitting that has only one of the two rows, e.g. one the bench stopped early, has none)."""
    out = {}
    for (threads, precisions, cell, size), by_mode in rows.items():
        two = {r["sitting"]: r
               for r in rows.get(("2", precisions, cell, size), {}).get(mode, [])}
        ratios = [r["ours"]["median_ms"] / two[r["sitting"]]["ours"]["median_ms"]
                  for r in by_mode[mode] if r["sitting"] in two]
        if threads != "1" or not ratios:
            continue
        label = f" ({precisions})" if precisions else ""
        out[(cell, size, label)] = statistics.median(ratios)
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", help="JSON files written by recurrent bench --json")
    try:
        rows, left_out, incomplete = load_rows(parser.parse_args().files)
    except ValueError as e:
        sys.exit(f"error: {e}")
    for path, error in incomplete.items():
        print(f"{path}: incomplete sitting (the bench stopped: {error}); its rows are "
              f"summarised, the rows it did not reach have one sitting fewer", file=sys.stderr)
    if left_out:
        print(f"left out {left_out} row(s) timed without torch (--vs none, --vs CELL or a "
              f"cell torch lacks)", file=sys.stderr)
    for table in dict.fromkeys(k[:2] for k in rows):
        threads, precisions = table
        print(f"\n### threads: {threads}" + (f" ({precisions})" if precisions else "") + "\n")
        print("| cell | (T, B, I, H) | train: ours / torch ms | ratio | "
              "infer: ours / torch ms | ratio |")
        print("|---|---|---|---|---|---|")
        for key in (k for k in rows if k[:2] == table):
            by_mode = rows[key]
            print(f"| {key[2]} | {key[3]} | {cell_text(by_mode['train'])} | "
                  f"{cell_text(by_mode['infer'])} |")
    for mode in ("train", "infer"):
        ups = speedups(rows, mode)
        if ups:
            print(f"\n2 threads vs 1 ({mode}, ours): " + ", ".join(
                f"{cell} {size}{label}: {x:.2f}x" for (cell, size, label), x in ups.items()))


if __name__ == "__main__":
    main()
