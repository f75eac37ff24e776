"""recurrent.StreamPool against what people write instead, one LSTM step per call:

- torch loop: a Python loop of torch.nn.LSTMCell calls, one per advancing stream, each
  stream's (h, c) kept as its own tensors;
- torch batched: all streams' states in two (N, H) tensors; each call gathers the advancing
  rows (index_select), runs one batched LSTMCell and writes them back (index_copy_);
- the pool: recurrent.StreamPool(recurrent.LSTM(I, H)), step_arrays(ids, x).

With --precision int8 the pool runs int8 inference (StreamPool(..., precision="int8"),
issue 17) and two more sides join: the same pool in float32, and torch batched in int8
(the LSTMCell through torch.ao.quantization.quantize_dynamic, int8 weights, activations
quantised per call), so the pool is compared with torch's int8 as well as its float32.

    python benchmarks/bench_streams.py --seconds 10    # the markdown table (~2 min)
    python benchmarks/bench_streams.py --json out.json # the rows as JSON too
    python benchmarks/bench_streams.py --precision int8 --cases 1000/100

Cases: N open streams, A advancing per call (a fresh random subset each call, the same
subsets for every side): 1,000 / 100 and 10,000 / 10,000. LSTM, I=64 inputs, H=256, float32,
one thread on every side (torch.set_num_threads(1), BLAS pinned to one thread, the pool's
num_threads=1). Per side: steps/s (stream steps per second: A * calls / total time) and
the p50 / p99 latency of one call, over interleaved rounds (a block of calls per side in
turn, so drift of the machine's speed hits every side alike). For the all-advancing case
the table adds the layer's own one-step rate at that batch, measured as `recurrent bench
--mode infer` times a cell (plugins/bench.py Problem.ours, T=1): the pool's GFLOP/s over
it is the share of the layer's speed the pool keeps (gather, scatter, bookkeeping).

Before timing, the sides are run on the same inputs and must agree (1e-4 in float32, 0.05
between an int8 side and a float32 one).
threadpoolctl's view of the BLAS libraries and the OPENBLAS_* variables are printed: run
it with OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE unset to measure OpenBLAS's own kernel choice.
"""
from __future__ import annotations

import argparse
import json
import sys

import numpy as np

import recurrent
from recurrent.threads import single_threaded_blas
from recurrent_plugins.bench import Problem, blas_text, environment, run_rounds

CASES = ((1000, 100), (10000, 10000))


def make_subsets(n_open, n_step, calls, seed):
    """One random subset (A,) of stream indices per call, and one input (A, I) per call."""
    rng = np.random.default_rng(seed)
    if n_step == n_open:
        return [rng.permutation(n_open) for _ in range(calls)]
    return [rng.choice(n_open, n_step, replace=False) for _ in range(calls)]


