"""Errors meant for the user, and the one-line form in which failures are reported."""
from __future__ import annotations

import signal

from .checks import one_line


class UserError(Exception):
    """Bad input from the user (data, options, files). The message is one line, shown as-is."""


class TrainingDataUnavailable(UserError):
    """The data a run was trained on cannot be read as it was at training (gone, changed):
    raised by a task where it reads that data. `recurrent eval RUN --data FILE` scores the
    model on FILE without what is fitted on or compared with the training split (the
    baselines, the paired tests) and prints this message as the reason; anywhere else it
    is the error."""


class AllRanksError(UserError):
    """A UserError that every rank of a data-parallel run raises at the same point (e.g. a
    non-finite loss, computed after the reduction): rank 0 reports it, the others exit
    quietly with the same code, and no rank has to abort the job."""


class Diverged(AllRanksError):
    """Training stopped because a step's loss or gradient norm was not finite (raised by
    every rank at the same step, ``step`` the last step completed). A run that chooses
    among candidates leaves such a candidate out (recurrent/candidates.py), an ensemble
    such a member (recurrent/ensemble.py); any other run stops with its message."""

    def __init__(self, message: str, step: int = 0):
        super().__init__(message)
        self.step = step


def broken_protocol(kind: str, name: str, problem: str) -> UserError:
    """The error for a registered cell or loss (``kind`` "cell" or "loss") that returned
    ``problem`` from a call: it names the protocol it breaks and the command that checks
    it."""
    return UserError(f"{kind} {name!r} returned {problem}: it breaks the {kind} protocol "
                     f"(recurrent.protocols.{kind.capitalize()}); check it with "
                     f"`recurrent plugins check {name}`")


def task_check_hint(task_name: str) -> str:
    """What a message about a task plugin's mistake ends with: the command that checks
    the task."""
    return f"`recurrent plugins check {task_name}` checks the task"


def killed_by(signum: int) -> str:
    """How a process that the signal ``signum`` killed ended, in words: "killed by NAME",
    with the usual cause of a SIGKILL or a SIGSEGV."""
    try:
        name = signal.Signals(signum).name
    except ValueError:
        name = f"signal {signum}"
    why = {signal.SIGKILL: " (as the system does when memory runs out)",
           signal.SIGSEGV: " (a crash in a library it ran)"}.get(signum, "")
    return f"killed by {name}{why}"


def error_line(exc: BaseException) -> str:
    """``TypeName: first line of the message`` (just ``TypeName`` without a message): how
    broken plugins, failed checks and internal errors are shown, one line each."""
    message = one_line(str(exc))
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__
