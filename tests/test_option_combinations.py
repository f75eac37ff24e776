"""Combinations of training options that the command line must refuse in one line before
the run directory is made (or, for a resumed run, name as they were typed): NaN in a
task's FloatRange option (click lets it through), --nesterov with no momentum or with an
optimizer that has no Nesterov variant, and forecast's --model on resume."""
import json

import numpy as np
import pytest
from helpers import (bundled_reviews, invoke, ok, one_line_error, sunspot_rows, tiny_text,
                     train_tiny, write_csv, write_reviews)

FORECAST = ["--hidden", "4", "--steps", "2", "--threads", "1", "--quiet", "--no-plot",
            "--window", "8", "--inputs", "level", "--model", "rnn"]
SENTIMENT = ["--hidden", "4", "--embed-dim", "4", "--steps", "2", "--threads", "1", "--quiet",
             "--no-plot", "--ensemble", "1", "--bigram-buckets", "64"]


@pytest.fixture(scope="module")
def sunspots_csv(tmp_path_factory):
    path = tmp_path_factory.mktemp("series") / "sunspots.csv"
    return write_csv(path, ["year", "spots"], sunspot_rows())


@pytest.mark.parametrize("option", ["--valid-fraction", "--test-fraction"])
def test_forecast_nan_fraction_is_one_line_before_the_run_directory(tmp_path, sunspots_csv,
                                                                    option):
    out = tmp_path / "run"
    result = invoke("train", "forecast", "--data", sunspots_csv, "--time-column", "year",
                    option, "nan", "--out", out, *FORECAST)
    one_line_error(result, f"{option} must be a finite number, got nan")
    assert "internal error" not in result.stderr
    assert not out.exists()


@pytest.mark.parametrize("option", ["--wide-dropout", "--word-dropout"])
def test_sentiment_nan_dropout_is_refused_not_turned_off(tmp_path, option):
    data = write_reviews(tmp_path / "reviews.csv", bundled_reviews(30))
    out = tmp_path / "run"
    result = invoke("train", "sentiment", "--data", data, option, "nan", "--out", out,
                    *SENTIMENT)
    one_line_error(result, f"{option} must be a finite number, got nan")
    assert not out.exists()


@pytest.mark.parametrize("options, message", [
    (("--optimizer", "sgd", "--nesterov", "--momentum", "0"),
     "--nesterov needs --momentum above 0, got 0.0"),
    (("--optimizer", "adam", "--nesterov"),
     "--nesterov is for --optimizer sgd (Nesterov momentum); adam has none"),
    (("--optimizer", "rmsprop", "--nesterov"),
     "--nesterov is for --optimizer sgd (Nesterov momentum); rmsprop has none"),
])
def test_nesterov_that_cannot_apply_is_refused_before_the_run_directory(tmp_path, options,
                                                                       message):
    text = tiny_text(tmp_path)
    out = tmp_path / "run"
    one_line_error(train_tiny(text, out, *options), message)
    assert not out.exists()
    # the same --out trains once the options are right
    ok(train_tiny(text, out, "--optimizer", "sgd", "--nesterov", "--momentum", "0.5"))


def test_a_saved_run_with_nesterov_beside_adam_still_resumes(tmp_path):
    text = tiny_text(tmp_path)
    out = tmp_path / "run"
    ok(train_tiny(text, out))
    path = out / "config.json"
    saved = json.loads(path.read_text())
    saved["config"]["nesterov"] = True  # the option a run could hold, unused by adam
    path.write_text(json.dumps(saved))
    assert "done after 4 steps" in ok(invoke("train", "--resume", out, "--steps", 4,
                                             "--threads", 1, "--quiet"))


def test_forecast_resume_names_the_model_option_as_typed(tmp_path, sunspots_csv):
    out = tmp_path / "run"
    ok(invoke("train", "forecast", "--data", sunspots_csv, "--time-column", "year", "--out",
              out, *FORECAST))
    result = invoke("train", "forecast", "--resume", out, "--model", "esrnn", "--steps", 4)
    one_line_error(result, "--model cannot change when resuming (the run has 'rnn')")
    assert "--forecast-model" not in result.stderr


@pytest.mark.parametrize("option", ["--loss", "--data"])
def test_an_empty_text_option_is_refused_not_read_as_the_default(tmp_path, option):
    """`--loss ""` (a script's unset variable) trained with the task's loss without a word;
    every text option of a new run is refused empty, as --data and --out are."""
    out = tmp_path / "run"
    args = ["--data", tiny_text(tmp_path)] if option != "--data" else []
    result = invoke("train", "char-lm", *args, option, "", "--out", out, "--steps", 1,
                    "--hidden", 4, "--quiet", "--no-plot")
    one_line_error(result, f"{option} is empty")
    assert not out.exists()


