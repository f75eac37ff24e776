"""Where a command may write a file a user names (export's --out, predict's --plot,
bench's --json) or make a new run (train's and import's --out): one set of refusals for
all of them, checked before any work, so that no output replaces a run's own files or a
file the user did not mean to lose. Also how a path a user typed is read (home_path: a
leading ~) and written back in a message (shell_word), which every command shares."""
from __future__ import annotations

import os
import shlex
from typing import Callable

from .checkpoint import holds_run
from .checks import has_control, not_found
from .errors import UserError

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def named(option: str, out: str | None, default: str | None,
          required: bool = False) -> str | None:
    """The path an option names (an output's, or an input's such as --data), ``default``
    when it was not given, a leading ~ read as the home directory (home_path); UserError
    for an empty one (`--out ""`: a script's unset variable), which names no path at
    all. ``required``: the option has no default."""
    if out == "":
        raise UserError(f"{option} is empty: give a path" + (
            "" if required else f", or leave {option} out for the default"))
    return default if out is None else home_path(out)


def output_named(option: str, out: str | None, default: str | None, what: str,
                 required: bool = False) -> str | None:
    """named() for a path a command writes ``what`` to ("a run directory", "the plot"),
    "-" refused (not_stdout)."""
    not_stdout(option, out, what)
    return named(option, out, default, required)


def not_stdout(option: str, out: str | None, what: str) -> None:
    """UserError for an output path given as "-": to a Unix tool it means standard
    output, which no command here writes its files to (their own lines go there), so a
    file or directory literally named "-" would be made where the user meant none. "./-"
    names one on purpose."""
    if out == "-":
        raise UserError(f"{option} -: {what} cannot be written to standard output; give a "
                        f"path (./- for one named -)")


def home_path(path: str) -> str:
    """``path`` with a leading ~ or ~USER read as that home directory, as a shell reads
    it where it expands it: it leaves it as typed after an option's "=" (`--out=~/runs/a`)
    and in quotes, and a directory named "~" in the working directory is never what such
    a path meant."""
    return os.path.expanduser(path)


def shell_word(path) -> str:
    """``path`` as a command a user may copy names it: quoted when the shell would read
    its characters (a space, a quote, a $), and after "./" when it begins with "-", which
    the command would read as an option. A path holding a line break, a tab or another
    control character, or a byte that is not UTF-8 (a lone surrogate of surrogateescape),
    is written in $'...' with each escaped, which a one-line error keeps as it is and a
    shell reads back as the path (in plain quotes, the error's escape "\\n" would be
    read as a backslash and an n)."""
    path = os.fspath(path)
    if path.startswith("-"):
        path = os.path.join(".", path)
    if has_control(path) or not_utf8(path):
        return "$'" + "".join(_escaped(c) for c in path) + "'"
    return shlex.quote(path)


def not_utf8(path) -> bool:
    """Whether ``path`` holds a byte of a name that is not UTF-8 (surrogateescape)."""
    return any(_byte(c) for c in os.fspath(path))


def _byte(c: str) -> bool:
    """Whether ``c`` stands for a byte of a name that is not UTF-8 (surrogateescape)."""
    return "\udc80" <= c <= "\udcff"


def _escaped(c: str) -> str:
    """The character ``c`` as the shell's $'...' quoting reads it back."""
    if c in "\\'":
        return "\\" + c
    if _byte(c):
        return f"\\x{ord(c) - 0xdc00:02x}"
    if has_control(c):
        return f"\\x{ord(c):02x}" if ord(c) < 0x80 else f"\\u{ord(c):04x}"
    return c


