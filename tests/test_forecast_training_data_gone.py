"""A forecast run whose training file is gone: the one line says how to go on for the
command that met it (restore the file, or give its new place with --data)."""
import re
import shutil
from pathlib import Path

import pytest
from helpers import advised, invoke, ok, one_line_error

import recurrent
from recurrent.errors import UserError
from recurrent.out_paths import shell_word

pytest.importorskip("recurrent_plugins.cells",
                    reason="the fast built-in cells (recurrent_plugins.cells) are not built")

import recurrent_plugins.forecast  # noqa: E402

CO2 = Path(recurrent_plugins.forecast.__file__).parent / "data" / "co2.csv.gz"

TINY = ("--steps", 2, "--hidden", 8, "--threads", 1, "--quiet")


def test_resume_without_the_training_data_says_to_restore_it(tmp_path):
    data = tmp_path / "co2.csv.gz"
    shutil.copyfile(CO2, data)
    run = tmp_path / "run"
    ok(invoke("train", "forecast", "--data", data, "--out", run, *TINY))
    data.rename(tmp_path / "moved.csv.gz")
    result = invoke("train", "--resume", run, "--steps", 3)
    one_line_error(result, f"{data}, the data {run} was trained on, is gone",
                   "restore it, or give its new place with --data NEW")
    assert "pass recent data with --data" not in result.stderr
    one_line_error(invoke("predict", run), f"the training data {str(data)!r} is gone",
                   "give its new place with --data")


def test_predict_origin_test_without_the_training_data_advises_what_it_takes(tmp_path):
    """--origin test forecasts the run's own test split and refuses --data: the line for
    its gone file advises the resume that saves the new place, naming the run as typed
    (quoted for the shell), and following it as a user would copy it works."""
    data = tmp_path / "co2.csv.gz"
    shutil.copyfile(CO2, data)
    run = tmp_path / "my run"
    ok(invoke("train", "forecast", "--data", data, "--out", run, "--window", 8,
              "--inputs", "level", *TINY))
    before = ok(invoke("predict", run, "--origin", "test"))
    moved = tmp_path / "moved.csv.gz"
    data.rename(moved)
    for stream in ((), ("--stream",)):
        result = invoke("predict", run, "--origin", "test", *stream)
        line = one_line_error(result, f"the training data {str(data)!r} is gone",
                              f"`recurrent train --resume {shell_word(run)} --data NEW`")
        assert "give its new place with --data" not in line
    with pytest.raises(UserError, match=f"--resume {re.escape(shell_word(run))} --data"):
        recurrent.predict(run, origin="test")
    one_line_error(invoke("predict", run, "--origin", "test", "--data", moved),
                   "drop --data")
    ok(invoke(*[str(moved) if arg == "NEW" else arg for arg in advised(line)]))
    assert ok(invoke("predict", run, "--origin", "test")) == before


def test_predict_origin_test_of_an_imported_run_advises_what_it_can_do(tmp_path):
    """An imported run holds weights only and cannot be resumed: the line for its gone
    file advises eval's --split test --data NEW, not the resume, and following it as a
    user would copy it scores the test split from the file's new place."""
    data = tmp_path / "co2.csv.gz"
    shutil.copyfile(CO2, data)
    run, exported, imported = tmp_path / "run", tmp_path / "run.safetensors", tmp_path / "imp"
    ok(invoke("train", "forecast", "--data", data, "--out", run, "--window", 8,
              "--inputs", "level", *TINY))
    ok(invoke("export", run, "--format", "safetensors", "--out", exported))
    ok(invoke("import", exported, "--out", imported))
    moved = tmp_path / "moved.csv.gz"
    data.rename(moved)
    line = one_line_error(invoke("predict", imported, "--origin", "test"),
                          f"the training data {str(data)!r} is gone",
                          f"`recurrent eval {shell_word(imported)} --split test --data NEW`")
    assert "--resume" not in advised(line)
    report = ok(invoke(*[str(moved) if arg == "NEW" else arg for arg in advised(line)]))
    assert report.startswith(f"forecast run {imported}, split test")
    # the run itself, which can be resumed, is still advised to be
    one_line_error(invoke("predict", run, "--origin", "test"),
                   f"`recurrent train --resume {shell_word(run)} --data NEW`")
