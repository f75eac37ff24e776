"""One trainer per run directory at a time.

Two processes training the same run (a `--resume` started while the run is still
training, in another terminal or by a job scheduler that retried) would write its
checkpoints, config.json and metrics.jsonl in turn: a run mixed from two trainings. Every
trainer's fit therefore holds an exclusive advisory lock (fcntl.flock) on each directory
it writes: its run's, and for an ensemble or a run of candidates every member's or
candidate's too, so that a resume of a part is refused while its parent trains and the
other way round (locked). start_run and resume_run take the same locks before they write
the run's files and hand them to fit, which lets go of them when it returns. A second
trainer is refused with one line. Locking the directory itself writes no file (a refused
resume changes nothing in the run). Within a process the locks are counted, not
exclusive (a run trained and then resumed in one Python session, the parent's fit
around its parts' fits), and keyed by the directory itself, not its path (a directory
removed and made again is another one). The operating system lets go when the process
ends, however it ends: no stale lock after a crash or kill. Readers (eval, predict,
export) take no lock: every file is replaced atomically. On file systems without flock
(some network mounts) training goes on unlocked.
"""
from __future__ import annotations

import functools
import os

from . import checkpoint
from .errors import UserError
from .out_paths import shell_word

_held: dict = {}  # (device, inode) of a run directory -> [descriptor, holds]


def hold(path: str, run: str | None = None):
    """Take the training lock of the run directory ``path`` (counted when this process
    holds it already); the key to release(), or None on a file system without flock.
    UserError when another process holds it, naming the resume of ``run`` (the run being
    started or resumed, of which ``path`` may be a part; None: ``path`` itself) to run
    once it is free."""
    import fcntl
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as e:
        raise UserError(f"cannot open the run directory {path}: {e.strerror}") from None
    info = os.fstat(fd)
    key = (info.st_dev, info.st_ino)
    if key in _held:
        os.close(fd)
        _held[key][1] += 1
        return key
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise UserError(f"{path} is being trained by another process: wait for it to end "
                        f"(or stop it), then resume with `recurrent train --resume "
                        f"{shell_word(run or path)}`") from None
    except OSError:  # no flock on this file system: train unlocked
        os.close(fd)
        return None
    _held[key] = [fd, 1]
    checkpoint.remove_stale_temps(path)  # no other trainer can be writing them now
    return key


def release(key) -> None:
    """Undo one hold() (its key); the lock goes when the last hold is undone."""
    entry = _held.get(key)
    if entry is None:
        return
    entry[1] -= 1
    if entry[1] == 0:
        del _held[key]
        os.close(entry[0])


def hold_all(paths) -> list:
    """hold() each of ``paths`` (existing directories: a run's, then its parts'); all or
    none: on a refusal the ones taken are released."""
    keys = []
    try:
        for path in paths:
            if os.path.isdir(path):
                keys.append(hold(path, paths[0]))
    except BaseException:
        release_all(keys)
        raise
    return keys


def release_all(keys) -> None:
    for key in keys:
        release(key)


def locked(fit):
    """Decorates a trainer's fit(resume=False): on rank 0 it holds the locks of
    ``self.lock_paths()`` while it runs, and afterwards lets go of those start_run or
    resume_run took for it (``self.setup_locks``)."""
    @functools.wraps(fit)
    def wrapper(self, resume=False):
        keys = hold_all(self.lock_paths()) if self.world.is_root else []
        try:
            return fit(self, resume=resume)
        finally:
            release_all(keys)
            release_all(getattr(self, "setup_locks", ()))
            self.setup_locks = []
    return wrapper
