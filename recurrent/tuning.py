"""Tuning that follows the machine: the kernels' path choices and block sizes chosen by
measurement on this CPU, once, and cached per machine and package version.

What is tuned (recurrent/_kernels/tuning.pxd holds the fixed defaults, used when tuning
is off): the batch rows from which the float32 LSTM step computes its input part inside
the register tiles rather than hoisting it, the block sizes of the hoisted GEMMs (row
blocks of the input projection and dx, gate blocks of the weight gradients), the step
chunk of inference's input projection, and the work below which a parallel region runs on
one thread. Every choice depends on the problem's sizes only, never on the thread count:
a setting may change the last bits of a result between machines, never between thread
counts. The settings are not keyed by thread count for that reason; the tuner measures
with the threads the user runs (`recurrent tune --threads`, else the default count).
A run records the values of the settings that can change its last bits (RESULT_SETTINGS)
in its config.json when it starts and uses them whenever it trains or is evaluated again,
so a tune after it started never moves its results (resume stays bitwise).

How (like FFTW's wisdom or cuDNN's benchmark mode, but once per machine): each decision
times its candidates on a few small representative problems of the cells it affects
(float32 training and inference), in rounds that interleave the candidates so a load
change hits them alike (at least MIN_ROUNDS), keeps each problem's fastest round, and
picks the candidate with the smallest sum of times relative to the default's; the default
stays unless another is at least MARGIN faster. Decisions run one after another, each
with the earlier ones' choices in force, within a time budget (a decision that finds the
budget spent keeps its default).

Where: <cache dir>/tuning/<key hash>.json (recurrent/cache.py: RECURRENT_CACHE_DIR, else
the user's cache home), the key being the CPU (its model name, and its family, model and
stepping, or ARM's implementer and part: virtual machines often share one name), its
vector ISA flags, the kernels' vector path and the package version; the file is written
atomically (a temporary file renamed over it) under a lock, so several processes starting
at once tune once and never read half a file. A file that is unreadable, malformed, not
a regular file, larger than MAX_FILE_BYTES or made for another machine or version is
ignored with one line on stderr and tuned again.

When: the first kernel call of a layer (recurrent.layers) or a benchmark calls ensure():
it loads the cache, or runs the quick tune (AUTO_BUDGET seconds, silent) and stores it.
RECURRENT_TUNE=off, or `recurrent tune --off` (a marker file in the cache directory), or
a turned-off cache directory keeps the fixed defaults.
"""
from __future__ import annotations

import errno
import hashlib
import json
import os
import platform
import sys
import threading
import time
from dataclasses import dataclass

import numpy as np

from .checkpoint import atomic_write
from .checks import one_line

FORMAT = 1
ENV = "RECURRENT_TUNE"
AUTO_BUDGET = 5.0        # seconds of the automatic first-use run
DEFAULT_BUDGET = 20.0    # seconds of `recurrent tune`
MARGIN = 0.05            # a candidate must beat the default by this fraction to replace it
MIN_ROUNDS = 2           # a decision that starts times every candidate at least this often
MAX_ROUNDS = 6
LOCK_WAIT = 120.0        # seconds to wait for another process's tune before giving up
# a tuning file is about a kilobyte: a larger one is not read (every command would hold
# and parse it)
MAX_FILE_BYTES = 1 << 20

# CPU flags that decide which vector code runs (the cache key names those present)
ISA_FLAGS = ("sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512dq", "avx512bw",
             "avx512vl", "avx512_vnni", "avx512_bf16", "avx_vnni", "amx_tile", "amx_bf16",
             "amx_int8", "asimd", "sve", "sve2")


@dataclass(frozen=True)
class Workload:
    """One timed problem: a cell, training (forward + backward) or inference, and its
    (T, B, I, H)."""
    cell: str
    train: bool
    T: int
    B: int
    I: int  # noqa: E741
    H: int


def _w(cell, mode, T, B, I, H):  # noqa: E741
    return Workload(cell, mode == "train", T, B, I, H)