class Sides:
    """The three implementations of one case over the same LSTM weights."""

    def __init__(self, n_open, n_step, I, H, calls, seed=0, precision="fp32"):
        import torch
        self.n_open, self.n_step, self.precision = n_open, n_step, precision
        rng = np.random.default_rng(seed)
        self.layer = recurrent.LSTM(I, H, seed=seed, num_threads=1)
        self.cell = torch.nn.LSTMCell(I, H)
        sd = self.layer.state_dict()
        self.cell.load_state_dict({k[:-3]: torch.from_numpy(v.copy()) for k, v in sd.items()})
        self.qcell = None
        if precision == "int8":
            import copy
            import warnings
            with warnings.catch_warnings():  # its notice that it moves to torchao
                warnings.simplefilter("ignore")
                self.qcell = torch.ao.quantization.quantize_dynamic(
                    copy.deepcopy(self.cell), {torch.nn.LSTMCell}, dtype=torch.qint8)
        self.subsets = make_subsets(n_open, n_step, calls, seed + 1)
        self.inputs = [rng.standard_normal((n_step, I)).astype(np.float32)
                       for _ in range(min(calls, 8))]
        self.inputs_t = [torch.from_numpy(x) for x in self.inputs]
        self.subsets_t = [torch.from_numpy(s) for s in self.subsets]
        self.reset()

    def reset(self):
        import torch
        N, H = self.n_open, self.layer.hidden_size
        self.pool = recurrent.StreamPool(self.layer, capacity=N, num_threads=1,
                                         precision=self.precision)
        self.pool32 = recurrent.StreamPool(self.layer, capacity=N, num_threads=1)
        for i in range(N):
            self.pool.open(i)
            self.pool32.open(i)
        self.hs = [torch.zeros(1, H) for _ in range(N)]
        self.cs = [torch.zeros(1, H) for _ in range(N)]
        self.h_all = torch.zeros(N, H)
        self.c_all = torch.zeros(N, H)
        self.h_all_q = torch.zeros(N, H)
        self.c_all_q = torch.zeros(N, H)
        self.k = {"pool": 0, "pool32": 0, "loop": 0, "batched": 0, "batched_int8": 0}

    def _next(self, side):
        k = self.k[side]
        self.k[side] = k + 1
        return k % len(self.subsets), k % len(self.inputs)

    def pool_call(self):
        s, i = self._next("pool")
        return self.pool.step_arrays(self.subsets[s].tolist(), self.inputs[i])

    def pool32_call(self):
        s, i = self._next("pool32")
        return self.pool32.step_arrays(self.subsets[s].tolist(), self.inputs[i])

    def loop_call(self):
        import torch
        s, i = self._next("loop")
        x, hs, cs, cell = self.inputs_t[i], self.hs, self.cs, self.cell
        out = []
        with torch.inference_mode():
            for j, r in enumerate(self.subsets[s].tolist()):
                hs[r], cs[r] = cell(x[j:j + 1], (hs[r], cs[r]))
                out.append(hs[r])
        return out

    def _batched(self, side, cell, h_all, c_all):
        import torch
        s, i = self._next(side)
        idx = self.subsets_t[s]
        with torch.inference_mode():
            h = h_all.index_select(0, idx)
            c = c_all.index_select(0, idx)
            h, c = cell(self.inputs_t[i], (h, c))
            h_all.index_copy_(0, idx, h)
            c_all.index_copy_(0, idx, c)
        return h

    def batched_call(self):
        return self._batched("batched", self.cell, self.h_all, self.c_all)

    def batched_int8_call(self):
        return self._batched("batched_int8", self.qcell, self.h_all_q, self.c_all_q)

    def check(self, calls=3):
        """The sides agree over a few calls (same subsets, same inputs): float32 ones
        within 1e-4 of each other, int8 ones within 0.05 of float32."""
        import torch
        worst = 0.0
        for _ in range(calls):
            ours = self.pool_call()
            fp32 = self.pool32_call()
            loop = torch.cat(self.loop_call()).numpy()
            batched = self.batched_call().numpy()
            sides = [(fp32, loop, 1e-4), (fp32, batched, 1e-4), (ours, fp32, 1e-4)]
            if self.precision == "int8":
                sides[-1] = (ours, fp32, 0.05)
                sides.append((self.batched_int8_call().numpy(), fp32, 0.05))
            for a, b, tolerance in sides:
                diff = float(np.abs(a - b).max())
                if not diff <= tolerance:
                    raise SystemExit(f"the sides disagree by {diff:.2e}; not timing wrong "
                                     f"results")
                if tolerance == 1e-4:
                    worst = max(worst, diff)
        self.reset()
        return worst


def layer_rate_call(B, I, H, precision="fp32"):
    """A callable timing what `recurrent bench --mode infer` times for (T=1, B, I, H)."""
    return Problem("lstm", 1, B, I, H).ours("infer", 1, precision)


def flops_per_call(B, I, H):
    return 2.0 * B * 4 * H * (I + H)


def summarize(times, n_step):
    times = np.asarray(times)
    return {"steps_per_s": n_step * len(times) / float(times.sum()),
            "p50_ms": float(np.percentile(times, 50) * 1e3),
            "p99_ms": float(np.percentile(times, 99) * 1e3),
            "calls": len(times)}