def test_sentiment_empty_text_column_is_refused(tmp_path):
    data = write_reviews(tmp_path / "reviews.csv", bundled_reviews(30))
    out = tmp_path / "run"
    result = invoke("train", "sentiment", "--data", data, "--text-column", "", "--out", out,
                    *SENTIMENT)
    one_line_error(result, "--text-column is empty: give a value")
    assert not out.exists()


def test_import_to_an_empty_out_is_named_as_such(tmp_path):
    result = invoke("import", tmp_path / "m.safetensors", "--out", "")
    one_line_error(result, "--out is empty: give a path")
    assert "default" not in result.stderr


def test_resume_takes_the_options_that_asked_for_the_choice_again(tmp_path, sunspots_csv):
    """A run that chose its window and inputs among candidates resumes with the command
    line that started it (--window auto --inputs auto): that asks for no change; another
    window is still refused."""
    out = tmp_path / "run"
    small = [a for a in FORECAST if a not in ("--window", "8", "--inputs", "level")]
    ok(invoke("train", "forecast", "--data", sunspots_csv, "--time-column", "year",
              "--out", out, *small))
    chosen = json.loads((out / "config.json").read_text())["config"]["window"]
    ok(invoke("train", "forecast", "--resume", out, "--window", "auto", "--inputs", "auto",
              "--steps", 4, "--quiet"))
    assert json.loads((out / "config.json").read_text())["config"]["window"] == chosen
    other = 16 if chosen != 16 else 8
    one_line_error(invoke("train", "forecast", "--resume", out, "--window", other,
                          "--steps", 6), "--window cannot change when resuming")


def test_resuming_a_run_that_stopped_early_says_how_to_train_on(tmp_path):
    """An early-stopped run resumed with more --steps only trains nothing and stops early
    again: the summary says why and which option trains on."""
    text, out = tiny_text(tmp_path), tmp_path / "run"
    stop = ("--lr", "1e-12", "--patience", 1, "--eval-every", 1)  # no better loss: stops
    first = ok(train_tiny(text, out, "--steps", 50, *stop))
    assert first.startswith("stopped early after 2 steps") and "larger" not in first
    again = ok(invoke("train", "--resume", out, "--steps", 80, "--quiet"))
    assert "had already reached its --patience 1 (stopped early) after 2 steps" in again
    assert "resume it with a larger --patience, or --patience 0;" in again
    assert ok(invoke("train", "--resume", out, "--steps", 6, "--patience", 0, "--quiet")
              ).startswith("done after 6 steps")


@pytest.mark.parametrize("options, message", [
    (("--momentum", "0.5"), "--momentum is for --optimizer sgd or rmsprop; adam has none"),
    (("--schedule", "constant", "--min-lr", "1e-5"),
     "--min-lr is for --schedule cosine (the rate it ends at); constant has none"),
    (("--schedule", "step", "--min-lr", "0.1"),  # above --lr: unused, not too high
     "--min-lr is for --schedule cosine (the rate it ends at); step has none"),
    (("--decay-every", "10"), "--decay-every is for --schedule step; cosine has no steps"),
    (("--schedule", "cosine", "--decay-gamma", "0.3"),
     "--decay-gamma is for --schedule step; cosine has no steps"),
])
def test_an_option_the_others_leave_unused_is_refused_when_given(tmp_path, options, message):
    """Given on the command line, these would be saved and have no effect; left at their
    defaults they are not named (the defaults are numbers, not 'unset')."""
    text, out = tiny_text(tmp_path), tmp_path / "run"
    one_line_error(train_tiny(text, out, *options), message)
    assert not out.exists()
    ok(train_tiny(text, out))  # char-lm: adam, cosine; the same options unnamed


@pytest.mark.parametrize("gamma, effect", [("1", "leave the rate as it is"),
                                           ("10", "raise the rate")])
def test_a_step_schedule_that_does_not_decay_is_refused(tmp_path, gamma, effect):
    """--decay-gamma 1 leaves the step schedule constant and one above 1 raises the rate
    at every decay, as --min-lr above --lr would raise a cosine's: refused in one line
    before the run directory is made."""
    text, out = tiny_text(tmp_path), tmp_path / "run"
    one_line_error(train_tiny(text, out, "--schedule", "step", "--decay-every", "1",
                              "--decay-gamma", gamma),
                   f"--decay-gamma {gamma} is not below 1: every decay of the step schedule "
                   f"would {effect}")
    assert not out.exists()


@pytest.mark.parametrize("options", [
    ("--optimizer", "rmsprop", "--momentum", "0.5"),
    ("--schedule", "cosine", "--min-lr", "1e-5"),
    ("--schedule", "step", "--decay-every", "1", "--decay-gamma", "0.3"),
])
def test_an_option_the_others_use_is_taken(tmp_path, options):
    ok(train_tiny(tiny_text(tmp_path), tmp_path / "run", *options))


