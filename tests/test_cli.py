"""The `recurrent` command line through click's CliRunner: every command and error path,
with throwaway task plugins (tests/train_toys.py) registered and removed around each test."""
import json
import math
import os
import re
import subprocess
import sys
import types

import click
import numpy as np
import pytest
from click.testing import CliRunner

import recurrent
import train_toys
from helpers import advised, installed_env, ok, one_line_error, tiny_text, train_tiny
from recurrent import plugins
from recurrent.checkpoint import LAST, RunDir, load_arrays
from recurrent.cli import cli
from recurrent.errors import UserError
from recurrent.extras import install_hint
from recurrent.protocols import MEMBERS, Task


@pytest.fixture(autouse=True)
def toys():
    with train_toys.registered():
        yield


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


@pytest.fixture
def lm_run(tmp_path):
    run = tmp_path / "lm"
    result = invoke("train", "toy-lm", "--out", run, "--epochs", 1, "--threads", 1)
    assert result.exit_code == 0, result.output + result.stderr
    return run


def test_help_is_a_quick_start_and_version():
    result = invoke("--help")
    assert result.exit_code == 0
    assert "Quick start" in result.output and "recurrent train char-lm" in result.output
    for command in ("train", "eval", "predict", "plugins", "info"):
        assert command in result.output
    bare = invoke()
    assert bare.exit_code == 0 and bare.output == result.output  # no command: the same help
    result = invoke("--version")
    assert result.exit_code == 0 and recurrent.__version__ in result.output


def test_python_dash_m_runs_the_cli():
    # PYTHONSAFEPATH: the installed package, not the uncompiled source tree in the cwd
    out = subprocess.run([sys.executable, "-m", "recurrent", "--version"], capture_output=True,
                         text=True, timeout=120, env=dict(os.environ, PYTHONSAFEPATH="1"))
    assert out.returncode == 0 and recurrent.__version__ in out.stdout


def test_train_help_lists_tasks_and_task_options_with_task_defaults():
    result = invoke("train", "--help")
    assert result.exit_code == 0 and "toy-lm" in result.output
    result = invoke("train", "toy-lm", "--help")
    assert result.exit_code == 0
    assert "--length" in result.output and "--clip-norm" in result.output
    assert "--tbptt" in result.output and "--resume" in result.output
    hidden = result.output.split("--hidden")[1].split("--layers")[0]
    assert re.search(r"default: 8\b", hidden)  # the task's default beats the shared 128


def test_train_eval_predict_end_to_end(lm_run):
    info = RunDir.open(str(lm_run)).info()
    assert info["task"] == "toy-lm" and info["config"]["hidden"] == 8
    metrics = [json.loads(line) for line in open(lm_run / "metrics.jsonl")]
    assert any(r["kind"] == "eval" for r in metrics)

    result = invoke("eval", lm_run, "--split", "valid")
    assert result.exit_code == 0, result.stderr
    header, *rows = result.output.splitlines()[1:]
    assert header.split() == ["metric", "model", "uniform"]
    loss_row = [r for r in rows if r.startswith("loss")][0].split()
    assert float(loss_row[1]) < float(loss_row[2])  # the model beats the uniform baseline

    # --split names a split of the run's own data; a --data file is scored whole
    one_line_error(invoke("eval", lm_run, "--data", __file__, "--split", "valid"),
                          "--split valid chooses a split of the run's own data")

    result = invoke("eval", lm_run, "--json")
    data = json.loads(result.output)
    assert data["task"] == "toy-lm" and data["metrics"]["loss"] < np.log(5)
    assert data["baselines"]["uniform"]["loss"] == pytest.approx(np.log(5))

    result = invoke("predict", lm_run, "--count", 5, "--start", 2)
    assert result.exit_code == 0, result.stderr
    assert result.output.split() == ["3", "4", "0", "1", "2"]  # it learned the cycle

    result = invoke("predict", lm_run, "--help")
    assert result.exit_code == 0 and "--count" in result.output and "--start" in result.output


def test_training_output_shows_evaluations_beside_baselines(tmp_path):
    result = invoke("train", "toy-sign", "--out", tmp_path / "s", "--epochs", 2)
    assert result.exit_code == 0, result.stderr
    assert result.output.count("eval step") == 2
    assert len(re.findall(r"baseline majority +accuracy 0\.\d{4}", result.output)) == 2
    assert "done after" in result.output
    quiet = invoke("train", "toy-sign", "--out", tmp_path / "q", "--epochs", 2, "--quiet")
    assert quiet.exit_code == 0 and "eval step" not in quiet.output
    assert quiet.output.strip().startswith("done after")


def test_predict_with_arguments(tmp_path):
    run = tmp_path / "s"
    assert invoke("train", "toy-sign", "--out", run, "--epochs", 3).exit_code == 0
    result = invoke("predict", run, "--", "2.5", "1.0", "0.5")
    assert result.exit_code == 0, result.stderr
    assert result.output.strip() in ("positive", "negative")
    one_line_error(invoke("predict", run), "at least one value")
    data = json.loads(invoke("eval", run, "--json").output)
    assert 0 <= data["metrics"]["accuracy"] <= 1 and data["metrics"]["count"] == 48
    table = invoke("eval", run).output
    assert re.search(r"accuracy +0\.\d{4} +0\.\d{4}", table)


