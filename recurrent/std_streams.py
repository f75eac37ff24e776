"""The state of the process's standard streams, as the commands' checks name it, and the
reading and writing of a stream's lines that waits on a non-blocking descriptor."""
from __future__ import annotations

import codecs
import errno
import fcntl
import os
import select
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


def _non_blocking(stream) -> int | None:
    """The descriptor of ``stream`` when it is in non-blocking mode (O_NONBLOCK, a mode of
    the open file: a program that started this one may have set it on a descriptor they
    share, or left a terminal in it), else None (a blocking one, or none at all)."""
    try:
        fd = stream.fileno()
        return None if os.get_blocking(fd) else fd
    except (AttributeError, OSError, ValueError):
        return None


def byte_lines(buffer):
    """The lines of the binary stream ``buffer`` (sys.stdin.buffer), each with its "\\n"
    as soon as it has arrived, the last one without it when the input ends so. On a
    non-blocking descriptor a buffered reader's readline gives what has arrived so far,
    nothing when nothing has, which would read as the end of a line or of the input:
    there the reads wait for the descriptor (select) instead, leaving its mode as it is
    (it is shared)."""
    fd = _non_blocking(buffer)
    if fd is None:
        yield from iter(buffer.readline, b"")
        return
    data = bytearray(buffer.peek())  # what the reader holds (or one read finds) first
    buffer.read1(len(data))
    searched = 0  # data[:searched] holds no line break
    while True:
        end = data.find(b"\n", searched)
        if end >= 0:
            yield bytes(data[:end + 1])
            del data[:end + 1]
            searched = 0
            continue
        searched = len(data)
        select.select([fd], [], [])
        try:
            chunk = os.read(fd, 1 << 16)
        except BlockingIOError:  # another reader of the shared file took it first
            continue
        if not chunk:
            break
        data += chunk
    if data:
        yield bytes(data)


def waiting_echo(stream, echo):
    """``echo`` (click.echo's arguments), which writes to ``stream`` (the real stdout);
    when that is in non-blocking mode, a function writing each line (a str, then "\\n",
    as UTF-8) to its descriptor itself, waiting (select) while a pipe is full: Python's
    text and buffered layers drop, without an error, what a full non-blocking
    descriptor does not take."""
    fd = _non_blocking(stream)
    if fd is None:
        return echo

    def write(line: str) -> None:
        stream.flush()  # anything written through the stream goes first
        data = memoryview((line + "\n").encode("utf-8", "surrogateescape"))
        while data:
            try:
                data = data[os.write(fd, data):]
            except BlockingIOError:
                select.select([], [fd], [])

    return write