@dataclass(frozen=True)
class Decision:
    """A kernel setting (name as in _kernels/tuning.pyx), its candidates and the problems
    that judge them. in_tile: the setting is a batch-row threshold, so two candidates on
    the same side of a problem's B run the same code (timed once). parallel: only matters
    with more than one thread. changes_results: its candidates may round differently (the
    LSTM's two input paths; BLAS on other block shapes), so a run keeps the value it
    started with (RESULT_SETTINGS); the others leave every result bitwise unchanged."""
    name: str
    candidates: tuple
    workloads: tuple
    in_tile: bool = False
    parallel: bool = False
    changes_results: bool = False

    def effect(self, value, workload):
        """What running `workload` with this value does: equal effects, equal code."""
        return workload.B >= value if self.in_tile else value


def _both(cell, T, B, I, H):  # noqa: E741
    return (_w(cell, "train", T, B, I, H), _w(cell, "infer", 2 * T, B, I, H))


DECISIONS = (
    Decision("lstm_in_tile_min_rows", (1, 2, 4, 8, 16, 32, 1 << 30),
             tuple(w for B in (1, 2, 4, 8, 16, 32) for w in _both("lstm", 16, B, 64, 128))
             + tuple(w for B in (4, 16) for w in _both("lstm", 16, B, 128, 256)),
             in_tile=True, changes_results=True),
    Decision("max_gate_block", (128, 256, 512, 1024),
             (_w("lstm", "train", 16, 32, 64, 128), _w("gru", "train", 16, 32, 128, 256),
              _w("rnn_tanh", "train", 16, 32, 128, 512), _w("lstm", "train", 16, 16, 256, 512)),
             changes_results=True),
    Decision("row_parts", (4, 8, 16, 32),
             (_w("gru", "train", 16, 32, 128, 256), _w("rnn_tanh", "train", 16, 32, 128, 256),
              _w("lstm", "train", 16, 32, 64, 128), _w("gru", "infer", 32, 32, 128, 256),
              _w("rnn_relu", "infer", 32, 32, 128, 256))),
    Decision("infer_chunk_bytes", (1 << 20, 4 << 20, 16 << 20),
             (_w("gru", "infer", 32, 64, 128, 256), _w("gru", "infer", 64, 16, 64, 128),
              _w("lstm", "infer", 64, 2, 128, 256))),
    Decision("min_parallel_flops", (5_000_000, 20_000_000, 80_000_000),
             (_w("lstm", "train", 16, 8, 32, 64), _w("gru", "train", 16, 8, 32, 64),
              _w("rnn_tanh", "train", 16, 16, 64, 128), _w("lstm", "infer", 16, 8, 64, 128),
              _w("gru", "infer", 16, 16, 64, 128)),
             parallel=True),
)


# the settings a run records when it starts and keeps for good (run_settings, use_for_run)
RESULT_SETTINGS = tuple(d.name for d in DECISIONS if d.changes_results)


def _kernels():
    from ._kernels import tuning as kernel_tuning
    return kernel_tuning


def defaults() -> dict:
    """The fixed defaults, {name: int} (recurrent/_kernels/tuning.pxd)."""
    return _kernels().defaults()


def current() -> dict:
    """The settings the kernels use now."""
    return _kernels().current()


# -- the cache key and file ------------------------------------------------------------

# /proc/cpuinfo fields that tell CPUs apart where the model string does not (a virtual
# machine's generic "Intel(R) Xeon(R) Processor"; ARM's, which has none)
CPU_ID_FIELDS = ("vendor_id", "cpu family", "model", "stepping", "CPU implementer",
                 "CPU architecture", "CPU variant", "CPU part")


def _cpu(cpuinfo: str = "/proc/cpuinfo") -> tuple[str, list[str], dict]:
    """(CPU model string, the ISA_FLAGS it has, its CPU_ID_FIELDS present)."""
    model, flags, ids = "", set(), {}
    try:
        with open(cpuinfo) as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key in ("model name", "Hardware", "cpu model") and not model:
                    model = value.strip()
                elif key in ("flags", "Features") and not flags:
                    flags = set(value.split())
                elif key in CPU_ID_FIELDS and key not in ids:
                    ids[key] = value.strip()
    except OSError:
        pass
    return (model or platform.processor() or platform.machine(),
            [f for f in ISA_FLAGS if f in flags], ids)


def machine_key() -> dict:
    """Everything a tuning result depends on besides the problem sizes."""
    from . import __version__
    from ._kernels import activations
    model, flags, ids = _cpu()
    return {"format": FORMAT, "recurrent": __version__, "machine": platform.machine(),
            "cpu": model, "cpu_id": ids, "isa": flags,
            "vector_code": activations.vector_level()}


