"""One trainer per run directory at a time.

Two processes training the same run (a `--resume` started while the run is still
training, in another terminal or by a job scheduler that retried) would write its
checkpoints, config.json and metrics.jsonl in turn: a run mixed from two trainings. A new
or resumed run therefore takes an exclusive advisory lock (fcntl.flock) on the run
directory itself before it writes anything, and a second trainer is refused with one
line. Locking the directory writes no file (a refused resume changes nothing in the
run). The lock belongs to the process: it is re-entrant within it (a run trained and
then resumed in one Python session), released by release() (the CLI does so when
training ends) and by the operating system when the process ends, however it ends (no
stale lock after a crash or kill). Readers (eval, predict, export) take no lock: every
file is replaced atomically. On file systems without flock (some network mounts)
training goes on unlocked.
"""
from __future__ import annotations

import os

from .errors import UserError

_held: dict = {}  # real path of a run directory -> the descriptor holding its lock


def hold(path: str) -> None:
    """Take the training lock of the run directory ``path`` for this process (a no-op
    when it holds it already); UserError when another process holds it."""
    key = os.path.realpath(path)
    if key in _held:
        return
    import fcntl
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as e:
        raise UserError(f"cannot open the run directory {path}: {e.strerror}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise UserError(f"{path} is being trained by another process: wait for it to end "
                        f"(or stop it), then resume with --resume {path}") from None
    except OSError:  # no flock on this file system: train unlocked
        os.close(fd)
        return
    _held[key] = fd


def release(path: str) -> None:
    """Let go of the training lock of ``path`` if this process holds it."""
    fd = _held.pop(os.path.realpath(path), None)
    if fd is not None:
        os.close(fd)
