"""Conformance kit: does a cell or loss keep the contract of recurrent.protocols?

`recurrent plugins check NAME` runs it on any registered cell or loss; plugin authors use it
as their test suite (``assert all(passed for _, passed, _ in check_cell(MyCell()))``).

Every check returns (check name, passed, detail). A check that raises is a failure whose
detail is the exception, so one broken method never hides the other results.

Cells and losses first: members, the protocol's required members are there (the names come
from recurrent.protocols.MEMBERS; the detail lists the optional ones present).
Cells, all in float64 unless stated (tiny sizes: every parameter is checked element-wise):
  parameters    param_shapes / init_params: identifier kinds, positive int shapes (as
                layers.cell_param_shapes takes them), weight_ih (G, I) when present, init
                fills finite values, seeded = repeatable
  shapes        out (T, B, H), one (B, H) final state per state name, dtype kept (f32, f64)
  inputs        forward/backward never modify x, states or params
  step          a loop of one-step forward calls (how layers step a cell) equals the
                sequence forward, with lengths, and with masks for cells that take them
  gradient      analytic backward vs central finite differences of
                L = sum(out * R) + sum_k sum(final_k * S_k), for x, every initial state and
                every parameter kind, with and without lengths
  accumulate    backward ADDS into grads; d_final_states None means zero
  lengths       zero outputs past a row's length; padding invariance (a row alone equals the
                row batched with longer ones; padded inputs are ignored); d_out past a row's
                length is ignored; dx past the length is zero; a row of length 0 outputs
                zeros, keeps its initial states, gets zero dx, passes d final states to d
                initial states unchanged and adds nothing to the parameter gradients
  float32       the float32 forward and backward agree with float64: outputs, final
                states, dx, d states and every parameter gradient
  threads       num_threads 1 and 2 agree on outputs, final states, dx, d states and every
                parameter gradient, float64 and float32, with lengths (and masks), at 15
                and 16 batch rows (odd: a split between threads has a remainder) and
                hidden sizes 16 and 64, each 2-thread run three times (a data race shows
                only when the threads overlap), with the kernels' parallel-work threshold
                off, so that every parallel region of the built-in kernels (with OpenMP)
                runs on 2 threads
  masks         (cells with mask_kinds, recurrent/masks.py) finite differences with fixed
                masks of each declared kind, with lengths; a mask of ones and zoneout of
                zeros equal no masks; infer (if any) equals forward with masks
  int8          (cells with quantize and infer_int8, recurrent/quant.py; INT8_H units)
                float32 results of forward's shapes and dtype, within INT8_TOL of the
                largest float32 output or state (int8's error: a step of 1/127 of each
                row's largest value), with lengths
                (zeros past a row's length, a row of length 0 keeping its states exactly),
                1 and 2 threads agreeing as float32 does, and with each mask kind of the
                cell's (when its infer_int8 takes them) alone: what it changes in int8
                within INT8_MASK_TOL of what it changes in float32
Losses: shapes and dtypes, sequence outputs (T, B, K) with (T, B) targets and mask (as
training passes them, recurrent/step.py) score as the same rows flattened to (N, K),
finite differences with and without a mask, masked rows (their targets -1 class ids or
NaN, as padding may be) neither count nor get gradient, a mask of ones equals no mask, the
value is a mean over valid rows, extreme outputs give finite values; with the optional
combine() (ensembles, recurrent/ensemble.py): the members' shape ((N, K) and (T, B, K))
and dtype kept and finite values, and identical members score as one member does.

Legend: T time, B batch, I input, H hidden, G gates*H, N rows, K outputs per row.
"""
from __future__ import annotations

import contextlib

from contextlib import contextmanager
from typing import Any, Callable, NamedTuple

import numpy as np

from .errors import error_line
from .layers import cell_param_shapes
from .masks import takes_masks
from .protocols import MEMBERS, TARGET_KINDS, Cell, Loss, missing_members

# Sizes of the cell checks: small enough to check every element by finite differences.
T, B, I, H = 4, 3, 3, 4
LENGTHS = np.array([2, 4, 1], dtype=np.int64)  # (B,): unsorted, one full row, one length-1 row
FULL = np.full(B, T, dtype=np.int64)  # (B,): every row has all T steps
EMPTY_ROW = 1
WITH_EMPTY = np.array([3, 0, 4], dtype=np.int64)  # (B,): row EMPTY_ROW has length 0
EPS = 1e-7  # finite-difference step (float64): truncation ~EPS^2, rounding ~1e-16/EPS
GRAD_TOL = 1e-6  # max |analytic - numeric| / max(1, max |numeric|)

# Sizes of the threads check. A parallel region of the kernels (kernel_threads in
# recurrent/_kernels/_rows.pxd) uses min(requested, units) threads when its work reaches
# the min_parallel_flops setting; its units are batch rows in the time loops (each thread
# a contiguous slice, `split`) and row or gate blocks of the products around them. The
# check lowers that setting to 0 while it runs (_every_region_parallel), so at these
# sizes every region of the built-in kernels, and of cells on the kernel toolkit, runs on
# 2 threads; 16 rows also give each thread 2 * recurrent.threads.MIN_ROWS_PER_THREAD
# rows, for cells with a row rule of their own. The check also runs on the first 15 rows:
# an odd count leaves a split of the rows between 2 threads a remainder, which a cell
# must not drop.
# A data race (threads sharing scratch memory) shows only when the threads overlap: the
# check also runs a wider cell (H2_WIDE: longer work per thread) and repeats each 2-thread
# run RACE_REPEATS times (at 16 wide alone a racy kernel seldom shows).
T2, B2, I2, H2 = 5, 16, 5, 16
H2_WIDE, RACE_REPEATS = 64, 3
LENGTHS2 = np.array([5, 3, 0, 5, 1, 4, 5, 2, 5, 5, 3, 0, 4, 5, 1, 5], dtype=np.int64)  # (B2,)
THREADS_TOL = {np.dtype(np.float64): 1e-12, np.dtype(np.float32): 1e-5}  # rel, as _rel_err


@contextmanager
def _every_region_parallel():
    """The kernels' min_parallel_flops setting at 0 for the duration (then restored): a
    parallel region with 2 or more units of work uses the threads it is given, whatever
    its size. Nothing to do when the kernels are not built."""
    try:
        from ._kernels import tuning as kernel_tuning
    except ImportError:
        yield
        return
    saved = kernel_tuning.current()
    kernel_tuning.apply({**saved, "min_parallel_flops": 0})
    try:
        yield
    finally:
        kernel_tuning.apply(saved)