def test_eval_prints_the_tasks_own_report_when_it_has_one(tmp_path, monkeypatch):
    run = tmp_path / "s"
    assert invoke("train", "toy-sign", "--out", run, "--epochs", 1).exit_code == 0
    generic = invoke("eval", run).output.splitlines()
    assert generic[1].split() == ["metric", "model", "majority"]
    as_json = invoke("eval", run, "--json").output
    seen = []

    def format_report(state, metrics, baselines):  # the optional Task method
        seen.append((state, metrics, baselines))
        return [f"accuracy {metrics['accuracy']:.3f} vs {baselines['majority']['accuracy']:.3f}",
                "second line"]

    monkeypatch.setattr(plugins.get_task("toy-sign"), "format_report", format_report,
                        raising=False)
    result = invoke("eval", run)
    assert result.exit_code == 0, result.stderr
    data = json.loads(as_json)
    assert result.output.splitlines() == [
        generic[0], f"accuracy {data['metrics']['accuracy']:.3f} vs "
                    f"{data['baselines']['majority']['accuracy']:.3f}", "second line"]
    state, metrics, baselines = seen[0]
    assert metrics == data["metrics"] and baselines == data["baselines"]
    assert state == RunDir.open(str(run)).info()["task_state"]
    assert invoke("eval", run, "--json").output == as_json  # --json ignores the layout


def test_a_task_with_only_the_required_members_evaluates_and_refuses_predict(tmp_path,
                                                                            monkeypatch):
    run = tmp_path / "toy run"  # a blank: the advised command quotes the path
    assert invoke("train", "toy-sign", "--out", run, "--epochs", 1).exit_code == 0
    full = plugins.get_task("toy-sign")
    bare = types.SimpleNamespace(**{n: getattr(full, n) for n in MEMBERS[Task].required})
    monkeypatch.setattr(plugins, "get_task", lambda name: bare)
    assert json.loads(invoke("eval", run, "--json").output)["baselines"] == {}
    result = invoke("eval", run)
    assert result.exit_code == 0 and result.output.splitlines()[1].split() == ["metric", "model"]
    result = invoke("predict", run)
    one_line_error(result, "task 'toy-sign' has no predict", code=1)
    assert advised(result.stderr) == ["eval", str(run)]
    assert invoke(*advised(result.stderr)).exit_code == 0


def test_report_helpers_align_labels_left_and_numbers_right():
    from recurrent.report import format_value, generic_report, text_table
    assert text_table([["name", "n"], ["a", "10"], ["long", "7"]]) == [
        "name   n", "a     10", "long   7"]
    assert text_table([["x", "yy"], ["ab", "c"]], align="rl") == [" x  yy", "ab  c"]
    assert [format_value(v) for v in (0.5, np.float32(2), 3, np.int64(4), True, None, [1])] \
        == ["0.5000", "2.0000", "3", "4", "-", "-", "-"]
    # a huge value (a diverged model's perplexity) stays one short cell
    assert [format_value(v) for v in (3.1e139, 123456789.0, float("inf"))] \
        == ["3.1000e+139", "123456789.0000", "inf"]
    lines = generic_report({"loss": 0.25, "count": 8, "matrix": [[1, 0], [0, 1]]},
                           {"zero": {"loss": 1.0, "extra": 2}})
    assert lines == ["metric   model    zero",
                     "loss    0.2500  1.0000",
                     "count        8       -",
                     "extra        -       2",
                     "matrix: [[1, 0], [0, 1]]"]


def test_the_leader_line_names_who_scores_best_and_says_ties():
    from recurrent.report import leader_line
    base = {"naive": {"mase": 1.2}, "seasonal": {"mase": 0.484}, "none": {"loss": 1.0}}
    assert leader_line({"mase": 0.554}, base, "mase", lower_is_better=True,
                       names={"seasonal": "seasonal_naive (m=7)"}) == [
        "best mase: seasonal_naive (m=7), 0.4840 (the model: 0.5540)"]
    assert leader_line({"mase": 0.40}, base, "mase", lower_is_better=True,
                       label="mase (the mean over columns)") == [
        "best mase (the mean over columns): the model, 0.4000 (next: seasonal, 0.4840)"]
    assert leader_line({"mase": 0.48404}, base, "mase", lower_is_better=True) == [
        "best mase: the model and seasonal, tied at 0.4840"]  # as the table prints them
    # small figures print in exponent form: these differ, and a negative zero is zero
    assert leader_line({"d": -0.00001}, {"b": {"d": 0.00001}}, "d", True) == [
        "best d: the model, -1.0000e-05 (next: b, 1.0000e-05)"]
    assert leader_line({"d": -0.0}, {"b": {"d": 0.0}}, "d", True) == [
        "best d: the model and b, tied at 0.0000"]
    # every baseline tied with the best is named, with the model or without it
    three = {"majority": {"acc": 0.95}, "bow": {"acc": 0.95004}, "nb": {"acc": 0.93}}
    assert leader_line({"acc": 0.94}, three, "acc", False) == [
        "best acc: majority and bow, tied at 0.9500 (the model: 0.9400)"]
    assert leader_line({"acc": 0.95}, three, "acc", False) == [
        "best acc: the model, majority and bow, tied at 0.9500"]
    # closer than 0.00005 but printed differently: not a tie
    assert leader_line({"acc": 0.77776}, {"b": {"acc": 0.77774}}, "acc", False) == [
        "best acc: the model, 0.7778 (next: b, 0.7777)"]
    accuracy = {"bow": {"acc": 0.7639}, "nb": {"acc": 0.7757}, "nan": {"acc": math.nan}}
    assert leader_line({"acc": 0.7655}, accuracy, "acc", lower_is_better=False) == [
        "best acc: nb, 0.7757 (the model: 0.7655)"]  # the NaN baseline left out
    assert leader_line({"mase": math.inf}, base, "mase", True) == [
        "best mase: seasonal, 0.4840 (the model: inf)"]
    # nothing to compare: no line rather than a verdict on a missing or NaN figure
    assert leader_line({"acc": math.nan}, accuracy, "acc", False) == []
    assert leader_line({"acc": 0.5}, {"bow": {"acc": None}}, "acc", False) == []
    assert leader_line({}, accuracy, "acc", False) == []


