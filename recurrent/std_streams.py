"""The state of the process's standard streams, as the commands' checks name it."""
from __future__ import annotations

import codecs
import errno
import fcntl
import os
import sys


def unusable(stream, writing: bool) -> str | None:
    """Why ``stream`` (sys.stdin, or sys.stdout when ``writing``) cannot be read (or
    written), None when it can. "closed" where Python left it None (its descriptor was
    closed when the process started: reads find nothing, writes are dropped without an
    error); "open for reading only" or "open for writing only" where its descriptor's
    access mode lacks the direction (`1</dev/null`, `0>FILE`: every call fails). A
    stream without a descriptor (click's test runner's) can be used."""
    if stream is None:
        return "closed"
    try:
        mode = fcntl.fcntl(stream.fileno(), fcntl.F_GETFL) & os.O_ACCMODE
    except (OSError, ValueError):
        return None
    if writing and mode == os.O_RDONLY:
        return "open for reading only"
    if not writing and mode == os.O_WRONLY:
        return "open for writing only"
    return None


# What a write to a full disk or past a file-size limit (ulimit -f) raises.
_OUTPUT_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


def write_failure(e: OSError) -> str | None:
    """What went wrong when ``e`` is a failed write of standard output (a full disk or a
    file-size limit, stdout redirected there or to /dev/full), else None: the files
    recurrent writes name themselves when they fail (checkpoint.WriteError), so such an
    error without a file name comes from a standard stream."""
    if e.filename is None and e.errno in _OUTPUT_ERRNOS:
        return f"cannot write standard output: {e.strerror}"
    return None


def encoding_problem(encoding: str, char: str) -> str:
    """The message of a character standard output's ``encoding`` cannot represent. A lone
    surrogate U+DC80-U+DCFF is a byte of a name that is not UTF-8 (a file name, read with
    surrogateescape), which no locale's encoding represents: a strict UTF-8 stdout (the
    usual desktop locale) refuses it, one with surrogateescape (the C.UTF-8 locale)
    writes the byte as it is."""
    code = ord(char)
    if 0xDC80 <= code <= 0xDCFF:
        return (f"standard output ({encoding}) cannot write the byte 0x{code - 0xDC00:02x} "
                f"of a name that is not UTF-8: rename it, or set "
                f"PYTHONIOENCODING=utf-8:surrogateescape to write such bytes as they are")
    return (f"standard output's encoding ({encoding}) cannot represent the character "
            f"U+{ord(char):04X}: use a UTF-8 locale (e.g. LC_ALL=C.UTF-8) or "
            f"PYTHONIOENCODING=utf-8")


def check_printable(what: str, text: str) -> None:
    """UserError (encoding_problem, after ``what``) when click.echo cannot write ``text``
    to standard output: checked before a command writes the files whose paths its output
    names (a run directory, an exported file), which it would otherwise write and then
    fail on. click writes UTF-8 where stdout's encoding is ASCII, and stdout's own
    encoding and error handler otherwise."""
    from .errors import UserError
    encoding = getattr(sys.stdout, "encoding", None) or "utf-8"
    try:
        if codecs.lookup(encoding).name == "ascii":
            return
        text.encode(encoding, getattr(sys.stdout, "errors", None) or "strict")
    except LookupError:
        return
    except UnicodeEncodeError as e:
        raise UserError(f"{what}: {encoding_problem(e.encoding, e.object[e.start])}") from None
