"""Ctrl-C and SIGTERM during training: the first one asks the loop to stop at the next
window boundary (it then saves a checkpoint); a Ctrl-C after it raises KeyboardInterrupt
at once, leaving the previous checkpoint.

SIGTERM is how schedulers and supervisors ask a process to end (Slurm at a time limit or
on preemption, `timeout`, systemd, docker stop, Kubernetes) before a SIGKILL at the end
of their grace period: it requests the same stop as a first Ctrl-C, and the run ends
with exit status 143 rather than 130. A SIGTERM after a request changes nothing: one
request often arrives more than once (a job's whole process group or cgroup signalled
while mpiexec also forwards the signal to its ranks), and the sender's SIGKILL is the
escalation.

Handlers nest (a run of parts trained in turn holds one while each part's trainer holds
its own): an inner one starts out requested if the enclosing one already was (a Ctrl-C
while a part was being set up stops that part at once), and on exit passes a request of
its own out (a Ctrl-C while a part was finishing stops the parts after it)."""
from __future__ import annotations

import contextlib
import signal
import threading

# The signals that request a stop, in the order of their exit statuses' precedence when
# the ranks of a data-parallel run saw different ones (recurrent/data_parallel.py).
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupt:
    """Context manager installing the SIGINT and SIGTERM handler (main thread only;
    elsewhere Python delivers no signals) and restoring the previous ones on exit.
    ``signal`` is the one that first requested a stop (None before); ``requested`` turns
    True with it."""

    def __init__(self):
        self.signal = None
        self._previous = {}  # signal -> the handler this one replaced
        self._outer = None  # the enclosing Interrupt whose handler this one replaced

    @property
    def requested(self) -> bool:
        return self.signal is not None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for signum in STOP_SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
            outer = getattr(self._previous[signal.SIGINT], "__self__", None)
            self._outer = outer if isinstance(outer, Interrupt) else None
            if self._outer is not None and self._outer.requested and not self.requested:
                self.signal = self._outer.signal
        return self

    def _handle(self, signum, frame):
        global _STOP_TAKEN
        if self.signal is None:
            self.signal = signum
            _STOP_TAKEN = True
        elif signum == signal.SIGINT:
            raise KeyboardInterrupt

    def __exit__(self, *exc):
        for signum, previous in self._previous.items():
            if previous is not None:
                signal.signal(signum, previous)
        if self._outer is not None and self.requested and not self._outer.requested:
            self._outer.signal = self.signal
        return False


class Terminated(KeyboardInterrupt):
    """A SIGTERM or SIGHUP outside the trainer's handlers (any command but a training
    loop, and `recurrent train` while it starts, before its trainer's setup, or after it
    ended): the command leaves as a Ctrl-C makes it leave ("Aborted.", a file being
    written removed), with exit status 128 + ``signum`` (143, 129)."""

    def __init__(self, signum: int = signal.SIGTERM):
        super().__init__()
        self.signum = signum


# The signals terminating_as_ctrl_c turns into Terminated: a scheduler's or supervisor's
# request to end (SIGTERM), and the terminal or ssh session going away (SIGHUP). The
# trainer's Interrupt takes SIGTERM over while it runs; a SIGHUP there still aborts.
TERMINATING_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


# Whether an Interrupt took a request to stop (a Ctrl-C or SIGTERM) during the command
# terminating_as_ctrl_c covers: the command then ends as that request asks (a training
# run with its checkpoint, summary line and 130 or 143). A SIGTERM after it is that
# request arriving again (a job's process group signalled while a launcher also passes it
# on), however late: it changes nothing once the trainer's handler has gone, as it
# changes nothing while the handler is in place, rather than aborting the command
# between the training's end and its summary line.
_STOP_TAKEN = False


def _terminated(signum, frame):
    if signum == signal.SIGTERM and _STOP_TAKEN:
        return
    raise Terminated(signum)


@contextlib.contextmanager
def terminating_as_ctrl_c():
    """While it is entered, a SIGTERM or SIGHUP raises Terminated where a Ctrl-C raises
    KeyboardInterrupt (Python's default SIGINT handler; the trainer's Interrupt replaces
    SIGINT's and SIGTERM's while it runs), so that the command's cleanup runs (a
    temporary file removed, a half-made run directory taken back) rather than the
    process ending at once; a SIGTERM once an Interrupt has taken a request to stop
    changes nothing (_STOP_TAKEN). A signal ignored when it is entered stays ignored
    (nohup's SIGHUP). On exit each previous handler comes back, unless another one
    replaced this meanwhile (distributed.ignore_ctrl_c's, kept for MPI's finalize), or
    every one is ignored in a process that ends with its command (ending_with_command).
    Main thread only, as for Interrupt."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    global _STOP_TAKEN
    _STOP_TAKEN = False  # a request taken before this command is not this command's
    previous = {}
    for signum in TERMINATING_SIGNALS:
        if signal.getsignal(signum) is not signal.SIG_IGN:
            previous[signum] = signal.signal(signum, _terminated)
    try:
        yield
    finally:
        if _ENDS_WITH_COMMAND:  # the command has ended, and the process with it
            ignored_from_now()
        else:
            for signum, handler in previous.items():
                if signal.getsignal(signum) is _terminated and handler is not None:
                    signal.signal(signum, handler)


# set by the console script when the process ends with its one command (ending_with_command)
_ENDS_WITH_COMMAND = False


def ending_with_command() -> None:
    """This process ends when its command does (the console script, `python -m
    recurrent`): terminating_as_ctrl_c's exit then ignores a Ctrl-C, SIGTERM or SIGHUP
    from there on (ignored_from_now), rather than putting back handlers that would end
    the process by the signal, or raise KeyboardInterrupt, while it shuts down, its
    files and exit status complete."""
    global _ENDS_WITH_COMMAND
    _ENDS_WITH_COMMAND = True


def ignored_from_now() -> None:
    """A Ctrl-C, SIGTERM or SIGHUP ignored for the rest of the process: for the console
    script once its command has ended (ending_with_command), its output and files
    complete. The interpreter's shutdown puts back the default action of the handlers
    Python set (which ends the process by the signal, with no line and a status that
    says it was stopped); SIG_IGN stays. Main thread only, as for Interrupt."""
    if threading.current_thread() is not threading.main_thread():
        return
    for signum in (signal.SIGINT, *TERMINATING_SIGNALS):
        signal.signal(signum, signal.SIG_IGN)


def requested() -> bool:
    """Whether the innermost Interrupt installed now has seen a Ctrl-C or SIGTERM: for
    long work a trainer does while it is set up (language-model pretraining), which has
    no step of the run's own to stop at."""
    owner = getattr(signal.getsignal(signal.SIGINT), "__self__", None)
    return isinstance(owner, Interrupt) and owner.requested
