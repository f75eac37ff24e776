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

# What each extra a user installs for a feature brings, for `recurrent info` (test and
# bench are the developers' extras: the tests, the benchmarks and torch).
FEATURES = {
    "plot": "--plot and each run's loss.png",
    "onnx": "export --format onnx",
    "ets": "the forecast task's ETS baseline and --model hybrid",
    "seq2seq": "training and evaluating seq2seq runs (BLEU and chrF)",
}

# PyTorch's index of CPU-only builds: torch from the package index itself is, on Linux, the
# CUDA build (several GB), which `recurrent bench` and the tests do not use.
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"


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


# recurrent's dependencies whose module is named otherwise than the distribution
_MODULE_OF = {"python-dateutil": "dateutil"}


def missing_dependency(exc: BaseException) -> str | None:
    """"recurrent needs threadpoolctl>=3.1, which is not installed ...": the message for a
    ModuleNotFoundError of one of recurrent's own (not optional) dependencies, an install
    that lost a package; None for anything else, or when recurrent runs uninstalled."""
    if not isinstance(exc, ModuleNotFoundError) or not exc.name:
        return None
    from importlib import metadata
    try:
        listed = metadata.requires("recurrent") or []
    except metadata.PackageNotFoundError:
        return None
    module = exc.name.split(".")[0]
    for spec in (r for r in listed if ";" not in r):
        dist = re.match(r"[A-Za-z0-9._-]+", spec).group(0)
        if _MODULE_OF.get(dist.lower(), dist.lower().replace("-", "_")) == module:
            return (f"recurrent needs {spec}, which is not installed in this environment "
                    f"(module {module!r}): pip install {shlex.quote(spec)}")
    return None


def install_hint(extra: str) -> str:
    """"pip install 'statsmodels>=0.14' 'pandas>=1.5' (recurrent's ets extra)", or,
    without install metadata, the source tree's form."""
    packages = requirements(extra)
    if not packages:
        return f"pip install '.[{extra}]' in recurrent's source tree"
    return f"pip install {' '.join(map(shlex.quote, packages))} (recurrent's {extra} extra)"


def torch_hint() -> str:
    """"pip install torch==2.13.0 (its CPU build: ...)": the torch version the bench
    extra pins, and where its CPU build is when the package index has only the CUDA one
    (PyPI on Linux); never torch without its pin."""
    pin = next((spec for spec in requirements("bench")
                if re.match(r"torch\b", spec)), None)
    where = (f"its CPU build: where the package index has only the CUDA one, as PyPI on "
             f"Linux, add --index-url {TORCH_CPU_INDEX}")
    if pin is None:  # uninstalled: the source tree's bench extra holds the pin
        return f"{install_hint('bench')} ({where})"
    return f"pip install {shlex.quote(pin)} ({where})"


def missing(extra: str) -> list[str] | None:
    """The requirements of ``extra`` whose distribution is not installed ([] when all
    are; versions are not compared: pip resolved them when the extra was installed),
    or None when recurrent runs uninstalled (no metadata lists the extra's packages)."""
    from importlib import metadata
    specs = requirements(extra)
    if not specs:
        return None
    out = []
    for spec in specs:
        try:
            metadata.version(re.match(r"[A-Za-z0-9._-]+", spec).group(0))
        except metadata.PackageNotFoundError:
            out.append(spec)
    return out