@pytest.mark.parametrize("options, message", [
    (("--model", "rnn", "--es-train", "first"),
     "--es-train is for the learned smoothing of --model esrnn (or auto, which may take "
     "it); --model rnn has none"),
    (("--model", "hybrid", "--es-train", "joint"), "--model hybrid has none"),
    (("--no-difference", "--es-train", "first"), "--no-difference leaves auto with rnn"),
    (("--no-difference", "--blend", "full"),
     "--blend is for --difference (the share of the correction of its anchor); "
     "--no-difference has no anchor"),
])
def test_a_task_option_the_others_leave_unused_is_refused_when_given(tmp_path, options,
                                                                     message):
    """The task names its own (Task.moot_options), refused as the shared ones are,
    before the run directory is made."""
    out = tmp_path / "run"
    one_line_error(invoke("train", "forecast", *options, "--threads", 1, "--quiet",
                          "--no-plot", "--out", out), message)
    assert not out.exists()


def test_a_task_option_the_others_use_is_taken(tmp_path):
    ok(invoke("train", "forecast", "--model", "esrnn", "--es-train", "first", "--window",
              8, "--inputs", "level", "--steps", 2, "--threads", 1, "--quiet", "--no-plot",
              "--out", tmp_path / "run"))
    # --model esrnn with --no-difference is the model's refusal, not the option's
    one_line_error(invoke("train", "forecast", "--model", "esrnn", "--no-difference",
                          "--es-train", "first", "--threads", 1, "--quiet", "--no-plot",
                          "--out", tmp_path / "other"),
                   "--model esrnn corrects its smoothing's forecast: it does not go with "
                   "--no-difference")


def test_adamw_decays_weights_by_default_as_torchs_does(tmp_path):
    """Without --weight-decay adamw takes torch's AdamW default (0.01), not 0 (which
    would make it adam); the other optimizers 0."""
    from recurrent.checkpoint import load_arrays
    text = tiny_text(tmp_path)

    def params(name, *options):
        ok(train_tiny(text, tmp_path / name, "--lr", "0.05", *options))
        arrays, _ = load_arrays(str(tmp_path / name / "last.npz"))
        return {k: v for k, v in arrays.items() if not k.startswith("opt")}

    default = params("default", "--optimizer", "adamw")
    explicit = params("explicit", "--optimizer", "adamw", "--weight-decay", "0.01")
    none = params("none", "--optimizer", "adamw", "--weight-decay", "0")
    adam = params("adam", "--optimizer", "adam")
    assert default.keys() == explicit.keys() and default
    assert all(np.array_equal(default[k], explicit[k]) for k in default)
    assert all(np.array_equal(none[k], adam[k]) for k in none)  # no decay: adam's steps
    assert any(not np.array_equal(default[k], none[k]) for k in default)
    saved = json.loads((tmp_path / "default" / "config.json").read_text())["config"]
    assert saved["weight_decay"] is None  # the optimizer's default, resumed as such


def test_resume_takes_the_same_data_file_written_another_way(tmp_path, monkeypatch):
    """--data given again on resume as ./text.txt or its absolute path names the file the
    run trained on: not a change. Another file still is."""
    monkeypatch.chdir(tmp_path)
    tiny_text(tmp_path)
    ok(invoke("train", "char-lm", "--data", "text.txt", "--hidden", 8, "--steps", 2,
              "--threads", 1, "--quiet", "--no-plot", "--out", "run"))
    for spelling in ("./text.txt", str(tmp_path / "text.txt")):
        ok(invoke("train", "char-lm", "--resume", "run", "--data", spelling, "--steps", 3,
                  "--quiet"))
    (tmp_path / "other.txt").write_text((tmp_path / "text.txt").read_text())
    one_line_error(invoke("train", "char-lm", "--resume", "run", "--data", "other.txt",
                          "--steps", 4, "--quiet"),
                   f"--data cannot change when resuming (the run reads "
                   f"{str(tmp_path / 'text.txt')!r})")


def test_resuming_with_the_default_weight_decay_given_is_no_change(tmp_path):
    """A run started without --weight-decay saves null (the optimizer's default): giving
    that default again on resume (0.01 for adamw, 0 for adam) is no change; another value
    is still refused, naming the default the run has."""
    text = tiny_text(tmp_path)
    for optimizer, same, other in (("adamw", "0.01", "0"), ("adam", "0", "0.01")):
        out = tmp_path / optimizer
        ok(train_tiny(text, out, "--optimizer", optimizer, "--steps", 2))
        ok(invoke("train", "--resume", out, "--steps", 3, "--weight-decay", same, "--quiet"))
        saved = json.loads((out / "config.json").read_text())["config"]
        assert saved["weight_decay"] is None
        one_line_error(invoke("train", "--resume", out, "--steps", 4, "--weight-decay", other),
                       "--weight-decay cannot change", f"--optimizer {optimizer}")
