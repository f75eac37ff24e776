"""A run whose data file has moved: `train --resume RUN --data NEW` and `eval RUN --split
S --data NEW` read the run's data from its new place once the file the run reads
(Task.read_files) is gone, and the task (Task.moved_files) checks that the file there
holds the data the run was trained on."""
from __future__ import annotations

import json
import os

from .checkpoint import kept_state
from .checks import one_line
from .errors import UserError
from .out_paths import home_path


def moved_files(task, state: dict, given: dict) -> dict:
    """option key -> the absolute path of the file ``given`` (options typed, by key) for
    each path option whose file the run reads (``state``: the run's task state) is gone;
    {} for a task that cannot read its data from elsewhere (no Task.moved_files)."""
    if not (hasattr(task, "moved_files") and hasattr(task, "read_files")):
        return {}
    moved = {}
    for key, path in task.read_files(state).items():
        value = given.get(key)
        if isinstance(value, str) and value and _gone(path):
            moved[key] = os.path.abspath(home_path(value))
    return moved


def moved_state(task, state: dict, moved: dict, flags: dict) -> dict:
    """The task state ``state`` of a run, reading the files ``moved``
    (moved_files) in place of those it was trained on; UserError, naming the option
    (``flags``: the flag of each option key whose flag is not the key spelled with
    dashes), when one does not hold the run's data (a file other than the run's, or
    changed) or cannot be read."""
    gone = task.read_files(state)
    given = "; ".join(f"{flags.get(k) or '--' + k.replace('_', '-')} {path} "
                      f"(in place of {gone[k]}, which is gone)" for k, path in moved.items())
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


def _gone(path: str) -> bool:
    """Whether nothing is at ``path`` (or a symbolic link there names nothing); a name
    that cannot be looked up (a link loop, one this file system cannot encode) is left
    to the task's reading to name."""
    try:
        os.stat(path)
    except FileNotFoundError:
        return True
    except (OSError, ValueError):
        return False
    return False


def _stream(path: str) -> bool:
    """Whether ``path`` names standard input or a descriptor (/dev/fd/N of a shell's
    <(zcat FILE)): other data, or none, each time it is read."""
    return path.startswith(("/dev/", "/proc/"))
