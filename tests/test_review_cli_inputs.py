"""Inputs a user may give, each read as meant or refused in one line: sizes beyond the
machine's memory, inputs that begin with "-", CRLF stream lines, a run whose best
checkpoint is gone, damaged options and files in a run directory, contradictory flags, a
name of the other kind, empty paths, options given again on resume, and forecast
windows with nothing to score."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys

from helpers import (installed_env, invoke, ok, one_line_error, registered_plugin, tiny_text,
                     train_tiny, two_monthly_columns, write_csv)

SMALL = ("--hidden", 8, "--threads", 1, "--quiet", "--no-plot")


def _copy(run, tmp_path, name="copy"):
    copy = tmp_path / name
    shutil.copytree(run, copy)
    return copy


def test_sizes_beyond_the_machines_memory_are_one_line_and_leave_no_run(tmp_path):
    out = tmp_path / "big"
    one_line_error(invoke("train", "char-lm", "--data", tiny_text(tmp_path),
                          "--hidden", 1_000_000_000, "--steps", 1, "--threads", 1,
                          "--quiet", "--no-plot", "--out", out),
                   "not enough memory", "ask for smaller ones")
    assert not out.exists()


def test_predict_reads_inputs_after_a_double_dash_though_they_begin_with_a_dash(task_runs):
    run = task_runs["sentiment"]
    plain = ok(invoke("predict", run, "--json", "worst film ever"))
    dashed = ok(invoke("predict", run, "--json", "--", "-- worst film ever"))
    assert json.loads(dashed)["text"] == "-- worst film ever"
    assert json.loads(plain)["text"] == "worst film ever"
    both = ok(invoke("predict", run, "--json", "good", "--", "-bad")).splitlines()
    assert [json.loads(line)["text"] for line in both] == ["good", "-bad"]
    # without "--" an input that looks like an option is still refused
    assert invoke("predict", run, "-bad").exit_code != 0
    # --help before "--" is the task's help, not an input
    for args in (("--help", "--", "x"), ("-h", "--", "x")):
        assert "Usage: recurrent predict" in ok(invoke("predict", run, *args))


def test_an_input_that_looks_like_an_option_is_refused_naming_the_double_dash(task_runs):
    """A text such as "-1 stars, awful" reads as the option -1: the refusal says where
    such an input goes; a misspelt option keeps click's suggestion, and a task whose
    predict takes no inputs (forecast) gets no word about them."""
    run = task_runs["sentiment"]
    one_line_error(invoke("predict", run, "-1 stars, awful"), "No such option '-1'",
                   'An input that begins with "-" goes after "--"', " -- INPUT")
    misspelt = invoke("predict", run, "--jsn", "good")
    one_line_error(misspelt, "Did you mean '--json'?")
    assert "INPUT" not in misspelt.stderr
    other = invoke("predict", task_runs["forecast"], "--bogus")
    one_line_error(other, "No such option '--bogus'")
    assert "INPUT" not in other.stderr


def test_a_crlf_stream_line_is_read_as_its_text(task_runs):
    """A real pipe (click's test runner would translate the line ends itself)."""
    def stream(lines):
        return subprocess.run([sys.executable, "-m", "recurrent", "predict",
                               str(task_runs["seq2seq"]), "--stream"], input=lines,
                              capture_output=True, env=installed_env(), timeout=120)
    unix, windows = stream(b"abc\nbad\n"), stream(b"abc\r\nbad\r\n")
    assert unix.returncode == windows.returncode == 0, windows.stderr
    assert windows.stdout == unix.stdout and b"\\r" not in windows.stdout


def test_eval_says_when_a_run_has_lost_its_best_checkpoint(task_runs, tmp_path):
    run = _copy(task_runs["char-lm"], tmp_path)
    assert "the split that chose this best checkpoint" in ok(
        invoke("eval", run, "--split", "valid"))
    note = (f"has no best checkpoint ({run / 'best.npz'} is missing, though an evaluation "
            f"saved it; restore it for the best parameters): using the latest parameters, "
            f"last.npz")
    exported = tmp_path / "m.safetensors"
    for args in (("predict", run, "--length", 3),
                 ("export", run, "--format", "safetensors", "--out", exported, "--force")):
        assert note not in invoke(*args).stderr
    (run / "best.npz").unlink()
    out = ok(invoke("eval", run, "--split", "valid"))
    assert "restore it for the best parameters: the latest parameters, last.npz" in out
    assert "chose" not in out
    # any split, and --json names the parameters evaluated
    assert "no best checkpoint, " in ok(invoke("eval", run, "--split", "train"))
    assert json.loads(ok(invoke("eval", run, "--json")))["checkpoint"] == "last"
    # predict and export say so on stderr (their stdout is the answers and the file)
    for args in (("predict", run, "--length", 3),
                 ("export", run, "--format", "safetensors", "--out", exported, "--force")):
        result = invoke(*args)
        assert result.exit_code == 0 and note in result.stderr and note not in result.stdout
    last = invoke("export", run, "--format", "safetensors", "--out", exported, "--force",
                  "--checkpoint", "last")
    assert last.exit_code == 0 and note not in last.stderr


def test_a_damaged_max_eval_in_config_json_is_one_line(task_runs, tmp_path):
    for value, name in (("x", "x"), (-1, "minus")):
        run = _copy(task_runs["seq2seq"], tmp_path, name)
        info = json.loads((run / "config.json").read_text())
        info["config"]["max_eval"] = value
        (run / "config.json").write_text(json.dumps(info))
        one_line_error(invoke("eval", run), "max_eval", json.dumps(value))


def test_metrics_jsonl_replaced_by_a_directory_is_one_line(tmp_path):
    run = tmp_path / "run"
    ok(train_tiny(tiny_text(tmp_path), run))
    (run / "metrics.jsonl").unlink()
    (run / "metrics.jsonl").mkdir()
    one_line_error(invoke("train", "--resume", run, "--steps", 3),
                   "cannot read", "metrics.jsonl")


def test_tune_on_and_off_together_is_a_usage_error():
    result = invoke("tune", "--on", "--off")
    assert result.exit_code == 2
    one_line_error(result, "--on and --off contradict each other")


def test_plugins_check_names_the_kind_a_name_has():
    one_line_error(invoke("plugins", "check", "mse", "--kind", "cell"),
                   "'mse' is a loss, not a cell", "--kind loss")
    one_line_error(invoke("plugins", "check", "lstm", "--kind", "loss"),
                   "'lstm' is a cell, not a loss")
    # a task's name asked for as a cell or a loss, and a cell's or loss's as a task
    for name, kind, is_a in (("sentiment", "cell", "task"), ("char-lm", "loss", "task"),
                             ("lstm", "task", "cell"), ("mse", "task", "loss")):
        one_line_error(invoke("plugins", "check", name, "--kind", kind),
                       f"'{name}' is a {is_a}, not a {kind}: pass --kind {is_a} or no --kind")
    one_line_error(invoke("plugins", "check", "nope", "--kind", "task"), "no task named 'nope'")


def test_plugins_check_names_every_kind_a_name_has():
    """A loss registered under a task's name: asked for as a cell, both are named."""
    import recurrent
    from recurrent_plugins.losses import MSE

    class SentimentLoss(MSE):
        name = "sentiment"

    class LossPlugin:
        @recurrent.hookimpl
        def register_losses(self, register):
            register(SentimentLoss())

    with registered_plugin(LossPlugin(), "test-sentiment-loss"):
        one_line_error(invoke("plugins", "check", "sentiment", "--kind", "cell"),
                       "'sentiment' is a loss and a task, not a cell: pass --kind loss or "
                       "--kind task")


def test_plugins_check_finds_every_name_before_checking_any():
    """A typo among the names is refused before any check runs: no check of lstm is
    run or printed first (with --json: run and not printed)."""
    for extra in ((), ("--json",)):
        result = invoke("plugins", "check", *extra, "lstm", "nope")
        one_line_error(result, "no cell, loss or task named 'nope'")
        assert result.stdout == "" and "PASS" not in result.output


def test_an_empty_out_is_refused_not_read_as_the_default(tmp_path, task_runs, monkeypatch):
    monkeypatch.chdir(tmp_path)
    one_line_error(invoke("train", "char-lm", "--data", tiny_text(tmp_path), *SMALL,
                          "--steps", 1, "--out", ""), "--out is empty")
    one_line_error(invoke("export", task_runs["char-lm"], "--format", "safetensors",
                          "--out", ""), "--out is empty")
    assert not (tmp_path / "runs").exists()


def test_an_empty_data_or_run_is_refused_not_read_as_the_default(tmp_path, task_runs,
                                                                  monkeypatch):
    """`--data ""` read the bundled data and `--resume ""` started a new run."""
    monkeypatch.chdir(tmp_path)
    one_line_error(invoke("train", "char-lm", "--data", "", *SMALL, "--steps", 1),
                   "--data is empty")
    one_line_error(invoke("train", "char-lm", "--resume", "", *SMALL, "--steps", 1),
                   "no run directory given")
    one_line_error(invoke("train", "--resume", ""), "no run directory given")
    assert not (tmp_path / "runs").exists()
    one_line_error(invoke("eval", task_runs["char-lm"], "--data", ""), "--data is empty")
    one_line_error(invoke("predict", task_runs["forecast"], "--data", ""), "--data is empty")
    one_line_error(invoke("predict", task_runs["forecast"], "--plot", ""), "--plot is empty")
    for command in (("eval",), ("predict",), ("export", "--format", "onnx")):
        one_line_error(invoke(*command, ""), "no run directory given")


def _monthly_run(tmp_path):
    """(160 rows of two monthly columns, a small forecast run of column a on the first
    120)."""
    rows = two_monthly_columns(160)
    train = write_csv(tmp_path / "train.csv", ["date", "a", "b"], rows[:120])
    run = tmp_path / "run"
    ok(invoke("train", "forecast", "--data", train, "--time-column", "date", "--column", "a",
              "--horizon", 2, "--model", "rnn", "--window", 8, "--steps", 2, *SMALL,
              "--out", run))
    return rows, run


def test_forecast_report_counts_the_windows_it_could_score(tmp_path):
    rows, run = _monthly_run(tmp_path)
    gaps = [[date, "" if 20 <= i < 30 else a, b] for i, (date, a, b) in enumerate(rows[120:])]
    data = write_csv(tmp_path / "gaps.csv", ["date", "a", "b"], gaps)
    report = json.loads(ok(invoke("eval", run, "--data", data, "--json")))
    windows, scored = report["metrics"]["windows"], report["metrics"]["scored_windows"]
    # each window's two targets are rows origin+1, origin+2 of the file; those whose
    # targets both fall in rows 20-29 have nothing to score
    origins = range(40 - windows - 2, 40 - 2)
    assert scored == sum(not (20 <= o + 1 and o + 2 <= 29) for o in origins) < windows
    text = ok(invoke("eval", run, "--data", data))
    assert f"{windows} windows ({scored} with observed actuals to score)" in text
    whole = ok(invoke("eval", run))
    assert " with observed actuals to score" not in whole


def test_forecast_report_says_its_loss_reads_gap_filled_targets(tmp_path):
    """The metrics score observed actuals only; the loss row, as training's loss, every
    target. A file whose last rows are empty has windows whose targets are all filled
    (held at the last observed value, which favours the naive forecast there): the
    report says the loss counts them, and says nothing where every window is scored."""
    rows, run = _monthly_run(tmp_path)
    tail = [[date, "" if i >= 32 else a, b] for i, (date, a, b) in enumerate(rows[120:])]
    data = write_csv(tmp_path / "tail.csv", ["date", "a", "b"], tail)
    windows = json.loads(ok(invoke("eval", run, "--data", data, "--json")))["metrics"][
        "windows"]
    text = ok(invoke("eval", run, "--data", data))
    assert (f"loss = --loss (mse by default) on scaled values of all {windows} windows' "
            f"targets, gap-filled ones included, as training scores them") in text
    whole = ok(invoke("eval", run))
    assert "loss = --loss (mse by default) on scaled values\n" in whole
    assert "gap-filled" not in whole


def test_a_resume_may_repeat_an_option_with_the_value_the_task_chose(task_runs, tmp_path):
    """Options left at a default of None are chosen from the data (Task.resolved_options):
    giving the chosen value again is no change; another value is refused, naming it."""
    for task, option, key in (("seq2seq", "--target-level", "target_level"),
                              ("forecast", "--season", "season")):
        run = _copy(task_runs[task], tmp_path, task)
        info = json.loads((run / "config.json").read_text())
        assert info["config"][key] is None
        chosen = info["task_state"][key]
        other = {"char": "token", "token": "char"}.get(chosen, 2 if chosen != 2 else 3)
        one_line_error(invoke("train", "--resume", run, option, other, "--steps", 3),
                       f"the run has {chosen!r} (its default, chosen from the data)")
        ok(invoke("train", "--resume", run, option, chosen, "--steps", 3))
        assert json.loads((run / "config.json").read_text())["config"][key] is None


def test_a_resume_may_repeat_the_columns_forecast_chose(task_runs, tmp_path):
    """--time-column and --column left at their defaults are read from the data: a resume
    may give the columns the run found (the repeatable --column included); others are
    refused, naming the run's, and the options saved stay the defaults."""
    run = _copy(task_runs["forecast"], tmp_path, "forecast")
    info = json.loads((run / "config.json").read_text())
    assert info["config"]["time_column"] is None and info["config"]["column"] == []
    time_column, columns = info["task_state"]["time_column"], info["task_state"]["columns"]
    one_line_error(invoke("train", "--resume", run, "--time-column", "when"),
                   f"the run has {time_column!r} (its default, chosen from the data)")
    one_line_error(invoke("train", "--resume", run, "--column", "other"),
                   f"the run has {columns!r} (its default, chosen from the data)")
    ok(invoke("train", "--resume", run, "--time-column", time_column,
              *[arg for name in columns for arg in ("--column", name)], "--steps", 3))
    config = json.loads((run / "config.json").read_text())["config"]
    assert config["time_column"] is None and config["column"] == [] and config["steps"] == 3


def test_forecast_windows_are_scored_when_every_column_has_an_actual(tmp_path):
    """With several columns a window counts as scored only when each column has an
    observed actual in it, as --backtest counts its origins."""
    rows = two_monthly_columns(160)
    train = write_csv(tmp_path / "train.csv", ["date", "a", "b"], rows[:120])
    run = tmp_path / "run"
    ok(invoke("train", "forecast", "--data", train, "--time-column", "date", "--column", "a",
              "--column", "b", "--horizon", 2, "--model", "rnn", "--window", 8, "--steps", 2,
              *SMALL, "--out", run))
    gaps = [[date, a, "" if 20 <= i < 30 else b] for i, (date, a, b) in enumerate(rows[120:])]
    data = write_csv(tmp_path / "gaps.csv", ["date", "a", "b"], gaps)
    report = json.loads(ok(invoke("eval", run, "--data", data, "--json")))
    windows, scored = report["metrics"]["windows"], report["metrics"]["scored_windows"]
    origins = range(40 - windows - 2, 40 - 2)
    assert scored == sum(not (20 <= o + 1 and o + 2 <= 29) for o in origins) < windows
    assert f"({scored} with observed actuals to score in every column)" in ok(
        invoke("eval", run, "--data", data))
    one_line_error(invoke("eval", run, "--data", data, "--backtest", scored + 1),
                   f"has only {scored} forecast origins")


def test_a_task_without_int8_is_named_not_its_model_class(task_runs, monkeypatch):
    # every built-in task's model has a precision: one without (a plugin's) is named by
    # its task
    from recurrent.seq2seq import Seq2SeqModel
    monkeypatch.delattr(Seq2SeqModel, "precision")
    one_line_error(invoke("eval", task_runs["seq2seq"], "--precision", "int8"),
                   "--precision int8: seq2seq runs have no int8 path (fp32 only)")


def test_a_damaged_saved_option_names_the_run_file_it_was_read_from(task_runs, tmp_path):
    run = _copy(task_runs["char-lm"], tmp_path)
    info = json.loads((run / "config.json").read_text())
    info["config"]["hidden"] = "big"
    (run / "config.json").write_text(json.dumps(info))
    for command in (("eval", run), ("predict", run, "--length", 3)):
        one_line_error(invoke(*command), f"{run / 'config.json'} is corrupted",
                       'option hidden (--hidden) is "big", not a whole number')
