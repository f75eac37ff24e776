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
from .out_paths import home_path, shell_word

# a task's advice when the file given as a run's moved data is not that data
NOT_THE_RUNS_DATA = "give the file the run was trained on"


def not_the_runs_data(path: str, why: str) -> str:
    """A task's refusal (Task.moved_files) of ``path``, given as the new place of a run's
    data, whose content is not that data (``why``: what tells it apart); a file edited
    in place says instead that it changed since the run was trained."""
    return f"{path} does not hold the data this run was trained on ({why}): {NOT_THE_RUNS_DATA}"


def moved_files(task, state: dict, given: dict) -> dict:
    """option key -> the absolute path of the file ``given`` (options typed, by key) for
    each path option whose file the run reads (``state``: the run's task state) is gone
    (_gone); {} when none is. UserError when one is given for a task that cannot read its
    data from elsewhere (no Task.moved_files)."""
    if not hasattr(task, "read_files"):
        return {}
    moved = {}
    for key, path in task.read_files(state).items():
        value = given.get(key)
        if isinstance(value, str) and value and _gone(path):
            if not hasattr(task, "moved_files"):
                raise UserError(f"{path}, the data this run was trained on, {_gone(path)}, "
                                f"and the task {task.name} cannot read it from a new place "
                                f"(it has no Task.moved_files): restore the file there")
            moved[key] = os.path.abspath(home_path(value))
    return moved


def moved_state(task, state: dict, moved: dict, flags: dict) -> dict:
    """The task state ``state`` of a run, reading the files ``moved``
    (moved_files) in place of those it was trained on; UserError, naming the option
    (``flags``: the flag of each option key whose flag is not the key spelled with
    dashes), when one does not hold the run's data (a file other than the run's, or
    changed) or cannot be read."""
    gone = task.read_files(state)
    given = "; ".join(f"{_flag(k, flags)} {path} (in place of {gone[k]}, which "
                      f"{_gone(gone[k]) or 'is gone'})" for k, path in moved.items())
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
    command = " ".join(f"{_flag(k, flags)} {shell_word(path)}" for k, path in moved.items())
    raise UserError(f"{given}: {run_path} is a part of {whole.path}, whose parts read one "
                    f"data file; give its new place to all of them: `recurrent train "
                    f"--resume {shell_word(whole.path)} {command}`")


def moved_runs(task, runs: list, moved: dict, options: dict, flags: dict) -> dict:
    """path -> (the keys of the path options that move, the task state reading them) of
    each of ``runs`` (RunDirs: a run, then its candidates or members) whose data moves;
    {} when none does. The run's moves to ``moved`` (moved_files); a part's whose file is
    gone and is not the run's moves to the place the run reads once this move is saved
    (``options``: the run's options then): a move stopped between the config.json files
    it rewrites (Ctrl-C, a full disk) left that part behind, and the same command, given
    again, brings it along, once its content is checked to be the run's data (a part
    whose is not was never the run's: left for the matching of parts to refuse). Each
    distinct state is checked once (moved_state), before anything is written."""
    if not hasattr(task, "moved_files"):
        return {}
    run_state = runs[0].info()["task_state"]
    places = dict(task.read_files(run_state), **moved)
    done = {}
    result = {}
    for k, run in enumerate(runs):
        state = run.info()["task_state"]
        own = moved if k == 0 else _left_behind(task, places, state)
        if not own:
            continue
        key = json.dumps([state, own], sort_keys=True)
        if key not in done:
            done[key] = (moved_state if k == 0 else _moved_along)(task, state, own, flags)
        if done[key] is not None:
            result[run.path] = ({key: options[key] for key in own}, done[key])
    return result