def test_resume_through_the_cli_equals_an_uninterrupted_run(tmp_path):
    full, half = tmp_path / "full", tmp_path / "half"
    assert invoke("train", "toy-wave", "--out", full, "--threads", 1, "--log-every", 1,
                  "--dropout", 0.2).exit_code == 0
    result = invoke("train", "toy-wave", "--out", half, "--threads", 1, "--log-every", 1,
                    "--dropout", 0.2, "--steps", 7)
    assert result.exit_code == 0 and "done after 7 steps" in result.output
    result = invoke("train", "toy-wave", "--resume", half, "--steps", 0)
    assert result.exit_code == 0, result.stderr
    assert "resuming toy-wave" in result.output

    def losses(run):
        return [r["loss"] for r in RunDir(str(run)).read_metrics() if r["kind"] == "train"]

    assert losses(half) == losses(full)
    a, _ = load_arrays(str(full / LAST))
    b, _ = load_arrays(str(half / LAST))
    for name in a:
        np.testing.assert_array_equal(a[name], b[name])
    # `recurrent train --resume RUN` finds the task itself; a finished run stays finished
    result = invoke("train", "--resume", half)
    assert result.exit_code == 0 and "nothing to train" in result.output


def _train_lrs(run):
    return [r["lr"] for r in RunDir(str(run)).read_metrics() if r["kind"] == "train"]


def test_resuming_with_more_steps_continues_the_cosine_without_a_jump(tmp_path):
    run = tmp_path / "cos"
    args = ("--threads", 1, "--log-every", 1, "--schedule", "cosine", "--min-lr", 1e-4)
    assert invoke("train", "toy-wave", "--out", run, "--steps", 6, *args).exit_code == 0
    first = _train_lrs(run)
    result = invoke("train", "toy-wave", "--resume", run, "--steps", 12, "--log-every", 1)
    assert result.exit_code == 0, result.stderr
    lrs = _train_lrs(run)
    assert "note:" not in result.stderr  # still 7% of --lr: nothing to say
    assert lrs[:6] == first and len(lrs) == 12
    assert lrs[6] == lrs[5]  # continues from the rate reached, no restart at --lr
    assert all(b < a for a, b in zip(lrs[6:], lrs[7:]))  # then anneals to --min-lr
    assert 1e-4 < lrs[-1] < lrs[5]
    # the run's curve is kept: resumed again with the same horizon, nothing changes
    result = invoke("train", "toy-wave", "--resume", run, "--steps", 14, "--log-every", 1)
    assert result.exit_code == 0, result.stderr
    lrs = _train_lrs(run)
    assert lrs[12] == lrs[11] and lrs[13] < lrs[12]


def test_extending_a_finished_cosine_says_the_extra_steps_change_little(tmp_path):
    run = tmp_path / "cos"
    args = ("--threads", 1, "--schedule", "cosine", "--lr", 0.01, "--epochs", 0)
    assert invoke("train", "toy-wave", "--out", run, "--steps", 40, *args).exit_code == 0
    result = invoke("train", "toy-wave", "--resume", run, "--steps", 45, "--quiet")
    assert result.exit_code == 0, result.stderr
    assert result.stderr.startswith("note: the cosine schedule had come down to lr 1.54e-05 "
                                    "(from --lr 0.01) by step 40; the extra steps go on")
    assert "start a new run" in result.stderr


def test_quiet_help_says_notes_still_print():
    """--quiet keeps the notes on stderr (above), and its help says so."""
    result = invoke("train", "toy-wave", "--help")
    assert result.exit_code == 0, result.output
    assert ("--quiet Print only the final summary, and errors and notes on stderr."
            in " ".join(result.output.split()))


def test_bare_resume_takes_the_options_that_may_change_on_resume(tmp_path):
    run = tmp_path / "s"
    assert invoke("train", "toy-wave", "--out", run, "--steps", 3).exit_code == 0
    result = invoke("train", "--resume", run, "--quiet", "--threads", 1, "--steps", 5)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines() == [line for line in result.stdout.splitlines()
                                          if line.startswith("done after 5 steps")]
    result = invoke("train", "--threads", 1, f"--resume={run}", "--steps", 6, "--quiet")
    assert result.exit_code == 0 and "done after 6 steps" in result.stdout, result.stderr
    one_line_error(invoke("train", "--resume", run, "--lr", 0.5),
                          "--lr cannot change when resuming")
    result = invoke("train", "--resume", run, "toy-wave", "--steps", 7)
    one_line_error(result, "put --resume after the task name")
    # the advice names the user's task and run, the other options to follow ("...")
    assert advised(result.stderr) == ["train", "toy-wave", "--resume", str(run), "..."]
    result = invoke(*advised(result.stderr)[:-1], "--steps", 7, "--quiet")
    assert result.exit_code == 0 and "done after 7 steps" in result.stdout, result.stderr
    one_line_error(invoke("train", "--resume", tmp_path / "nope", "--quiet"),
                          "does not exist")


