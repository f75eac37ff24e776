"""The process group a run trains in: one process, or the ranks of an MPI job.

`recurrent train` started by ``mpiexec -n N`` (or by ``--ranks N``, recurrent/launch.py)
runs one rank per process; ``world()`` tells which. Without MPI launcher variables in the
environment mpi4py is never imported, so a single-process run neither needs nor pays for
MPI.

Every collective an MPI rank enters is watched: if it has not completed after
RECURRENT_MPI_TIMEOUT seconds (default 600), the rank prints one line naming itself and
the operation and aborts the whole job, so a rank that hangs or dies without MPI
noticing never leaves the others waiting forever. A rank that fails prints one line and
aborts the job (``fail``); a rank killed outright is noticed by mpiexec, which stops the
others.
"""
from __future__ import annotations

import os
import signal
import socket
import sys
import threading
import time
from contextlib import contextmanager

import numpy as np

from .env_flags import env_flag
from .errors import AllRanksError, UserError
from .extras import install_hint

# Environment variables an MPI launcher sets: the number of ranks of the job.
SIZE_VARIABLES = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_SIZE")
# ... and this process's rank in it (MPICH's Hydra and Slurm's PMI set PMI_RANK, Open MPI
# OMPI_COMM_WORLD_RANK, a PMIx launcher PMIX_RANK).
RANK_VARIABLES = ("PMI_RANK", "OMPI_COMM_WORLD_RANK", "PMIX_RANK")
TIMEOUT_VARIABLE = "RECURRENT_MPI_TIMEOUT"
# Set to 1: run as one process even under an MPI launcher (e.g. `srun -n 4` of independent
# runs, one per seed).
OPT_OUT_VARIABLE = "RECURRENT_NO_MPI"
DEFAULT_TIMEOUT = 600.0
# The commands whose ranks meet in world() (the process group of an MPI job).
WORLD_COMMANDS = ("train", "info")
# Where a `--ranks N` launcher asks each rank to leave its pid (launch.py names the rank
# of a process mpiexec reports killed).
LAUNCH_DIR_VARIABLE = "RECURRENT_LAUNCH_DIR"


class World:
    """A single process: rank 0 of 1, every collective the identity."""

    rank = 0
    size = 1
    local_rank = 0
    local_size = 1

    @property
    def is_root(self) -> bool:
        return self.rank == 0

    def allreduce(self, array: np.ndarray) -> np.ndarray:
        """Sum ``array`` over the ranks, in place (every rank gets the same sum)."""
        return array

    def bcast(self, obj, watched: bool = True):
        """Rank 0's ``obj`` on every rank. watched=False: no timeout (the other ranks wait
        while rank 0 alone prepares data or fits baselines, which may take long)."""
        return obj

    def allgather(self, obj) -> list:
        """[obj of rank 0, obj of rank 1, ...] on every rank."""
        return [obj]

    def gather(self, obj) -> list | None:
        """The list of every rank's obj on rank 0, None elsewhere."""
        return [obj]

    def fail(self, line: str, code: int = 1):
        """Report a failure of this rank (one line on stderr) and end the process."""
        print(line, file=sys.stderr, flush=True)
        sys.exit(code)

    def describe(self) -> dict:
        return {"size": 1}