class CheckResult(NamedTuple):
    name: str
    passed: bool
    detail: str


# int8 against float32: the largest |int8 - float32| over outputs and final states, as a
# fraction of their largest float32 magnitude, with INT8_H units (the other sizes as
# above): a layer normalisation over H = 4 units scales int8's error up by as much as the
# normalised values' spread is small, which for some seeds leaves a correct int8 path as
# far from float32 as a broken one; over INT8_H units the spread keeps them apart.
INT8_H = 16
INT8_TOL = 0.1
# Each mask kind alone: what it changes in the int8 results against what it changes in
# float32, as a fraction of the latter's largest value (a path that drops a mask changes
# nothing: 100%).
INT8_MASK_TOL = 0.25


def _shapes_dtypes(arrays) -> str:
    """The shape and dtype of each array, e.g. "(4, 3, 4) float32, (3, 4) float64"."""
    return ", ".join(f"{np.shape(a)} {getattr(a, 'dtype', type(a).__name__)}"
                     for a in arrays)


def _raised(exc: BaseException) -> str:
    return f"raised {error_line(exc)}"


def members_check(obj, protocol) -> tuple[bool, str]:
    """The members check: the protocol's required members present; which optional ones are."""
    missing = missing_members(obj, protocol)
    if missing:
        return False, f"lacks {', '.join(missing)}"
    optional = [name for name in MEMBERS[protocol].optional if hasattr(obj, name)]
    return True, f"all required; optional: {', '.join(optional) or 'none'}"