class _RaisingModule:
    """A module whose every attribute raises RuntimeError: a broken install whose import
    fails with something other than ImportError (a font cache, a config file)."""

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        raise RuntimeError("could not load the font cache")


@pytest.mark.parametrize("failing, module_object", [
    (("matplotlib", "matplotlib.figure", "matplotlib.backends.backend_agg"), None),
    # installed but broken: found before training, so the note comes after the last step
    (("matplotlib.figure", "matplotlib.backends.backend_agg"), None),
    (("matplotlib.figure", "matplotlib.backends.backend_agg"), _RaisingModule())])
def test_a_missing_matplotlib_is_said_once(tmp_path, monkeypatch, failing, module_object):
    # a run trained to the end keeps its summary and exit 0 whatever the import raised
    from recurrent import loss_plot
    for module in failing:
        monkeypatch.setitem(sys.modules, module, module_object)  # None: ImportError
    monkeypatch.setattr(loss_plot, "_told", False)
    first = invoke("train", "toy-sign", "--out", tmp_path / "a", "--steps", 2, "--plot",
                   "--quiet")
    assert first.exit_code == 0, first.stderr
    assert first.stderr.splitlines() == [
        "note: loss.png will not be written: matplotlib is not installed "
        f"({install_hint('plot')}, or pass --no-plot)"]
    assert not (tmp_path / "a" / "loss.png").exists()
    again = invoke("train", "toy-sign", "--out", tmp_path / "b", "--steps", 2, "--plot")
    assert again.exit_code == 0 and again.stderr == ""
    monkeypatch.setattr(loss_plot, "_told", False)
    quiet = invoke("train", "toy-sign", "--out", tmp_path / "c", "--steps", 2, "--no-plot")
    assert quiet.exit_code == 0 and quiet.stderr == ""  # nothing asked, nothing said


def test_training_reaches_its_first_step_without_importing_matplotlib(tmp_path):
    # The plot is drawn after the last step; importing matplotlib before the first one
    # only delays it. Run in a fresh interpreter, where nothing has imported it yet.
    script = (
        "import sys, train_toys\n"
        "from recurrent import trainer\n"
        "from recurrent.cli import cli\n"
        "seen = []\n"
        "loop = trainer.Trainer._loop\n"
        "def watched(self, *a, **k):\n"
        "    seen.append('matplotlib' in sys.modules)\n"
        "    return loop(self, *a, **k)\n"
        "trainer.Trainer._loop = watched\n"
        "with train_toys.registered():\n"
        f"    cli.main(['train', 'toy-sign', '--out', {str(tmp_path / 'r')!r}, '--steps',"
        " '2', '--plot', '--quiet'], standalone_mode=False)\n"
        "print(seen, 'matplotlib' in sys.modules)\n")
    # the installed package (installed_env), and train_toys from this directory
    env = installed_env(PYTHONPATH=os.path.dirname(os.path.abspath(__file__)))
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[-1] == "[False] True"  # imported for the plot, after
    assert (tmp_path / "r" / "loss.png").exists()


def test_a_validation_loss_that_is_not_finite_stops_the_run_as_diverged(tmp_path,
                                                                       monkeypatch):
    # It could never be compared with a checkpoint's: training on, best.npz stayed the
    # last finite one while the log said nothing was wrong.
    import math
    task = plugins.get_task("toy-lm")
    evaluate, calls = task.evaluate, []

    def nan_at_the_second(*args, **kwargs):
        calls.append(1)
        metrics = evaluate(*args, **kwargs)
        return {**metrics, "loss": math.nan} if len(calls) == 2 else metrics

    monkeypatch.setattr(task, "evaluate", nan_at_the_second)
    run = tmp_path / "run"
    one_line_error(invoke("train", "toy-lm", "--out", run, "--steps", 6,
                                 "--eval-every", 2, "--threads", 1),
                          "training stopped after step 4: the validation loss is nan",
                          "the training loss and the parameters were finite",
                          "`recurrent plugins check toy-lm`", "last good checkpoint", code=1)
    assert len(calls) == 2
    info = RunDir.open(str(run))
    assert [r["step"] for r in info.read_metrics() if r["kind"] == "eval"] == [2]


def test_causal_tasks_refuse_options_that_show_the_targets(tmp_path, monkeypatch):
    """A task declaring causal = True (here a plugin's) is refused --bidirectional before
    its run directory is made, and a run made before it said so cannot resume."""
    old = tmp_path / "old"
    assert invoke("train", "toy-lm", "--out", old, "--steps", 2, "--bidirectional",
                  "--threads", 1).exit_code == 0
    monkeypatch.setattr(plugins.get_task("toy-lm"), "causal", True, raising=False)
    out = tmp_path / "run"
    one_line_error(invoke("train", "toy-lm", "--out", out, "--bidirectional"),
                          "task 'toy-lm' predicts the next step of its input",
                          "--bidirectional would let the model read what it must predict",
                          "--unidirectional", code=1)
    assert not out.exists()
    one_line_error(invoke("train", "--resume", old, "--steps", 4), "--bidirectional")
    assert invoke("train", "toy-lm", "--out", out, "--steps", 1).exit_code == 0
    assert plugins.get_task("char-lm").causal is True
    assert not getattr(plugins.get_task("sentiment"), "causal", False)
    out = tmp_path / "lm"
    one_line_error(invoke("train", "char-lm", "--bidirectional", "--out", out),
                          "task 'char-lm' predicts the next step", code=1)
    assert not out.exists()


