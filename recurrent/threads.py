"""Threads: whether OpenMP was compiled in, how many threads a call into the library uses,
and keeping BLAS single-threaded while our own threads run.

The thread count is resolved once, where a call enters the library (the layers' and the
model's public methods, which the task runner calls), by resolve_threads(), and passed
down as an int; the kernels may use fewer for small work (kernel_threads in
recurrent/_kernels/_rows.pxd).

The kernels run a few OpenMP regions per call; in the weight-gradient phase each thread
calls BLAS on its own block. If OpenBLAS also started its threads inside those calls, its
threads and ours would fight over the cores and a step would take many times longer. So
the same entry points (and Trainer.fit) run inside `single_threaded_blas()`, which sets
OpenBLAS to 1 thread through its own C entry point (cheap: benchmarks/README.md) and
restores the previous count afterwards; other BLAS libraries go through threadpoolctl.
Cells and kernels never pin BLAS themselves.

The command line runs every command inside `single_threaded_blas()` too (cli.py). Outside
the kernels, BLAS serves L-BFGS fits (the sentiment baselines and wide part) and paired
tests: level-1 calls on vectors of 10^4-10^6 numbers, which OpenBLAS splits over its
threads. Split, their sums would depend on the thread count OpenBLAS takes from the
machine's cores, and so would a run's baselines and wide part (and, through them, its
trained weights); and while other processes hold the cores each split call would wait for
its threads to be scheduled.
"""
from __future__ import annotations

import ctypes
import math
import os
import threading
import time
from contextlib import contextmanager

from .checks import C_INT_MAX
from .errors import UserError

# A thread must own at least this many batch rows, and rows * hidden^2 of at least
# MIN_WORK_PER_THREAD (a step's recurrent product is ~2 * rows * gates * hidden^2 flops),
# before another thread pays for waking it (`recurrent bench --threads 1,auto` compares).
MIN_ROWS_PER_THREAD = 4
MIN_WORK_PER_THREAD = 32768


def openmp_enabled() -> bool:
    """True when the kernels were compiled with OpenMP (so num_threads > 1 can run)."""
    from ._kernels import ompinfo
    return ompinfo.compiled_with_openmp()


