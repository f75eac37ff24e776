"""Command surfaces and run loading: resuming a run directory named like a task, the
task's trained parameters a checkpoint must match, where --debug counts, and the exit
status of tune's option errors."""
import numpy as np
import pytest
from click.testing import CliRunner
from helpers import one_line_error

import train_toys
from recurrent.checkpoint import BEST, load_arrays, save_arrays
from recurrent.cli import cli


def invoke(*args, env=None):
    return CliRunner().invoke(cli, [str(a) for a in args], env=env)


def test_resume_a_run_directory_named_like_its_task(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with train_toys.registered():
        assert invoke("train", "toy-lm", "--out", "toy-lm", "--epochs", 1, "--threads", 1,
                      "--quiet").exit_code == 0
        # the RUN argument names no task: the task is still read from the run
        result = invoke("train", "--resume", "toy-lm", "--epochs", 2, "--quiet")
        assert result.exit_code == 0, result.output + result.stderr
        assert "done after" in result.stdout


@pytest.fixture(scope="module")
def esrnn_run(tmp_path_factory):
    """A tiny forecast run whose learned smoothing trains with the network."""
    run = tmp_path_factory.mktemp("es") / "run"
    result = invoke("train", "forecast", "--model", "esrnn", "--steps", 5, "--threads", 1,
                    "--hidden", 8, "--window", 16, "--inputs", "relative", "--quiet",
                    "--out", run)
    assert result.exit_code == 0, result.output + result.stderr
    assert any(k.startswith("task/") for k in load_arrays(str(run / BEST))[0])
    return run


@pytest.mark.parametrize("change, fragment", [
    (lambda a: a.update({"task/es.0": a["task/es.0"][:3]}), "es.0 has shape (3,)"),
    (lambda a: a.update({"task/other": np.zeros(2, np.float32)}), "unexpected other"),
    (lambda a: a.pop("task/es.0"), "missing es.0"),
    (lambda a: a["task/es.0"].__setitem__(1, np.nan), "NaN"),
])
def test_a_checkpoint_whose_task_parameters_do_not_fit_is_refused(esrnn_run, tmp_path,
                                                                     change, fragment):
    import shutil
    run = tmp_path / "copy"
    shutil.copytree(esrnn_run, run)
    arrays, meta = load_arrays(str(run / BEST))
    change(arrays)
    save_arrays(str(run / BEST), arrays, meta)
    one_line_error(invoke("eval", run, "--json"), str(run / BEST), fragment, code=1)
    assert invoke("eval", esrnn_run, "--json").exit_code == 0  # the run as trained loads


def test_debug_after_the_subcommand_is_its_usage_error(tmp_path):
    one_line_error(invoke("eval", tmp_path, "--debug"), "--debug", code=2)


@pytest.mark.parametrize("value", ["0", "false"])
def test_recurrent_debug_set_false_keeps_errors_one_line(tmp_path, value):
    result = invoke("eval", tmp_path / "none", env={"RECURRENT_DEBUG": value})
    one_line_error(result, "does not exist", code=1)


@pytest.mark.parametrize("args", [["--budget", "0"], ["--threads", "0"],
                                  ["--off", "--budget", "3"]])
def test_tune_option_errors_are_usage_errors(args):
    one_line_error(invoke("tune", *args), args[-2], code=2)