def test_ctrl_c_saves_and_says_how_to_resume(tmp_path):
    run = tmp_path / "s"
    # --quiet and --log-every: no step-counting pass over the data before training (the
    # hook would fire there)
    result = invoke("train", "toy-sign", "--out", run, "--interrupt-at", 2, "--quiet",
                    "--log-every", 1)
    assert result.exit_code == 130
    assert f"--resume {run}" in result.output
    _, meta = load_arrays(str(run / LAST))
    assert meta["step"] == 3


def test_error_unknown_task_lists_known_ones():
    one_line_error(invoke("train", "nope"), "unknown task 'nope'", "toy-lm", "toy-sign")


def test_error_unknown_cell_lists_known_ones(tmp_path):
    result = invoke("train", "toy-lm", "--cell", "nope", "--out", tmp_path / "r")
    one_line_error(result, "unknown cell 'nope'", "ref_gru", code=1)
    assert not (tmp_path / "r").exists()  # nothing half-made


@pytest.mark.parametrize("args, fragment", [
    (["--hidden", "0"], "--hidden"),
    (["--lr", "abc"], "--lr"),
    (["--optimizer", "adagrad"], "adagrad"),
    (["--dropout", "1.5"], "--dropout"),
    (["--seed", "-1"], "--seed"),
    (["--no-such-option"], "--no-such-option"),
])
def test_error_bad_option_values(tmp_path, args, fragment):
    result = invoke("train", "toy-lm", "--out", tmp_path / "r", *args)
    one_line_error(result, fragment, code=2)


@pytest.mark.parametrize("option, value", [
    ("--lr", "inf"), ("--lr", "nan"), ("--weight-decay", "inf"), ("--min-lr", "nan"),
    ("--clip-norm", "nan"), ("--clip-value", "inf"), ("--momentum", "nan"),
    ("--decay-gamma", "inf"), ("--forget-bias", "nan"),
])
def test_error_non_finite_option_values(tmp_path, option, value):
    result = invoke("train", "toy-wave", option, value, "--steps", 2, "--out", tmp_path / "r")
    one_line_error(result, f"{option} must be a finite number, got {value}", code=1)
    assert not (tmp_path / "r").exists()


def test_forget_bias_option(tmp_path):
    one_line_error(invoke("train", "toy-sign", "--forget-bias", 1, "--out", tmp_path / "g"),
                          "ref_gru", "no forget gate")
    result = invoke("train", "toy-wave", "--forget-bias", 1, "--out", tmp_path / "l", "--steps", 1)
    assert result.exit_code == 0, result.stderr
    arrays, _ = load_arrays(str(tmp_path / "l" / "last.npz"))
    assert np.all(np.abs(arrays["param/rnn.bias_ih_l0"][6:12] - 1) < 0.1)  # i f g o, H=6


def test_error_task_rejects_its_input(tmp_path):
    one_line_error(invoke("train", "toy-lm", "--length", 5, "--out", tmp_path / "r"),
                          "--length must be >= 100", code=1)


def test_error_tbptt_with_bidirectional(tmp_path):
    one_line_error(invoke("train", "toy-sign", "--tbptt", 3, "--bidirectional",
                                 "--out", tmp_path / "r"), "--tbptt cannot be used")
    assert not (tmp_path / "r").exists()


def test_loss_option(tmp_path):
    result = invoke("train", "toy-wave", "--loss", "nope", "--out", tmp_path / "r")
    one_line_error(result, "unknown loss 'nope'", "mse", "mae")
    assert not (tmp_path / "r").exists()
    result = invoke("train", "toy-wave", "--loss", "mae", "--out", tmp_path / "r", "--epochs", 1)
    assert result.exit_code == 0, result.stderr
    assert RunDir.open(str(tmp_path / "r")).info()["config"]["loss"] == "mae"


def test_a_floor_rate_above_the_rate_is_refused(tmp_path):
    # the cosine schedule anneals from --lr to --min-lr: above it, the rate would rise
    result = invoke("train", "toy-lm", "--schedule", "cosine", "--lr", 0.01, "--min-lr", 1,
                    "--out", tmp_path / "r", "--steps", 1)
    one_line_error(result, "--min-lr 1 is above --lr 0.01", code=1)
    assert not (tmp_path / "r").exists()


