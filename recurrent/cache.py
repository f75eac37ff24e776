"""Results worth computing once per dataset rather than once per run (e.g. a task's fitted
baselines), kept under the user's cache home and shared by every run.

Each entry is one .npz file (recurrent.checkpoint: plain arrays read with
allow_pickle=False, so a cache file cannot run code; written atomically) named by the
SHA-256 of its key, the JSON of everything the result depends on (the data's hash, the
options that matter, a format version). An entry that is missing, unreadable or does not
fit is simply computed again; a cache that cannot be written is skipped. Entries are never
removed (there is no size cap: deleting the directory reclaims its space); the temporary
file a killed process's write left is removed by a later write into its folder.

Where: $RECURRENT_CACHE_DIR (a leading ~ is the home directory), else
$XDG_CACHE_HOME/recurrent (when absolute, as the XDG spec has it), else ~/.cache/recurrent
(when the home directory is an absolute path; else there is no cache).
RECURRENT_CACHE_DIR=off turns the cache off.
"""
from __future__ import annotations

import hashlib
import json
import os

from .checkpoint import load_arrays, remove_stale_temps, save_arrays
from .errors import UserError


# A temporary file unchanged this long belongs to a killed process: a write in progress
# changes its file far more often than this.
STALE_TEMP_SECONDS = 3600.0


def _where() -> tuple[str | None, str]:
    """(the cache directory or None, why there is none: a message's words)."""
    path = os.environ.get("RECURRENT_CACHE_DIR", "").strip()
    if path.lower() in ("off", "0", "none", "false"):
        return None, f"the cache is turned off (RECURRENT_CACHE_DIR={path})"
    if not path:
        home = os.environ.get("XDG_CACHE_HOME", "").strip()
        if not os.path.isabs(home):  # the XDG spec: a relative path is invalid, ignored
            user_home = os.path.expanduser("~")
            if not os.path.isabs(user_home):  # a relative HOME, or no home at all ("~"):
                # a cache there would be a new one in every working directory
                return None, (f"there is no cache directory: the home directory "
                              f"{user_home!r} is not an absolute path and "
                              f"RECURRENT_CACHE_DIR is not set")
            home = os.path.join(user_home, ".cache")
        path = os.path.join(home, "recurrent")
    # "~/..." as a service manager or a .env file passes it, unexpanded by any shell
    return os.path.expanduser(path), ""


def cache_dir() -> str | None:
    """The cache directory (not necessarily existing yet), or None when turned off."""
    return _where()[0]


def off_reason() -> str:
    """Why cache_dir() is None (turned off, or no home directory to put it in), in words
    for a message; "" when there is a cache directory."""
    return _where()[1]


def _key_text(key: dict) -> str:
    """The JSON the entry is named by and stores: a tuple in ``key`` is written as a list
    and a number as a dict key as a string, as JSON has them."""
    return json.dumps(key, sort_keys=True)


def entry_path(namespace: str, key: dict) -> str | None:
    """The file holding ``key``'s entry in ``namespace`` (None: cache off)."""
    root = cache_dir()
    if root is None:
        return None
    digest = hashlib.sha256(_key_text(key).encode("utf-8")).hexdigest()
    return os.path.join(root, namespace, digest + ".npz")


def load(namespace: str, key: dict) -> dict | None:
    """The arrays stored for ``key``, or None (no entry, cache off, or a damaged file)."""
    path = entry_path(namespace, key)
    if path is None or not os.path.isfile(path):
        return None
    try:
        arrays, meta = load_arrays(path)
    except UserError:
        return None
    return arrays if meta.get("key") == json.loads(_key_text(key)) else None


def store(namespace: str, key: dict, arrays: dict) -> None:
    """Keep ``arrays`` (name -> numpy array) for ``key``; silently skipped when the cache
    is off or cannot be written."""
    path = entry_path(namespace, key)
    if path is None:
        return
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        remove_stale_temps(os.path.dirname(path), STALE_TEMP_SECONDS)
        save_arrays(path, arrays, {"key": key})
    except OSError:
        pass

