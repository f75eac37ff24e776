"""`recurrent bench`: the built-in kernels against PyTorch, side by side, same weights
(any other registered cell, a plugin's included, is timed alone; --vs none times every
cell alone; --vs CELL times each cell beside another registered cell on the same sizes:
e.g. `--cell ln_lstm --vs lstm`, ratio ln_lstm / lstm).

For every (cell, config, thread count) it builds one float32 problem, loads the same
weights into torch.nn.LSTM/GRU/RNN through the state_dict, checks that both sides agree
(outputs; in train mode also dx and every weight gradient) and only then times them:
warm-up calls, then R interleaved rounds (a block of our calls, then a block of torch's,
the first call of each block untimed), median and interquartile range in ms over every
timed call of a side, and the GFLOP/s each side achieves on the GEMM work.
The ratio is the median over rounds of (ours block median / torch block median), so a
machine whose speed drifts over seconds moves both sides of each round's ratio alike.

A training step is forward + backward with loss = sum of outputs (d_out = 1) and dx
computed; inference is the forward pass alone (torch under no_grad).

The measurement runs in a child process: OpenBLAS reads OPENBLAS_CORETYPE and
OPENBLAS_L2_SIZE when it is loaded, and this project's environment sets them to force
slower AVX2 kernels for tests. The bench child runs without them (unless --keep-blas-env)
and reports which kernel threadpoolctl says is in use.

Legend: T time steps, B batch, I input size, H hidden size, G = gates * H.
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import subprocess
import sys
import time
import warnings

import numpy as np

import recurrent
from recurrent.checkpoint import atomic_write
from recurrent.checks import one_line
from recurrent.errors import error_line, killed_by
from recurrent.extras import torch_hint
from recurrent.figures import counted
from recurrent.out_paths import check_out, check_outside_runs, output_named
from recurrent.progress import warn_once
from recurrent.quant import PRECISIONS, bf16_available, runs_as
from recurrent.threads import oversubscription_note

DEFAULT_CELLS = ("lstm", "gru", "rnn_tanh")
# The cells with a torch side: torch.nn's modules, and ln_lstm's equations in torch ops
# (torch_ln_lstm: what a torch user writes, as torch.nn has no layer-normalised LSTM).
TORCH_CELLS = ("rnn_tanh", "rnn_relu", "lstm", "gru", "ln_lstm")
INT8_CELLS = ("lstm", "gru")  # the recurrent modules quantize_dynamic converts
DEFAULT_CONFIGS = ((100, 32, 64, 128), (100, 64, 128, 256), (50, 128, 512, 512),
                   (200, 1, 32, 64))
BLAS_ENV = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


# ---- problems and the two sides ---------------------------------------------------------

class Problem:
    """One float32 problem: parameters, input, zero initial states, d_out = ones."""

    def __init__(self, cell_name, T, B, I, H, seed=0):
        from recurrent.layers import cell_param_shapes
        from recurrent.plugins import get_cell
        self.cell = get_cell(cell_name)
        self.name, self.size = cell_name, (T, B, I, H)
        rng = np.random.default_rng(seed)
        shapes = cell_param_shapes(self.cell, I, H)
        # numpy refuses an array above its largest size with a ValueError, not the
        # MemoryError of an array this computer cannot hold: the same answer for both
        # (float64: the random input is drawn in float64, then converted)
        largest = max([T * B * max(I, H)] + [math.prod(s) for s in shapes.values()])
        if largest * 8 > np.iinfo(np.intp).max:
            raise MemoryError(f"an array of {largest} numbers is larger than any numpy "
                              f"can make")
        self.params = {k: np.zeros(s, np.float32) for k, s in shapes.items()}
        self.cell.init_params(self.params, H, rng)
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}
        self.x = rng.standard_normal((T, B, I)).astype(np.float32)         # (T, B, I)
        self.states = tuple(np.zeros((B, H), np.float32) for _ in self.cell.state_names)
        self.d_out = np.ones((T, B, H), np.float32)                          # (T, B, H)
        self.lengths = np.full(B, T, dtype=np.int64)  # every row runs all T steps

    def flops(self, mode):
        """GEMM work of one call: forward 2*T*B*G*(I+H); backward twice that (dx and dh
        products, weight gradients)."""
        T, B, I, H = self.size
        forward = 2.0 * T * B * self.cell.num_gates * H * (I + H)
        return forward if mode == "infer" else 3 * forward

    def ours(self, mode, num_threads, precision="fp32"):
        """A no-argument callable running our side once; returns (out, dx or None). Like a
        layer's public call, each resolves the thread count (None: the default choice) and
        keeps BLAS single-threaded; cells take lengths (B,) and an int thread count.
        precision int8 (inference): the weights are quantised once, here, as a layer keeps
        them; each call quantises its inputs and states. bf16: the cell's calls take it as
        a layer passes it (recurrent.layers.precision_keyword)."""
        from recurrent.layers import precision_keyword
        from recurrent.threads import resolve_threads, single_threaded_blas
        from recurrent.tuning import ensure
        ensure()   # as a layer's first call: the kernel tuning in use, or tuned once
        cell, none = self.cell, (None,) * len(self.states)
        _, B, _, H = self.size
        lengths = self.lengths
        kw = precision_keyword(precision) if precision != "int8" else {}

        if precision == "int8":
            qparams = cell.quantize(self.params)

            def infer_int8():
                with single_threaded_blas():
                    nt = resolve_threads(num_threads, B, H)
                    out, _ = cell.infer_int8(self.x, self.states, qparams, lengths, nt)
                return out, None

            return infer_int8

        def infer():  # the cell's cache-free path when it has one, as layers use it
            with single_threaded_blas():
                nt = resolve_threads(num_threads, B, H)
                if hasattr(cell, "infer"):
                    out, _ = cell.infer(self.x, self.states, self.params, lengths, nt, **kw)
                else:
                    out, _, _ = cell.forward(self.x, self.states, self.params, lengths, nt,
                                             **kw)
            return out, None

        def train():
            with single_threaded_blas():
                nt = resolve_threads(num_threads, B, H)
                out, _, cache = cell.forward(self.x, self.states, self.params, lengths, nt,
                                             **kw)
                dx, _ = cell.backward(self.d_out, none, cache, self.grads, nt, **kw)
            return out, dx

        return infer if mode == "infer" else train

    def torch_side(self, mode, precision="fp32", float64=False):
        """(callable, module, x tensor) for the same problem in torch. precision: fp32;
        bf16 (torch.autocast on the CPU around the forward, as a torch user turns it on);
        int8 (inference with torch.ao.quantization.quantize_dynamic's int8 weights).
        float64: weights and input in float64 (the reference check_agreement may need)."""
        import torch
        T, B, I, H = self.size
        if self.name == "ln_lstm":
            module = torch_ln_lstm(I, H)
        elif self.name == "lstm":
            module = torch.nn.LSTM(I, H)
        elif self.name == "gru":
            module = torch.nn.GRU(I, H)
        else:
            module = torch.nn.RNN(I, H, nonlinearity=self.name.split("_")[1])
        module.load_state_dict({f"{k}_l0": torch.from_numpy(v.copy())
                                for k, v in self.params.items()})
        x = torch.from_numpy(self.x.copy())
        if float64:
            module.double()
            x = x.double()
        x.requires_grad_(mode == "train")
        if precision == "int8":
            with warnings.catch_warnings():  # its notice that it moves to torchao
                warnings.simplefilter("ignore")
                module = torch.ao.quantization.quantize_dynamic(module, dtype=torch.qint8)

        def autocast():
            return (torch.autocast("cpu", dtype=torch.bfloat16) if precision == "bf16"
                    else contextlib.nullcontext())

        def infer():
            with torch.no_grad(), autocast():
                out, _ = module(x)
            infer.dtype = str(out.dtype).replace("torch.", "")  # what autocast chose
            return out.float(), None

        def train():
            module.zero_grad(set_to_none=True)
            x.grad = None
            with autocast():
                out, _ = module(x)
            out.float().sum().backward()
            train.dtype = str(out.dtype).replace("torch.", "")
            return out.float(), x.grad


        return (infer if mode == "infer" else train), module, x


@contextlib.contextmanager
def torch_threads(count):
    """torch.set_num_threads(count) within the block, torch's previous count restored
    after it (a benchmark's thread count must not leak into the next one's); yields torch."""
    import torch
    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield torch
    finally:
        torch.set_num_threads(previous)


def torch_ln_lstm(input_size, hidden_size):
    """A torch.nn.Module running recurrent's ln_lstm equations (recurrent.reference's
    LayerNormLSTMCell) with torch ops, autograd doing the backward, one layer, parameters
    under recurrent's names ("weight_ih_l0", ..., "ln_bias_c_l0", float32 zeros; load a
    state_dict). module(x, (h0, c0) or None, lengths or None) -> (out, (h_n, c_n)), x
    (T, B, I) time-major; a row past its length keeps its state and outputs zeros."""
    import torch
    from recurrent.cellbase import LN_EPS, LayerNormLSTMLayout
    F = torch.nn.functional
    H = hidden_size
    shapes = LayerNormLSTMLayout().param_shapes(input_size, hidden_size)

    class LayerNormLSTM(torch.nn.Module):
        def __init__(self):
            super().__init__()
            for kind, shape in shapes.items():
                setattr(self, f"{kind}_l0", torch.nn.Parameter(torch.zeros(shape)))

        def forward(self, x, state=None, lengths=None):
            p = {kind: getattr(self, f"{kind}_l0") for kind in shapes}
            B = x.shape[1]
            h, c = state if state is not None else (x.new_zeros(B, H), x.new_zeros(B, H))

            def blocks(v):  # (B, 4H), each gate block of H normalised on its own
                return F.layer_norm(v.reshape(B, 4, H), (H,), eps=LN_EPS).reshape(B, 4 * H)

            outs = []
            for t in range(x.shape[0]):
                a = (p["ln_gain_ih"] * blocks(x[t] @ p["weight_ih"].T) + p["bias_ih"]
                     + p["ln_gain_hh"] * blocks(h @ p["weight_hh"].T) + p["bias_hh"])
                i, f, g, o = a.chunk(4, dim=1)
                c_new = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
                h_new = torch.sigmoid(o) * torch.tanh(
                    F.layer_norm(c_new, (H,), p["ln_gain_c"], p["ln_bias_c"], eps=LN_EPS))
                if lengths is None:
                    h, c = h_new, c_new
                    outs.append(h_new)
                    continue
                valid = torch.as_tensor(t < np.asarray(lengths))[:, None]
                outs.append(torch.where(valid, h_new, torch.zeros_like(h_new)))
                h, c = torch.where(valid, h_new, h), torch.where(valid, c_new, c)
            return torch.stack(outs), (h, c)

    return LayerNormLSTM()


# Largest difference from torch (relative to the largest value) before a comparison is
# refused: float32 against float32, and torch in a lower precision against our float32
# (bf16 keeps 8 bits of mantissa, int8 weights about 7).
TOLERANCE = {"fp32": 1e-3, "bf16": 1e-1, "int8": 1e-1}
TORCH_PRECISIONS = tuple(TOLERANCE)
# How many times torch's own distance from float64 our result may be from float64 where
# the problem amplifies rounding beyond TOLERANCE (check_agreement), by the largest
# difference and by the root mean square one.
ROUNDING_REACH = 4
# torch's distance from float64 (relative to the largest value) from which the two sides'
# results no longer resemble the exact one: a comparison then checks nothing, and the
# note says the timing is unchecked
CHAOTIC_REACH = 0.5


def check_agreement(problem, mode, num_threads, precision="fp32", ours_precision="fp32"):
    """Run both sides once and compare. Returns (the largest difference seen, how the
    sides were found to agree: "tolerance", within TOLERANCE; "float64", each as close to
    the float64 result as the problem's rounding allows; "unchecked", a problem chaotic
    in a side's precision, which no comparison checks). Raises recurrent.UserError when
    they disagree (then timing them would mean nothing). Where the problem itself
    amplifies rounding, each side is compared with the float64 result instead, and one
    note says so (see the comments below)."""
    torch_fn, module, _ = problem.torch_side(mode, precision)
    for g in problem.grads.values():
        g[...] = 0
    out, dx = problem.ours(mode, num_threads, ours_precision)()
    try:
        t_out, t_dx = torch_fn()
    except RuntimeError as e:  # e.g. oneDNN without the CPU's bf16 instructions
        raise recurrent.UserError(
            f"torch cannot run {problem.name} {mode} in {precision} on this CPU "
            f"({one_line(e)[:160]})") from None
    pairs = [("output", out)]
    if mode == "train":
        pairs += [("dx", dx)] + [(k, problem.grads[k]) for k in problem.params]
    theirs = _torch_results(problem, module, t_out, t_dx, mode)
    tolerance = max(TOLERANCE[precision], TOLERANCE[ours_precision])
    exact = None
    # torch in each precision whose rounding the problem may amplify: torch's, and bf16
    # where ours runs bf16 beside torch's fp32 or int8 (our bf16 result of a problem
    # chaotic in bf16 is not a wrong one)
    references = {precision: theirs}
    worst = 0.0
    amplified = []   # (what, difference, torch's distance from float64, ours, its precision)
    for what, ours in pairs:
        scale = max(1.0, float(np.abs(theirs[what]).max()))
        diff = float(np.abs(ours - theirs[what]).max()) / scale
        worst = max(worst, diff)
        if diff <= tolerance:
            continue
        # Some problems amplify rounding over the steps (ln_lstm normalises each step's
        # recurrent product; relu's step derivative flips for units within rounding of 0
        # in bf16): then torch's result is itself that far from the float64 one, and ours
        # is held to the same distance from it. A few flipped units can put torch's
        # largest difference near the results' own size, which a result wrong everywhere
        # (e.g. by half) stays within; the root mean square distance, which such units
        # barely move, tells it apart.
        if exact is None:
            exact = _float64_results(problem, mode)
            if runs_as(ours_precision) == "bf16" != precision:
                try:
                    references["bf16"] = _torch_run(problem, mode, "bf16")
                except RuntimeError:  # torch runs no bf16 on this CPU: its precision alone
                    pass
        reach_of = {p: float(np.abs(r[what] - exact[what]).max()) / scale
                    for p, r in references.items()}
        reach_in = max(reach_of, key=reach_of.get)
        reach = reach_of[reach_in]
        rms_reach = max(_rms_from(r[what], exact[what]) for r in references.values())
        ours_off = float(np.abs(ours - exact[what]).max()) / scale
        if (ours_off > max(tolerance, ROUNDING_REACH * reach)
                or _rms_from(ours, exact[what]) > max(tolerance, ROUNDING_REACH * rms_reach)):
            raise recurrent.UserError(
                f"{problem.name} {problem.size}: {what} differs from torch by {diff:.2e} "
                f"(relative to its largest value); not timing a wrong result")
        amplified.append((what, diff, reach, ours_off, reach_in))
    if not amplified:
        return worst, "tolerance"
    whats = ", ".join(what for what, *_ in amplified)
    diff, reach, ours_off = (max(a[i] for a in amplified) for i in (1, 2, 3))
    chaotic_in = max(amplified, key=lambda a: a[2])[4]
    agreement = "unchecked" if reach >= CHAOTIC_REACH else "float64"
    if agreement == "unchecked":
        verdict = (f"the problem is chaotic in {chaotic_in} at this size (results as "
                   f"far from float64 as their own size), so the sides cannot be "
                   f"compared; timing it unchecked")
    else:
        verdict = "the problem amplifies rounding; timing it"
    verb = "differs" if len(amplified) == 1 else "differ"
    threads = "" if num_threads is None else f", {num_threads} thread(s)"
    print(f"note: {problem.name} {problem.size}{threads}: {whats} {verb} from torch by up "
          f"to {diff:.2e}, but torch's {' and '.join(references)} results are up to "
          f"{reach:.2e} from float64 and ours {ours_off:.2e}: {verdict}",
          file=sys.stderr, flush=True)
    return worst, agreement


def _rms_from(result, exact):
    """The root mean square difference of result from exact, relative to exact's (1 when
    exact is all zeros and result is not)."""
    off = float(np.linalg.norm(np.asarray(result, np.float64) - exact))
    size = float(np.linalg.norm(exact))
    return off / size if size > 0 else float(off > 0)


def _torch_results(problem, module, out, dx, mode):
    """{"output", and in train mode "dx" and each parameter's gradient: numpy arrays} of
    one torch call, named as check_agreement names ours."""
    results = {"output": out.detach().numpy()}
    if mode == "train":
        results["dx"] = dx.numpy()
        results.update({k: getattr(module, f"{k}_l0").grad.numpy() for k in problem.params})
    return results


def _float64_results(problem, mode):
    """_torch_results of the problem's torch module run in float64: what both float32
    sides approximate."""
    return _torch_run(problem, mode, float64=True)


def _torch_run(problem, mode, precision="fp32", float64=False):
    """_torch_results of one call of the problem's torch side (Problem.torch_side)."""
    torch_fn, module, _ = problem.torch_side(mode, precision, float64)
    return _torch_results(problem, module, *torch_fn(), mode)


def time_calls(fn, repeats, min_seconds=0.3, warmup=2):
    """Seconds per call: `warmup` untimed calls, then at least `repeats` timed ones (more
    for fast calls, up to min_seconds in total)."""
    for _ in range(warmup):
        fn()
    times = []
    start = time.perf_counter()
    while len(times) < repeats or (time.perf_counter() - start < min_seconds
                                   and len(times) < 50 * repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def _stats(times):
    q1, median, q3 = np.percentile(np.asarray(times) * 1e3, [25, 50, 75])
    return {"median_ms": float(median), "iqr_ms": float(q3 - q1), "calls": len(times)}


def sgemm_rate(num_threads, n=1024, repeats=5):
    """GFLOP/s of one (n x n) @ (n x n) float32 GEMM through scipy's BLAS, the same
    library the kernels call, with num_threads BLAS threads."""
    from scipy.linalg import blas
    from threadpoolctl import threadpool_limits
    rng = np.random.default_rng(0)
    a = np.asfortranarray(rng.standard_normal((n, n), dtype=np.float32))
    b = np.asfortranarray(rng.standard_normal((n, n), dtype=np.float32))
    with threadpool_limits(limits=num_threads, user_api="blas"):
        times = time_calls(lambda: blas.sgemm(1.0, a, b), repeats, min_seconds=0.2)
    return 2.0 * n ** 3 / float(np.median(times)) / 1e9


def blas_text(env: dict) -> str:
    """environment()'s BLAS libraries in one line: kernel, version and file of each."""
    return "; ".join(f"{b.get('architecture')} {b.get('version')} "
                     f"({os.path.basename(b.get('filepath') or '')})" for b in env["blas"])


def machine():
    """The computer and software a measurement ran on: the CPU (model string, /proc/cpuinfo
    ids and vector ISA flags, as the kernel tuning keys them), cores this process may use,
    OpenMP, recurrent's vector code, the BLAS libraries with their kernel (threadpoolctl),
    OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE as this process sees them, and versions (torch:
    None when not installed)."""
    import platform

    import scipy
    import threadpoolctl

    from recurrent import threads, tuning
    from recurrent._kernels import activations
    key = tuning.machine_key()
    info = {"cpu": key["cpu"], "cpu_id": key["cpu_id"], "isa": key["isa"],
            "machine": key["machine"], "cores": threads.available_cores(),
            "openmp": threads.openmp_enabled(), "vector_code": activations.vector_level(),
            "blas": [{k: lib.get(k) for k in ("filepath", "version", "architecture",
                                              "threading_layer")}
                     for lib in threads.blas_info()],
            "env": {k: os.environ.get(k) for k in BLAS_ENV},
            "recurrent": recurrent.__version__, "python": platform.python_version(),
            "numpy": np.__version__, "scipy": scipy.__version__,
            "threadpoolctl": threadpoolctl.__version__}
    try:
        import torch
        info["torch"] = torch.__version__
    except ImportError:
        info["torch"] = None
    return info


def environment():
    """What ran (machine()) and the kernel tuning in use (loaded, or run once here, as a
    layer's first call does)."""
    from recurrent import tuning
    tuning.ensure()
    tuned = tuning.status()
    return {**machine(), "tuning": {k: tuned[k] for k in ("mode", "path", "note", "settings")}}


def run_rounds(sides, rounds, repeats, min_seconds=0.3, warmup=1,
               clock=time.perf_counter):
    """Time the callables in `sides` (a list) in interleaved rounds: after `warmup` untimed
    calls each, every round runs one block per side in list order (ours, torch, ours, ...).
    A block starts with one untimed call (the other library's OpenMP threads may still be
    spinning), then times at least ceil(repeats / rounds) calls, more for fast calls, up
    to min_seconds / rounds per block. Returns, per side, one list of seconds per round."""
    per_block = max(1, math.ceil(repeats / rounds))
    block_seconds = min_seconds / rounds
    for fn in sides:
        for _ in range(warmup):
            fn()
    timed = [[] for _ in sides]
    for _ in range(rounds):
        for fn, side_rounds in zip(sides, timed):
            fn()  # untimed: lets the previous block's threads go idle
            times = []
            start = clock()
            while len(times) < per_block or (clock() - start < block_seconds
                                             and len(times) < 50 * per_block):
                t0 = clock()
                fn()
                times.append(clock() - t0)
            side_rounds.append(times)
    return timed


def round_ratios(ours_rounds, torch_rounds):
    """Per round: median of our block / median of torch's block."""
    return [float(np.median(a) / np.median(b)) for a, b in zip(ours_rounds, torch_rounds)]


def _iqr(values):
    q1, q3 = np.percentile(values, [25, 75])
    return float(q3 - q1)


def run_rows(cells, configs, thread_counts, mode, vs, repeats, rounds, emit,
             torch_precision="fp32", precision="fp32"):
    """Measure every combination; emit(row dict) as each finishes. A thread count of
    "auto" means each library's default: recurrent's num_threads=None (see
    recurrent.threads.resolve_threads), torch's own default thread count. precision:
    our side's; with int8 our fp32 is timed too, as a third side of the same rounds
    (row["fp32"], and row["ratio_fp32"] = ours / our fp32 per round, median)."""
    from recurrent.threads import available_cores, max_threads, resolve_threads
    torch = torch_default = None
    if vs == "torch":
        import torch
        torch_default = torch.get_num_threads()
    # the sgemm rate at the most threads a row's calls may use: for auto, the most our
    # default choice takes (resolve_threads: RECURRENT_NUM_THREADS or OMP_NUM_THREADS,
    # and never more than the cores)
    sgemm_threads = {nt: min(max_threads(), available_cores()) if nt == "auto" else nt
                     for nt in thread_counts}
    rates = {nt: sgemm_rate(sgemm_threads[nt]) for nt in thread_counts}
    for name in cells:
        compare = torch is not None and name in TORCH_CELLS  # others are timed alone
        for size in configs:
            problem = Problem(name, *size)
            for nt in thread_counts:
                row = {"cell": name, "T": size[0], "B": size[1], "I": size[2], "H": size[3],
                       "threads": nt, "mode": mode, "sgemm_gflops": rates[nt],
                       "sgemm_threads": sgemm_threads[nt],
                       "rounds": rounds, "torch_precision": torch_precision,
                       "precision": precision}
                ours_nt = None if nt == "auto" else nt
                # the count our calls pass to the kernels (an upper bound: a kernel runs
                # fewer threads for few batch rows or little work, _rows.pxd)
                row["ours_threads"] = resolve_threads(ours_nt, size[1], size[3])
                sides, keys = [problem.ours(mode, ours_nt, precision)], ["ours"]
                flops = {"ours": problem.flops(mode)}  # torch and fp32: the same problem
                if vs not in ("torch", "none"):  # another of our cells, same sizes
                    row["baseline_cell"] = vs
                    baseline = Problem(vs, *size)
                    sides.append(baseline.ours(mode, ours_nt, precision))
                    keys.append("baseline")
                    flops["baseline"] = baseline.flops(mode)  # its own gate count
                if compare:
                    torch.set_num_threads(torch_default if nt == "auto" else nt)
                    row["torch_threads"] = torch.get_num_threads()
                    row["max_rel_diff"], row["agreement"] = check_agreement(
                        problem, mode, ours_nt, torch_precision, precision)
                    torch_fn = problem.torch_side(mode, torch_precision)[0]
                    torch_fn()
                    row["torch_output_dtype"] = torch_fn.dtype  # float32 for a GRU in autocast
                    sides.append(torch_fn)
                    keys.append("torch")
                if precision != "fp32":
                    sides.append(problem.ours(mode, ours_nt))
                    keys.append("fp32")
                timed = dict(zip(keys, run_rounds(sides, rounds, repeats)))
                for key, side_rounds in timed.items():
                    stats = _stats([t for block in side_rounds for t in block])
                    stats["gflops"] = (flops.get(key, flops["ours"]) / stats["median_ms"]
                                       / 1e6)
                    row[key] = stats
                other = "torch" if "torch" in timed else "baseline"
                if other in timed:
                    ratios = round_ratios(timed["ours"], timed[other])
                    row["round_ratios"] = ratios
                    row["ratio"] = float(np.median(ratios))
                    row["ratio_iqr"] = _iqr(ratios)
                if precision != "fp32":
                    ratios = round_ratios(timed["ours"], timed["fp32"])
                    row["ratio_fp32"] = float(np.median(ratios))
                    row["ratio_fp32_iqr"] = _iqr(ratios)
                emit(row)


# ---- the child process ------------------------------------------------------------------

def _ignore_sigint():
    """In the child before it starts: SIGINT ignored (the parent answers a Ctrl-C)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _child(spec):
    """Entry point of the measuring process: JSON lines on stdout."""
    # The JSON lines get stdout's file descriptor to themselves: everything else written
    # to stdout (a plugin's print, C code of a compiled cell) goes to stderr instead, as
    # one stray line would break the parent's reading of the rows.
    sys.stdout.flush()
    lines = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())

    def emit(kind, **data):
        print(json.dumps({"kind": kind, **data}), file=lines, flush=True)

    try:
        emit("environment", **environment())
        run_rows(spec["cells"], [tuple(c) for c in spec["configs"]], spec["threads"],
                 spec["mode"], spec["vs"], spec["repeats"], spec["rounds"],
                 lambda row: emit("row", **row), spec.get("torch_precision", "fp32"),
                 spec.get("precision", "fp32"))
    except recurrent.UserError as e:
        emit("error", message=str(e))
        sys.exit(1)
    except MemoryError as e:  # a --config too large for this computer
        emit("error", message=f"not enough memory for the benchmark's arrays "
                              f"({error_line(e)}): give a smaller --config")
        sys.exit(1)
    except Exception as e:  # a bug: one line, as the command line reports them
        if spec.get("debug"):
            raise
        emit("error", message=f"internal error in the benchmark process ({error_line(e)}); "
                              f"rerun with --debug for the traceback")
        sys.exit(1)


# ---- the command ------------------------------------------------------------------------

def least_bytes(cell_name, size, mode, with_torch):
    """A lower bound on the memory one (cell, size) of the benchmark holds at once: the
    parameters and their gradients, then the larger of the float64 draw of the input and
    what lives together after it (x, d_out and our output in float32; torch's copy of x and
    its output when it runs too). Caches and kernel scratch come on top (not counted)."""
    from recurrent.layers import cell_param_shapes
    from recurrent.plugins import get_cell
    T, B, I, H = size
    cell = get_cell(cell_name)
    params = sum(math.prod(s) for s in cell_param_shapes(cell, I, H).values())
    together = 4 * T * B * (I + 2 * H) + (4 * T * B * (I + H) if with_torch else 0)
    return 2 * 4 * params + max(8 * T * B * I, together)


def physical_memory():
    """Bytes of memory this computer has (None when the system does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def _check_memory(cell_names, sizes, mode, vs):
    """Refuse, before the benchmark process starts, a --config whose arrays cannot fit in
    this computer's memory whatever else runs: the child would otherwise start allocating
    them, and on a system that overcommits memory be killed by the kernel (or push the
    machine into swap) instead of failing with one line."""
    total = physical_memory()
    if not total:
        return
    for size in sizes:
        for name in cell_names:
            need = least_bytes(name, size, mode, vs == "torch" and name in TORCH_CELLS)
            if vs not in ("torch", "none"):
                need += least_bytes(vs, size, mode, False)
            if need > total:
                raise recurrent.UserError(
                    f"not enough memory for the benchmark's arrays: --config "
                    f"{','.join(map(str, size))} needs at least {need / 2**30:,.1f} GiB for "
                    f"{name} ({mode}), this computer has {total / 2**30:,.1f} GiB; give a "
                    f"smaller --config")


def _parse_list(text, option, convert, expected="a comma-separated list"):
    """The items of ``text`` converted; UserError for an item that does not convert or is
    empty ("1,,2" is a typo, not the list 1,2: --config would read 16,,32,64,128 as four
    sizes)."""
    items = [v.strip() for v in text.split(",")]
    try:
        values = [convert(v) for v in items] if all(items) else []
    except ValueError:
        values = []
    if not values:
        raise recurrent.UserError(f"{option}: expected {expected}, got {text!r}")
    return values


CONFIG_EXPECTED = "T,B,I,H (four positive ints)"
THREADS_EXPECTED = "comma-separated thread counts (positive ints) or 'auto'"


def _parse_config(text):
    parts = _parse_list(text, "--config", int, CONFIG_EXPECTED)
    if len(parts) != 4 or min(parts) < 1:
        raise recurrent.UserError(f"--config: expected {CONFIG_EXPECTED}, got {text!r}")
    return tuple(parts)


def _columns(cells, vs):
    """(width of the cell column, width of the other side's ms column): wide enough for
    the longest cell name and for the `--vs` cell's name in the header."""
    return max(13, *(len(c) for c in cells)), max(9, len(vs) + 3)


def _format_row(row, vs, columns):
    cell_width, vs_width = columns
    size = f"({row['T']},{row['B']},{row['I']},{row['H']})"
    ours = row["ours"]
    text = (f"{row['cell']:{cell_width}s} {size:20s} {row['threads']:>4}  "
            f"{ours['median_ms']:9.2f} ±{ours['iqr_ms']:<7.2f} {ours['gflops']:6.0f}")
    theirs = row.get("torch", row.get("baseline"))
    if theirs is not None:
        text += (f"  {theirs['median_ms']:{vs_width}.2f} ±{theirs['iqr_ms']:<7.2f} "
                 f"{theirs['gflops']:6.0f}  {row['ratio']:6.2f} ±{row['ratio_iqr']:.2f}")
    elif vs == "torch" and row["cell"] not in TORCH_CELLS:  # --vs none: all are alone
        text += "  (torch has no such cell: timed alone)"
    if "fp32" in row:
        text += (f"  {row['fp32']['median_ms']:9.2f}  {row['ratio_fp32']:6.2f} "
                 f"±{row['ratio_fp32_iqr']:.2f}")
    return text


def _sgemm_text(row):
    """A row's sgemm rate and its thread count ("auto (2) thread(s) 300")."""
    threads = row["threads"]
    if threads == "auto":
        threads = f"auto ({row['sgemm_threads']})"
    return f"{threads} thread(s) {row['sgemm_gflops']:.0f}"


def _tuning_line(tuned):
    """The kernel tuning the benchmark ran with, in one line."""
    if not tuned:
        return "kernel tuning: unknown"
    if tuned["mode"] == "cache":
        return f"kernel tuning: {tuned['path']} ({_settings_text(tuned['settings'])})"
    return f"kernel tuning: off, fixed defaults ({tuned['note'] or tuned['mode']})"


def _settings_text(settings):
    return ", ".join(f"{k}={v}" for k, v in settings.items())


def _header(vs, precision, columns):
    cell_width, vs_width = columns
    text = (f"{'cell':{cell_width}s} {'(T,B,I,H)':20s} {'th':>4s}  {'ours ms':>9s} {'±iqr':8s} "
            f"{'GF/s':>6s}")
    if vs != "none":
        text += f"  {vs + ' ms':>{vs_width}s} {'±iqr':8s} {'GF/s':>6s}  {'ratio':>6s} ±iqr"
    if precision != "fp32":
        text += f"  {'fp32 ms':>9s}  {'/fp32':>6s} ±iqr"
    return text


def _json_path_error(path, e):
    return recurrent.UserError(f"--json {path}: cannot write there "
                               f"({e.strerror or one_line(e)})")


def _is_result(path) -> bool:
    """Whether ``path`` holds an earlier --json result (an object with "spec" and "rows"):
    one a new result may replace."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and "spec" in data and "rows" in data


def _check_json_path(path):
    """Refuse a --json FILE that cannot be written before the benchmark runs (a missing
    directory, no permission, a read-only file system, a directory), by writing and
    removing a temporary file in the folder _write_json writes in, or must not be (an
    existing file that is not an earlier result, any path inside a run directory:
    out_paths)."""
    if os.path.lexists(path):
        check_out("--json", path, None, replace=_is_result,
                  refusal="exists and is not an earlier bench result; the results would "
                          "replace it: choose another file name")
    check_outside_runs("--json", path)
    # beside the file _write_json replaces: through a symbolic link, the one it names
    target = os.path.realpath(path) if os.path.islink(path) else path
    tmp = f"{target}.tmp{os.getpid()}"
    try:
        with open(tmp, "w"):
            pass
        os.remove(tmp)
    except OSError as e:
        raise _json_path_error(path, e) from None


def _stopped_by(exc: BaseException) -> str:
    """How the run stopped at ``exc``: a Ctrl-C, a SIGTERM or SIGHUP (recurrent/interrupt.py
    raises those as a Ctrl-C), or an error."""
    if isinstance(exc, KeyboardInterrupt):
        signum = getattr(exc, "signum", signal.SIGINT)
        return ("interrupted (Ctrl-C)" if signum == signal.SIGINT
                else f"terminated ({signal.Signals(signum).name})")
    return error_line(exc)


def _child_ended(returncode: int) -> str:
    """How the measuring process ended without reporting an error: the signal that killed
    it, by name (Popen gives it as a negative exit code), or its exit code."""
    if returncode >= 0:
        return f"failed (exit code {returncode})"
    return f"was {killed_by(-returncode)}"


def _write_json(path, payload):
    """The results, whole or not at all, as every file the CLI writes (atomic_write)."""
    text = json.dumps(payload, indent=1).encode("utf-8")
    try:
        atomic_write(path, lambda f: f.write(text), follow_link=True)  # --json FILE
    except OSError as e:  # e.g. the directory went away or the disk is full meanwhile
        raise _json_path_error(path, e) from None


@recurrent.hookimpl
def register_commands(cli):
    import click

    @cli.command("bench", short_help="Time the kernels beside PyTorch on the same weights.")
    @click.option("--cell", "cells", default=",".join(DEFAULT_CELLS), show_default=True,
                  help="Comma-separated cell names.")
    @click.option("--config", "configs", multiple=True, metavar="T,B,I,H",
                  help="A problem size; repeat for several. Default: "
                       + "; ".join(",".join(map(str, c)) for c in DEFAULT_CONFIGS) + ".")
    @click.option("--threads", default="1,2", show_default=True,
                  help="Comma-separated thread counts (ours and torch alike); 'auto' "
                       "for each library's default choice.")
    @click.option("--mode", type=click.Choice(["train", "infer"]), default="train",
                  show_default=True, help="train: forward + backward; infer: forward only.")
    @click.option("--vs", default=None, metavar="torch|none|CELL",
                  help="torch: compare every cell against torch; none: time recurrent "
                       "alone; CELL: time each cell beside that registered cell on the "
                       "same sizes (e.g. lstm: the ratio is --cell's time over that "
                       "cell's). Default: compare the cells torch has (rnn_tanh, rnn_relu, "
                       "lstm, gru, ln_lstm's equations in torch ops) and time any other "
                       "registered cell alone.")
    @click.option("--repeats", type=click.IntRange(min=1), default=7, show_default=True,
                  help="Timed calls per side (at least), spread over the rounds.")
    @click.option("--rounds", type=click.IntRange(min=1), default=5, show_default=True,
                  help="Interleaved rounds: a block of our calls, then a block of torch's, "
                       "R times; the ratio is the median of the R per-round ratios.")
    @click.option("--json", "json_path", default=None, metavar="FILE",
                  help="Also write every measurement and the environment as JSON (an existing "
                       "FILE only when it holds an earlier result; never inside a run "
                       "directory).")
    @click.option("--torch-precision", type=click.Choice(TORCH_PRECISIONS), default=None,
                  help="torch's side: float32, bf16 autocast, or int8 dynamic quantisation "
                       "(inference) [default: bf16 beside --precision bf16, else fp32].")
    @click.option("--precision", type=click.Choice(PRECISIONS), default="fp32",
                  show_default=True,
                  help="recurrent's side: float32, int8 inference (--mode infer), or bf16 "
                       "products (cells that have it, every built-in one; CPUs with AVX512_BF16); "
                       "beside fp32 our fp32 is timed in the same rounds too, columns fp32 "
                       "ms and /fp32.")
    @click.option("--keep-blas-env", is_flag=True,
                  help="Keep OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE (default: unset for the run).")
    def bench(cells, configs, threads, mode, vs, repeats, rounds, json_path,
              torch_precision, precision, keep_blas_env):
        """Time recurrent's kernels beside PyTorch: same weights, outputs checked first.

        Prints per cell, size and thread count the median ms (± interquartile range) and
        GFLOP/s of each side and the ratio ours / torch (below 1: recurrent is faster):
        the median over --rounds interleaved rounds of each round's ratio, ± their IQR.
        Any registered cell, a plugin's included, can be named: the ones torch lacks are
        timed alone (--vs none times every cell alone); with --vs CELL each is timed
        beside that cell.

        \b
        Examples:
          recurrent bench --cell lstm --config 100,32,64,128 --threads 1
          recurrent bench --cell ln_lstm --vs lstm --threads 1
        """
        from recurrent.plugins import get_cell
        # `--json ""` names no file, `--json -` no file either
        json_path = output_named("--json", json_path, None, "the results")
        cell_names = _parse_list(cells, "--cell", str)
        if vs is None:  # torch where it has the cell (run_rows times the others alone)
            vs = "torch" if any(name in TORCH_CELLS for name in cell_names) else "none"
            explicit_vs = False
        else:
            explicit_vs = True
        if vs not in ("torch", "none"):
            try:
                get_cell(vs)
            except recurrent.UserError as e:
                raise recurrent.UserError(f"--vs: expected torch, none or a cell name; "
                                          f"{e}") from None
        for name in cell_names:
            get_cell(name)  # unknown names list the known ones
            if explicit_vs and vs == "torch" and name not in TORCH_CELLS:
                raise recurrent.UserError(
                    f"--cell {name}: no torch side to compare with (there is one for "
                    f"{', '.join(TORCH_CELLS)}); time it alone with --vs none, or beside "
                    f"one of ours with --vs lstm (or any cell name)")
        if torch_precision is None:  # torch's autocast beside our bf16, else float32
            torch_precision = "bf16" if precision == "bf16" and vs == "torch" else "fp32"
        if torch_precision != "fp32" and vs != "torch":
            raise recurrent.UserError("--torch-precision sets torch's side: it needs --vs torch")
        if torch_precision == "int8":
            # what the command lacks, named as options to give (the default --cell
            # includes a cell torch cannot quantise)
            others = [name for name in cell_names if name not in INT8_CELLS]
            wanted = (([] if mode == "infer" else ["--mode infer"])
                      + ([f"--cell {','.join(INT8_CELLS)}"] if others else []))
            if wanted:
                raise recurrent.UserError(
                    f"--torch-precision int8 is torch's dynamic quantisation, for inference "
                    f"(--mode infer) of {', '.join(INT8_CELLS)}"
                    f"{' (not ' + ', '.join(others) + ')' if others else ''}: give "
                    f"{' and '.join(wanted)}")
        if precision == "int8" and mode != "infer":
            raise recurrent.UserError("--precision int8 is for inference: add --mode infer")
        if precision != "fp32":
            from recurrent.layers import check_cell_precision
            # --vs CELL: that cell runs in this precision too, as one of ours
            for name in cell_names + ([] if vs in ("torch", "none") else [vs]):
                try:
                    check_cell_precision(name, precision)
                except ValueError as e:
                    raise recurrent.UserError(f"--{one_line(e)}") from None
        if precision == "bf16" and not bf16_available():  # its timings would be fp32's
            raise recurrent.UserError("--precision bf16: this CPU has no AVX512_BF16 "
                                      "instructions in use (see `recurrent info`)")
        sizes = [_parse_config(c) for c in configs] or list(DEFAULT_CONFIGS)
        thread_counts = _parse_list(threads, "--threads",
                                    lambda v: v if v == "auto" else int(v), THREADS_EXPECTED)
        from recurrent.cli_options import THREAD_COUNT  # train's and eval's --threads
        for n in thread_counts:
            if n != "auto" and not THREAD_COUNT.min <= n <= THREAD_COUNT.max:
                raise recurrent.UserError(f"--threads: thread counts must be from "
                                          f"{THREAD_COUNT.min} to {THREAD_COUNT.max} or "
                                          f"'auto', got {threads!r}")
        _check_memory(cell_names, sizes, mode, vs)
        if vs == "torch":
            try:
                import torch  # noqa: F401
            except ImportError:
                raise recurrent.UserError(
                    f"torch is not installed: {torch_hint()}, or run with --vs none to "
                    f"time recurrent alone") from None
        if json_path:
            _check_json_path(json_path)
        counts = [n for n in thread_counts if n != "auto"]  # 'auto' stays within the cores
        note = oversubscription_note(max(counts)) if counts else None
        if note:
            warn_once(note)
        root = click.get_current_context().find_root()
        # PYTHONSAFEPATH: the child must import the installed package, not a source
        # checkout that happens to be the current directory (it has no compiled kernels).
        env = dict(os.environ, PYTHONSAFEPATH="1")
        unset = {} if keep_blas_env else {k: env.pop(k) for k in BLAS_ENV if k in env}
        spec = {"cells": cell_names, "configs": sizes, "threads": thread_counts,
                "mode": mode, "vs": vs, "repeats": repeats,
                "rounds": rounds, "torch_precision": torch_precision, "precision": precision,
                "keep_blas_env": keep_blas_env, "blas_env_unset": unset,
                "debug": bool(root.params.get("debug"))}
        # The child ignores SIGINT from its start (Python then installs no KeyboardInterrupt
        # handler): a Ctrl-C at the terminal stops this process, which stops the child
        # (below); it stays in this process group, so SIGTERM or SIGHUP reach it too.
        # A SIGTERM sent to this process alone leaves as a Ctrl-C does (every command
        # does: recurrent/cli.py), stopping the child on its way out instead of leaving
        # it measuring with no one to read its rows.
        child = subprocess.Popen([sys.executable, "-m", "recurrent_plugins.bench",
                                  json.dumps(spec)], env=env, stdout=subprocess.PIPE,
                                 text=True, preexec_fn=_ignore_sigint)
        payload = {"spec": spec, "rows": []}
        columns = _columns(cell_names, vs)

        def keep_measured(why):
            """The rows measured so far to --json FILE, with ``why`` the run stopped early."""
            _write_json(json_path, {**payload, "error": why})
            with contextlib.suppress(OSError):  # the output may be what failed
                click.echo(f"wrote the {counted(len(payload['rows']), 'row')} measured to "
                           f"{json_path}")

        error = None
        try:
            for line in child.stdout:
                message = json.loads(line)
                kind = message.pop("kind")
                if kind == "environment":
                    payload["environment"] = message
                    kernels = ", ".join(f"{os.path.basename(b['filepath'] or '?')}: "
                                        f"{b['architecture']}" for b in message["blas"])
                    click.echo(f"CPU: {message['cpu']}, {message['cores']} cores")
                    click.echo(f"BLAS kernels: {kernels}; recurrent vector code: "
                               f"{message['vector_code']}; torch {message['torch'] or '-'}")
                    if unset:
                        click.echo("unset for the measurement (--keep-blas-env keeps them): "
                                   + ", ".join(f"{k}={v}" for k, v in unset.items()))
                    kept = {k: v for k, v in message["env"].items() if v is not None}
                    if kept:  # --keep-blas-env: they chose the BLAS kernels above
                        click.echo("kept for the measurement (--keep-blas-env): "
                                   + ", ".join(f"{k}={v}" for k, v in kept.items()))
                    click.echo(_tuning_line(message.get("tuning")))
                    legend = (f"mode {mode}; {rounds} rounds, >= {repeats} timed calls per side "
                              f"after warm-up")
                    if precision != "fp32" or (vs == "torch" and torch_precision != "fp32"):
                        legend += ((f"; torch in {torch_precision}," if vs == "torch" else ";")
                                   + f" recurrent in {precision}")
                    if vs == "torch":
                        legend += ("; blocks interleaved ours, torch, ...; ratio = median over "
                                   "rounds of ours/torch block medians (below 1: recurrent faster)")
                    elif vs != "none":
                        legend += (f"; blocks interleaved cell, {vs}, ...; ratio = median over "
                                   f"rounds of cell/{vs} block medians")
                    click.echo(legend)
                elif kind == "row":
                    if not payload["rows"]:  # the columns' header, once a row is there
                        click.echo(_header(vs, precision, columns))
                    payload["rows"].append(message)
                    click.echo(_format_row(message, vs, columns))
                elif kind == "error":
                    error = message["message"]
        except BaseException as e:  # Ctrl-C, a broken pipe: the child stops with this process
            child.kill()
            child.wait()
            if json_path and payload["rows"]:  # the rows measured before it stopped
                keep_measured(_stopped_by(e))
            raise
        if child.wait() != 0 or error:
            error = error or f"the benchmark process {_child_ended(child.returncode)}"
            if json_path and payload["rows"]:  # the rows measured before it failed
                keep_measured(error)
            raise recurrent.UserError(error)
        if payload["rows"]:
            rate = ", ".join(_sgemm_text(r) for r in
                             {r["threads"]: r for r in payload["rows"]}.values())
            click.echo(f"sgemm 1024^3 in this run, GFLOP/s: {rate}")
        if json_path:
            _write_json(json_path, payload)
            click.echo(f"wrote {json_path}")


if __name__ == "__main__":
    _child(json.loads(sys.argv[1]))