class MPIWorld(World):
    """The ranks of an MPI job, through mpi4py's COMM_WORLD."""

    def __init__(self, MPI, timeout: float):
        self.MPI = MPI
        self.comm = MPI.COMM_WORLD
        self.rank, self.size = self.comm.Get_rank(), self.comm.Get_size()
        local = self.comm.Split_type(MPI.COMM_TYPE_SHARED, key=self.rank)
        self.local_rank, self.local_size = local.Get_rank(), local.Get_size()
        local.Free()
        self.host = socket.gethostname()
        self.timeout = timeout
        self._waiting = None  # (operation, start time) while in a collective
        self._lock = threading.Lock()
        threading.Thread(target=self._watch, name="recurrent-mpi-watchdog",
                         daemon=True).start()
        launch_dir = os.environ.get(LAUNCH_DIR_VARIABLE)
        if launch_dir and os.path.isdir(launch_dir):
            with open(os.path.join(launch_dir, f"rank-{self.rank}"), "w") as f:
                f.write(f"{os.getpid()} {self.host}\n")

    # -- the watchdog ---------------------------------------------------------------------
    @contextmanager
    def _collective(self, operation: str):
        with self._lock:
            self._waiting = (operation, time.monotonic())
        try:
            yield
        finally:
            with self._lock:
                self._waiting = None

    def _watch(self):
        while True:
            time.sleep(min(1.0, self.timeout / 4))
            with self._lock:
                waiting = self._waiting
            if waiting and time.monotonic() - waiting[1] > self.timeout:
                self.fail(f"Error: rank {self.rank}: no answer from the other ranks for "
                          f"{self.timeout:g} s in {waiting[0]} (a rank hung or died); "
                          f"stopping all ranks")
                # MPI_Abort only asks the launcher to kill the job (MPICH's returns at
                # once): fire once, or the line would repeat until the kill arrives.
                return

    # -- collectives ------------------------------------------------------------------------
    def allreduce(self, array):
        with self._collective("allreduce"):
            self.comm.Allreduce(self.MPI.IN_PLACE, array, op=self.MPI.SUM)
        return array

    def bcast(self, obj, watched: bool = True):
        if not watched:
            return self.comm.bcast(obj, root=0)
        with self._collective("broadcast"):
            return self.comm.bcast(obj, root=0)

    def allgather(self, obj):
        with self._collective("allgather"):
            return self.comm.allgather(obj)

    def gather(self, obj):
        with self._collective("gather"):
            return self.comm.gather(obj, root=0)

    def fail(self, line: str, code: int = 1):
        """One line on stderr, then MPI_Abort: mpiexec stops every rank."""
        print(line, file=sys.stderr, flush=True)
        # The abort travels to mpiexec on another channel than our stderr, and mpiexec
        # exits as soon as it gets it, dropping output its proxy has not forwarded yet:
        # let the proxy read the line first, or the job may end without it.
        _wait_for_stderr_read()
        # MPICH's MPI_Abort prints a line of its own ("Abort(1) on node 1 ...") on this
        # process's stderr: the job's failure is the line above, alone
        _silence_stderr()
        self.comm.Abort(code)

    def describe(self) -> dict:
        layout = self.comm.allgather((self.host, self.rank))
        by_host = {}
        for host, rank in layout:
            by_host.setdefault(host, []).append(rank)
        return {"size": self.size, "hosts": by_host,
                "library": " ".join(self.MPI.Get_library_version().split("\n")[0].split()),
                "mpi4py": __import__("mpi4py").__version__}


def _wait_for_stderr_read(limit: float = 2.0):
    """Wait until the reader of this process's stderr pipe (an MPI launcher's output
    forwarder) has taken everything written to it, at most ``limit`` seconds. Nothing to
    wait for when stderr is not a pipe (a file, a terminal) or is not a real file."""
    try:
        import fcntl
        import stat
        import termios
        fd = sys.stderr.fileno()
        if not stat.S_ISFIFO(os.fstat(fd).st_mode):
            return
        unread = bytearray(4)  # FIONREAD: the bytes in the pipe, an int
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            fcntl.ioctl(fd, termios.FIONREAD, unread)
            if not int.from_bytes(unread, sys.byteorder):
                return
            time.sleep(0.002)
    except (ImportError, OSError, ValueError, AttributeError):
        return  # no fileno (a replaced sys.stderr) or no FIONREAD (not POSIX)


def _silence_stderr():
    """Point this process's stderr (file descriptor 2) at the null device."""
    try:
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 2)
        os.close(null)
    except OSError:
        pass


def _announced(names) -> int | None:
    """The first of the environment variables ``names`` that holds a number, as an int."""
    for name in names:
        value = os.environ.get(name, "").strip()
        if value.isdigit():
            return int(value)
    return None


def launched_size() -> int:
    """The job size an MPI launcher announced in the environment (1: none)."""
    size = _announced(SIZE_VARIABLES)
    return 1 if size is None else size


def launched_rank() -> int | None:
    """This process's rank as an MPI launcher announced it in the environment (None: no
    launcher said)."""
    return _announced(RANK_VARIABLES)


def opted_out() -> bool:
    """RECURRENT_NO_MPI is set to a true value (env_flags.env_flag): every process runs
    on its own."""
    return env_flag(OPT_OUT_VARIABLE)


def in_job() -> bool:
    """Whether this process is one of the ranks of an MPI job: an MPI launcher announced
    more than one rank and RECURRENT_NO_MPI is not set."""
    return launched_size() > 1 and not opted_out()


def prints_early_failures() -> bool:
    """Whether this process prints a failure met before world() made its World (a bad
    option, a bad RECURRENT_MPI_TIMEOUT: the same on every rank, as the ranks run the
    same command). Under an MPI launcher with more than one rank only the launcher's
    rank 0 does, so the job shows the line once; every process does when it runs on its
    own (no launcher, RECURRENT_NO_MPI) or when the launcher names no rank."""
    if _WORLD is not None or not in_job():
        return True
    return launched_rank() in (None, 0)


def report_early_failure(line: str, joins_world: bool) -> bool:
    """A failure met before world() made this process's World (see
    prints_early_failures); returns whether this process prints ``line``.

    joins_world: the command is one whose ranks meet in world() (train, info). Under an
    MPI launcher with more than one rank such a process first starts MPI and hands
    ``line`` to the start-up exchange of world(): the ranks that got past the failure
    wait there for every rank, and without this they would wait forever for one that
    ended before starting MPI. They then stop with an AllRanksError naming this rank."""
    if joins_world and not _EXCHANGED and in_job() and mpi_available():
        try:
            from mpi4py import MPI
            _exchange_start(MPI, line)
        except Exception:  # MPI itself failed to start: nothing to tell the others
            pass
    return prints_early_failures()