def available_cores() -> int:
    """Cores this process may run on (CPU affinity, not the machine's total)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def oversubscription_note(threads: int | None, ranks: int = 1,
                          ranks_text: str | None = None) -> str | None:
    """A note when ``ranks`` processes on this host (--ranks; ``ranks_text`` names them
    otherwise, as "mpiexec's 4 ranks") of ``threads`` kernel threads each
    (--threads; None: the default, which shares the host's cores among its ranks and
    gives each at least one: distributed.world) run more threads than the available
    cores, else None. The count is taken, not refused (an upper bound, up to
    MAX_THREAD_OPTION), but threads beyond the cores take turns on them, and every
    parallel region of a step waits for its slowest thread."""
    total = (threads or 1) * ranks
    cores = available_cores()
    if total <= cores:
        return None
    named = ranks > 1 and ranks_text is not None
    given = (" with " if named else " ").join(
        ([ranks_text if named else f"--ranks {ranks}"] if ranks > 1 else [])
        + ([f"--threads {threads}"] if threads is not None else []))
    return (f"note: {given} run{'' if named else 's'} {total} kernel threads on {cores} "
            f"available core{'s' if cores > 1 else ''}; threads beyond the cores take turns "
            f"on them and every step waits for the slowest, so fewer threads can run faster")


THREADS_VARIABLE = "RECURRENT_NUM_THREADS"
# the largest thread count the library's calls take: the kernels and OpenMP take a C int
# (a count above the cores is an upper bound the kernels lower)
MAX_THREADS = C_INT_MAX
# the largest count --threads takes (train, eval, tune, bench: cli_options.THREAD_COUNT):
# above the cores of any machine, and few enough to start, since torch (bench's other
# side) starts every thread it is given, and crashes or aborts when the system cannot
# make that many
MAX_THREAD_OPTION = 4096


def env_threads() -> int | None:
    """RECURRENT_NUM_THREADS as an int (the first item of an OMP_NUM_THREADS-style list
    "N,M" is the count, as before); None when unset or blank. A value that is set but is
    not a positive integer (0, -2, 1.5, abc) is a UserError naming the variable and the
    value: silently ignoring it would run with another count than the one asked for."""
    raw = os.environ.get(THREADS_VARIABLE, "")
    value = raw.split(",")[0].strip()
    if not raw.strip():
        return None
    if not (value.isascii() and value.isdigit()) or _decimal(value) < 1:
        raise UserError(f"{THREADS_VARIABLE}={raw!r}: expected a positive integer (the most "
                        f"threads a call uses); unset it for the default")
    return _decimal(value)


# more digits than any count a C integer holds
_LONGEST_COUNT = 30


def _decimal(digits: str) -> int:
    """The number an ASCII digit string writes; one of more than _LONGEST_COUNT
    significant digits reads as 10**_LONGEST_COUNT, beyond every limit it is compared
    with (Python refuses to convert strings of thousands of digits)."""
    digits = digits.lstrip("0") or "0"
    return int(digits) if len(digits) <= _LONGEST_COUNT else 10 ** _LONGEST_COUNT


# the characters C's isspace() skips around OMP_NUM_THREADS's numbers (the C locale's)
_C_SPACES = " \t\n\v\f\r"
# the largest count the OpenMP runtime takes: libgomp reads each number as a C long
_C_LONG_MAX = (1 << (8 * ctypes.sizeof(ctypes.c_long) - 1)) - 1


def omp_env_threads() -> int | None:
    """OMP_NUM_THREADS's count as the OpenMP runtime (libgomp) reads it, so that the
    kernels' default and every other OpenMP region of the process agree: a comma-separated
    list of positive decimal integers (ASCII digits, an optional "+", C blanks around
    each), whose first item is the count. None when unset, or when any item is not such a
    number (blank, 0, -1, 1.5, "2,", a number beyond a C long): libgomp then says
    "Invalid value for environment variable OMP_NUM_THREADS" itself and uses its default,
    the cores, as max_threads does. The variable is OpenMP's, shared with every OpenMP
    program, so a value OpenMP ignores is ignored here too rather than refused."""
    raw = os.environ.get("OMP_NUM_THREADS")
    if raw is None:
        return None
    counts = []
    for item in raw.split(","):
        digits = item.strip(_C_SPACES)
        digits = digits[1:] if digits.startswith("+") else digits
        if not (digits.isascii() and digits.isdigit()):
            return None
        if not 0 < _decimal(digits) <= _C_LONG_MAX:
            return None
        counts.append(_decimal(digits))
    return counts[0]


def max_threads() -> int:
    """Upper bound for the default choice: RECURRENT_NUM_THREADS, else OMP_NUM_THREADS
    (omp_env_threads), else the available cores, and never more than the OpenMP runtime's
    thread limit (OMP_THREAD_LIMIT: the kernels' regions get no more); 1 when OpenMP is
    not compiled in. An invalid RECURRENT_NUM_THREADS is a UserError (env_threads), with
    or without OpenMP."""
    from_env = env_threads()
    if not openmp_enabled():
        return 1
    from ._kernels import ompinfo
    if from_env is not None:
        return max(1, min(from_env, ompinfo.thread_limit()))
    count = omp_env_threads() or available_cores()
    return max(1, min(count, ompinfo.thread_limit()))


# idle_cores() samples the runnable threads of other processes at most every SAMPLE_EVERY
# seconds (reading /proc may cost more than a small kernel call) and averages the
# samples over about BUSY_TIME_CONSTANT seconds: a kernel thread that is runnable now and
# then (kworker, kdamond) must not halve the threads, a CPU-bound neighbour must.
SAMPLE_EVERY = 0.02
BUSY_TIME_CONSTANT = 1.0
# No single sample weighs more than this, even after a long pause between kernel calls:
# it takes 4 busy samples in a row to give a core up (a transient is one sample).
MAX_SAMPLE_WEIGHT = 0.2


def _runnable_elsewhere() -> int | None:
    """Threads of OTHER processes runnable right now (Linux), else None: the running
    count of /proc/loadavg minus this process's own threads in state R (its OpenMP and
    BLAS workers included, spinning ones too)."""
    try:
        with open("/proc/loadavg") as f:
            running = int(f.read().split()[3].split("/")[0])
        own = 0
        for tid in os.listdir("/proc/self/task"):
            try:
                with open(f"/proc/self/task/{tid}/stat", "rb") as f:
                    stat = f.read()
            except OSError:  # the thread ended meanwhile
                continue
            own += stat[stat.rindex(b")") + 2:stat.rindex(b")") + 3] == b"R"
    except (OSError, ValueError, IndexError):
        return None
    return max(0, running - own)


def _load_average_elsewhere() -> float:
    """Without /proc: the 1-minute load average less this process's one thread (it
    over-counts while our own threads run, so it is the fallback only)."""
    try:
        return max(0.0, os.getloadavg()[0] - 1.0)
    except (AttributeError, OSError):
        return 0.0


_busy_average = [-1.0, 0.0]  # [monotonic time of the last sample, average busy cores]


def idle_cores() -> int:
    """Cores not busy with other processes (at least 1). A parallel region ends when its
    slowest thread does: a thread that has to share its core with another busy process
    makes the whole call wait for the scheduler. Our own threads do not count (the load
    average counts them: following it, a sustained multi-threaded run would talk itself
    down to 1 thread)."""
    now = time.monotonic()
    last, average = _busy_average
    if last < 0 or now - last >= SAMPLE_EVERY:
        busy = _runnable_elsewhere()
        if busy is None:  # already an average
            average = _load_average_elsewhere()
        else:
            weight = MAX_SAMPLE_WEIGHT if last < 0 else min(
                MAX_SAMPLE_WEIGHT, 1.0 - math.exp(-(now - last) / BUSY_TIME_CONSTANT))
            average += weight * (busy - average)
        _busy_average[:] = [now, average]
    cores = available_cores()
    return max(1, min(cores, int(cores - average + 0.5)))


def resolve_threads(num_threads: int | None, batch: int, hidden: int) -> int:
    """The thread count for a call on `batch` rows of `hidden` units: THE place that turns
    a user's setting (None or an int) into the int passed down to cells and kernels.

    An int is honoured as given (as an upper bound: kernel_threads in _rows.pxd uses fewer
    for fewer batch rows or little work).
    None picks a count meant never to be slower than 1 thread: each thread gets at least
    MIN_ROWS_PER_THREAD rows and MIN_WORK_PER_THREAD of rows * hidden^2, no more threads
    than max_threads(), and no more than the cores other processes leave idle. Results do
    not depend on the count (bitwise). A set but invalid RECURRENT_NUM_THREADS is a
    UserError (env_threads) once the size wants more than one thread; the CLI checks it
    before any command runs.
    """
    if num_threads is not None:
        if isinstance(num_threads, bool) or not isinstance(num_threads, int) or num_threads < 1:
            raise ValueError(f"num_threads must be a positive int or None, got {num_threads!r}")
        return num_threads
    wanted = min(batch // MIN_ROWS_PER_THREAD, batch * hidden * hidden // MIN_WORK_PER_THREAD)
    if wanted <= 1:  # the size alone decides: skip the environment and /proc lookups,
        return 1     # which cost as much as a tiny call
    wanted = min(wanted, max_threads())
    return 1 if wanted <= 1 else max(1, min(wanted, idle_cores()))


class _OpenBLASEntryPoints:
    """openblas_get/set_num_threads of one loaded OpenBLAS, called directly through ctypes."""

    def __init__(self, path):
        lib = ctypes.CDLL(path)
        self.path = path
        self.get = self.set = None
        for prefix in ("", "scipy_"):
            for suffix in ("", "64_", "_64"):
                name = f"{prefix}openblas_get_num_threads{suffix}"
                if hasattr(lib, name):
                    self.get = getattr(lib, name)
                    self.set = getattr(lib, f"{prefix}openblas_set_num_threads{suffix}")
                    self.get.restype = ctypes.c_int
                    self.get.argtypes = []
                    self.set.restype = None
                    self.set.argtypes = [ctypes.c_int]
                    return


class _BlasLimiter:
    """Nestable, thread-safe "BLAS uses 1 thread" switch: the first holder saves and sets,
    the last one out restores."""

    def __init__(self):
        from threadpoolctl import ThreadpoolController

        self._lock = threading.Lock()
        self._holders = 0
        self._saved = []
        self._fallback = None
        controller = ThreadpoolController()
        self._openblas = []
        others = False
        for info in controller.info():
            if info.get("user_api") != "blas":
                continue
            entry = None
            if info.get("internal_api") == "openblas" and info.get("threading_layer") != "openmp":
                entry = _OpenBLASEntryPoints(info["filepath"])
            if entry is not None and entry.get is not None:
                self._openblas.append(entry)
            else:
                others = True
        # MKL, BLIS, OpenMP-threaded OpenBLAS...: threadpoolctl knows how to limit them.
        self._controller = controller if others else None

    def acquire(self):
        with self._lock:
            self._holders += 1
            if self._holders > 1:
                return
            self._saved = [entry.get() for entry in self._openblas]
            for entry, count in zip(self._openblas, self._saved):
                if count != 1:
                    entry.set(1)
            if self._controller is not None:
                self._fallback = self._controller.limit(limits=1, user_api="blas")

    def outside_counts(self) -> dict:
        """{OpenBLAS file path: its thread count outside the switch} while it is held,
        else {} (threadpoolctl then reads the counts as they are)."""
        with self._lock:
            if self._holders == 0:
                return {}
            return {entry.path: count for entry, count in zip(self._openblas, self._saved)}

    def release(self):
        with self._lock:
            self._holders -= 1
            if self._holders > 0:
                return
            for entry, count in zip(self._openblas, self._saved):
                if count != 1:
                    entry.set(count)
            if self._fallback is not None:
                self._fallback.restore_original_limits()
                self._fallback = None


_limiter = None
_limiter_lock = threading.Lock()


def _get_limiter() -> _BlasLimiter:
    global _limiter
    if _limiter is None:
        with _limiter_lock:
            if _limiter is None:
                # BLAS libraries are loaded by now: scipy's through the kernels' import
                import scipy.linalg.cython_blas  # noqa: F401
                _limiter = _BlasLimiter()
    return _limiter


@contextmanager
def single_threaded_blas():
    """Within this block every loaded BLAS library runs single-threaded."""
    limiter = _get_limiter()
    limiter.acquire()
    try:
        yield
    finally:
        limiter.release()


def blas_info() -> list[dict]:
    """threadpoolctl's view of the loaded BLAS libraries (kernel architecture, threads),
    with the thread counts OpenBLAS has outside single_threaded_blas() while that holds
    it (every command of the command line runs inside it)."""
    from threadpoolctl import threadpool_info
    outside = _get_limiter().outside_counts()
    return [{**info, "num_threads": outside.get(info.get("filepath"), info.get("num_threads"))}
            for info in threadpool_info() if info.get("user_api") == "blas"]
