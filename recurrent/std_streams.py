"""The state of the process's standard streams, as the commands' checks name it."""
from __future__ import annotations

import fcntl
import os


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