def _max_err(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape:
        raise ValueError(f"shape {a.shape} != expected {b.shape}")
    return float(np.max(np.abs(a - b), initial=0.0))


def _rel_err(analytic, numeric) -> float:
    return _max_err(analytic, numeric) / max(1.0, float(np.max(np.abs(numeric), initial=0.0)))


def numeric_grad(f: Callable[[], float], array: np.ndarray) -> np.ndarray:
    """Central differences of f() with respect to every element of ``array`` (changed in
    place, restored). Public: the model tests use it too."""
    grad = np.zeros(array.shape, np.float64)
    flat, gflat = array.reshape(-1), grad.reshape(-1)
    for k in range(flat.size):
        saved = flat[k]
        flat[k] = saved + EPS
        up = f()
        flat[k] = saved - EPS
        down = f()
        flat[k] = saved
        gflat[k] = (up - down) / (2 * EPS)
    return grad


_listeners: list[Callable[[CheckResult], None]] = []  # each_result's callbacks


@contextlib.contextmanager
def each_result(callback: Callable[[CheckResult], None]):
    """Call ``callback`` with every check's result as soon as it is known, while the
    block runs: `plugins check` prints each line then, so that a kernel that crashes the
    process still leaves the lines of the checks before it."""
    _listeners.append(callback)
    try:
        yield
    finally:
        _listeners.remove(callback)


class CheckRunner:
    """Collects results; each check runs on its own so one exception fails only that check."""

    def __init__(self):
        self.results: list[CheckResult] = []

    def add(self, result: CheckResult) -> None:
        self.results.append(result)
        for callback in _listeners:
            callback(result)

    def run(self, name: str, check: Callable[[], Any]) -> None:
        try:
            outcome = check()
        except Exception as exc:
            self.add(CheckResult(name, False, _raised(exc)))
            return
        if isinstance(outcome, list):  # a check reporting several named results
            for r in outcome:
                self.add(CheckResult(*r))
        else:
            passed, detail = outcome
            self.add(CheckResult(name, bool(passed), detail))


# ---- cells ------------------------------------------------------------------------------

class _CellHarness:
    """Random inputs, parameters and projections for one cell, plus forward/backward helpers."""

    def __init__(self, cell, seed: int, hidden: int = H):
        self.cell = cell
        rng = np.random.default_rng(seed)
        self.shapes = cell_param_shapes(cell, I, hidden)
        self.params = {k: np.zeros(s) for k, s in self.shapes.items()}  # float64 views by kind
        cell.init_params(self.params, hidden, rng)
        self.x = rng.normal(size=(T, B, I))  # (T, B, I)
        self.states = tuple(rng.normal(scale=0.5, size=(B, hidden)) for _ in cell.state_names)
        self.r = rng.normal(size=(T, B, hidden))  # d L / d out
        self.s = tuple(rng.normal(size=(B, hidden)) for _ in cell.state_names)  # d L / d finals

    def forward(self, x=None, states=None, params=None, lengths=None, num_threads=1,
                masks=None):
        """cell.forward on the harness's arrays unless given; lengths None: every row full
        (cells always get an int64 (B,) array); masks passed only when given."""
        x = self.x if x is None else x
        if lengths is None:
            lengths = np.full(x.shape[1], x.shape[0], dtype=np.int64)
        extra = {} if masks is None else {"masks": masks}
        return self.cell.forward(x, self.states if states is None else states,
                                 self.params if params is None else params, lengths,
                                 num_threads, **extra)

    def objective(self, lengths, masks=None) -> float:
        out, finals, _ = self.forward(lengths=lengths, masks=masks)
        return float(np.sum(out * self.r) + sum(np.sum(f * s) for f, s in zip(finals, self.s)))

    def backward(self, lengths, d_out=None, d_finals=None, grads=None, masks=None):
        _, _, cache = self.forward(lengths=lengths, masks=masks)
        if grads is None:
            grads = {k: np.zeros(s) for k, s in self.shapes.items()}
        dx, d_states = self.cell.backward(self.r if d_out is None else d_out,
                                          self.s if d_finals is None else d_finals,
                                          cache, grads, 1)
        return dx, d_states, grads


def check_cell(cell, seed: int = 0) -> list[CheckResult]:
    """Run every cell check on ``cell`` (an object following recurrent.protocols.Cell)."""
    runner = CheckRunner()
    runner.run("members", lambda: members_check(cell, Cell))
    try:
        h = _CellHarness(cell, seed)
    except Exception as exc:
        runner.add(CheckResult("parameters", False, _raised(exc)))
        return runner.results
    state_names = tuple(cell.state_names)

    def parameters():
        problems = []
        if not state_names or state_names[0] != "h":
            problems.append(f"state_names {state_names!r} must start with 'h'")
        G = cell.num_gates * H  # torch's four kinds, where the cell has them
        for kind, expected, text in (("weight_ih", (G, I), "(num_gates*H, I)"),
                                     ("weight_hh", (G, H), "(num_gates*H, H)"),
                                     ("bias_ih", (G,), "(num_gates*H,)"),
                                     ("bias_hh", (G,), "(num_gates*H,)")):
            if kind in h.shapes and tuple(h.shapes[kind]) != expected:
                problems.append(f"{kind} {h.shapes[kind]} != {text} = {expected}")
        for kind, value in h.params.items():
            if not np.all(np.isfinite(value)) or (not np.any(value) and kind.startswith("weight")):
                problems.append(f"init_params left {kind} non-finite or all zero")
        again = {k: np.zeros(s) for k, s in h.shapes.items()}
        cell.init_params(again, H, np.random.default_rng(seed))
        if any(not np.array_equal(again[k], h.params[k]) for k in h.shapes):
            problems.append("init_params with the same seed gave different values")
        return not problems, "; ".join(problems) or f"{len(h.shapes)} kinds: {', '.join(h.shapes)}"

    def shapes():
        problems = []
        for dtype in (np.float64, np.float32):
            out, finals, _ = h.forward(x=h.x.astype(dtype),
                                       states=tuple(s.astype(dtype) for s in h.states),
                                       params={k: v.astype(dtype) for k, v in h.params.items()})
            if out.shape != (T, B, H) or out.dtype != dtype:
                problems.append(f"out {out.dtype} {out.shape}, expected {np.dtype(dtype)} "
                                f"{(T, B, H)}")
            if len(finals) != len(state_names):
                problems.append(f"{len(finals)} final states for state_names {state_names}")
            for name, f in zip(state_names, finals):
                if f.shape != (B, H) or f.dtype != dtype:
                    problems.append(f"final {name} {f.dtype} {f.shape}")
            # the harness's inputs and parameters are finite and moderate: NaN or inf
            # here is the cell's, and every later check would only report it as nan
            problems += [f"{name} {np.dtype(dtype)} holds NaN or inf" for name, a in
                         (("out", out), *zip((f"final {n}" for n in state_names), finals))
                         if not np.all(np.isfinite(a))]
        if problems:  # what follows compares and differentiates these arrays
            return False, "; ".join(problems)
        out, finals, _ = h.forward()
        if _max_err(finals[0], out[-1]) > 0:
            problems.append("final h differs from the last output")
        returned = h.backward(LENGTHS)[:2]  # (dx, d_states): what layers unpack
        dx, d_states = returned
        if np.shape(dx) != (T, B, I):
            problems.append(f"backward's dx has shape {np.shape(dx)}, expected {(T, B, I)}")
        if not isinstance(d_states, tuple) or len(d_states) != len(state_names):
            problems.append(f"backward returned {type(d_states).__name__} for the d initial "
                            f"states, expected a tuple of {len(state_names)} (B, H) arrays, "
                            f"one per state name {state_names} (a single state too: (dh,))")
        else:
            problems += [f"backward's d {name} has shape {np.shape(d)}, expected {(B, H)}"
                         for name, d in zip(state_names, d_states) if np.shape(d) != (B, H)]
        return not problems, "; ".join(problems) or ("out (T, B, H), states (B, H), f32 and "
                                                     "f64; backward dx (T, B, I), d states "
                                                     "(B, H)")

    def repeatable():
        """Two calls on the same inputs give bitwise the same results: a cell drawing
        random numbers or keeping state between calls fails here by name, not only as
        gradients that disagree with finite differences."""
        calls = []
        for _ in range(2):
            out, finals, _ = h.forward(lengths=LENGTHS)
            dx, d_states, grads = h.backward(LENGTHS)
            calls.append([("out", out), *zip((f"final {n}" for n in state_names), finals),
                          ("dx", dx), *zip((f"d {n}" for n in state_names), d_states),
                          *((f"grad {k}", g) for k, g in grads.items())])
        differ = [name for (name, a), (_, b) in zip(*calls)
                  if not np.array_equal(a, b, equal_nan=True)]
        if differ:
            return False, (f"two calls on the same inputs differ in {', '.join(differ)}: "
                           f"results must depend on the inputs alone (no random draws, "
                           f"no state kept between calls)")
        return True, "two calls on the same inputs: bitwise the same results"

    def inputs_untouched():
        before = (h.x.copy(), [s.copy() for s in h.states], {k: v.copy() for k, v in h.params.items()})
        h.backward(LENGTHS)
        changed = []
        if not np.array_equal(before[0], h.x):
            changed.append("x")
        changed += [n for n, a, b in zip(state_names, before[1], h.states) if not np.array_equal(a, b)]
        changed += [k for k in h.params if not np.array_equal(before[2][k], h.params[k])]
        return not changed, f"modified: {', '.join(changed)}" if changed else "unchanged"

    def step_loop():
        """Each step is forward on a one-step sequence, the row's length there 1 or 0, the
        recurrent-dropout mask the same at every step, zoneout's values those of step t."""
        cases = [("lengths", None)]
        if kinds:
            masks = {}
            for kind in kinds:
                masks.update(some_masks(kind, 2))
            cases.append(("lengths, masks", masks))
        errors = []
        for case, masks in cases:
            out, finals, _ = h.forward(lengths=LENGTHS, masks=masks)
            states = h.states
            err = 0.0
            for t in range(T):
                step_masks = None
                if masks is not None:
                    step_masks = {k: v for k, v in masks.items() if k == "recurrent"}
                    if "zoneout" in masks:
                        step_masks["zoneout"] = tuple(z[t:t + 1] for z in masks["zoneout"])
                out_t, states, _ = h.forward(x=h.x[t:t + 1], states=states,
                                             lengths=(t < LENGTHS).astype(np.int64),
                                             masks=step_masks)
                err = max(err, _max_err(out_t[0], out[t]))
            err = max(err, *(_max_err(a, b) for a, b in zip(states, finals)))
            errors.append((case, err))
        return (all(e <= 1e-10 for _, e in errors),
                "max |loop - sequence| " + ", ".join(f"{e:.1e} ({c})" for c, e in errors))

    def gradients():
        results = []
        targets = [("x", lambda: h.x, lambda dx, ds, g: dx)]
        targets += [(f"state {n}", (lambda k=k: h.states[k]), (lambda dx, ds, g, k=k: ds[k]))
                    for k, n in enumerate(state_names)]
        targets += [(kind, (lambda kind=kind: h.params[kind]), (lambda dx, ds, g, kind=kind: g[kind]))
                    for kind in h.shapes]
        analytic = {lengths_name: h.backward(lengths)
                    for lengths_name, lengths in (("no lengths", FULL), ("lengths", LENGTHS))}
        for target, array, pick in targets:
            errors = []
            for lengths_name, lengths in (("no lengths", FULL), ("lengths", LENGTHS)):
                numeric = numeric_grad(lambda: h.objective(lengths), array())
                errors.append((lengths_name, _rel_err(pick(*analytic[lengths_name]), numeric)))
            passed = all(e <= GRAD_TOL for _, e in errors)
            detail = ", ".join(f"{e:.1e} ({n})" for n, e in errors)
            results.append((f"gradient: {target}", passed, f"rel err {detail}"))
        return results

    def accumulate():
        _, _, fresh = h.backward(FULL)
        preset = {k: np.full(s, 0.5) for k, s in h.shapes.items()}
        h.backward(FULL, grads=preset)
        err = max(_max_err(preset[k] - 0.5, fresh[k]) for k in h.shapes)
        zeros = tuple(np.zeros((B, H)) for _ in state_names)
        dx_none, ds_none, g_none = h.backward(FULL, d_finals=(None,) * len(state_names))
        dx_zero, ds_zero, g_zero = h.backward(FULL, d_finals=zeros)
        err_none = max(_max_err(dx_none, dx_zero), *(_max_err(a, b) for a, b in zip(ds_none, ds_zero)),
                       *(_max_err(g_none[k], g_zero[k]) for k in h.shapes))
        passed = err <= 1e-12 and err_none <= 1e-12
        return passed, f"grads += (err {err:.1e}); d_final None == zeros (err {err_none:.1e})"

    def zero_past_length():
        out, _, _ = h.forward(lengths=LENGTHS)
        past = np.arange(T)[:, None] >= LENGTHS[None, :]  # (T, B)
        worst = float(np.max(np.abs(out[past]), initial=0.0))
        return worst == 0.0, f"max |out| past length = {worst:.1e}"

    def padding_invariance():
        garbage = h.x.copy()
        past = np.arange(T)[:, None] >= LENGTHS[None, :]
        garbage[past] = 1e3  # padded inputs must not matter
        out, finals, _ = h.forward(x=garbage, lengths=LENGTHS)
        err = 0.0
        for b, n in enumerate(LENGTHS):
            row_out, row_finals, _ = h.forward(
                x=np.ascontiguousarray(h.x[:n, b:b + 1]),
                states=tuple(np.ascontiguousarray(s[b:b + 1]) for s in h.states))
            err = max(err, _max_err(out[:n, b:b + 1], row_out),
                      *(_max_err(f[b:b + 1], rf) for f, rf in zip(finals, row_finals)))
        return err <= 1e-12, f"max |batched - alone| = {err:.1e} (outputs and final states)"

    def ignored_past_length():
        past = np.arange(T)[:, None] >= LENGTHS[None, :]
        d_clean = np.where(past[:, :, None], 0.0, h.r)
        d_noisy = np.where(past[:, :, None], 1e3, h.r)
        dx_c, ds_c, g_c = h.backward(LENGTHS, d_out=d_clean)
        dx_n, ds_n, g_n = h.backward(LENGTHS, d_out=d_noisy)
        err = max(_max_err(dx_c, dx_n), *(_max_err(a, b) for a, b in zip(ds_c, ds_n)),
                  *(_max_err(g_c[k], g_n[k]) for k in h.shapes))
        dx_past = float(np.max(np.abs(dx_n[past]), initial=0.0))
        passed = err <= 1e-12 and dx_past == 0.0
        return passed, f"d_out past length changes grads by {err:.1e}; max |dx| past length {dx_past:.1e}"

    def empty_row():
        # row EMPTY_ROW runs no step; the others are the batch without it
        out, finals, _ = h.forward(lengths=WITH_EMPTY)
        dx, d_states, grads = h.backward(WITH_EMPTY)
        keep = [b for b in range(B) if b != EMPTY_ROW]
        sub = lambda a: np.ascontiguousarray(a[:, keep] if a.ndim == 3 else a[keep])  # noqa: E731
        rest_out, rest_finals, rest_cache = h.forward(
            x=sub(h.x), states=tuple(sub(s) for s in h.states), lengths=WITH_EMPTY[keep])
        rest_grads = {k: np.zeros(s) for k, s in h.shapes.items()}
        rest_dx, rest_ds = cell.backward(sub(h.r), tuple(sub(s) for s in h.s), rest_cache,
                                         rest_grads, 1)
        problems = []
        if np.any(out[:, EMPTY_ROW] != 0):
            problems.append("nonzero outputs")
        if any(not np.array_equal(f[EMPTY_ROW], s[EMPTY_ROW]) for f, s in zip(finals, h.states)):
            problems.append("final states differ from the initial states")
        if np.any(dx[:, EMPTY_ROW] != 0):
            problems.append("nonzero dx")
        if any(not np.array_equal(d[EMPTY_ROW], s[EMPTY_ROW]) for d, s in zip(d_states, h.s)):
            problems.append("d initial states differ from d final states")
        err = max(_max_err(out[:, keep], rest_out), _max_err(dx[:, keep], rest_dx),
                  *(_max_err(f[keep], r) for f, r in zip(finals, rest_finals)),
                  *(_max_err(d[keep], r) for d, r in zip(d_states, rest_ds)),
                  *(_rel_err(grads[k], rest_grads[k]) for k in h.shapes))
        if err > 1e-12:
            problems.append(f"the other rows or the parameter gradients change by {err:.1e}")
        return not problems, "; ".join(problems) or (
            "zero outputs and dx, initial states kept, d states passed through, no "
            "parameter gradient")

    def float32():
        out64, finals64, _ = h.forward(lengths=LENGTHS)
        p32 = {k: v.astype(np.float32) for k, v in h.params.items()}
        x32 = h.x.astype(np.float32)
        s32 = tuple(s.astype(np.float32) for s in h.states)
        out32, finals32, cache = cell.forward(x32, s32, p32, LENGTHS, 1)
        g32 = {k: np.zeros(s, np.float32) for k, s in h.shapes.items()}
        dx32, ds32 = cell.backward(h.r.astype(np.float32),
                                   tuple(s.astype(np.float32) for s in h.s), cache, g32, 1)
        dx64, ds64, g64 = h.backward(LENGTHS)
        err = max(_max_err(out32, out64), *(_max_err(a, b) for a, b in zip(finals32, finals64)))
        # float32 is what training runs: its backward is compared in full, not just dx
        grad_errs = [("dx", _rel_err(dx32, dx64))]
        grad_errs += [(f"d {n}", _rel_err(a, b)) for n, a, b in zip(state_names, ds32, ds64)]
        grad_errs += [(k, _rel_err(g32[k], g64[k])) for k in h.shapes]
        worst, err_grad = max(grad_errs, key=lambda e: e[1])
        passed = err <= 1e-4 and err_grad <= 1e-4 and dx32.dtype == np.float32
        return passed, (f"|f32 - f64|: outputs {err:.1e}, gradients {err_grad:.1e} ({worst}; "
                        f"dx, d states, every parameter) ({dx32.dtype})")

    def threads():
        """forward and backward on 1 and on 2 threads, float64 and float32, with lengths
        (a row of length 0 among them), and with masks of every kind the cell lists; at
        two widths, each 2-thread run repeated (a race shows only when threads overlap)."""
        def problem(H):
            rng = np.random.default_rng(seed + 300 + H)
            params = {k: np.zeros(s) for k, s in cell_param_shapes(cell, I2, H).items()}
            cell.init_params(params, H, rng)
            arrays = {"x": rng.normal(size=(T2, B2, I2)),
                      "states": tuple(rng.normal(scale=0.5, size=(B2, H)) for _ in state_names),
                      "d_out": rng.normal(size=(T2, B2, H)),
                      "d_finals": tuple(rng.normal(size=(B2, H)) for _ in state_names)}
            cases = [("", None)]
            if kinds:
                masks = {}
                if "recurrent" in kinds:
                    masks["recurrent"] = 2.0 * (rng.random((B2, H)) < 0.5)
                if "zoneout" in kinds:
                    masks["zoneout"] = tuple(rng.uniform(0.1, 0.9, (T2, B2, H))
                                             for _ in state_names)
                cases.append((", masks", masks))
            return params, arrays, cases

        def run(params, arrays, dtype, masks, num_threads, rows):
            """The first ``rows`` batch rows (B2 or B2 - 1) of every array."""
            cast = lambda a: np.ascontiguousarray(a.astype(dtype))  # noqa: E731
            first = lambda a: cast(a[:rows] if a.ndim == 2 else a[:, :rows])  # noqa: E731
            extra = {} if masks is None else {"masks": {
                k: first(v) if k == "recurrent" else tuple(first(z) for z in v)
                for k, v in masks.items()}}
            out, finals, cache = cell.forward(first(arrays["x"]),
                                              tuple(map(first, arrays["states"])),
                                              {k: cast(v) for k, v in params.items()},
                                              LENGTHS2[:rows].copy(), num_threads, **extra)
            grads = {k: np.zeros(v.shape, dtype) for k, v in params.items()}
            dx, d_states = cell.backward(first(arrays["d_out"]),
                                         tuple(map(first, arrays["d_finals"])), cache,
                                         grads, num_threads)
            return {"out": out, **{f"final {n}": f for n, f in zip(state_names, finals)},
                    "dx": dx, **{f"d {n}": d for n, d in zip(state_names, d_states)},
                    **{f"grad {k}": g for k, g in grads.items()}}

        worst = []  # (relative error / tolerance, detail)
        with _every_region_parallel():
            for H in (H2, H2_WIDE):
                params, arrays, cases = problem(H)
                for rows, where in ((B2, ""), (B2 - 1, f", {B2 - 1} rows")):
                    for case, masks in cases:
                        for dtype in (np.float64, np.float32):
                            one = run(params, arrays, dtype, masks, 1, rows)
                            for _ in range(RACE_REPEATS):
                                two = run(params, arrays, dtype, masks, 2, rows)
                                name, err = max(((k, _rel_err(two[k], one[k])) for k in one),
                                                key=lambda e: e[1])
                                worst.append((err / THREADS_TOL[np.dtype(dtype)],
                                              f"{err:.1e} at H {H} ({name}, "
                                              f"{np.dtype(dtype)}{case}{where})"))
        ratio, detail = max(worst, key=lambda w: w[0])
        detail = "bitwise equal" if ratio == 0 else f"max rel |1 thread - 2 threads| = {detail}"
        return ratio <= 1, (f"{detail}; outputs, final states, dx, d states and parameter "
                            f"gradients, {B2 - 1} and {B2} rows, H {H2} and {H2_WIDE}, "
                            f"float64 and float32{', with masks' if kinds else ''}, 2 threads "
                            f"{RACE_REPEATS} times")

    def infer_matches_forward():
        err = err32 = 0.0
        for dtype in (np.float64, np.float32):
            x = h.x.astype(dtype)
            states = tuple(s.astype(dtype) for s in h.states)
            params = {k: v.astype(dtype) for k, v in h.params.items()}
            for nt in (1, 2):
                out, finals, _ = cell.forward(x, states, params, LENGTHS, nt)
                out_i, finals_i = cell.infer(x, states, params, LENGTHS, nt)
                e = max(_max_err(out, out_i), *(_max_err(a, b) for a, b in zip(finals, finals_i)))
                if dtype == np.float64:
                    err = max(err, e)
                else:
                    err32 = max(err32, e)
        return (err <= 1e-12 and err32 <= 1e-6,
                f"max |infer - forward| = {err:.1e} (f64), {err32:.1e} (f32), 1 and 2 threads")

    kinds = [k for k in getattr(cell, "mask_kinds", ()) or () if k in ("recurrent", "zoneout")]

    def some_masks(kind, seed_offset=0, hidden=H):
        """Fixed masks of one kind: a recurrent-dropout mask of 0 and 2, or zoneout values
        in (0, 1) (any value is allowed, and the gradient is exact for all of them)."""
        rng = np.random.default_rng(seed + 100 + seed_offset)
        if kind == "recurrent":
            return {"recurrent": 2.0 * (rng.random((B, hidden)) < 0.5)}
        return {"zoneout": tuple(rng.uniform(0.1, 0.9, (T, B, hidden)) for _ in state_names)}

    def mask_gradients():
        results = []
        for kind in kinds:
            masks = some_masks(kind)
            dx, d_states, grads = h.backward(LENGTHS, masks=masks)
            targets = [("x", h.x, dx)]
            targets += [(f"state {n}", s, d) for n, s, d in zip(state_names, h.states, d_states)]
            targets += [(k, h.params[k], grads[k]) for k in h.shapes]
            errors = [(name, _rel_err(analytic, numeric_grad(
                lambda: h.objective(LENGTHS, masks), array)))
                for name, array, analytic in targets]
            worst = max(errors, key=lambda e: e[1])
            results.append((f"masks: gradient ({kind})", worst[1] <= GRAD_TOL,
                            f"max rel err {worst[1]:.1e} ({worst[0]}), with lengths"))
        return results

    def mask_neutral():
        plain_out, plain_finals, _ = h.forward(lengths=LENGTHS)
        masks = {}
        if "recurrent" in kinds:
            masks["recurrent"] = np.ones((B, H))
        if "zoneout" in kinds:
            masks["zoneout"] = tuple(np.zeros((T, B, H)) for _ in state_names)
        out, finals, _ = h.forward(lengths=LENGTHS, masks=masks)
        changed, _, _ = h.forward(lengths=LENGTHS, masks=some_masks(kinds[0]))
        err = max(_max_err(out, plain_out), *(_max_err(a, b) for a, b in zip(finals, plain_finals)))
        moved = _max_err(changed, plain_out)
        return (err <= 1e-12 and moved > 1e-6,
                f"ones / zeros vs no masks {err:.1e}; masks change outputs by {moved:.1e}")

    def mask_infer():
        masks = {}
        for kind in kinds:
            masks.update(some_masks(kind, 1))
        out, finals, _ = h.forward(lengths=LENGTHS, masks=masks)
        out_i, finals_i = cell.infer(h.x, h.states, h.params, LENGTHS, 1, masks=masks)
        err = max(_max_err(out, out_i), *(_max_err(a, b) for a, b in zip(finals, finals_i)))
        return err <= 1e-12, f"max |infer - forward| with masks = {err:.1e}"

    def int8():
        f32 = np.float32
        h8 = _CellHarness(cell, seed, INT8_H)
        x = h8.x.astype(f32)
        states = tuple(s.astype(f32) for s in h8.states)
        params = {k: v.astype(f32) for k, v in h8.params.items()}
        qparams = cell.quantize(params)
        masked = kinds and takes_masks(cell.infer_int8)
        cases = [("", None)] + ([(f", {kind} mask", some_masks(kind, 2, INT8_H))
                                 for kind in kinds] if masked else [])
        worst, effect, problems = 0.0, 0.0, []
        plain = None   # (int8, float32) results without masks, each [out, *finals]
        for case, masks in cases:
            cast = None if masks is None else {
                k: v.astype(f32) if k == "recurrent" else tuple(z.astype(f32) for z in v)
                for k, v in masks.items()}
            extra = {} if cast is None else {"masks": cast}
            out, finals, _ = cell.forward(x, states, params, WITH_EMPTY, 1, **extra)
            runs = [cell.infer_int8(x, states, qparams, WITH_EMPTY, nt, **extra)
                    for nt in (1, 2)]
            for got, got_finals in runs:
                if (len(got_finals) != len(finals)
                        or any(np.shape(a) != b.shape or getattr(a, "dtype", None) != f32
                               for a, b in zip((got, *got_finals), (out, *finals)))):
                    return False, (f"int8 results {_shapes_dtypes((got, *got_finals))}; "
                                   f"expected forward's {_shapes_dtypes((out, *finals))}")
            (got, got_finals), (two, two_finals) = runs
            if plain is None:
                plain = ([got, *got_finals], [out, *finals])
            else:   # what the mask changes, in int8 and in float32
                moved8 = [a - b for a, b in zip((got, *got_finals), plain[0])]
                moved = [a - b for a, b in zip((out, *finals), plain[1])]
                effect = max(effect, max(_max_err(a, b) for a, b in zip(moved8, moved))
                             / max(np.abs(m).max() for m in moved))
            scale = max(np.abs(out).max(), *(np.abs(f).max() for f in finals))
            worst = max(worst, max(_max_err(got, out),
                                   *(_max_err(a, b) for a, b in zip(got_finals, finals))) / scale)
            past = np.arange(T)[:, None] >= WITH_EMPTY[None, :]           # (T, B)
            if np.abs(got[past]).max(initial=0) != 0:
                problems.append(f"non-zero outputs past a row's length{case}")
            if any(not np.array_equal(a[EMPTY_ROW], s[EMPTY_ROW])
                   for a, s in zip(got_finals, states)):
                problems.append(f"a row of length 0 changed its states{case}")
            threads_err = max(_rel_err(two, got), *(_rel_err(a, b) for a, b in
                                                   zip(two_finals, got_finals)))
            if threads_err > THREADS_TOL[np.dtype(f32)]:
                problems.append(f"1 and 2 threads differ by {threads_err:.1e}{case}")
        if worst > INT8_TOL:
            problems.append(f"max |int8 - float32| = {worst:.1%} of the largest float32 "
                            f"value (at most {INT8_TOL:.0%})")
        if effect > INT8_MASK_TOL:
            problems.append(f"a mask changes the int8 results unlike float32's: "
                            f"{effect:.1%} of its float32 change (at most {INT8_MASK_TOL:.0%})")
        return not problems, ("; ".join(problems) if problems else
                              f"max |int8 - float32| = {worst:.2%} of the largest float32 "
                              f"value; lengths, a row of length 0, 1 and 2 threads"
                              + (f"; each mask kind changes int8 as float32 (within "
                                 f"{effect:.1%})" if masked else ""))

    runner.run("parameters", parameters)
    runner.run("shapes", shapes)
    runner.run("same inputs, same results", repeatable)
    runner.run("inputs untouched", inputs_untouched)
    runner.run("step: a loop of one-step calls equals the sequence", step_loop)
    runner.run("gradient", gradients)
    runner.run("gradients accumulate", accumulate)
    runner.run("lengths: zero outputs past length", zero_past_length)
    runner.run("lengths: padding invariance", padding_invariance)
    runner.run("lengths: gradients past length ignored", ignored_past_length)
    runner.run("lengths: a row of length 0", empty_row)
    runner.run("float32 agrees with float64", float32)
    runner.run("threads: 1 and 2 agree", threads)
    if callable(getattr(cell, "infer", None)):  # optional member of recurrent.protocols.Cell
        runner.run("infer equals forward", infer_matches_forward)
    if kinds:  # optional member mask_kinds: recurrent dropout and zoneout
        runner.run("masks: gradient", mask_gradients)
        runner.run("masks: ones and zeros change nothing", mask_neutral)
        if callable(getattr(cell, "infer", None)):
            runner.run("masks: infer equals forward", mask_infer)
    if callable(getattr(cell, "quantize", None)) and callable(getattr(cell, "infer_int8",
                                                                      None)):
        runner.run("int8: infer_int8 beside float32", int8)
    return runner.results


# ---- losses -----------------------------------------------------------------------------

N, K = 6, 4  # rows, outputs per row
SEQ = (3, 2)  # (T, B): the N rows as a sequence batch, outputs (T, B, K) as training passes


def _target_kind(loss, outputs, rng) -> str:
    """"class" (int ids (N,)) or "dense" (floats (N, K)): the loss's ``target_kind``
    attribute if it has one, else whichever the loss accepts."""
    kind = getattr(loss, "target_kind", None)
    if kind in TARGET_KINDS:
        return kind
    try:
        loss.value_and_grad(outputs, rng.random((N, K)), None)
        return "dense"
    except Exception:
        return "class"


def check_loss(loss, seed: int = 0) -> list[CheckResult]:
    """Run every loss check on ``loss`` (an object following recurrent.protocols.Loss)."""
    runner = CheckRunner()
    runner.run("members", lambda: members_check(loss, Loss))
    rng = np.random.default_rng(seed)
    outputs = rng.normal(size=(N, K))  # (N, K)
    kind = _target_kind(loss, outputs, rng)
    targets = rng.integers(0, K, size=N) if kind == "class" else rng.random((N, K))
    mask = np.array([1, 0, 1, 1, 0, 1], dtype=bool)  # (N,)

    def value_and_grad(o, t=targets, m=None):
        value, grad = loss.value_and_grad(o, t, m)
        return float(value), np.asarray(grad)

    def shapes():
        problems = []
        for dtype in (np.float64, np.float32):
            value, grad = value_and_grad(outputs.astype(dtype))
            if grad.shape != (N, K) or grad.dtype != dtype:
                problems.append(f"gradient {grad.dtype} {grad.shape} for {np.dtype(dtype)} "
                                f"{(N, K)} outputs")
            if not np.isfinite(value):
                problems.append(f"value {value}")
        return not problems, "; ".join(problems) or f"{kind} targets; value float, gradient (N, K)"

    def repeatable():
        """Two calls on the same arguments give bitwise the same value and gradient."""
        first, second = (value_and_grad(outputs.copy(), targets.copy(), mask.copy())
                         for _ in range(2))
        same = (np.array_equal(first[0], second[0], equal_nan=True)
                and np.array_equal(first[1], second[1], equal_nan=True))
        if not same:
            return False, ("two calls on the same arguments differ: value and gradient "
                           "must depend on them alone (no random draws, no state kept "
                           "between calls)")
        return True, "two calls on the same arguments: bitwise the same value and gradient"

    def gradient(m):
        def check():
            _, analytic = value_and_grad(outputs, m=m)
            work = outputs.copy()
            numeric = numeric_grad(lambda: value_and_grad(work, m=m)[0], work)
            err = _rel_err(analytic, numeric)
            return err <= GRAD_TOL, f"rel err {err:.1e}"
        return check

    def masked_rows():
        value, grad = value_and_grad(outputs, m=mask)
        changed_out = outputs.copy()
        changed_out[~mask] = 50.0
        # padding as tasks may fill it (recurrent.protocols.Loss: any target): -1 class
        # ids, NaN floats, which a loss must keep out of its value and gradient
        changed_t = targets.copy()
        changed_t[~mask] = -1 if kind == "class" else np.nan
        value2, grad2 = value_and_grad(changed_out, t=changed_t, m=mask)
        worst = float(np.max(np.abs(np.concatenate([grad[~mask], grad2[~mask]])), initial=0.0))
        err = max(abs(value - value2), _max_err(grad[mask], grad2[mask]))
        padding = "-1 ids" if kind == "class" else "NaN targets"
        return worst == 0.0 and err <= 1e-12, \
            (f"max |grad| on masked rows {worst:.1e}; masked rows ({padding}, outputs 50) "
             f"change the result by {err:.1e}")

    def ones_mask():
        v1, g1 = value_and_grad(outputs)
        v2, g2 = value_and_grad(outputs, m=np.ones(N, bool))
        err = max(abs(v1 - v2), _max_err(g1, g2))
        return err <= 1e-12, f"|no mask - ones| = {err:.1e}"

    def mean():
        v1, g1 = value_and_grad(outputs)
        doubled = np.concatenate([targets, targets])
        v2, g2 = value_and_grad(np.concatenate([outputs, outputs]), t=doubled)
        v3, _ = value_and_grad(outputs, m=mask)
        v4, _ = value_and_grad(np.ascontiguousarray(outputs[mask]), t=targets[mask])
        err = max(abs(v1 - v2), _max_err(g2[:N] * 2, g1), abs(v3 - v4))
        return err <= 1e-12, f"value is a mean over valid rows (err {err:.1e})"

    def sequence():
        """(T, B, K) outputs, (T, B) class ids or (T, B, K) floats, a (T, B) mask or none:
        what training passes for a task with sequence output (recurrent/step.py). The
        value and gradient must be those of the same arrays flattened to N rows."""
        outputs3 = outputs.reshape(SEQ + (K,))
        targets3 = targets.reshape(SEQ + targets.shape[1:])
        problems: dict[str, list[str]] = {}  # problem -> the cases that show it
        err, cases = 0.0, 0
        where = problems.setdefault
        for dtype in (np.float64, np.float32):
            for case, mask2, mask3 in (("no mask", None, None),
                                       ("(T, B) mask", mask, mask.reshape(SEQ))):
                cases += 1
                what = f"{np.dtype(dtype)}, {case}"
                try:
                    value3, grad3 = value_and_grad(outputs3.astype(dtype), t=targets3, m=mask3)
                except Exception as exc:
                    where(_raised(exc), []).append(what)
                    continue
                value2, grad2 = value_and_grad(outputs.astype(dtype), m=mask2)
                if grad3.shape != outputs3.shape or grad3.dtype != dtype:
                    where(f"gradient {grad3.dtype} {grad3.shape} for {outputs3.shape} "
                          "outputs", []).append(what)
                    continue
                e = max(abs(value3 - value2) / max(1.0, abs(value2)),
                        _rel_err(grad3.reshape(N, K), grad2))
                if e > (1e-12 if dtype == np.float64 else 1e-6):
                    where(f"value or gradient differs from the flattened {(N, K)} call's by "
                          f"{e:.1e}", []).append(what)
                elif dtype == np.float64:
                    err = max(err, e)
        if problems:
            found = "; ".join(f"{p} ({'every case' if len(w) == cases else '; '.join(w)})"
                              for p, w in problems.items())
            return False, (f"{SEQ + (K,)} outputs, {targets3.shape} targets: {found}; "
                           "training passes a sequence task's outputs, targets and mask so "
                           "(recurrent.protocols.Loss)")
        return True, (f"{SEQ + (K,)} outputs equal the flattened {(N, K)} ones (err "
                      f"{err:.1e}), with and without a (T, B) mask, float64 and float32")

    def extreme():
        value, grad = value_and_grad(outputs * 1e4)
        ok = np.isfinite(value) and np.all(np.isfinite(grad))
        return ok, f"outputs ~1e4: value {value:.3g}, gradient finite: {bool(np.all(np.isfinite(grad)))}"

    members = [outputs, rng.normal(size=(N, K)), rng.normal(size=(N, K)) * 3]

    def combine():  # recurrent/ensemble.py: shape and dtype kept, finite for any outputs
        problems = []
        for dtype in (np.float64, np.float32):
            for scale in (1.0, 1e4):
                for shape in ((N, K), SEQ + (K,)):  # pooled and sequence outputs
                    got = np.asarray(loss.combine([(m * scale).astype(dtype).reshape(shape)
                                                   for m in members]))
                    if got.shape != shape or got.dtype != dtype:
                        problems.append(f"{got.dtype} {got.shape} from {np.dtype(dtype)} "
                                        f"{shape}")
                    elif not np.all(np.isfinite(got)):
                        problems.append(f"not finite for outputs ~{scale:g}")
        return not problems, "; ".join(problems) or (
            "(N, K) and (T, B, K) in the members' dtype, finite")

    def combine_identical():
        one, _ = value_and_grad(outputs)
        three, _ = value_and_grad(np.asarray(loss.combine([outputs.copy() for _ in range(3)])))
        err = abs(one - three)
        return err <= 1e-9 * max(1.0, abs(one)), f"|loss(one) - loss(combined)| = {err:.1e}"

    runner.run("shapes", shapes)
    runner.run("same arguments, same result", repeatable)
    runner.run("sequence outputs (T, B, K)", sequence)
    runner.run("gradient", gradient(None))
    runner.run("gradient with mask", gradient(mask))
    runner.run("mask: masked rows ignored", masked_rows)
    runner.run("mask: ones equal no mask", ones_mask)
    runner.run("mean over valid rows", mean)
    runner.run("extreme outputs stay finite", extreme)
    if hasattr(loss, "combine"):
        runner.run("combine: members' outputs into one", combine)
        runner.run("combine: identical members score as one", combine_identical)
    return runner.results


# ---- by registry name -------------------------------------------------------------------

def check(name: str, kind: str | None = None, seed: int = 0) -> tuple[str, list[CheckResult]]:
    """Run the kit on the registered cell or loss called ``name``; returns (kind, results)
    (find() names it)."""
    kind, obj = find(name, kind)
    return kind, (check_cell(obj, seed) if kind == "cell" else check_loss(obj, seed))


def unknown_name(name: str, kinds: tuple[str, ...]) -> "UserError":
    """The UserError for a ``name`` that no registered object of ``kinds`` ("cell",
    "loss", "task") has: the known names of those kinds, and the broken plugins with their
    errors: first the one whose error names ``name`` (e.g. its cell lacks backward, so the
    registry refused it), else all of them, as the registry's own lookup
    (recurrent.plugins.Registry.get) names them."""
    from . import plugins
    from .errors import UserError

    what = " or ".join(kinds) if len(kinds) < 3 else f"{', '.join(kinds[:-1])} or {kinds[-1]}"
    known = ", ".join(sorted(set().union(*(plugins.entries(k) for k in kinds))))
    broken = plugins.broken_plugins()  # plugin -> one-line error, after entries()
    # a plugin's (entry point's) name in place of what it registers
    own = sorted({n for k in kinds for n, e in plugins.entries(k).items() if e.plugin == name})
    if own:
        return UserError(f"no {what} named {name!r}: that is the name of a plugin; check "
                         f"what it registers: `recurrent plugins check {' '.join(own)}`")
    if name in broken:
        return UserError(f"no {what} named {name!r}: plugin {name!r} is broken: "
                         f"{broken[name]} (see `recurrent plugins`)")
    named = {p: e for p, e in broken.items() if repr(name) in e}
    if named:
        why = "; ".join(f"plugin {p!r} is broken: {e}" for p, e in sorted(named.items()))
        return UserError(f"no {what} named {name!r}: {why} (see `recurrent plugins`); "
                         f"known: {known or '(none)'}")
    message = f"no {what} named {name!r}; known: {known or '(none)'}"
    if broken:
        message += (" (broken plugins: " + ", ".join(
            f"{p!r} ({e})" for p, e in sorted(broken.items())) + "; see `recurrent plugins`)")
    return UserError(message)


def other_kind(name: str, kind: str | None) -> "UserError | None":
    """The UserError for ``name`` asked for as a ``kind`` ("cell", "loss", "task") it is
    not registered as while it is registered as another: naming that kind and its --kind;
    None when it is registered as no other (or no kind was asked for)."""
    from . import plugins
    from .errors import UserError

    others = [k for k in ("cell", "loss", "task") if k != kind and name in plugins.entries(k)]
    if kind is None or not others:
        return None
    if len(others) == 1:  # without --kind, the one object of that name is found
        return UserError(f"{name!r} is a {others[0]}, not a {kind}: pass --kind "
                         f"{others[0]} or no --kind")
    return UserError(f"{name!r} is a {' and a '.join(others)}, not a {kind}: pass "
                     + " or ".join(f"--kind {k}" for k in others))


def find(name: str, kind: str | None = None) -> tuple[str, object]:
    """(kind, object) of the registered cell or loss called ``name``.

    ``kind`` ("cell" or "loss") settles a name registered as both. A name registered only
    as another kind raises other_kind's UserError, unknown names unknown_name's."""
    from . import plugins
    from .errors import UserError

    found = {k: plugins.entries(k) for k in ("cell", "loss") if kind in (None, k)}
    hits = [k for k, known in found.items() if name in known]
    if not hits:
        raise other_kind(name, kind) or unknown_name(name, tuple(found))
    if len(hits) > 1:
        raise UserError(f"{name!r} is both a cell and a loss; pass --kind cell or --kind loss")
    return hits[0], found[hits[0]][name].obj
