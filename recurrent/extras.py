"""How to install one of recurrent's optional extras, for the message of a command that
needs it.

recurrent is installed from its source tree: on the package index the name belongs to
another project, so `pip install 'recurrent[mpi]'` on a fresh machine would fetch that
one. A hint therefore names the extra's packages themselves, read from this install's
metadata (pyproject.toml's [project.optional-dependencies], the one list of them), which
installs them from any directory. Read only when a message needs it: reading the
metadata is not free, and the commands that need no extra should not pay for it.
"""
from __future__ import annotations

import re
import shlex


def requirements(extra: str) -> list[str]:
    """The requirements the installed recurrent lists for ``extra`` ("statsmodels>=0.14",
    ...); [] when recurrent runs uninstalled (from a source checkout)."""
    from importlib import metadata
    try:
        listed = metadata.requires("recurrent") or []
    except metadata.PackageNotFoundError:
        return []
    marker = re.compile(r"""\bextra\s*==\s*["']%s["']""" % re.escape(extra))
    return [spec.strip() for spec, _, condition in (r.partition(";") for r in listed)
            if marker.search(condition)]


def install_hint(extra: str) -> str:
    """"pip install 'statsmodels>=0.14' 'pandas>=1.5' (recurrent's ets extra)", or,
    without install metadata, the source tree's form."""
    packages = requirements(extra)
    if not packages:
        return f"pip install '.[{extra}]' in recurrent's source tree"
    return f"pip install {' '.join(map(shlex.quote, packages))} (recurrent's {extra} extra)"