def _tuning_dir() -> str | None:
    from .cache import cache_dir
    root = cache_dir()
    return None if root is None else os.path.join(root, "tuning")


def cache_path() -> str | None:
    """The tuning file of the current CPU and version (None when the cache is off)."""
    folder = _tuning_dir()
    if folder is None:
        return None
    digest = hashlib.sha256(json.dumps(machine_key(), sort_keys=True).encode()).hexdigest()
    return os.path.join(folder, f"{digest[:16]}.json")


def _off_marker() -> str | None:
    folder = _tuning_dir()
    return None if folder is None else os.path.join(folder, "off")


class CacheError(Exception):
    """A tuning file that cannot be used (the message says why, in one line)."""


def cache_failure(exc: Exception) -> str:
    """What went wrong with the tuning cache, in one line: a file or folder it cannot
    write named with the system's reason ("Read-only file system"), not as an errno."""
    if isinstance(exc, OSError) and exc.filename and exc.strerror:
        return f"cannot write the tuning cache at {exc.filename}: {exc.strerror}"
    return one_line(exc)


def read_cache(path: str) -> dict:
    """The settings stored in `path`, checked against the current CPU and version;
    CacheError when unreadable, malformed or made elsewhere."""
    # a named pipe would block until a writer opens it, a device such as /dev/zero would
    # never end
    if not os.path.isfile(path):
        raise CacheError("not a regular file")
    size = os.path.getsize(path)
    if size > MAX_FILE_BYTES:
        raise CacheError(f"{size} bytes, too large for a tuning file")
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        # RecursionError: JSON nested deeper than the parser recurses
        raise CacheError(f"unreadable ({type(exc).__name__})") from None
    if not isinstance(data, dict) or not isinstance(data.get("settings"), dict):
        raise CacheError("not a tuning file")
    if data.get("key") != machine_key():
        raise CacheError("made for another CPU or recurrent version")
    try:
        return _kernels().check(data["settings"])
    except ValueError as exc:
        raise CacheError(str(exc)) from None


def write_cache(path: str, settings: dict, info: dict) -> None:
    """Store `settings` (and `info`: threads, budget, decisions) atomically
    (checkpoint.atomic_write: a complete temporary file renamed over `path`)."""
    from .cache import STALE_TEMP_SECONDS
    from .checkpoint import remove_stale_temps
    folder = os.path.dirname(path)
    os.makedirs(folder, exist_ok=True)
    remove_stale_temps(folder, STALE_TEMP_SECONDS)
    data = {"key": machine_key(), "settings": settings,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **info}
    text = json.dumps(data, indent=1, sort_keys=True)
    atomic_write(path, lambda f: f.write(text.encode("utf-8")))


class _FileLock:
    """An exclusive lock on `path` between processes (fcntl; a no-op where missing)."""

    def __init__(self, path, wait):
        self.path, self.wait, self.fd = path, wait, None

    def __enter__(self):
        try:
            import fcntl
        except ImportError:
            return self
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        end = time.monotonic() + self.wait
        while True:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return self
            except BlockingIOError:
                if time.monotonic() > end:
                    os.close(self.fd)
                    self.fd = None
                    raise TimeoutError("another process holds the tuning lock") from None
                time.sleep(0.05)

    def __exit__(self, *exc):
        if self.fd is not None:
            os.close(self.fd)   # closing releases the lock
            self.fd = None


# -- measuring -------------------------------------------------------------------------

class _Problem:
    """A workload's cell, parameters and data, run by calling it (returns seconds)."""

    def __init__(self, workload: Workload, num_threads: int):
        from .layers import cell_param_shapes
        from .plugins import get_cell
        w = workload
        self.cell = get_cell(w.cell)
        self.train, self.threads = w.train, num_threads
        rng = np.random.default_rng(0)
        self.params = {k: np.zeros(s, np.float32)
                       for k, s in cell_param_shapes(self.cell, w.I, w.H).items()}
        self.cell.init_params(self.params, w.H, rng)
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}
        self.x = rng.standard_normal((w.T, w.B, w.I), dtype=np.float32)
        self.states = tuple(np.zeros((w.B, w.H), np.float32) for _ in self.cell.state_names)
        self.d_out = rng.standard_normal((w.T, w.B, w.H), dtype=np.float32)
        self.none = (None,) * len(self.cell.state_names)
        self.lengths = np.full(w.B, w.T, np.int64)

    def __call__(self) -> float:
        start = time.perf_counter()
        if self.train:
            _, _, cache = self.cell.forward(self.x, self.states, self.params, self.lengths,
                                            self.threads)
            self.cell.backward(self.d_out, self.none, cache, self.grads, self.threads)
        else:
            self.cell.infer(self.x, self.states, self.params, self.lengths, self.threads)
        return time.perf_counter() - start