def test_info_and_tune_count_no_more_threads_than_cores(monkeypatch):
    from recurrent import threads, tuning
    monkeypatch.setattr(threads, "openmp_enabled", lambda: True)
    monkeypatch.setattr(threads, "available_cores", lambda: 2)
    monkeypatch.setenv("RECURRENT_NUM_THREADS", "64")  # runs use at most the 2 cores
    result = invoke("info", "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.output)["default_threads"] == 2
    measured = []

    def fake_tune_and_store(budget, num_threads=None, progress=None, path=None):
        measured.append(num_threads)
        raise tuning.CacheError("stop here")

    monkeypatch.setattr(tuning, "tune_and_store", fake_tune_and_store)
    result = invoke("tune", "--budget", 1)
    assert result.exit_code == 1 and "tuning the kernels with 2 thread(s)" in result.stderr
    assert measured == [2]


@pytest.mark.parametrize("task, loss, fragment", [
    ("toy-lm", "mse", "it takes values of the outputs' shape, the task's targets are "
                      "class ids"),
    ("toy-sign", "mse", "the task's targets are class ids"),    # pooled classes
    ("toy-wave", "cross_entropy", "it takes class ids, the task's targets are values of the "
                                  "outputs' shape"),
])
def test_error_loss_that_does_not_fit_the_task(tmp_path, task, loss, fragment):
    result = invoke("train", task, "--loss", loss, "--out", tmp_path / "r", "--steps", 1)
    one_line_error(result, f"--loss {loss} does not fit task {task!r}", fragment, code=1)
    assert not (tmp_path / "r").exists()  # refused before the run directory is made


@pytest.mark.parametrize("dtype", [np.int64, np.bool_])
@pytest.mark.parametrize("loss", ["binary_cross_entropy", "mae"])
def test_integer_targets_of_the_outputs_shape_fit_an_elementwise_loss(tmp_path, monkeypatch,
                                                                      dtype, loss):
    """0/1 labels per output (multi-label, "will it rise") held as ints or bools are dense
    targets: the outputs' shape, which the element-wise losses take, not class ids."""
    task = plugins.get_task("toy-wave")
    batches = task.batches

    def rises(state, split, config, rng):
        for batch in batches(state, split, config, rng):
            yield {**batch, "y": (batch["y"] > batch["x"]).astype(dtype)}  # (T, B, 1)

    monkeypatch.setattr(task, "batches", rises, raising=False)
    result = invoke("train", "toy-wave", "--loss", loss, "--out", tmp_path / "r", "--steps", 1)
    assert result.exit_code == 0, result.output + result.stderr
    # a class loss is refused for them without calling integer labels real values
    result = invoke("train", "toy-wave", "--loss", "cross_entropy", "--out", tmp_path / "c",
                    "--steps", 1)
    one_line_error(result, "it takes class ids, the task's targets are values of the "
                                  "outputs' shape", code=1)


def test_a_changed_option_the_run_left_at_its_default_says_so():
    from recurrent.config import TrainingConfig
    with pytest.raises(UserError, match=r"--wide-folds cannot change when resuming \(the run "
                                        r"left it at its default\)"):
        TrainingConfig({"wide_folds": None}).resumed({"wide_folds": 5})


def test_error_run_directories(tmp_path, lm_run):
    one_line_error(invoke("eval", tmp_path / "missing"), "does not exist")
    one_line_error(invoke("predict", tmp_path / "missing"), "does not exist")
    one_line_error(invoke("train", "toy-lm", "--out", lm_run), "already holds a run")
    one_line_error(invoke("train", "toy-lm", "--resume", lm_run, "--hidden", 16),
                          "--hidden cannot change when resuming")
    one_line_error(invoke("train", "toy-sign", "--resume", lm_run), "'toy-lm' run")
    one_line_error(invoke("predict", lm_run, "--bogus"), "--bogus", code=2)
    one_line_error(invoke("eval", lm_run, "--data", tmp_path / "none.txt"),
                          "does not read --data files")
    one_line_error(invoke("predict"), "missing argument RUN", code=2)


def test_error_corrupted_checkpoint_names_the_file(lm_run):
    for name in ("best.npz", LAST):
        path = lm_run / name
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 3])
    one_line_error(invoke("eval", lm_run), str(lm_run / "best.npz"), "corrupted")
    one_line_error(invoke("train", "toy-lm", "--resume", lm_run),
                          str(lm_run / LAST), "corrupted")
    (lm_run / "config.json").write_text("{not json")
    one_line_error(invoke("eval", lm_run), "config.json")


def test_error_damaged_config_json_names_what_is_wrong(lm_run):
    config_path = lm_run / "config.json"
    original = json.loads(config_path.read_text())

    def save(edit):
        info = json.loads(json.dumps(original))
        edit(info)
        config_path.write_text(json.dumps(info))

    save(lambda info: info["config"].pop("hidden"))
    for args in (["eval", lm_run], ["predict", lm_run],
                 ["train", "toy-lm", "--resume", lm_run]):
        one_line_error(invoke(*args), str(config_path), "corrupted", "'hidden'", code=1)
    save(lambda info: info.update(config=["not", "an", "object"]))
    one_line_error(invoke("eval", lm_run), "'config' is not a JSON object", code=1)
    save(lambda info: info.update(task_state=None))
    one_line_error(invoke("eval", lm_run), "'task_state' is not a JSON object", code=1)


def test_error_non_finite_loss_keeps_last_good_checkpoint(tmp_path):
    run = tmp_path / "w"
    result = invoke("train", "toy-wave", "--out", run, "--spike-at", 3, "--eval-every", 2)
    one_line_error(result, "step 4", "loss is", str(run / LAST), code=1)
    _, meta = load_arrays(str(run / LAST))
    assert meta["step"] == 2


def test_debug_shows_the_traceback(tmp_path):
    result = invoke("--debug", "train", "nope")
    assert isinstance(result.exception, UserError)  # re-raised, not turned into one line


def test_internal_errors_are_one_line_without_debug(tmp_path):
    run = tmp_path / "lm"
    assert invoke("train", "toy-lm", "--out", run, "--epochs", 1).exit_code == 0
    state_file = run / "config.json"
    info = json.loads(state_file.read_text())
    del info["task_state"]["noise"]  # a task that trips over its own state: a bug, not input
    state_file.write_text(json.dumps(info))
    result = invoke("eval", run)
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.stderr == ("Error: internal error in plugin 'test-train-toys' (version -) "
                             "(KeyError: 'noise'); rerun with --debug for the traceback\n")


