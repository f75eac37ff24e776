"""Install hints name an extra's packages (from the installed metadata), never
`recurrent[extra]`: on the package index that name is another project's."""
from __future__ import annotations

import subprocess
import sys

from helpers import installed_env

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
