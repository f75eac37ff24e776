"""What a published recurrent holds: the sdist (setup.py egg_info's SOURCES.txt, the list
`python -m build` packs) carries every source a build reads and every bundled data file,
and no C that cythonize writes nor a part of the test suite; the wheel's files (setup.py
build_py, as in test_toolkit.py) hold every data file a task reads; the declared
dependency bounds admit no version recurrent cannot run with."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

import recurrent_plugins
from recurrent_plugins.char_lm import text as char_lm_text
from recurrent_plugins.forecast import series as forecast_series
from recurrent_plugins.sentiment import dataset as sentiment_dataset
from recurrent_plugins.seq2seq import data as seq2seq_data

ROOT = Path(__file__).resolve().parents[1]


def bundled_files() -> list[str]:
    """The bundled data files the four tasks read, relative to recurrent_plugins, from
    the tasks' own path functions."""
    paths = [char_lm_text.bundled_path(), sentiment_dataset.bundled_path(),
             seq2seq_data.resolve_path(None)]
    paths += [os.path.join(forecast_series.DATA_DIR, name)
              for name, *_ in forecast_series.BUNDLED.values()]
    base = os.path.dirname(recurrent_plugins.__file__)
    return sorted(Path(os.path.relpath(path, base)).as_posix() for path in paths)


def run_setup(*args, cwd=ROOT):
    job = subprocess.run([sys.executable, "setup.py", "-q", *args], cwd=cwd,
                         capture_output=True, text=True, timeout=300)
    assert job.returncode == 0, job.stderr[-3000:]


@pytest.fixture(scope="module")
def sdist_files(tmp_path_factory) -> set[str]:
    base = tmp_path_factory.mktemp("egg")
    run_setup("egg_info", "--egg-base", str(base))
    return set((base / "recurrent.egg-info" / "SOURCES.txt").read_text().splitlines())


def test_the_sdist_holds_the_build_sources_and_the_bundled_data(sdist_files):
    needed = {"LICENSE", "README.md", "pyproject.toml", "setup.py", "MANIFEST.in"}
    for pattern in ("*.pyx", "*.pxd", "*.h", "*.py"):
        needed |= {p.relative_to(ROOT).as_posix()
                   for p in (ROOT / "recurrent").rglob(pattern)}
        needed |= {p.relative_to(ROOT).as_posix() for p in (ROOT / "plugins").rglob(pattern)}
    needed |= {p.relative_to(ROOT).as_posix()
               for p in (ROOT / "plugins").glob("*/data/*") if p.is_file()}
    # C written by hand, not by cythonize from a .pyx of the same name
    needed |= {p.relative_to(ROOT).as_posix() for top in ("recurrent", "plugins")
               for p in (ROOT / top).rglob("*.c") if not p.with_suffix(".pyx").exists()}
    needed |= {"plugins/" + name for name in bundled_files()}
    assert needed - sdist_files == set()


def test_the_sdist_holds_no_generated_c_and_no_tests(sdist_files):
    """A build cythonizes the .pyx with the Cython it installs: C made beside them by
    another Cython would be compiled instead, as the newer file. The tests run only from
    the source tree (they read tests/helpers.py, examples/, docs/ and benchmarks/)."""
    generated = {Path(name).with_suffix(".c").as_posix() for name in sdist_files
                 if name.endswith(".pyx")}
    assert generated & sdist_files == set()
    assert [name for name in sdist_files if name.startswith("tests/")] == []


def test_the_wheel_holds_every_data_file_a_task_reads(tmp_path):
    run_setup("build_py", "-d", str(tmp_path))
    shipped = tmp_path / "recurrent_plugins"
    assert [name for name in bundled_files() if not (shipped / name).is_file()] == []
    assert [p.name for p in tmp_path.rglob("*.c")] == []


def project_table() -> dict:
    """pyproject.toml's [project] table (tomllib: Python 3.11 on)."""
    tomllib = pytest.importorskip("tomllib",
                                  reason="tomllib is in the standard library from 3.11")
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def lower_bounds(requirements) -> dict[str, Version]:
    bounds = {}
    for line in requirements:
        req = Requirement(line)
        lows = [Version(s.version) for s in req.specifier if s.operator in (">=", "==")]
        bounds[req.name] = max(lows) if lows else None
    return bounds


def test_dependencies_have_lower_bounds_recurrent_runs_with():
    """click 8.2 brought click.exceptions.NoArgsIsHelpError, which the command line
    catches (recurrent/cli.py): under click 8.1 any error becomes a traceback."""
    project = project_table()
    bounds = lower_bounds(project["dependencies"])
    assert [name for name, low in bounds.items() if low is None] == []
    assert bounds["click"] >= Version("8.2")


def test_torch_is_only_a_pinned_test_and_bench_extra():
    project = project_table()
    assert "torch" not in lower_bounds(project["dependencies"])
    for extra, requirements in project["optional-dependencies"].items():
        torch = [r for r in requirements if Requirement(r).name == "torch"]
        assert torch == (["torch==2.13.0"] if extra in ("test", "bench") else []), extra


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads ELF section names")
def test_the_compiled_extensions_carry_no_debug_information():
    """setup.py compiles with -g0 over the -g of Python's own CFLAGS: the same
    instructions, without the DWARF sections that would be most of an installed
    recurrent's size."""
    import recurrent._kernels
    from recurrent_plugins.forecast import _smoothing
    built = sorted(Path(recurrent._kernels.__file__).parent.glob("*.so"))
    built.append(Path(_smoothing.__file__))
    assert len(built) > 1
    assert [p.name for p in built if b".debug_info" in p.read_bytes()] == []