@dataclass
class Outcome:
    """One decision's result: the chosen value, the default, the speed-up of the choice
    over the default on the decision's problems (1.0: kept), and the timing rounds run
    (0: skipped, the budget was spent)."""
    name: str
    default: int
    chosen: int
    speedup: float
    rounds: int


def _decide(decision, settings, num_threads, problems, seconds, progress) -> Outcome:
    """Time the candidates of one decision for about `seconds` (at least MIN_ROUNDS
    rounds)."""
    kernels = _kernels()
    default = settings[decision.name]
    candidates = decision.candidates if default in decision.candidates else (
        (default,) + decision.candidates)
    # each (workload, effect) is timed once, with the first candidate that has the effect
    runs = {}
    for w in decision.workloads:
        for c in candidates:
            runs.setdefault((w, decision.effect(c, w)), c)
    best = {}
    end = time.monotonic() + seconds
    rounds = 0
    try:
        while rounds < MAX_ROUNDS and (rounds < MIN_ROUNDS or time.monotonic() < end):
            for (w, effect), c in runs.items():
                kernels.apply({**settings, decision.name: c})
                problem = problems.get(w)
                if problem is None:
                    problem = problems[w] = _Problem(w, num_threads)
                    problem()   # untimed: first-call allocations, caches
                t = problem()
                best[w, effect] = min(t, best.get((w, effect), t))
            rounds += 1
    finally:
        kernels.apply(settings)

    def score(c):
        return sum(best[w, decision.effect(c, w)] / best[w, decision.effect(default, w)]
                   for w in decision.workloads)

    base = score(default)
    chosen = min(candidates, key=score)
    if score(chosen) > base * (1 - MARGIN):
        chosen = default
    speedup = base / score(chosen)
    if progress:
        progress(f"  {decision.name}: {chosen} (default {default}, {speedup:.2f}x on "
                 f"{len(decision.workloads)} problems, {rounds} round(s))")
    return Outcome(decision.name, default, chosen, speedup, rounds)


def default_threads() -> int:
    """The threads a run uses by default at most: max_threads(), but no more than the
    available cores (resolve_threads never gives more), so that a RECURRENT_NUM_THREADS
    above the core count does not tune for oversubscribed cores."""
    from .threads import available_cores, max_threads
    return min(max_threads(), available_cores())


def tune(budget: float = DEFAULT_BUDGET, num_threads: int | None = None,
         progress=None) -> tuple[dict, list[Outcome]]:
    """Measure every decision on this CPU with num_threads threads (None: the default
    count) within about `budget` seconds. Returns (settings, outcomes); the kernels keep
    the settings they had. progress: a function taking one line, or None."""
    from .threads import single_threaded_blas
    threads = default_threads() if num_threads is None else num_threads
    settings = defaults()
    previous = current()
    start = time.monotonic()
    decisions = [d for d in DECISIONS if threads > 1 or not d.parallel]
    outcomes = []
    problems = {}
    with single_threaded_blas():
        try:
            for i, decision in enumerate(decisions):
                left = budget - (time.monotonic() - start)
                if left <= 0:
                    outcomes.append(Outcome(decision.name, settings[decision.name],
                                            settings[decision.name], 1.0, 0))
                    if progress:
                        progress(f"  {decision.name}: default kept (budget spent)")
                    continue
                if progress:
                    progress(f"tuning {decision.name} ({len(decision.candidates)} candidates)")
                outcome = _decide(decision, settings, threads, problems,
                                  left / (len(decisions) - i), progress)
                settings[decision.name] = outcome.chosen
                outcomes.append(outcome)
        finally:
            _kernels().apply(previous)
    return settings, outcomes