def test_plugin_commands_are_added_and_clashes_are_isolated():
    class CommandPlugin:
        @recurrent.hookimpl
        def register_commands(self, cli):
            @cli.command("toy-hello")
            def hello():
                """Say hello."""
                click.echo("hello from a plugin")

    class ClashingPlugin:
        @recurrent.hookimpl
        def register_commands(self, cli):
            @cli.command("train")
            def train():
                click.echo("hijacked")

    before = dict(cli.commands)
    plugins.register_plugin(CommandPlugin(), "test-command-plugin")
    plugins.register_plugin(ClashingPlugin(), "test-clashing-plugin")
    try:
        plugins.register_commands(cli=cli)
        assert invoke("toy-hello").output == "hello from a plugin\n"
        assert invoke("train", "--help").exit_code == 0
        assert "hijacked" not in invoke("train").output
        assert "test-clashing-plugin" in plugins.broken_plugins()
        # the plugins that added their commands before are not asked again: their own
        # commands are no clash, and they keep working
        assert not [name for name in plugins.broken_plugins() if name != "test-clashing-plugin"]
        assert invoke("bench", "--help").exit_code == 0
    finally:
        plugins.unregister_plugin("test-command-plugin")
        plugins.unregister_plugin("test-clashing-plugin")
        cli.commands.clear()
        cli.commands.update(before)


def test_a_plugin_registered_again_adds_its_commands_again():
    class CommandPlugin:
        @recurrent.hookimpl
        def register_commands(self, cli):
            @cli.command("toy-again")
            def again():
                click.echo("again")

    before = dict(cli.commands)
    try:
        for _ in range(2):  # registered, its command added; then all of it taken away
            plugins.register_plugin(CommandPlugin(), "test-again-plugin")
            plugins.register_commands(cli=cli)
            assert invoke("toy-again").output == "again\n"
            plugins.unregister_plugin("test-again-plugin")
            cli.commands.clear()
            cli.commands.update(before)
        assert not plugins.broken_plugins()
    finally:
        plugins.unregister_plugin("test-again-plugin")
        cli.commands.clear()
        cli.commands.update(before)


def test_plugins_and_info_commands_are_wired():
    result = invoke("plugins", "--json")
    assert result.exit_code == 0, result.stderr
    listing = json.loads(result.output)
    assert "toy-lm" in [t["name"] for t in listing["tasks"]]
    assert invoke("info").exit_code == 0


def test_default_out_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = invoke("train", "toy-sign", "--epochs", 1, "--quiet")
    assert result.exit_code == 0, result.stderr
    runs = os.listdir(tmp_path / "runs")
    assert len(runs) == 1 and runs[0].startswith("toy-sign-")


def test_built_in_fast_cells_train_through_the_cli(tmp_path):
    pytest.importorskip("recurrent_plugins.cells", reason="the compiled cells are not built")
    args = ["--threads", 1, "--epochs", 2, "--cell", "gru", "--layers", 2, "--bidirectional",
            "--dropout", 0.1, "--quiet"]
    assert invoke("train", "toy-sign", "--out", tmp_path / "a", *args).exit_code == 0
    assert invoke("train", "toy-sign", "--out", tmp_path / "b", *args).exit_code == 0
    a, _ = load_arrays(str(tmp_path / "a" / LAST))
    b, _ = load_arrays(str(tmp_path / "b" / LAST))
    assert "param/rnn.weight_hh_l1_reverse" in a
    for name in a:  # bit-identical at one thread
        np.testing.assert_array_equal(a[name], b[name])
    evals = [r for r in RunDir(str(tmp_path / "a")).read_metrics() if r["kind"] == "eval"]
    assert min(e["metrics"]["loss"] for e in evals) < 0.5  # far below chance, ln 2 = 0.69
    wave = ["--cell", "lstm", "--tbptt", 7, "--threads", 1, "--epochs", 2, "--quiet",
            "--log-every", 1]
    assert invoke("train", "toy-wave", "--out", tmp_path / "w", *wave).exit_code == 0
    result = invoke("train", "toy-wave", "--out", tmp_path / "h", *wave, "--steps", 11)
    assert result.exit_code == 0, result.stderr
    assert invoke("train", "toy-wave", "--resume", tmp_path / "h", "--steps", 0).exit_code == 0
    full, _ = load_arrays(str(tmp_path / "w" / LAST))
    resumed, _ = load_arrays(str(tmp_path / "h" / LAST))
    for name in full:  # stopped mid-batch (tbptt windows), resumed: the same run
        np.testing.assert_array_equal(full[name], resumed[name])


def test_default_outs_of_runs_started_in_the_same_second_differ(tmp_path, monkeypatch):
    """Two trainings without --out started in the same second (a script starting
    several) each get a directory of their own: the second's name is taken while the
    first prepares its data, not after."""
    from recurrent import cli as cli_module
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(cli_module.time, "strftime", lambda *args: "20260101-000000")
    task = train_toys.ToySign
    prepare = task.prepare
    others = []

    def prepare_while_another_starts(self, config):
        if not others:  # the other process picks its default directory and writes its run
            other = cli_module._default_out("toy-sign")
            os.makedirs(other, exist_ok=True)
            (tmp_path / other / "config.json").write_text("{}")
            others.append(other)
        return prepare(self, config)

    monkeypatch.setattr(task, "prepare", prepare_while_another_starts)
    result = invoke("train", "toy-sign", "--epochs", 1, "--quiet")
    assert result.exit_code == 0, result.stderr
    assert sorted(os.listdir(tmp_path / "runs")) == ["toy-sign-20260101-000000",
                                                     "toy-sign-20260101-000000-2"]


