"""`recurrent train TASK --ranks N`: the same command, data-parallel on N processes of this
machine, started through the mpiexec of the installed MPI library (the MPICH wheel of
the mpi extra puts one next to the Python interpreter).

mpiexec's own failure banners are condensed into one line naming the rank that failed;
a rank's own error line passes through as it is. Ctrl-C reaches the ranks through
mpiexec, which forwards it once; they agree on a step, save a checkpoint and stop (a
second Ctrl-C, at which mpiexec ends the ranks at once, is one line, "Aborted."). A
SIGTERM to this process is passed on to mpiexec, which forwards it to every rank, and to
every rank that has joined the job directly (in case mpiexec's forwarding missed it while
the job started): they stop in the same way (recurrent/interrupt.py) and the command
exits with 143. A SIGHUP to this process is passed on to mpiexec, which ends the ranks at
once: "Aborted.", 129, as one process ends at a SIGHUP. If this process is killed
outright (SIGKILL), mpiexec gets a SIGTERM from the kernel (Linux), so the ranks stop as
at a SIGTERM; if mpiexec is, this process says so in one line. A rank count this machine
cannot start (its memory or process limits: capacity.check_room) is refused in one line before
mpiexec starts.
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading

from .distributed import (LAUNCH_DIR_VARIABLE, OPT_OUT_VARIABLE, mpi_available,
                          opted_out)
from . import std_streams
from .capacity import check_room
from .errors import UserError, killed_by
from .extras import install_hint
from .progress import aside

# Lines of mpiexec (MPICH's hydra) that a user of --ranks does not need to read.
NOISE = (re.compile(r"^=+\s*$"), re.compile(r"^=\s{2,}(BAD TERMINATION|CLEANING UP|YOU CAN)"),
         re.compile(r"^This typically refers to a problem"),
         re.compile(r"^Please see the FAQ page"), re.compile(r"^Abort\(\d+\) on node"),
         re.compile(r"^\[mpiexec@[^\]]*\] (Sending Ctrl-C|Press Ctrl-C)"),
         re.compile(r"^=\s+EXIT CODE:"))
KILLED_PID = re.compile(r"^=\s+PID (\d+) RUNNING AT (\S+)")
# mpiexec's answer to a second Ctrl-C: it ends the ranks at once, then its own processes
# report, in lines of their own ("[proxy:0@host] ...", "[mpiexec@host] ..."), that the
# ranks ended that way.
FORCED_ABORT = re.compile(r"^Ctrl-C caught\.\.\. cleaning up processes")
# the summary line a run stopped by a signal prints (recurrent/cli.py): "terminated
# (SIGTERM) at step N: checkpoint saved; ..." or "interrupted at step N: ..."
STOP_LINES = ("terminated (SIGTERM) ", "interrupted ")
HYDRA_LINE = re.compile(r"^\[(proxy:|mpiexec@)[^\]]*\] ")
EXIT_STRING = re.compile(r"^YOUR APPLICATION TERMINATED WITH THE EXIT STRING: (.*)$")


def mpiexec() -> str | None:
    """The mpiexec beside this interpreter (a virtual environment's), else on PATH."""
    here = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    if os.access(here, os.X_OK):
        return here
    return shutil.which("mpiexec")


def without_ranks(args: list[str]) -> list[str]:
    """The command-line arguments minus ``--ranks N`` / ``--ranks=N``."""
    out, skip = [], False
    for arg in args:
        if skip:
            skip = False
        elif arg == "--ranks":
            skip = True
        elif not arg.startswith("--ranks="):
            out.append(arg)
    return out


class _Filter:
    """Copies mpiexec's output through, minus its banners, remembering what they said."""

    def __init__(self, on_lost=None, interrupts=()):
        self.killed = self.exit_string = None
        self.reported = False  # a rank printed its own "Error: ..." line
        self.aborted = False  # a rank printed its own "Aborted." line
        # mpiexec ended the ranks at a second Ctrl-C: it said so, or this process got
        # the Ctrl-Cs too (``interrupts``: those it received, as from the terminal)
        self.forced = False
        self.interrupts = interrupts
        self.lock = threading.Lock()
        # An output (stdout) that can no longer be written (its reader went away: `| head`,
        # a closed terminal; a full disk): it is read on and dropped, so that no rank
        # blocks writing it, and on_lost() is called once, to stop the job.
        self.lost = False
        self.lost_error = None  # the OSError that lost it
        self.on_lost = on_lost
        self.unwritable = set()  # sinks of notes and errors that cannot be written
        # rank 0 said it stopped at a signal, with a checkpoint or before any step (the
        # summary line of recurrent/cli.py, or its one-line error), or aborted
        self.said_stop = False

    def copy(self, source, sink, results=True):
        """The lines of ``source`` to ``sink``: the command's output (``results``, stdout)
        or its notes and errors (stderr)."""
        blank = 0  # blank lines held back: a banner starts with one
        for line in source:
            text = line.rstrip("\n")
            with self.lock:
                if not text.strip():
                    blank += 1
                    continue
                if FORCED_ABORT.match(text):
                    self.forced = True
                elif HYDRA_LINE.match(text) and (self.forced or len(self.interrupts) > 1):
                    pass
                elif KILLED_PID.match(text):
                    self.killed = KILLED_PID.match(text).groups()
                elif EXIT_STRING.match(text):
                    self.exit_string = EXIT_STRING.match(text).group(1)
                elif not any(p.match(text) for p in NOISE):
                    self.reported = self.reported or text.startswith("Error:")
                    self.aborted = self.aborted or text == "Aborted."
                    self.said_stop = self.said_stop or self.reported or self.aborted or (
                        text.startswith(STOP_LINES))
                    self._write("\n" * blank + text, sink, results)
                blank = 0

    def _write(self, text, sink, results):
        if self.lost or sink in self.unwritable:
            return
        try:
            print(text, file=sink, flush=True)
        except OSError as e:  # BrokenPipeError, EIO from a hung-up terminal, a full disk
            if not results:
                # notes and errors that cannot be written are lost and the work goes
                # on, as one process's (progress.aside)
                self.unwritable.add(sink)
                return
            self.lost, self.lost_error = True, e
            if self.on_lost is not None:
                self.on_lost()


def _rank_of(pid: str, launch_dir: str) -> str | None:
    for name in os.listdir(launch_dir):
        with open(os.path.join(launch_dir, name)) as f:
            if f.read().split()[:1] == [pid]:
                return name.split("-", 1)[1]
    return None


RANK_POLL = 0.2  # seconds between looks for ranks to pass a SIGTERM on to


def _signal_ranks(launch_dir: str, signalled: set) -> set:
    """SIGTERM to each rank of this host listed in ``launch_dir`` (the pid file a rank
    writes once it has joined the job) whose pid is not in ``signalled``; the pids
    signalled now. A rank that has the signal already stops as after one."""
    host, sent = socket.gethostname(), set()
    for name in os.listdir(launch_dir):
        try:
            with open(os.path.join(launch_dir, name)) as f:
                pid, where = f.read().split()[:2]
            pid = int(pid)
        except (OSError, ValueError):
            continue  # being written: the next look reads it
        if where != host or pid in signalled:
            continue
        try:
            os.kill(pid, signal.SIGTERM)
        except OSError:  # it has ended
            pass
        sent.add(pid)
    return sent


def _terminated_when_orphaned():
    """What mpiexec runs before it starts (Popen's preexec_fn): on Linux, have the kernel
    send it a SIGTERM when this process ends without ending it first (killed outright, by
    SIGKILL or the out-of-memory killer), so that its ranks stop as at a SIGTERM (a
    checkpoint at their next step) rather than train on with nobody to report to. None
    where prctl's PR_SET_PDEATHSIG does not exist."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()
    pr_set_pdeathsig = 1

    def preexec():
        prctl(pr_set_pdeathsig, int(signal.SIGTERM), 0, 0, 0)
        if os.getppid() != parent:  # this process ended before the request was made
            os.kill(os.getpid(), signal.SIGTERM)
    return preexec


# how a job that ended before its end says what is left: a checkpoint, if the ranks had
# saved one (checkpoints are written atomically)
_STOPPED = ("all ranks stopped (a checkpoint the run saved earlier is intact: continue "
            "with --resume)")


def launch(ranks: int, args: list[str]) -> int:
    """Run ``recurrent ARGS`` (without --ranks) on ``ranks`` MPI processes; the exit code."""
    if opted_out():  # the ranks would inherit it: N separate runs into one run directory
        raise UserError(f"--ranks {ranks}: {OPT_OUT_VARIABLE}="
                        f"{os.environ[OPT_OUT_VARIABLE].strip()} is set, which would make "
                        f"each of the {ranks} processes train on its own; unset it to train "
                        f"data-parallel")
    check_room(ranks)  # before an install hint: a count too large needs no MPI to refuse
    if not mpi_available():
        raise UserError(f"--ranks needs mpi4py and an MPI library: {install_hint('mpi')}")
    exe = mpiexec()
    if exe is None:
        raise UserError(f"--ranks: no mpiexec found next to {sys.executable} or on PATH "
                        f"({install_hint('mpi')} installs MPICH's)")
    with tempfile.TemporaryDirectory(prefix="recurrent-ranks-") as launch_dir:
        env = {**os.environ, LAUNCH_DIR_VARIABLE: launch_dir}
        # The ranks search this process's sys.path, in its order, so they import the
        # recurrent package (and every module) this process does: `python -m` would put
        # the working directory first, where a source checkout (kernels not built) or a
        # module named like a dependency would be found instead.
        command = [exe, "-n", str(ranks), sys.executable, "-c",
                   f"import sys; sys.path[:] = {list(sys.path)!r}; "
                   f"sys.argv[0] = 'recurrent'; from recurrent._console import main; main()",
                   *without_ranks(args)]
        # Ctrl-C reaches mpiexec from the terminal and mpiexec forwards it to the ranks;
        # this process only waits for them (a handler, unlike SIG_IGN, is not inherited).
        interrupts = []  # the Ctrl-Cs this process got (from the terminal, as mpiexec)
        previous = signal.signal(signal.SIGINT,
                                 lambda signum, frame: interrupts.append(signum))
        previous_term = signal.getsignal(signal.SIGTERM)
        previous_hup = signal.getsignal(signal.SIGHUP)
        terminated = []  # the SIGTERM passed on to mpiexec, if one came
        hung_up = []  # the SIGHUP passed on to mpiexec, if one came
        started = []  # mpiexec, once it runs
        # The command's output cannot be written any more: stop the ranks as a SIGTERM
        # does (a checkpoint at their next step), as one process stops at its next print;
        # they would train on unseen, or block on a full pipe.
        seen = _Filter(on_lost=lambda: started[0].send_signal(signal.SIGTERM),
                       interrupts=interrupts)
        try:
            # A SIGTERM sent to this process alone (kill PID, a supervisor) would end it
            # and leave mpiexec and the ranks training on: pass it on to mpiexec, which
            # passes it on to every rank (they stop as after a Ctrl-C), and wait for them
            # as for any end of the job. The handler is in place before mpiexec starts,
            # and a SIGTERM that comes while it starts is passed on once it runs.
            # After a Ctrl-C from the terminal, which mpiexec got and forwarded too, it is
            # not passed on to mpiexec, which may take a second signal for a second
            # Ctrl-C and end the ranks at once; the ranks, stopping for the Ctrl-C
            # already, get it from here directly (below), where it changes nothing.
            def terminate(signum, frame):
                terminated.append(signum)
                if started and not interrupts:
                    started[0].send_signal(signum)
            signal.signal(signal.SIGTERM, terminate)

            # A SIGHUP sent to this process alone would abort it here (cli.py), leaving
            # the ranks training on: pass it on to mpiexec, as a terminal's hangup reaches
            # it, which ends the ranks at once (their last checkpoint stays), and end as
            # one process does at a SIGHUP once they have ended.
            def hang_up(signum, frame):
                hung_up.append(signum)
                if started:
                    started[0].send_signal(signum)
            signal.signal(signal.SIGHUP, hang_up)
            # No rank reads standard input (`--data -` is refused: recurrent/datafile.py
            # check_every_rank_reads), and mpiexec would pass this process's on to rank 0,
            # ending the job when rank 0 does not read what it is given.
            proc = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    text=True, errors="replace", bufsize=1,
                                    preexec_fn=_terminated_when_orphaned())
            started.append(proc)
            if terminated and not interrupts:
                proc.send_signal(signal.SIGTERM)
            if hung_up:
                proc.send_signal(signal.SIGHUP)
            readers = [threading.Thread(target=seen.copy, args=(proc.stdout, sys.stdout)),
                       threading.Thread(target=seen.copy,
                                        args=(proc.stderr, sys.stderr, False))]
            for reader in readers:
                reader.start()
            # A SIGTERM passed on while the job starts can be lost on the way (mpiexec
            # not yet forwarding, or forwarding before its ranks exist): each rank that
            # has joined the job (its pid in launch_dir) also gets it from here, once.
            signalled = set()
            for reader in readers:
                while reader.is_alive():
                    reader.join(RANK_POLL)
                    if terminated:
                        signalled |= _signal_ranks(launch_dir, signalled)
            code = proc.wait()
        finally:
            signal.signal(signal.SIGINT, previous)
            signal.signal(signal.SIGTERM, previous_term)
            signal.signal(signal.SIGHUP, previous_hup)
        killed, exit_string, reported = seen.killed, seen.exit_string, seen.reported
        if seen.lost:
            # quietly, as one process whose output went away ends, or with the line one
            # process prints when its output cannot be written (a full disk)
            failure = std_streams.write_failure(seen.lost_error)
            if failure:
                aside(f"Error: {failure}")
            return 1
        # a second Ctrl-C or a SIGHUP: aborted at once, as one process is by either
        if seen.forced or hung_up:
            if not seen.aborted:
                print("Aborted.", file=sys.stderr, flush=True)
            return 128 + (signal.SIGHUP if hung_up else signal.SIGINT)
        if terminated and (code == 0 or (code in (128 + signal.SIGINT, 128 + signal.SIGTERM)
                                          and seen.said_stop)):
            # done (they had finished training), or the ranks stopped themselves and
            # rank 0 said how: at an agreed step with a checkpoint (for the SIGTERM, or
            # for a Ctrl-C that reached them first), or aborted by a Ctrl-C after it
            return code
        # the ranks ended before they could act on the SIGTERM (killed by it while they
        # started, before recurrent's handler was in place: they said nothing)
        if terminated:
            print(f"Error: terminated (SIGTERM) before the ranks could save a checkpoint: "
                  f"{_STOPPED}", file=sys.stderr, flush=True)
            return 128 + signal.SIGTERM
        if code < 0:
            # mpiexec itself was killed (the out-of-memory killer, kill -9): it printed
            # nothing, and its proxy ends the ranks as it goes; exit as a shell reports
            # a process killed by that signal
            print(f"Error: mpiexec was {killed_by(-code)}; {_STOPPED}", file=sys.stderr,
                  flush=True)
            return 128 - code
        if killed and not reported:
            pid, host = killed
            rank = _rank_of(pid, launch_dir)
            who = f"rank {rank}" if rank is not None else f"a rank (pid {pid})"
            print(f"Error: {who} on {host} ended abnormally "
                  f"({exit_string or 'no reason given'}); {_STOPPED}", file=sys.stderr,
                  flush=True)
    return code if code else 0