_EXCHANGED = False  # this process took part in world()'s start-up exchange


def _exchange_start(MPI, failure: str | None) -> list:
    """Every rank's failure line from before its World (None: it got to world()), in rank
    order: the first collective of every rank of a job, once."""
    global _EXCHANGED
    _EXCHANGED = True
    return MPI.COMM_WORLD.allgather(failure)


def joins_world(args: list[str]) -> bool:
    """Whether the command-line arguments ``args`` run a command whose ranks meet in
    world(): its first argument that is not an option (the root group's options are
    flags) is one of WORLD_COMMANDS."""
    command = next((str(a) for a in args if not str(a).startswith("-")), None)
    return command in WORLD_COMMANDS


def ignore_ctrl_c(world: World, training_over: bool = False):
    """From now on a Ctrl-C (SIGINT) or a SIGTERM does nothing on this rank of a
    data-parallel ``world`` outside the trainer's own handlers (recurrent/interrupt.py,
    which nest inside and restore this): on a rank other than 0 from the start (mpiexec
    passes a Ctrl-C or a SIGTERM on to every rank, a scheduler may send a SIGTERM to every
    process of the job, and rank 0 acts on it for the job: it stops at a step,
    completes what it does alone, such as combining an ensemble, or ends the job), and
    on every rank once ``training_over`` (the run is complete). Otherwise a rank waiting
    for rank 0, or for MPI's finalize at exit, would end, and mpiexec would stop the job
    midway and report it failed. SIG_IGN rather than a Python handler: Python drops its
    handlers before MPI's finalize runs."""
    if world.size == 1 or (world.is_root and not training_over):
        return
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, signal.SIG_IGN)


def mpi_available() -> bool:
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        return False
    return True


def _timeout() -> float:
    value = os.environ.get(TIMEOUT_VARIABLE, "")
    try:
        timeout = float(value) if value else DEFAULT_TIMEOUT
    except ValueError:
        raise UserError(f"{TIMEOUT_VARIABLE}={value!r}: expected seconds") from None
    if not timeout > 0:
        raise UserError(f"{TIMEOUT_VARIABLE}={value!r}: expected seconds > 0")
    return timeout


_WORLD = None


def current() -> World | None:
    """The World made by world(), or None when nothing asked for one yet."""
    return _WORLD


def report_failure(world: World, line: str, code: int, all_ranks: bool) -> int:
    """A failure of this rank of ``world``, reported once for the job.

    all_ranks: every rank fails at this point (AllRanksError): rank 0 prints the line and
    all exit with ``code``. Otherwise this rank alone failed: it prints the line (prefixed
    with its rank, unless it is rank 0) and aborts the job, so no rank waits for it. A
    rank other than 0 waits a moment first: when rank 0 fails at the same time, rank 0's
    abort ends the job with rank 0's line alone.
    """
    if all_ranks:
        if world.is_root:
            print(line, file=sys.stderr, flush=True)
        return code
    if not world.is_root:
        time.sleep(1.0)
        line = line.replace("Error: ", f"Error: rank {world.rank}: ", 1)
    world.fail(line, code)
    return code


def world() -> World:
    """This process's World (made once): an MPIWorld under an MPI launcher with more
    than one rank, else the single-process World. Under MPI, the default kernel thread
    count becomes the cores of the rank's host divided by the ranks on that host (unless
    RECURRENT_NUM_THREADS or OMP_NUM_THREADS says otherwise)."""
    global _WORLD
    if _WORLD is not None:
        return _WORLD
    size = launched_size()
    if size <= 1 or opted_out():
        _WORLD = World()
        return _WORLD
    if not mpi_available():
        raise UserError(f"started by an MPI launcher with {size} ranks, but mpi4py is not "
                        f"installed: {install_hint('mpi')}")
    timeout = _timeout()
    from mpi4py import MPI
    failed = [(rank, line) for rank, line in enumerate(_exchange_start(MPI, None)) if line]
    if failed:  # a rank stopped before world() (report_early_failure): every rank stops
        rank, line = failed[0]
        raise AllRanksError(f"rank {rank}: {line.removeprefix('Error: ')}")
    _WORLD = MPIWorld(MPI, timeout) if MPI.COMM_WORLD.Get_size() > 1 else World()
    if _WORLD.size > 1 and not any(os.environ.get(v) for v in
                                   ("RECURRENT_NUM_THREADS", "OMP_NUM_THREADS")):
        from .threads import available_cores
        share = max(1, available_cores() // _WORLD.local_size)
        os.environ["RECURRENT_NUM_THREADS"] = str(share)
    return _WORLD


def row_share(rows: int, rank: int, size: int) -> slice:
    """Rank ``rank``'s rows of a global batch of ``rows``: consecutive, the first
    ``rows % size`` ranks one more."""
    base, extra = divmod(rows, size)
    start = rank * base + min(rank, extra)
    return slice(start, start + base + (rank < extra))