def check_out(option: str, out: str, run_path: str | None,
              replace: bool | Callable[[str], bool], refusal: str,
              new_inside_run: bool = False) -> None:
    """UserError for an output path ``out`` (given as ``option``) that cannot or must not
    be written: a directory or another file that is not a regular one (a named pipe, a
    device), a missing or read-only directory, a path inside the run directory
    ``run_path`` when there is one (its checkpoints and config.json are the run; with
    ``new_inside_run``, a file not there yet is allowed), an existing file inside any
    other run directory (_enclosing_run), or an existing file unless
    ``replace`` (a bool, or a test of the file, run only on a regular file), refused
    with ``refusal`` ("already exists; give --force to replace it")."""
    check_file_name(option, out)
    exists = os.path.lexists(out)
    if exists and not os.path.exists(out) and not_found(out) != "does not exist":
        raise UserError(f"{option} {out} {not_found(out)}; give another file name")
    if exists and not os.path.isfile(out):
        raise UserError(f"{option} {out} exists and is not a regular file; give another "
                        f"file name")
    directory = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(directory):
        blocked = non_directory(directory)
        raise UserError(f"{option} {out}: {blocked} is not a directory" if blocked else
                        f"{option} {out}: directory {directory} {not_found(directory)}")
    run_real = None if run_path is None else os.path.realpath(run_path)
    out_real = os.path.realpath(out)
    inside = run_real is not None and os.path.commonpath([run_real, out_real]) == run_real
    if inside and (exists or not new_inside_run):
        via = "" if out_real == os.path.abspath(out) else f" (it resolves to {out_real})"
        raise UserError(f"{option} {out} is inside the run directory {run_path}{via}; "
                        f"write it elsewhere")
    if exists:
        check_outside_runs(option, out)
    if exists and not (replace(out) if callable(replace) else replace):
        raise UserError(f"{option} {out} {refusal}")
    if not os.access(directory, os.W_OK):
        raise UserError(f"{option} {out}: directory {directory} is not writable")


def check_file_name(option: str, out: str) -> None:
    """UserError for an output path ``out`` that names a directory: an existing one, or a
    name ending in a path separator ("models/"), which no file can take. Checked before
    the file names derived from ``out`` (a seq2seq run's two ONNX files) are made."""
    if os.path.isdir(out):
        raise UserError(f"{option} {out} is a directory; give a file name")
    if os.fspath(out).endswith(tuple(filter(None, (os.sep, os.altsep)))):
        raise UserError(f"{option} {out} names a directory (it ends in "
                        f"{os.fspath(out)[-1]}); give a file name")


def non_directory(path: str) -> str | None:
    """The nearest of ``path`` and its parents that exists when it is not a directory (a
    file where a directory is named: "a.png/x.png"), else None. That file is the path's
    mistake, which "does not exist" would hide."""
    while not os.path.exists(path) and os.path.dirname(path) != path:
        path = os.path.dirname(path)
    return path if os.path.exists(path) and not os.path.isdir(path) else None


def check_outside_runs(option: str, out: str, advice: str = "write it elsewhere") -> None:
    """UserError when ``out`` lies inside a run directory (_enclosing_run of the directory
    it resolves into), whether the file exists or not: check_out's refusal of a run's
    existing files, and the whole refusal for an output that must never go into a run
    (bench --json: a result written there would be the run's file from then on, one no
    later --json could replace; a new run's directory, of train --out or import --out: a
    run directory holds that run's files only, and is copied, moved and removed whole).
    ``option`` and ``out`` name the path in the line, ``advice`` ends it."""
    other = _enclosing_run(os.path.dirname(os.path.realpath(out)))
    if other is not None:
        what = ("a file of" if os.path.lexists(out) and not os.path.isdir(out)
                else "inside")
        raise UserError(f"{option} {out} is {what} the run directory {other}; {advice}")


def _enclosing_run(directory: str) -> str | None:
    """The run directory that holds ``directory`` (itself or a parent: holds_run), or
    None. An existing file in one is the run's (a checkpoint, its config.json, a
    member's), which no --force may replace."""
    while not holds_run(directory):
        parent = os.path.dirname(directory)
        if parent == directory:
            return None
        directory = parent
    return directory


def is_png(path: str) -> bool:
    """Whether the regular file ``path`` starts as a PNG image does (or is empty): one a
    plot may be written over."""
    try:
        with open(path, "rb") as f:
            head = f.read(len(PNG_SIGNATURE))
    except OSError:
        return False
    return head in (PNG_SIGNATURE, b"")


def check_plot(out: str, run_path: str) -> None:
    """check_out for a --plot: a new file, also inside the run directory; outside it an
    earlier plot (a PNG) is replaced, any other file kept. The name must end in .png: the
    plot is a PNG image whatever the name says (a.txt or a.pdf would hold one)."""
    check_out("--plot", out, run_path, replace=is_png, new_inside_run=True,
              refusal="exists and is not a PNG image; the plot would replace it: choose "
                      "another file name")
    if not str(out).lower().endswith(".png"):
        raise UserError(f"--plot {out}: the plot is a PNG image; give a file name ending "
                        f"in .png")
