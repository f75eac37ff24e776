"""A run whose data file has moved: `train --resume RUN --data NEW` and `eval RUN --split
S --data NEW` read the run's data from its new place once the file the run reads
(Task.read_files) is gone, and the task (Task.moved_files) checks that the file there
holds the data the run was trained on."""
from __future__ import annotations

import json
import os
import stat

from .checkpoint import kept_state
from .checks import one_line
from .errors import UserError
from .out_paths import home_path

# a task's advice when the file given as a run's moved data is not that data
NOT_THE_RUNS_DATA = "give the file the run was trained on"


def moved_files(task, state: dict, given: dict) -> dict:
    """option key -> the absolute path of the file ``given`` (options typed, by key) for
    each path option whose file the run reads (``state``: the run's task state) is gone;
    {} when none is. UserError when one is given for a task that cannot read its data
    from elsewhere (no Task.moved_files)."""
    if not hasattr(task, "read_files"):
        return {}
    moved = {}
    for key, path in task.read_files(state).items():
        value = given.get(key)
        if isinstance(value, str) and value and _gone(path):
            if not hasattr(task, "moved_files"):
                raise UserError(f"{path}, the data this run was trained on, is gone, and "
                                f"the task {task.name} cannot read it from a new place (it "
                                f"has no Task.moved_files): restore the file there")
            moved[key] = os.path.abspath(home_path(value))
    return moved


def moved_state(task, state: dict, moved: dict, flags: dict) -> dict:
    """The task state ``state`` of a run, reading the files ``moved``
    (moved_files) in place of those it was trained on; UserError, naming the option
    (``flags``: the flag of each option key whose flag is not the key spelled with
    dashes), when one does not hold the run's data (a file other than the run's, or
    changed) or cannot be read."""
    gone = task.read_files(state)
    given = "; ".join(f"{_flag(k, flags)} {path} (in place of {gone[k]}, which is gone)"
                      for k, path in moved.items())
    for path in moved.values():
        # the run reads its data again on every resume and evaluation
        if (os.path.exists(path) and not os.path.isfile(path)) or _stream(path):
            raise UserError(f"{given}: not a file the run can read again (standard input, "
                            f"a pipe, a device or a directory); give the file's path")
    try:
        new = task.moved_files(dict(state), dict(moved))
    except UserError as e:
        raise UserError(f"{given}: {one_line(e)}") from None
    return kept_state(task.name, "moved_files", new)


def check_whole(run_path: str, whole, moved: dict, flags: dict) -> None:
    """UserError when the run at ``run_path`` is a part of the run ``whole`` (a member of
    an ensemble, a candidate of a run still choosing; None: a run of its own) and its
    data is to move (``moved``): the parts read one file, and a part moved alone would
    no longer match its run."""
    if whole is None:
        return
    given = " ".join(f"{_flag(k, flags)} {path}" for k, path in moved.items())
    raise UserError(f"{given}: {run_path} is a part of {whole.path}, whose parts read one "
                    f"data file; give its new place to all of them: `recurrent train "
                    f"--resume {whole.path} {given}`")


def moved_runs(task, runs: list, moved: dict, flags: dict) -> list:
    """[(run, its task state reading the files ``moved``)] for a run and its parts
    (candidates, whose states are their own, or an ensemble's members); [] when nothing
    moved. Each distinct state is checked once (moved_state)."""
    if not moved:
        return []
    done = {}
    result = []
    for run in runs:
        state = run.info()["task_state"]
        key = json.dumps(state, sort_keys=True)
        if key not in done:
            done[key] = moved_state(task, state, moved, flags)
        result.append((run, done[key]))
    return result


def check_present(task, state: dict, run_path: str, how: str) -> None:
    """UserError when a file the run at ``run_path`` reads (``state``: its task state) is
    gone, for a task that can read it from a new place: saying how (``how``)."""
    if not hasattr(task, "moved_files"):
        return
    for path in task.read_files(state).values():
        if _gone(path) and not _stream(path):  # a pipe's end is named by its reading
            raise UserError(f"{path}, the data {run_path} was trained on, is gone: restore "
                            f"it, or give its new place with {how}")


def _flag(key: str, flags: dict) -> str:
    """The command-line flag of option ``key`` (``flags``: those not spelled from it)."""
    return flags.get(key) or "--" + key.replace("_", "-")


def _gone(path: str) -> bool:
    """Whether no data file is at ``path``: nothing (or a symbolic link naming nothing,
    or a file in place of one of its directories), or a directory, which no task reads
    as data; a name that cannot be looked up (a link loop, one this file system cannot
    encode) is left to the task's reading to name."""
    try:
        return stat.S_ISDIR(os.stat(path).st_mode)
    except (FileNotFoundError, NotADirectoryError):
        return True
    except (OSError, ValueError):
        return False


def _stream(path: str) -> bool:
    """Whether ``path`` names standard input or a descriptor (/dev/fd/N of a shell's
    <(zcat FILE)): other data, or none, each time it is read."""
    return path.startswith(("/dev/", "/proc/"))