def run_case(n_open, n_step, I, H, rounds, seconds, max_calls, precision="fp32"):
    import torch
    torch.set_num_threads(1)
    calls = max_calls
    sides = Sides(n_open, n_step, I, H, calls, precision=precision)
    row = {"open": n_open, "advancing": n_step, "I": I, "H": H, "precision": precision,
           "max_abs_diff": sides.check()}
    names = ["pool", "torch_loop", "torch_batched"]
    fns = [sides.pool_call, sides.loop_call, sides.batched_call]
    if precision == "int8":
        names += ["pool_fp32", "torch_batched_int8"]
        fns += [sides.pool32_call, sides.batched_int8_call]
    if n_step == n_open:
        names.append("layer")
        fns.append(layer_rate_call(n_step, I, H, precision))
    with single_threaded_blas():
        timed = run_rounds(fns, rounds, repeats=rounds * 2, min_seconds=seconds)
    for name, side_rounds in zip(names, timed):
        stats = summarize([t for block in side_rounds for t in block], n_step)
        stats["gflops"] = flops_per_call(n_step, I, H) / (stats["p50_ms"] * 1e6)
        row[name] = stats
    pool = row["pool"]
    row["vs_loop"] = pool["steps_per_s"] / row["torch_loop"]["steps_per_s"]
    row["vs_batched"] = pool["steps_per_s"] / row["torch_batched"]["steps_per_s"]
    if precision == "int8":
        row["vs_pool_fp32"] = pool["steps_per_s"] / row["pool_fp32"]["steps_per_s"]
        row["vs_batched_int8"] = (pool["steps_per_s"]
                                  / row["torch_batched_int8"]["steps_per_s"])
    if "layer" in row:
        row["share_of_layer"] = pool["gflops"] / row["layer"]["gflops"]
    return row


def markdown(rows, env, command):
    lines = [f"Command: `{command}`", "",
             f"BLAS (threadpoolctl): {blas_text(env)}",
             f"OPENBLAS env: {env['env']}, vector code {env['vector_code']}, "
             f"torch {env['torch']}, 1 thread everywhere", "",
             "| open / advancing | side | steps/s | p50 ms | p99 ms | GFLOP/s | pool vs side |",
             "|---|---|---|---|---|---|---|"]
    for row in rows:
        case = f"{row['open']:,} / {row['advancing']:,}"
        for name in ("pool", "pool_fp32", "torch_loop", "torch_batched",
                     "torch_batched_int8", "layer"):
            if name not in row:
                continue
            s = row[name]
            versus = {"pool": "", "torch_loop": f"{row['vs_loop']:.2f}x",
                      "torch_batched": f"{row['vs_batched']:.2f}x",
                      "pool_fp32": f"{row.get('vs_pool_fp32', 0):.2f}x",
                      "torch_batched_int8": f"{row.get('vs_batched_int8', 0):.2f}x",
                      "layer": f"{row.get('share_of_layer', 0):.0%} of its GFLOP/s"}[name]
            label = {"layer": "layer alone (T=1, bench)",
                     "pool": "pool" if row.get("precision", "fp32") == "fp32"
                     else f"pool ({row['precision']})",
                     "pool_fp32": "pool (fp32)"}.get(name, name.replace("_", " "))
            lines.append(f"| {case} | {label} | {s['steps_per_s']:,.0f} | {s['p50_ms']:.3f} "
                         f"| {s['p99_ms']:.3f} | {s['gflops']:.1f} | {versus} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", type=int, default=64, help="LSTM input size I")
    parser.add_argument("--hidden", type=int, default=256, help="LSTM hidden size H")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds")
    parser.add_argument("--seconds", type=float, default=2.0,
                        help="timed seconds per side and case (split over the rounds)")
    parser.add_argument("--calls", type=int, default=200,
                        help="distinct random subsets drawn per case (cycled)")
    parser.add_argument("--cases", default="1000/100,10000/10000",
                        help="OPEN/ADVANCING pairs, comma-separated")
    parser.add_argument("--precision", choices=("fp32", "int8"), default="fp32",
                        help="the pool's precision (int8 adds the fp32 pool and torch "
                             "batched int8 as sides)")
    parser.add_argument("--json", default=None, help="also write the rows to this file")
    args = parser.parse_args(argv)
    cases = [tuple(int(v) for v in c.split("/")) for c in args.cases.split(",")]
    env = environment()
    rows = []
    for n_open, n_step in cases:
        rows.append(run_case(n_open, n_step, args.input, args.hidden, args.rounds,
                             args.seconds, args.calls, args.precision))
        print(f"done {n_open}/{n_step}", file=sys.stderr, flush=True)
    command = "python " + " ".join(["benchmarks/bench_streams.py", *(argv or sys.argv[1:])])
    print(markdown(rows, env, command))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"environment": env, "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
