"""A plugin cell's training step against the built-in LSTM's, interleaved: the example
plugin's compiled peephole LSTM (examples/recurrent-peephole) by default.

    python benchmarks/peephole_vs_lstm.py --config 100,32,64,128 --config 100,64,128,256 \
        --threads 1 --rounds 9

For each size both cells get the same float32 problem as in `recurrent bench` (its Problem:
forward + backward, d_out = 1, dx computed), then R rounds of a block of the plugin cell's
calls and a block of the LSTM's (recurrent_plugins.bench.run_rounds), so a machine whose
speed drifts moves both sides of a round alike. Printed: each side's median ms and the
ratio plugin / lstm, the median over rounds of the per-round ratios of block medians, with
the lowest and highest round. Like the bench's child process, it runs without
OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE (it re-executes itself without them).

--cpu-time times each call by the process's CPU time instead of the wall clock: on a
machine shared with other jobs, time spent waiting for a core is then left out (with one
thread the two agree on a quiet machine; with more, CPU time adds the threads up).
"""
import argparse
import os
import sys
import time

BLAS_ENV = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cell", default="peephole_lstm", help="the plugin cell's name")
    parser.add_argument("--versus", default="lstm", help="the cell it is compared with")
    parser.add_argument("--config", action="append", metavar="T,B,I,H",
                        help="a size (repeat); default 100,32,64,128 and 100,64,128,256")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--repeats", type=int, default=27, help="timed calls per side")
    parser.add_argument("--cpu-time", action="store_true",
                        help="time by process CPU time, not the wall clock")
    args = parser.parse_args()
    if any(k in os.environ for k in BLAS_ENV):
        env = {k: v for k, v in os.environ.items() if k not in BLAS_ENV}
        os.execve(sys.executable, [sys.executable, *sys.argv], env)
    os.environ.pop("RECURRENT_NO_ENTRYPOINTS", None)  # the plugin registers through its entry point

    import numpy as np

    from recurrent_plugins.bench import Problem, environment, run_rounds

    env = environment()
    print(f"vector code {env['vector_code']}; BLAS "
          f"{', '.join(str(b['architecture']) for b in env['blas'])}; {args.threads} thread(s); "
          f"{args.rounds} rounds; {'CPU' if args.cpu_time else 'wall-clock'} time")
    print(f"{'(T,B,I,H)':20s} {args.cell + ' ms':>18s} {args.versus + ' ms':>10s}  ratio [lowest-highest round]")
    for text in args.config or ["100,32,64,128", "100,64,128,256"]:
        size = tuple(int(v) for v in text.split(","))
        sides = [Problem(name, *size).ours("train", args.threads)
                 for name in (args.cell, args.versus)]
        timed = run_rounds(sides, args.rounds, args.repeats, min_seconds=1.0,
                           clock=time.process_time if args.cpu_time else time.perf_counter)
        ratios = [float(np.median(a) / np.median(b)) for a, b in zip(*timed)]
        ms = [float(np.median([t for block in side for t in block])) * 1e3 for side in timed]
        print(f"{str(size):20s} {ms[0]:18.2f} {ms[1]:10.2f}  {np.median(ratios):.2f} "
              f"[{min(ratios):.2f}-{max(ratios):.2f}]", flush=True)


if __name__ == "__main__":
    main()
