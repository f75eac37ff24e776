"""Run directories and checkpoints: a safe format, atomic writes, exact resume.

A run directory holds:
  config.json     {"format": 1, "task": name, "config": resolved options,
                   "task_state": the task's JSON state (vocabulary, scaler, ...),
                   "model_spec": the task's model spec, "version": recurrent version,
                   "metrics_format": how metrics.jsonl counts epochs (METRICS_FORMAT)}
  last.npz        the latest checkpoint: parameters, optimizer state, trainer position
                  (step, epoch, batch, window), rng states, carried recurrent state
  best.npz        the parameters with the best validation loss (or --select-by figure)
                  so far (same layout)
  metrics.jsonl   one JSON object per line: every evaluation (and periodic training loss);
                  NaN and infinite values are written as null, here and in config.json

Checkpoints are .npz files of plain arrays, read with allow_pickle=False, so loading one
cannot run code. Non-array data (trainer position, rng states) travel as one JSON string
stored under "meta". Every file is written to a temporary file in the same directory,
flushed, fsynced and moved over the old one with os.replace: a crash or Ctrl-C during a
write leaves the previous file intact, and the new file keeps the old one's mode. Any
unreadable or unwritable file (a full disk, a read-only directory) becomes a one-line
UserError naming it.
"""
from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import re
import stat
import tempfile
import time
import zipfile

import numpy as np

from .checks import not_found
from .errors import UserError, error_line, task_check_hint
from .params import parameter_budget

FORMAT = 1
# config.json's "metrics_format": 2, the records of metrics.jsonl count "epoch" from 1
# (Position.step_epoch); a run without it (made by an earlier version) keeps the counts
# it started with on resume (Trainer.record_epoch), so that each file counts one way
METRICS_FORMAT = 2
CONFIG_FILE = "config.json"
LAST = "last.npz"
BEST = "best.npz"
METRICS = "metrics.jsonl"
PLOT_FILE = "loss.png"  # recurrent/loss_plot.py draws it
DIVERGED = "diverged.json"  # a candidate or member left out: error and step (in_turn.py)