def test_a_refused_run_leaves_no_default_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = invoke("train", "toy-sign", "--select-by", "nonesuch:max", "--quiet")
    one_line_error(result, "nonesuch")
    assert not (tmp_path / "runs").exists()
    (tmp_path / "runs").mkdir()
    assert invoke("train", "toy-sign", "--select-by", "nonesuch:max").exit_code == 1
    assert os.listdir(tmp_path / "runs") == []


def test_rmsprop_takes_momentum_0_unless_given_and_keeps_it_on_resume(tmp_path):
    """--momentum defaults to 0 for rmsprop (torch's RMSprop), 0.9 for sgd; a run keeps
    the default it trained with: giving it again is no change, another value is refused."""
    run = tmp_path / "r"
    assert invoke("train", "toy-wave", "--out", run, "--steps", 2, "--optimizer",
                  "rmsprop").exit_code == 0
    config = json.loads((run / "config.json").read_text())["config"]
    assert config["momentum"] is None
    arrays = np.load(run / "last.npz")
    buffers = [k for k in arrays.files if "momentum_buffer" in k]
    assert buffers and all(not np.any(arrays[k]) for k in buffers)  # no momentum applied
    assert invoke("train", "toy-wave", "--resume", run, "--steps", 3,
                  "--momentum", 0).exit_code == 0
    one_line_error(invoke("train", "toy-wave", "--resume", run, "--steps", 4,
                                 "--momentum", 0.9),
                          "--momentum cannot change when resuming",
                          "(the default of --optimizer rmsprop)")


def test_a_missing_option_lists_its_choices_on_its_one_line(lm_run, tmp_path):
    """click lists a missing option's choices a line each: the one line joins them as
    words (not escaped line breaks), and one of them given, the command runs."""
    result = invoke("export", lm_run, "--out", tmp_path / "m.safetensors")
    one_line_error(result, "Missing option '--format'. Choose from: onnx, "
                                  "safetensors, torch", code=2)
    assert "\\n" not in result.stderr and "\t" not in result.stderr
    assert invoke("export", lm_run, "--out", tmp_path / "m.safetensors",
                  "--format", "safetensors").exit_code == 0


def test_advice_naming_a_path_with_a_line_break_runs_as_copied_into_bash(tmp_path):
    """A one-line error writes a line break in a path as "\\n": the command it advises
    spells such a path so that bash, given the command as printed, reads the path itself
    (and a quote, a backslash and a $ in it as themselves)."""
    run = tmp_path / "a\nb 'c' \\$HOME\t" / "run"
    run.parent.mkdir()
    text = tiny_text(tmp_path)
    ok(train_tiny(text, run))
    line = one_line_error(train_tiny(text, run), "already holds a run")
    command = re.search(r"`recurrent ([^`]*)`", line).group(1)
    assert _bash_words(command) == [b"train", b"--resume", os.fsencode(run)]
    ok(invoke("train", "--resume", run, "--quiet"))


def test_every_path_advice_names_is_read_back_by_bash_as_it_is():
    """out_paths.shell_word, the spelling of paths in advised commands, as a one-line
    error prints it (control characters escaped, a byte of a name that is not UTF-8 as
    standard error writes it, "\\udcff"), read back by bash: blanks, quotes, $, a leading
    dash, non-ASCII, control characters and such bytes."""
    from recurrent.checks import unbroken
    from recurrent.out_paths import shell_word
    for path in ["plain", "a b", "it's $HOME `x` *", "-r", "é ü", "a\nb", "x\ty",
                 "\x1b[31m", "a\u2028b\x85c", "back\\slash'\n", "not utf-8 \udcff\udc80"]:
        printed = unbroken(shell_word(path)).encode("utf-8", "backslashreplace").decode()
        expected = os.path.join(".", path) if path.startswith("-") else path
        assert _bash_words(printed) == [os.fsencode(expected)], path


def _bash_words(command: str) -> list[bytes]:
    """The words bash reads in ``command`` (as printed: a byte that is not UTF-8 as its
    surrogate escape), each as bytes."""
    return subprocess.run(["bash", "-c", f"printf '%s\\0' {command}"], capture_output=True,
                          check=True, env={**os.environ, "LC_ALL": "C.UTF-8"}
                          ).stdout.split(b"\0")[:-1]


def test_a_task_option_before_the_task_name_says_where_it_goes(tmp_path):
    """`recurrent train --ranks 2 char-lm`: the option belongs to the task's command,
    after its name; an option no command has keeps click's own suggestion."""
    one_line_error(invoke("train", "--ranks", 2, "toy-lm", "--out", tmp_path / "r"),
                   "No such option '--ranks': a task's options go after its name "
                   "(recurrent train toy-lm --ranks ...)", code=2)
    assert not (tmp_path / "r").exists()
    one_line_error(invoke("train", "--stepz", 5), "No such option '--stepz'", code=2)
    # a task's name given as an option's value is not the task the hint names
    one_line_error(invoke("train", "--out", "forecast", "toy-lm", "--epochs", 1),
                   "No such option '--out': a task's options go after its name "
                   "(recurrent train toy-lm --out ...)", code=2)
