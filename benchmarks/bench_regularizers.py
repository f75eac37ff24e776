"""The training step of each built-in cell with recurrent dropout and/or zoneout against
the plain cell's, same weights and inputs, float32 (issue 16's target: <= 1.15x).

Each timed call is what a layer does per training step for one layer and direction: draw
the masks (recurrent/masks.py, numpy from a seeded generator), run the cell's forward and
backward (the kernels apply the masks). Sides run in interleaved rounds (plugins/bench.py:
run_rounds), and each ratio is the median over rounds of (variant block median / plain
block median), so load that drifts over seconds moves both sides of a round alike.

    python benchmarks/bench_regularizers.py --threads 1
    python benchmarks/bench_regularizers.py --cell lstm --config 100,32,64,128 --rounds 9

Prints a markdown table, one row per cell, size (T, B, I, H) and variant: the plain and the
variant's median ms per training step, and the ratio [IQR over rounds]; --json prints one
JSON object per row instead.
"""
from __future__ import annotations

import argparse
import json

import numpy as np

from recurrent.errors import UserError
from recurrent.masks import supported, takes_flags, variational_mask, zoneout_mask
from recurrent.plugins import get_cell
from recurrent.threads import single_threaded_blas
from recurrent_plugins.bench import Problem, _iqr, round_ratios, run_rounds

CONFIGS = ((100, 32, 64, 128), (100, 64, 128, 256))
CELLS = ("rnn_tanh", "rnn_relu", "lstm", "gru", "ln_lstm")


def train_call(problem, threads, recurrent_dropout, zoneout, rng):
    """One training step of the problem's cell with freshly drawn masks."""
    cell = problem.cell
    T, B, _, H = problem.size
    lengths = np.full(B, T, np.int64)
    none = (None,) * len(problem.states)
    # zoneout's draws as a layer makes them: flags for cells that take them
    flag_type = np.bool_ if takes_flags(cell, np.float32) else np.float32

    def call():
        masks = {}
        if recurrent_dropout:
            masks["recurrent"] = variational_mask(rng, B, H, recurrent_dropout, np.float32)
        if zoneout:
            masks["zoneout"] = tuple(zoneout_mask(rng, T, B, H, zoneout, flag_type)
                                     for _ in problem.states)
        with single_threaded_blas():
            out, _, cache = cell.forward(problem.x, problem.states, problem.params, lengths,
                                         threads, masks=masks or None)
            cell.backward(problem.d_out, none, cache, problem.grads, threads)
    return call


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cell", default=",".join(CELLS))
    p.add_argument("--config", action="append", metavar="T,B,I,H")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--recurrent-dropout", type=float, default=0.25)
    p.add_argument("--zoneout", type=float, default=0.1)
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--repeats", type=int, default=14)
    p.add_argument("--json", action="store_true", help="one JSON line per row")
    args = p.parse_args(argv)
    cells = args.cell.split(",")
    for name in cells:  # every variant draws both kinds of mask: checked before any timing
        try:
            kinds = supported(get_cell(name))
        except UserError as e:
            p.error(str(e))
        if not {"recurrent", "zoneout"} <= set(kinds):
            p.error(f"--cell {name}: the cell takes no recurrent dropout and zoneout masks "
                    f"(its mask_kinds: {', '.join(kinds) or 'none'})")
    configs = [tuple(int(v) for v in c.split(",")) for c in args.config] if args.config \
        else CONFIGS
    variants = {"recurrent-dropout": (args.recurrent_dropout, 0.0),
                "zoneout": (0.0, args.zoneout),
                "both": (args.recurrent_dropout, args.zoneout)}
    if not args.json:
        print(f"float32, {args.threads} thread(s), recurrent dropout "
              f"{args.recurrent_dropout}, zoneout {args.zoneout}; ratio = median over "
              f"{args.rounds} interleaved rounds of variant / plain\n")
        print("| cell | T, B, I, H | variant | plain ms | variant ms | ratio [IQR] |")
        print("|---|---|---|---|---|---|", flush=True)
    for name in cells:
        for size in configs:
            problem = Problem(name, *size)
            rng = np.random.default_rng(0)
            sides = [train_call(problem, args.threads, 0.0, 0.0, rng)]
            sides += [train_call(problem, args.threads, rd, zo, rng)
                      for rd, zo in variants.values()]
            timed = run_rounds(sides, args.rounds, args.repeats)
            plain_ms = 1e3 * float(np.median([t for block in timed[0] for t in block]))
            for variant, side in zip(variants, timed[1:]):
                ratios = round_ratios(side, timed[0])
                row = {"cell": name, "size": size, "threads": args.threads,
                       "variant": variant, "plain_ms": round(plain_ms, 2),
                       "variant_ms": round(1e3 * float(np.median(
                           [t for block in side for t in block])), 2),
                       "ratio": round(float(np.median(ratios)), 3),
                       "ratio_iqr": round(_iqr(ratios), 3)}
                if args.json:
                    print(json.dumps(row), flush=True)
                else:
                    print(f"| {name} | {', '.join(map(str, size))} | {variant} | "
                          f"{row['plain_ms']:.2f} | {row['variant_ms']:.2f} | "
                          f"{row['ratio']:.3f} [{row['ratio_iqr']:.3f}] |", flush=True)


if __name__ == "__main__":
    main()