def tune_and_store(budget: float, num_threads: int | None = None, progress=None,
                   path: str | None = None, reuse: bool = False):
    """tune(), then write the cache file (path: the current CPU's). Returns (settings,
    outcomes, path); outcomes is None when `reuse` found a valid file written by another
    process while this one waited for the lock (nothing is tuned then)."""
    threads = default_threads() if num_threads is None else num_threads
    path = path or cache_path()
    if path is None:
        from .cache import off_reason
        raise CacheError(off_reason())
    with _FileLock(path + ".lock", LOCK_WAIT):
        if reuse and os.path.exists(path):
            try:
                return read_cache(path), None, path
            except CacheError:
                pass
        check_storable(path)
        start = time.monotonic()
        settings, outcomes = tune(budget, threads, progress)
        write_cache(path, settings, {
            "threads": threads, "budget": budget,
            "seconds": round(time.monotonic() - start, 2),
            "decisions": [o.__dict__ for o in outcomes]})
    return settings, outcomes, path


def check_storable(path: str) -> None:
    """OSError naming what keeps the tuning file ``path`` from being written: a directory
    in its place (a file renamed over it fails), a folder this process cannot write in,
    or a folder not made yet below a regular file (the first folder the lock's makedirs
    would fail to make, as it names it). Checked before measuring, which takes the whole
    budget, and before `recurrent tune` says what it measures, so that the failure comes
    first and alone."""
    if os.path.isdir(path) and not os.path.islink(path):  # a link itself is replaced
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), path)
    folder = os.path.dirname(path)
    if os.path.isdir(folder) and not os.access(folder, os.W_OK):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), folder)
    missing = os.path.abspath(folder)  # the first folder not there yet ("/" always is)
    while not os.path.lexists(os.path.dirname(missing)):
        missing = os.path.dirname(missing)
    parent = os.path.dirname(missing)
    if not os.path.lexists(missing) and os.path.isfile(parent):
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), missing)


# -- using it --------------------------------------------------------------------------

_state: dict = {}            # what ensure() decided: mode, settings, path, note
_lock = threading.Lock()


def _env_off() -> bool:
    value = os.environ.get(ENV, "").strip().lower()
    if value in ("", "on", "auto", "1", "yes", "true"):
        return False
    if value not in ("off", "0", "no", "false"):
        _say(f"{ENV}={value!r} is not on or off; tuning stays on")
        return False
    return True


def _say(line):
    """One line on stderr (the only output of the automatic run). None on a data-parallel
    rank other than 0 (recurrent/distributed.py): its line would repeat rank 0's, and the
    other ranks are silent unless they fail."""
    from .distributed import current
    world = current()
    if world is not None and not world.is_root:
        return
    sys.stderr.write(f"recurrent: {line}\n")


def _plan(auto: bool) -> dict:
    """The settings for this process and where they come from: {mode, settings, path,
    note}, mode "off" (defaults), "cache", or "pending" (no cache yet; only when not
    auto: with auto the quick tune runs and stores its result)."""
    def plan(mode, settings=None, path=None, note=None):
        return {"mode": mode, "settings": settings or defaults(), "path": path, "note": note}

    if _env_off():
        return plan("off", note=f"{ENV}=off")
    path, marker = cache_path(), _off_marker()
    if path is None:
        from .cache import off_reason
        return plan("off", note=off_reason())
    if os.path.exists(marker):
        return plan("off", note=f"`recurrent tune --off` ({marker})")
    if os.path.exists(path):
        try:
            return plan("cache", read_cache(path), path)
        except CacheError as exc:
            _say(f"ignoring the tuning cache {path}: {exc}; "
                 + ("tuning again" if auto else "the first kernel call tunes again"))
            if not auto:
                return plan("pending", path=path, note=f"the file there is ignored: {exc}")
    if not auto:
        return plan("pending", path=path)
    try:
        settings, _, path = tune_and_store(AUTO_BUDGET, path=path, reuse=True)
        return plan("cache", settings, path)
    except (OSError, TimeoutError, CacheError) as exc:
        _say(f"kernel tuning skipped ({cache_failure(exc)}); using the defaults")
        return plan("off", note="the automatic tuning failed")