def _fsync_dir(directory: str) -> None:
    """Make a rename durable (directories can be fsynced on POSIX only)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _current_umask() -> int:
    mask = os.umask(0o022)  # reading the umask means setting it; put it straight back
    os.umask(mask)
    return mask


class WriteError(UserError, OSError):
    """A file that cannot be written (a full disk, a read-only directory): one line naming
    the file and the cause, and an OSError for callers that skip what they cannot write
    (recurrent/cache.py, the tuning cache) or word the message their own way (its
    ``strerror`` is the cause's)."""


def _write_error(path: str, error: OSError) -> WriteError:
    written = WriteError(f"cannot write {path}: {error.strerror or error}")
    written.strerror = error.strerror
    return written


def atomic_write(path: str, write, replace: bool = True, follow_link: bool = False) -> None:
    """Call ``write(file)`` on a temp file beside ``path``, fsync it, then os.replace it over
    ``path``. On any failure (including KeyboardInterrupt) the temp file is removed and
    ``path`` keeps its previous content; an OSError becomes a WriteError naming ``path``.
    ``replace=False``: the file is created, never replaced (a hard link of the temp file,
    which fails when ``path`` exists, even when another process made it a moment ago);
    FileExistsError when it exists. A replaced file keeps its mode. ``follow_link`` (for
    a path the user named: --plot, export --out, bench --json): a symbolic link at
    ``path`` stays a link and the file it names is replaced; without it the link itself
    is replaced, so that a link in a run directory never sends a checkpoint's write to a
    file elsewhere."""
    try:
        _atomic_write(path, write, replace, follow_link)
    except WriteError:
        raise
    except FileExistsError as e:
        if not replace:
            raise
        raise _write_error(path, e) from None
    except OSError as e:
        raise _write_error(path, e) from None


def _atomic_write(path: str, write, replace: bool = True, follow_link: bool = False) -> None:
    if replace and follow_link and os.path.islink(path):
        path = os.path.realpath(path)  # the file the link names is replaced; the link stays
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp",
                               dir=directory)
    try:
        # mkstemp makes the file owner-only (0600); give it the mode of the file it
        # replaces, or the mode open() would (0666 minus the umask), like metrics.jsonl,
        # so a shared run directory stays readable
        os.chmod(tmp, _replaced_mode(path) if replace else 0o666 & ~_current_umask())
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        if replace:
            os.replace(tmp, path)
        else:
            _create(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _fsync_dir(directory)


def _replaced_mode(path: str) -> int:
    """The permission bits a new file at ``path`` gets: those of the file there, else
    0666 minus the umask."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        return 0o666 & ~_current_umask()


def _create(tmp: str, path: str) -> None:
    """Give the complete file ``tmp`` the name ``path`` unless that exists: os.link fails
    when it does, atomically (two processes creating ``path`` at once: one wins). Where
    the file system has no hard links, a check, then the rename."""
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise
    except OSError:  # no hard links here (some network or FAT mounts)
        if os.path.lexists(path):
            raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), path) from None
        os.replace(tmp, path)
        return
    os.unlink(tmp)


def _temp_pattern(names=None) -> re.Pattern:
    """atomic_write's temporary files (".last.npz.k3j9x_2a.tmp": mkstemp's 8 characters,
    lowercase letters, digits and _, between the file's name and .tmp) of the files
    ``names``, or of any file (None). Nothing else: not an uppercase letter, nor a
    newline after .tmp (which $ would let through)."""
    name = ".+" if names is None else "(%s)" % "|".join(re.escape(n) for n in names)
    return re.compile(r"^\.%s\.[a-z0-9_]{8}\.tmp\Z" % name)


_RUN_TEMP = _temp_pattern((CONFIG_FILE, LAST, BEST, METRICS, PLOT_FILE, DIVERGED))
_ANY_TEMP = _temp_pattern()


def remove_stale_temps(directory: str, older_than: float | None = None) -> list[str]:
    """Remove the temporary files that atomic writes left in ``directory`` when their
    process was killed (SIGKILL, a power cut: atomic_write removes its own on any error it
    sees), each as large as the file it was to become. Without ``older_than``: a run
    directory's, of its own files, while no process writes them (the caller holds the
    run's training lock). With it: any file's, in a folder that other processes write
    into without a lock (the caches), so only those unchanged for ``older_than`` seconds,
    which no write in progress leaves alone that long. Returns the names removed."""
    try:
        names = os.listdir(directory)
    except OSError:
        return []
    pattern = _RUN_TEMP if older_than is None else _ANY_TEMP
    now = time.time()
    removed = []
    for name in names:
        if not pattern.match(name):
            continue
        path = os.path.join(directory, name)
        try:
            if older_than is None or now - os.stat(path).st_mtime > older_than:
                os.remove(path)
                removed.append(name)
        except OSError:
            pass
    return removed


def save_arrays(path: str, arrays: dict, meta: dict, replace: bool = True) -> None:
    """Write ``arrays`` (name -> numpy array) and ``meta`` (JSON-able dict) as one .npz
    (``replace=False``: atomic_write's)."""
    payload = {name: np.asarray(a, order="C") for name, a in arrays.items()}  # keeps 0-d
    if "meta" in payload:
        raise ValueError("'meta' is reserved for the JSON metadata")
    payload["meta"] = np.array(json.dumps(meta))
    atomic_write(path, lambda f: np.savez(f, **payload), replace)


def refuse_special(path: str, what: str) -> None:
    """UserError for a named pipe, device or socket in place of a run's file: reading one
    would wait for a writer (a pipe) or read what is not the run's."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return  # the read names what is wrong
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        raise UserError(f"cannot read {what}{path}: not a regular file")


_NPY_HEADERS = {(1, 0): np.lib.format.read_array_header_1_0,
                (2, 0): np.lib.format.read_array_header_2_0}


def _read_checkpoint(path: str, read):
    """``read()``, which reads the checkpoint ``path``; UserError when it does not exist,
    is not a regular file, cannot be read, or is corrupted or truncated."""
    if not os.path.exists(path):
        raise UserError(f"checkpoint {path} {not_found(path)}")
    refuse_special(path, "checkpoint ")
    try:
        return read()
    except OSError as e:
        if e.errno is not None:  # no permission, a directory, a failing disk: not its bytes
            raise UserError(f"cannot read checkpoint {path}: {e.strerror}") from None
        raise UserError(f"checkpoint {path} is corrupted or truncated "
                        f"({error_line(e)})") from None
    except (ValueError, EOFError, KeyError, zipfile.BadZipFile, RecursionError) as e:
        raise UserError(f"checkpoint {path} is corrupted or truncated "
                        f"({error_line(e)})") from None


def checkpoint_shapes(path: str) -> dict:
    """{name: shape} of the arrays of a file written by save_arrays, read from their
    headers, none loaded; UserError as load_arrays's. save_arrays stores the arrays
    uncompressed, so their bytes are in the file: one whose headers declare more (a
    compressed or crafted file) is refused here, before its declared shapes, which could
    make gigabytes, are allocated."""
    def read():
        shapes, declared = {}, 0
        with zipfile.ZipFile(path) as archive:
            for member in archive.infolist():
                with archive.open(member) as f:
                    read_header = _NPY_HEADERS.get(np.lib.format.read_magic(f))
                    if read_header is None:
                        raise ValueError(f"{member.filename}: not a .npy header savez writes")
                    shape, _, dtype = read_header(f)
                shapes[member.filename.removesuffix(".npy")] = shape
                declared += math.prod(shape) * dtype.itemsize
        if declared > os.path.getsize(path):
            raise UserError(f"checkpoint {path} is not one recurrent wrote: its arrays "
                            f"declare {declared} bytes, more than the file's "
                            f"{os.path.getsize(path)}")
        return shapes
    return _read_checkpoint(path, read)


def load_arrays(path: str) -> tuple[dict, dict]:
    """Read a file written by save_arrays -> (arrays, meta). Unreadable -> UserError."""
    checkpoint_shapes(path)  # its declared sizes, checked before any array is allocated

    def read():
        with np.load(path, allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
        return arrays, _meta(arrays.pop("meta"))
    return _read_checkpoint(path, read)


def load_meta(path: str) -> dict:
    """The meta record of a file written by save_arrays, its arrays left unread (np.load
    reads an .npz member only when asked for it). Unreadable -> UserError."""
    checkpoint_shapes(path)

    def read():
        with np.load(path, allow_pickle=False) as data:
            return _meta(data["meta"])
    return _read_checkpoint(path, read)


def _meta(value) -> dict:
    """save_arrays' "meta" array as the dict it holds; ValueError when it is not one."""
    meta = json.loads(str(value))
    if not isinstance(meta, dict):
        raise ValueError("meta is not a JSON object")
    return meta


def param_budget(path: str):
    """A params.parameter_budget of the "param/" arrays of the checkpoint ``path``, for
    building the model that is to load them: a config.json of absurd sizes is refused
    before they are allocated. No budget when ``path`` does not exist (what reads it
    names that)."""
    if not os.path.exists(path):
        return contextlib.nullcontext()
    count = sum(math.prod(shape) for name, shape in checkpoint_shapes(path).items()
                if name.startswith("param/"))
    return parameter_budget(count, f"checkpoint {path}")


def json_default(value):
    """json.dumps(default=...) for what tasks and options hand over: numpy scalars and
    arrays as numbers and lists, anything else (e.g. pathlib.Path) as its text."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def not_json(value, where: str = "state") -> str | None:
    """The path and type of the first value in ``value`` that config.json does not keep
    as it is (json_default would save its text: a set, an object, a dict key that is not a
    string), or None; numpy numbers and arrays are kept, as numbers and lists."""
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                return f"{where} key {key!r} ({type(key).__name__}; JSON keys are strings)"
            found = not_json(item, f"{where}[{key!r}]")
            if found:
                return found
        return None
    if isinstance(value, (list, tuple)):
        return next((f for i, item in enumerate(value) if (f := not_json(item, f"{where}[{i}]"))),
                    None)
    if value is None or isinstance(value, (str, bool, int, float, np.generic, np.ndarray)):
        return None
    return f"{where} ({type(value).__name__})"


def saved_json(value):
    """``value`` as config.json gives it back (tuples become lists, paths text, NaN and
    infinite numbers null: write_json)."""
    return json.loads(json.dumps(_finite(value), default=json_default))


def kept_state(task_name: str, member: str, state) -> dict:
    """The task state a task's ``member`` ("prepare", "after_training") returned, as
    config.json will give it back to every later call; UserError naming the task when it
    is not a dict, or holds a value config.json would keep only as its text (a set, an
    object, a key that is not a string)."""
    hint = task_check_hint(task_name)
    if not isinstance(state, dict):
        raise UserError(f"task {task_name!r}: {member}() returned {type(state).__name__}, "
                        f"not a dict ({hint})")
    problem = not_json(state)
    if problem:
        raise UserError(f"task {task_name!r}: {member}() returned a state config.json cannot "
                        f"keep: {problem} is not a JSON value ({hint})")
    return saved_json(state)


def _finite(value):
    """``value`` with every NaN or infinite float (nested in dicts, lists and tuples) as
    None, and numpy scalars and arrays as Python numbers and lists."""
    if isinstance(value, (np.generic, np.ndarray)):
        value = value.tolist()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def json_text(obj, indent=None) -> str:
    """JSON for what the CLI prints: json_default's conversions, and NaN or infinite
    numbers (a metric undefined on the data) as null, which strict parsers accept."""
    return json.dumps(_finite(obj), indent=indent, default=json_default, allow_nan=False)


def metrics_line(record: dict) -> str:
    """One record of metrics.jsonl as its line: sorted keys, newline-terminated, NaN and
    infinite values as null (strict JSON, which jq and other parsers read)."""
    return json.dumps(_finite(record), sort_keys=True, default=json_default,
                      allow_nan=False) + "\n"


def write_json(path: str, obj: dict, replace: bool = True) -> None:
    """``obj`` as JSON into ``path``, atomically (``replace=False``: atomic_write's); NaN
    and infinite numbers (a score undefined on the data) as null, as metrics_line writes
    them, so that strict parsers read every file of a run."""
    text = json.dumps(_finite(obj), indent=2, sort_keys=True, default=json_default,
                      allow_nan=False) + "\n"
    atomic_write(path, lambda f: f.write(text.encode("utf-8")), replace)


def read_json(path: str) -> dict:
    refuse_special(path, "")
    try:
        with open(path, encoding="utf-8") as f:
            obj = json.load(f)
    except FileNotFoundError:
        raise UserError(f"{path} does not exist") from None
    except OSError as e:  # no permission, a directory, a failing disk: not its content
        raise UserError(f"cannot read {path}: {e.strerror or e}") from None
    except (ValueError, RecursionError) as e:  # RecursionError: nested too deeply to parse
        raise UserError(f"{path} is corrupted or unreadable ({type(e).__name__})") from None
    if not isinstance(obj, dict):
        raise UserError(f"{path} is corrupted: expected a JSON object")
    return obj


def imported(config_path: str) -> bool:
    """Whether the config.json at ``config_path`` is an imported run's, which holds
    weights only and cannot be resumed (False when it cannot be read: the refusal that
    names it comes where the run is opened)."""
    try:
        return bool(read_json(config_path).get("imported_from"))
    except UserError:
        return False


RUN_INFO = (("task", str), ("config", dict), ("task_state", dict), ("model_spec", dict))


def info_problem(info: dict) -> str | None:
    """What makes a run's config.json unusable ("no 'task'", "'config' is not a JSON
    object", a damaged task state), or None: the keys every run needs, of the JSON types
    they must have, then the task's check of its state (_state_problem)."""
    return _keys_problem(info) or _state_problem(info)


def _keys_problem(info: dict) -> str | None:
    for key, kind in RUN_INFO:
        if key not in info:
            return f"no {key!r}"
        if not isinstance(info[key], kind):
            return f"{key!r} is not a JSON {'string' if kind is str else 'object'}"
    return None


def holds_run(directory: str) -> bool:
    """Whether ``directory`` holds a run: a config.json with a run's keys (the task's
    state is not checked). Only a regular file is read: opening a named pipe of that
    name would wait for a writer, and a device would never end."""
    path = os.path.join(directory, CONFIG_FILE)
    if not os.path.isfile(path):
        return False
    try:
        with open(path, encoding="utf-8") as f:
            info = json.load(f)
    except (OSError, ValueError, RecursionError):
        return False
    return isinstance(info, dict) and _keys_problem(info) is None


def _state_problem(info: dict) -> str | None:
    """What is wrong with the run's saved options (of a type their options could not have
    stored: config.saved_option_problem) or what its task finds wrong with its saved
    state (Task.check_state: a key missing or mistyped, a vocabulary of another size than
    the model's), or None; a UserError for a task that is not registered."""
    from .cli import training_params
    from .config import saved_option_problem
    from .plugins import check_provided, get_task
    check_provided(info.get("plugins"), "this run")
    task = get_task(info["task"])
    problem = saved_option_problem(info["config"], training_params(task))
    if problem:
        return problem
    check = getattr(task, "check_state", None)
    if check is None:
        return None
    try:
        check(info["task_state"], info["model_spec"])
    except ValueError as e:
        return f"task state: {e}"
    return None


def _provided(task: str, config: dict) -> dict:
    """{"plugins": ...} naming the installed plugins that provide the run's task, cell
    and loss (plugins.provided), or {} when recurrent provides them all: opening the run
    where one is missing then names the distribution to install."""
    from .plugins import entries, provided
    loss = config.get("loss")
    if loss is None and task in entries("task"):
        loss = entries("task")[task].obj.loss  # no --loss: the task's own
    names = {"task": task, "cell": config.get("cell"), "loss": loss}
    found = provided({kind: name for kind, name in names.items() if isinstance(name, str)})
    return {"plugins": found} if found else {}


def _kernel(kernel) -> dict:
    """{"kernel": ...}: the kernel settings that can change the run's results (True: as
    this process uses them, recurrent/tuning.py run_settings; a record: that one), or {}
    for None."""
    if kernel is None:
        return {}
    if kernel is True:
        from .tuning import run_settings
        kernel = run_settings()
    return {"kernel": kernel}


def _shared_file(path: str) -> bool:
    """Whether ``path`` is a symbolic link or a file with other hard links: a run
    directory copied as links, whose appends would land in the original run's file."""
    try:
        return os.path.islink(path) or os.stat(path).st_nlink > 1
    except OSError:
        return False


class RunDir:
    """One training run's directory."""

    def __init__(self, path: str):
        self.path = path

    def file(self, name: str) -> str:
        return os.path.join(self.path, name)

    @classmethod
    def create(cls, path: str, task: str, config: dict, task_state: dict, model_spec: dict,
               version: str, extra: dict | None = None, first=None,
               kernel=True) -> "RunDir":
        """A new run directory, its config.json written once (with ``extra`` top-level
        keys, if any); refuses one that already holds a run, also one whose config.json
        another process (a second `train --out` of the same path) wrote after the check:
        config.json is created, never replaced, so the process that loses the race
        changes nothing in the winner's run. ``first(run)``, if given, writes files the
        run must have before config.json makes the directory a run (an import's
        best.npz), so a process killed between the writes leaves no run without them.
        ``kernel``: the "kernel" record (recurrent/tuning.py use_for_run): True for this
        process's settings, a record to copy (an ensemble's, an exported run's), or None
        for none (a run made before runs recorded it)."""
        cls.make_directory(path)
        run = cls(path)
        try:
            if first is not None:
                first(run)
            write_json(run.file(CONFIG_FILE),
                       {"format": FORMAT, "task": task, "config": config,
                        "task_state": task_state, "model_spec": model_spec,
                        "version": version, "metrics_format": METRICS_FORMAT,
                        **_provided(task, config),
                        **_kernel(kernel), **(extra or {})},
                       replace=False)
        except FileExistsError:
            cls.check_new(path)  # the refusal of a run that is there
            raise UserError(f"{path} already holds a run") from None
        return run

    @classmethod
    def make_directory(cls, path: str) -> None:
        """Create the directory of a new run at ``path`` (or take an empty or unused
        one); UserError when it already holds a run or cannot be made."""
        cls.check_new(path)
        try:
            os.makedirs(path, exist_ok=True)
        except OSError as e:
            from .out_paths import non_directory  # out_paths reads runs with this module
            # a file where the directory or a parent of it would be ("a.png/run", "a.png/")
            blocked = non_directory(os.path.abspath(path))
            why = f"{blocked} is not a directory" if blocked else e.strerror
            raise UserError(f"cannot create run directory {path}: {why}") from None

    @staticmethod
    def check_new(path: str) -> None:
        """UserError unless ``path`` may become a new run's directory: missing, or a
        directory without a run's files (nor a loss.png the run would replace)."""
        config = os.path.join(path, CONFIG_FILE)
        if os.path.exists(config):
            if imported(config):  # weights only: --resume refuses it
                raise UserError(f"{path} already holds an imported run; choose another --out")
            from .out_paths import shell_word  # out_paths reads runs with this module
            # the command in full: train's --out and import's --out are refused here, and
            # only train has --resume
            raise UserError(f"{path} already holds a run: continue it with `recurrent train "
                            f"--resume {shell_word(path)}`, or choose another --out")
        if os.path.exists(path) and not os.path.isdir(path):
            raise UserError(f"--out {path} exists and is not a directory")
        if os.path.islink(path) and not os.path.exists(path):  # no directory to make there
            why = not_found(path)
            if why != "does not exist":  # a loop: no directory to create would end it
                raise UserError(f"--out {path} {why}; choose another --out")
            raise UserError(f"--out {path} is a symbolic link to {os.readlink(path)}, which "
                            f"does not exist; create that directory or choose another --out")
        left = [name for name in (LAST, BEST, METRICS) if os.path.exists(os.path.join(path, name))]
        if left:  # a run whose config.json is gone: a new run would overwrite its files
            raise UserError(f"{path} holds a run's {', '.join(left)} without its "
                            f"{CONFIG_FILE}; choose another --out")
        if os.path.exists(os.path.join(path, PLOT_FILE)):  # someone's figure, or a run's
            raise UserError(f"{path} already has a {PLOT_FILE}, which the run's loss plot "
                            f"would replace (with --no-plot too: a resume may draw it); "
                            f"choose another --out")

    @classmethod
    def open(cls, path: str) -> "RunDir":
        """The run in the directory ``path`` (a leading ~ is the home directory:
        out_paths.home_path); UserError when there is none, or its config.json is not a
        run's."""
        from .out_paths import home_path  # out_paths reads runs with this module
        if not path:
            raise UserError("no run directory given (an empty path)")
        path = home_path(os.fspath(path))
        if os.path.exists(path) and not os.path.isdir(path):
            raise UserError(f"{path} is a file, not a run directory")
        if not os.path.isdir(path):
            raise UserError(f"run directory {path} {not_found(path)}")
        run = cls(path)
        info = run.info()
        problem = _keys_problem(info)
        if not problem and info.get("format") != FORMAT:  # a newer run's state may differ
            raise UserError(f"{run.file(CONFIG_FILE)} has format {info.get('format')!r}; "
                            f"this recurrent reads format {FORMAT}")
        problem = problem or _state_problem(info)
        if problem:
            raise UserError(f"{run.file(CONFIG_FILE)} is corrupted: {problem}")
        return run

    def info(self) -> dict:
        return read_json(self.file(CONFIG_FILE))

    def update_config(self, config: dict) -> None:
        """Replace the saved options (resume with a new --steps, --epochs, ...)."""
        self.update_info(config=config)

    def update_task_state(self, task_state: dict) -> None:
        """Replace the saved task state (choices a task makes after training)."""
        self.update_info(task_state=task_state)

    def update_info(self, **entries) -> None:
        """Replace entries of config.json ("config", "task_state") in one write."""
        info = self.info()
        info.update(entries)
        write_json(self.file(CONFIG_FILE), info)

    def has(self, name: str) -> bool:
        return os.path.exists(self.file(name))

    def append_metrics(self, record: dict) -> None:
        """One JSON line per record; a line is written with a single write call (on a
        line of its own after a cut-off one)."""
        data = metrics_line(record).encode()
        path = self.file(METRICS)
        try:
            if _shared_file(path):  # a run copied as links (cp -rs, cp -al): its own
                refuse_special(path, "")  # the linked records are read: not a device's
                try:  # file, the linked records kept, never appended through
                    with open(path, "rb") as f:
                        linked = f.read()
                except FileNotFoundError:  # a link to a file since removed
                    linked = b""
                atomic_write(path, lambda out: out.write(linked))
                # a file of this run's own, as open() makes it: not the linked file's mode
                # (a read-only original would leave it read-only, and the append fail)
                os.chmod(path, 0o666 & ~_current_umask())
            with open(path, "a+b") as f:
                size = f.seek(0, os.SEEK_END)
                if size:
                    f.seek(size - 1)
                    if f.read(1) != b"\n":  # a line cut off (a killed process, a full
                        data = b"\n" + data  # disk): end it, or it would swallow this one
                f.write(data)
                f.flush()
        except OSError as e:
            raise _write_error(path, e) from None

    def read_metrics(self) -> list[dict]:
        """The records of metrics.jsonl; a cut-off line (a killed process) is skipped, as
        is a damaged one (bytes that are not UTF-8: the records are ASCII JSON)."""
        return self._metrics_lines()[0]

    def _metrics_lines(self) -> tuple[list[dict], int]:
        """(read_metrics' records, the number of lines it skipped)."""
        if not self.has(METRICS):
            return [], 0
        refuse_special(self.file(METRICS), "")  # /dev/zero would never end
        records = []
        try:
            with open(self.file(METRICS), "rb") as f:
                lines = f.readlines()
        except OSError as e:  # a directory in its place, no permission, ...
            raise UserError(f"cannot read {self.file(METRICS)}: {e.strerror or e}") from None
        for line in lines:
            try:
                record = json.loads(line.decode("utf-8"))
            except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
                continue
            if isinstance(record, dict):
                records.append(record)
        return records, len(lines) - len(records)

    def drop_metrics_after(self, step: int) -> None:
        """Forget records of steps after ``step`` (a resumed run redoes those steps), and
        the lines that are not records (cut off by a kill), which would stop jq or
        pandas reading the file once the resumed run appends after them."""
        records, skipped = self._metrics_lines()
        kept = [r for r in records if not (isinstance(r.get("step"), int) and r["step"] > step)]
        if skipped or len(kept) != len(records):
            text = "".join(metrics_line(r) for r in kept)
            atomic_write(self.file(METRICS), lambda f: f.write(text.encode("utf-8")))


class RunCopy(RunDir):
    """What a data-parallel rank other than 0 knows of the run: rank 0's ``info()``,
    received from it (the directory may not be on this rank's machine; only rank 0
    writes)."""

    def __init__(self, path: str, info: dict):
        super().__init__(path)
        self._info = info

    def info(self) -> dict:
        return self._info


def part_of(path: str, part_dir: str) -> tuple[RunDir, int] | None:
    """(the run, k) when ``path`` is a directory named ``part_dir`` formatted with k
    (member-{}, candidate-{}) beside that run's config.json, or a symbolic link to one
    (the run is then the directory the part lies in), else None; a parent that cannot be
    read as a run leaves ``path`` a run of its own."""
    real = os.path.realpath(path)
    name = os.path.basename(real)
    k = name.rpartition("-")[2]
    parent = os.path.normpath(os.path.join(path, os.pardir))  # as relative as ``path``
    if os.path.realpath(parent) != os.path.dirname(real):  # ``path`` is a symbolic link
        parent = os.path.dirname(real)  # to a part: the run is the part's own parent
    if not (k.isdigit() and name == part_dir.format(int(k))
            and os.path.isfile(os.path.join(parent, CONFIG_FILE))):
        return None
    try:
        whole = RunDir.open(parent)
        whole.info()
    except UserError:
        return None
    return whole, int(k)
