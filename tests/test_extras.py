"""Install hints name an extra's packages (from the installed metadata), never
`recurrent[extra]`: on the package index that name is another project's."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
from helpers import installed_env, invoke, ok

from recurrent import extras


def test_the_hint_lists_the_packages_pyproject_gives_the_extra():
    assert extras.requirements("ets") == ["statsmodels>=0.14", "pandas>=1.5"]
    assert extras.requirements("mpi") == ["mpi4py>=4.0", "mpich>=4.2"]
    assert extras.install_hint("onnx") == (
        "pip install 'onnx>=1.23.2' 'onnxruntime>=1.32.0' (recurrent's onnx extra)")
    assert extras.requirements("no-such-extra") == []


def test_the_extras_test_names_are_not_mixed_into_another_extras_hint():
    # "test" lists statsmodels too; the plot extra is matplotlib alone
    assert extras.requirements("plot") == ["matplotlib>=3.5"]


def test_without_install_metadata_the_hint_is_the_source_trees_form(monkeypatch):
    from importlib import metadata

    def missing(name):
        raise metadata.PackageNotFoundError(name)
    monkeypatch.setattr(metadata, "requires", missing)
    assert extras.install_hint("ets") == "pip install '.[ets]' in recurrent's source tree"


def test_a_command_needing_a_missing_extra_prints_the_packages(tmp_path):
    code = ("import sys; sys.modules['sacrebleu'] = None; "
            "from recurrent.cli import main; sys.argv = ['recurrent', 'train', 'seq2seq', "
            "'--steps', '1']; main()")
    job = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, cwd=tmp_path, env=installed_env())
    assert job.returncode == 1
    assert job.stderr.strip() == ("Error: the seq2seq task scores BLEU and chrF with "
                                  "sacrebleu, which is not installed: pip install "
                                  "'sacrebleu>=2.3' (recurrent's seq2seq extra)")
    assert not (tmp_path / "runs").exists()


def test_torch_is_the_pinned_cpu_build():
    # from the package index itself, torch on Linux is the CUDA build (several GB)
    assert extras.torch_hint() == (
        "pip install torch==2.13.0 (its CPU build: where the package index has only the "
        "CUDA one, as PyPI on Linux, add --index-url https://download.pytorch.org/whl/cpu)")


def test_the_torch_hint_never_names_torch_without_its_pin(monkeypatch):
    """Run from a source tree without install metadata, the hint installs the bench extra,
    which holds the pin, rather than an unpinned torch (a multi-GB CUDA build)."""
    monkeypatch.setattr(extras, "requirements", lambda extra: [])
    hint = extras.torch_hint()
    assert hint.startswith("pip install '.[bench]' in recurrent's source tree")
    assert "pip install torch" not in hint


def _installed_as(monkeypatch, versions):
    """importlib.metadata as if the distributions installed were ``versions`` (name ->
    version; a name mapped to None is not installed) for the extras' packages, the real
    metadata for the others."""
    from importlib import metadata
    real = metadata.version

    def version(name):
        if name not in versions:
            return real(name)
        if versions[name] is None:
            raise metadata.PackageNotFoundError(name)
        return versions[name]
    monkeypatch.setattr(metadata, "version", version)


def test_info_says_which_extras_are_installed_and_how_to_get_the_others(monkeypatch):
    _installed_as(monkeypatch, {"matplotlib": None,
                                "onnx": "1.23.2", "onnxruntime": "1.32.0",
                                "statsmodels": "0.14.0", "pandas": None,
                                "sacrebleu": "2.6.0"})
    lines = {line.split()[0]: line for line in ok(invoke("info")).splitlines()}
    assert lines["plot"] == ("plot        not installed: --plot and each run's loss.png; "
                             f"{extras.install_hint('plot')}")
    assert lines["onnx"] == "onnx        installed: export --format onnx"
    assert lines["ets"].startswith("ets         not installed: ")
    assert lines["ets"].endswith(extras.install_hint("ets"))
    assert lines["seq2seq"].startswith("seq2seq     installed: ")
    shown = json.loads(ok(invoke("info", "--json")))["extras"]
    assert shown == {"plot": ["matplotlib>=3.5"], "onnx": [], "ets": ["pandas>=1.5"],
                     "seq2seq": []}


@pytest.mark.parametrize("module, spec", [("threadpoolctl", "threadpoolctl>="),
                                          ("scipy", "scipy>=")])
def test_a_lost_dependency_is_named_with_its_install_command(module, spec):
    """An environment that lost one of recurrent's own packages (its import fails as for
    an uninstalled one: None in sys.modules): one line naming it and the pip command, not
    "internal error"."""
    code = (f"import sys; sys.modules[{module!r}] = None; "
            f"from recurrent.cli import main; main(['info'])")
    job = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=installed_env(), timeout=120)
    lines = [line for line in job.stderr.splitlines() if line.strip()]
    assert job.returncode == 1 and len(lines) == 1, job.stderr
    assert lines[0].startswith(f"Error: recurrent needs {spec}"), lines[0]
    assert f"(module {module!r}): pip install '{spec}" in lines[0], lines[0]
    assert "internal error" not in job.stderr