VECTOR_VARIABLE = "RECURRENT_VECTOR_LEVEL"
# the values the kernels read (recurrent/_kernels/cpu.h, compared exactly): each lowers
# the vector code to that level (avx_vnni: the AVX2 level with the int8 products' AVX-VNNI
# variant where the CPU has it; avx2 keeps the plain AVX2 one)
VECTOR_LEVELS = ("avx2", "avx_vnni", "portable")


def env_vector_level() -> str | None:
    """RECURRENT_VECTOR_LEVEL when set to a level the kernels read, None when unset or
    empty; any other value is a UserError naming the variable and the value: the kernels
    would ignore it and run the best vector code the CPU has."""
    from .errors import UserError
    value = os.environ.get(VECTOR_VARIABLE, "")
    if not value:
        return None
    if value not in VECTOR_LEVELS:
        raise UserError(f"{VECTOR_VARIABLE}={value!r}: expected "
                        f"{', '.join(VECTOR_LEVELS[:-1])} or {VECTOR_LEVELS[-1]} (lowers "
                        f"the kernels' vector code); "
                        f"unset it for the best this CPU has")
    return value


def ensure() -> None:
    """Before a process's first kernel call: load the current CPU's tuning, or tune it once
    (about AUTO_BUDGET seconds), unless tuning is off. Later calls return at once. A set
    but invalid RECURRENT_VECTOR_LEVEL is a UserError (env_vector_level)."""
    if _state:
        return
    env_vector_level()
    with _lock:
        if not _state:
            plan = _plan(auto=True)
            _kernels().apply(plan["settings"])
            _state.update(plan)


def run_settings() -> dict:
    """What a new run records (config.json "kernel"): the values of RESULT_SETTINGS this
    process uses, ensure()'s."""
    ensure()
    return {name: _state["settings"][name] for name in RESULT_SETTINGS}


def use_for_run(recorded, where: str) -> None:
    """Before a run trains or is evaluated: ensure()'s settings with RESULT_SETTINGS taken
    from ``recorded`` (the run's config.json "kernel"; None for a run made before runs
    recorded them: ensure()'s alone), so that a tune after the run started never moves
    its results. The settings are the process's: the run opened last sets them for
    every run it computes. UserError (one line, naming ``where``) for a damaged record."""
    from .errors import UserError
    ensure()
    with _lock:
        settings = dict(_state["settings"])
        if recorded is not None:
            if not isinstance(recorded, dict) or set(recorded) - set(RESULT_SETTINGS):
                raise UserError(f"{where}: \"kernel\" is not a record of "
                                f"{', '.join(RESULT_SETTINGS)}: {recorded!r}")
            settings.update(recorded)
        try:
            _kernels().apply(settings)
        except ValueError as e:
            raise UserError(f"{where}: \"kernel\": {e}") from None


def reset() -> None:
    """Forget what ensure() decided and go back to the defaults (the next ensure() decides
    again: after a change of the environment or of the cache, or in tests)."""
    with _lock:
        _state.clear()
        _kernels().apply(defaults())


def status() -> dict:
    """For `recurrent info`: mode ("off", "cache", or "pending": no usable cache yet, the
    first kernel call tunes), path, note, the settings in use or to be used, and the
    defaults. Never runs a tune."""
    info = dict(_state) if _state else _plan(auto=False)
    info["defaults"] = defaults()
    return info


def set_enabled(enabled: bool) -> tuple[str, bool]:
    """`recurrent tune --on/--off`: remove or create the off marker; returns its path and
    whether it changed. A switch already in the asked position writes nothing, so that it
    succeeds on a read-only cache directory."""
    marker = _off_marker()
    if marker is None:
        from .cache import off_reason
        raise CacheError(f"{off_reason()}; tuning is off with it")
    changed = os.path.lexists(marker) if enabled else not os.path.exists(marker)
    if changed and enabled:
        try:
            os.unlink(marker)
        except FileNotFoundError:
            pass
    elif changed:
        os.makedirs(os.path.dirname(marker), exist_ok=True)
        # atomically: a write that fails (a full disk) leaves no empty marker, which
        # would turn tuning off while the command reports that it failed
        text = b"kernel tuning is off: `recurrent tune --on` turns it back on\n"
        atomic_write(marker, lambda f: f.write(text))
    reset()
    return marker, changed
