"""Where a command may write a file a user names (export's --out, predict's --plot,
bench's --json): one set of refusals for all of them, checked before any work, so that no
output replaces a run's own files or a file the user did not mean to lose."""
from __future__ import annotations

import os

from .errors import UserError

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def check_out(option: str, out: str, run_path: str | None, replace: bool,
              refusal: str) -> None:
    """UserError for an output path ``out`` (given as ``option``) that cannot or must not
    be written: a directory, a missing or read-only directory, a path inside the run
    directory ``run_path`` when there is one (always: its checkpoints and config.json are
    the run), or an existing file unless ``replace``, refused with ``refusal`` ("already
    exists; give --force to replace it")."""
    if os.path.isdir(out):
        raise UserError(f"{option} {out} is a directory; give a file name")
    directory = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(directory):
        raise UserError(f"{option} {out}: directory {directory} does not exist")
    run_real = None if run_path is None else os.path.realpath(run_path)
    out_real = os.path.realpath(out)
    if run_real is not None and os.path.commonpath([run_real, out_real]) == run_real:
        via = "" if out_real == os.path.abspath(out) else f" (it resolves to {out_real})"
        raise UserError(f"{option} {out} is inside the run directory {run_path}{via}; "
                        f"write it outside")
    if os.path.lexists(out) and not replace:
        raise UserError(f"{option} {out} {refusal}")
    if not os.access(directory, os.W_OK):
        raise UserError(f"{option} {out}: directory {directory} is not writable")


def is_png(path: str) -> bool:
    """Whether ``path`` is a file that starts as a PNG image does (or is empty): one a
    plot may be written over."""
    try:
        with open(path, "rb") as f:
            head = f.read(len(PNG_SIGNATURE))
    except OSError:
        return False
    return head in (PNG_SIGNATURE, b"")


def check_plot(out: str, run_path: str) -> None:
    """check_out for a --plot: an earlier plot (a PNG) is replaced, any other file kept."""
    check_out("--plot", out, run_path, replace=is_png(out),
              refusal="exists and is not a PNG image; the plot would replace it: choose "
                      "another file name")