def stopped_move(run_path: str, run_info: dict, part_info: dict) -> str:
    """How to finish a move of the run's data that stopped before it reached one of its
    parts (``run_info``, ``part_info``: the contents of their config.json files): when a
    file the part reads is gone and is not the one the run reads (which, when it is there,
    holds the part's data), the advice to resume the run with its data's place, which
    moves the part along (moved_runs), or, when that place is gone as well, with the
    data's new place; "" otherwise, for a part that differs from its run in some other
    way."""
    from .config import option_flags
    from .plugins import get_task
    if run_info.get("task") != part_info.get("task"):
        return ""
    try:
        task = get_task(run_info["task"])
        if not hasattr(task, "moved_files"):
            return ""
        left = _left_behind(task, task.read_files(run_info["task_state"]),
                            part_info["task_state"])
    except (UserError, KeyError, TypeError):  # an unknown task, a damaged task state
        return ""
    flags = option_flags(task)
    gone = {key: path for key, path in left.items() if _gone(path)}
    # with the run's data there, the part's content is checked to be that data: a part
    # trained on other data differs for another reason than a move
    if not left or (not gone and _moved_along(task, part_info["task_state"], left,
                                              flags) is None):
        return ""
    resume = f"recurrent train --resume {shell_word(run_path)}"
    if gone:  # the run's place is gone too: the data's new place is the user's to give
        missing = "; ".join(f"{path}, which {_gone(path)}" for path in gone.values())
        command = " ".join(f"{_flag(k, flags)} NEW" for k in left)
        return (f"a move of its data was stopped half-way, and the run's data is not there "
                f"either ({missing}): restore it, or finish the move giving its new place: "
                f"`{resume} {command}`")
    command = " ".join(f"{_flag(k, flags)} {shell_word(path)}" for k, path in left.items())
    return f"a move of its data was stopped half-way; finish it with `{resume} {command}`"


def _left_behind(task, places: dict, state: dict) -> dict:
    """option key -> the run's place (``places``: option key -> path) of each file a part
    reads (``state``: its task state) that is gone and is not the run's: a part a stopped
    move left behind."""
    return {key: places[key] for key, path in task.read_files(state).items()
            if key in places and path != places[key] and _gone(path)}


def _moved_along(task, state: dict, moved: dict, flags: dict) -> dict | None:
    """moved_state of a part (``state``: its task state) whose files are gone, reading the
    run's ``moved`` in their place; None when those do not hold the part's data: a part
    trained on other data (copied in from another run), not one a stopped move left
    behind."""
    try:
        return moved_state(task, state, moved, flags)
    except UserError:
        return None


def moved_info(info: dict, moving: tuple) -> dict:
    """``info`` (the contents of a config.json) once its data has moved (``moving``: its
    entry of moved_runs)."""
    options, state = moving
    return dict(info, config=dict(info["config"], **options), task_state=state)


def check_present(task, state: dict, run_path: str, how: str) -> None:
    """UserError when a file the run at ``run_path`` reads (``state``: its task state) is
    gone, for a task that can read it from a new place: saying how (``how``)."""
    if not hasattr(task, "moved_files"):
        return
    for path in task.read_files(state).values():
        gone = _gone(path)
        if gone and not _stream(path):  # a pipe's end is named by its reading
            raise UserError(f"{path}, the data {run_path} was trained on, {gone}: restore "
                            f"it, or give its new place with {how}")


def _flag(key: str, flags: dict) -> str:
    """The command-line flag of option ``key`` (``flags``: those not spelled from it)."""
    return flags.get(key) or "--" + key.replace("_", "-")


def _gone(path: str) -> str:
    """How no data file the run can read is at ``path`` ("" when one is): "is gone" for
    nothing there (or a symbolic link naming nothing, or a file in place of one of its
    directories) or a directory, which no task reads as data; "cannot be read (...)" for
    a name or file the run may not read (a run copied from another user's machine), as
    good as gone, since the file given as its new place is checked to hold the run's
    data. A name that cannot be looked up otherwise (a link loop, one this file system
    cannot encode) is left to the task's reading to name."""
    try:
        if stat.S_ISDIR(os.stat(path).st_mode):
            return "is gone"
    except (FileNotFoundError, NotADirectoryError):
        return "is gone"
    except PermissionError as e:
        return f"cannot be read ({(e.strerror or 'permission denied').lower()})"
    except (OSError, ValueError):
        return ""
    return "" if os.access(path, os.R_OK) else "cannot be read (permission denied)"


def _stream(path: str) -> bool:
    """Whether ``path`` names standard input or a descriptor (/dev/fd/N of a shell's
    <(zcat FILE)): other data, or none, each time it is read."""
    return path.startswith(("/dev/", "/proc/"))
