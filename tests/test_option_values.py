"""Option values that make no sense: each is refused in one line, before a training run
makes its directory, or works as the limit it asks for; never a traceback, an internal
error, a hang or a silently different value.

The schedule's --warmup and --decay-every are checked against the run's planned steps:
refused for a new run whose --steps leaves them without effect, noted on stderr when
--epochs ends the run first (its steps are known once an epoch's batches are counted),
and a saved run that holds such settings still resumes."""
from __future__ import annotations

import json
import warnings

import pytest
from click.testing import CliRunner
from helpers import invoke, ok, one_line_error, tiny_text, train_tiny

from recurrent.cli import cli

HUGE = 10**20


@pytest.mark.parametrize("options, fragments", [
    (("--warmup", 2), ("--warmup 2", "2 step(s)")),
    (("--warmup", 7), ("--warmup 7", "2 step(s)")),
    (("--schedule", "step", "--decay-every", 2), ("--decay-every 2", "never decays")),
    (("--schedule", "step", "--warmup", 1, "--decay-every", 1),
     ("--decay-every 1", "never decays")),
    (("--schedule", "step"), ("--decay-every 1000", "never decays")),  # its default
])
def test_a_schedule_setting_the_steps_never_reach_is_refused(tmp_path, options, fragments):
    """TINY_RUN trains --steps 2: a warm-up of 2 or more would take the whole run, and a
    step schedule whose first decay (step warmup + decay_every, from 0) is not within
    it would stay constant."""
    out = tmp_path / "run"
    one_line_error(train_tiny(tiny_text(tmp_path), out, *options), *fragments)
    assert not out.exists()


@pytest.mark.parametrize("options", [
    ("--warmup", 1),
    ("--schedule", "step", "--decay-every", 1),
])
def test_a_schedule_setting_within_the_steps_trains(tmp_path, options):
    result = train_tiny(tiny_text(tmp_path), tmp_path / "run", *options)
    ok(result)
    assert "note:" not in result.stderr


def test_a_warmup_that_epochs_end_before_is_noted(tmp_path):
    """--epochs 1 without --steps: the planned steps are known once the trainer counts an
    epoch's batches, after the run directory is made; the run goes on, told why."""
    result = invoke("train", "char-lm", "--data", tiny_text(tmp_path), "--epochs", 1,
                    "--hidden", 8, "--seq-len", 16, "--warmup", 100000, "--threads", 1,
                    "--quiet", "--no-plot", "--out", tmp_path / "run")
    ok(result)
    assert "note: --warmup 100000 is not shorter than the run's" in result.stderr


@pytest.mark.parametrize("options", [
    ("--warmup", 100000),
    ("--schedule", "step", "--decay-every", 100000),
])
def test_a_note_on_a_run_epochs_end_names_epochs(tmp_path, options):
    """--epochs 1 ends the run before its --steps: the note says to raise --epochs (more
    --steps would not lengthen the run)."""
    result = invoke("train", "char-lm", "--data", tiny_text(tmp_path), "--epochs", 1,
                    "--steps", 1000000, "--hidden", 8, "--seq-len", 16, *options,
                    "--threads", 1, "--quiet", "--no-plot", "--out", tmp_path / "run")
    ok(result)
    note = [line for line in result.stderr.splitlines() if line.startswith("note: --")]
    assert len(note) == 1 and "or more --epochs" in note[0], result.stderr
    assert "--steps" not in note[0]


def test_a_saved_run_with_such_a_warmup_still_resumes(tmp_path):
    """A run saved with a warm-up longer than its steps (config.json as earlier versions
    wrote it) resumes, extended by --steps, with a note that gives only the advice a
    resume takes (--warmup cannot change there)."""
    run = tmp_path / "run"
    ok(train_tiny(tiny_text(tmp_path), run, "--warmup", 1))
    path = run / "config.json"
    info = json.loads(path.read_text(encoding="utf-8"))
    info["config"]["warmup"] = 50
    path.write_text(json.dumps(info), encoding="utf-8")
    result = invoke("train", "--resume", run, "--steps", 4)
    ok(result)
    note = [line for line in result.stderr.splitlines() if line.startswith("note: --")]
    assert len(note) == 1, result.stderr
    assert note[0].startswith("note: --warmup 50 is not shorter than the run's 4 step(s)")
    assert note[0].endswith("give more --steps"), note[0]


def test_an_extended_run_keeps_its_warmup(tmp_path):
    run = tmp_path / "run"
    ok(train_tiny(tiny_text(tmp_path), run, "--warmup", 1))
    result = invoke("train", "--resume", run, "--steps", 5)
    ok(result)
    assert "note:" not in result.stderr


def test_stream_refuses_an_empty_prime_as_predict_does(task_runs):
    run = task_runs["char-lm"]
    one_line_error(invoke("predict", run, "--prime", ""), "--prime must not be empty")
    result = CliRunner().invoke(cli, ["predict", str(run), "--stream", "--prime", ""],
                                input="the\n")
    one_line_error(result, "--prime must not be empty")
    assert result.stdout == ""


def test_ranks_beyond_what_mpiexec_reads_is_refused(tmp_path):
    """mpiexec -n reads a C int: a larger count would start some other number of ranks."""
    out = tmp_path / "run"
    result = train_tiny(tiny_text(tmp_path), out, "--ranks", HUGE)
    assert result.exit_code == 2
    one_line_error(result, "--ranks", str(HUGE))
    assert not out.exists()


@pytest.mark.parametrize("option", ["--layers", "--hidden", "--embed-dim"])
def test_a_model_no_memory_holds_is_refused_at_once(tmp_path, option):
    """Sizes beyond any array: one "not enough memory" line, before the layers are laid
    out one by one (which would take hours for --layers) and before the run exists."""
    out = tmp_path / "run"
    result = train_tiny(tiny_text(tmp_path), out, option, HUGE)
    one_line_error(result, "Error: not enough memory")
    assert "internal error" not in result.stderr
    assert not out.exists()


def test_a_forecast_no_memory_holds_is_refused(task_runs):
    """--steps 10**20: refused by its bound before any memory is asked for."""
    result = invoke("predict", task_runs["forecast"], "--steps", HUGE)
    one_line_error(result, "Invalid value for '--steps'", "1<=x<=1000000")
    assert "internal error" not in result.stderr


def test_a_horizon_beyond_any_series_is_refused_at_once(tmp_path):
    """The rows a forecast split needs, counted for a horizon of 10**20 (before, counted
    down one row at a time: it never ended)."""
    out = tmp_path / "run"
    result = invoke("train", "forecast", "--horizon", HUGE, "--steps", 2, "--out", out)
    one_line_error(result, "too few rows in 'sunspots'", f"--horizon {HUGE} need at least")
    assert not out.exists()


def test_more_wide_folds_than_training_rows_is_refused(tmp_path):
    out = tmp_path / "run"
    result = invoke("train", "sentiment", "--wide-folds", HUGE, "--steps", 2, "--hidden", 8,
                    "--ensemble", 1, "--quiet", "--no-plot", "--out", out)
    one_line_error(result, f"--wide-folds {HUGE}", "more folds than")
    assert not out.exists()


def test_a_huge_length_normalisation_ranks_without_a_warning(task_runs):
    """--alpha so large that length ** alpha overflows: its limit, with no numpy warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ok(invoke("predict", task_runs["seq2seq"], "--beam", 3, "--max-len", 6,
                  "--alpha", 1e300, "abcd"))
