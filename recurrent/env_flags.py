"""How recurrent reads its on/off environment variables (RECURRENT_DEBUG,
RECURRENT_NO_ENTRYPOINTS, RECURRENT_NO_MPI). Imports nothing else of recurrent's, so
that the console script reads RECURRENT_DEBUG before the command line loads."""
from __future__ import annotations

import os


def env_flag(name: str) -> bool:
    """Whether the environment variable ``name`` is set to a true value: anything but
    empty, 0, false, no or off (any case, spaces around ignored)."""
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no", "off")
