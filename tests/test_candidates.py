"""Runs that choose among candidates (recurrent/candidates.py): forecast's --window auto
and --inputs auto train a run per window length and input mode, keep the best on
validation, and the run is then that candidate's copy; interrupted runs resume to the
uninterrupted one."""
from __future__ import annotations

import json
import math
import os
import re
import shutil

import numpy as np
import pytest
from helpers import (advised, checkpoint_params, ctrl_c_around, invoke, ok, one_line_error,
                     same_params, write_csv)

from recurrent import candidates
from recurrent.checkpoint import RunDir
from recurrent.config import TrainingConfig
from recurrent.errors import UserError
from recurrent.plugins import get_task
from recurrent.runs import load_model, resume_run, start_run
from recurrent.trainer import Trainer

SMALL = ["--hidden", "8", "--epochs", "2", "--threads", "1", "--quiet", "--no-plot"]
# forecast's default candidates: every window length with every input mode
DEFAULT = [{"inputs": m, "window": w} for w in (30, 16, 8) for m in ("level", "relative")]


def _params(path, name="best.npz"):
    return checkpoint_params(path, name)



def _info(run):
    return json.loads((run / "config.json").read_text())


def _valid_loss(run):
    return json.loads(ok(invoke("eval", run, "--split", "valid", "--json")))["metrics"]["loss"]


@pytest.fixture(scope="module")
def chosen(tmp_path_factory):
    run = tmp_path_factory.mktemp("candidates") / "run"
    ok(invoke("train", "forecast", "--out", run, *SMALL))
    return run


def test_each_window_and_input_mode_trains_and_the_best_on_validation_is_kept(chosen):
    record = _info(chosen)["chose"]
    assert record["candidates"] == DEFAULT
    assert record["select_by"] == "loss"
    # every score is what `eval --split valid` shows for that candidate
    scores = [_valid_loss(chosen / f"candidate-{k}") for k in range(len(DEFAULT))]
    assert record["scores"] == pytest.approx(scores, rel=1e-12)
    k = record["chosen"]
    assert k == int(np.argmin(scores))
    # the run is now a copy of the winner: its options, state, checkpoints and records
    winner = chosen / f"candidate-{k}"
    info, theirs = _info(chosen), _info(winner)
    assert info["config"] == theirs["config"]
    assert {key: info["config"][key] for key in ("window", "inputs")} == DEFAULT[k]
    assert info["task_state"] == theirs["task_state"]
    assert info["task_state"]["window"] == DEFAULT[k]["window"]
    for name in ("best.npz", "last.npz", "metrics.jsonl"):
        assert (chosen / name).read_bytes() == (winner / name).read_bytes()
    ours, theirs = (json.loads(ok(invoke("eval", r, "--json"))) for r in (chosen, winner))
    assert ours.pop("chose") == record and "chose" not in theirs
    assert ours.pop("run") != theirs.pop("run") and ours == theirs
    # the report says what was chosen, and over what
    parts = [f"{candidates.describe(o)} (valid loss {score:.4f})"
             for o, score in zip(DEFAULT, scores)]
    kept = parts.pop(k)
    assert (f"chosen on validation: {kept} over {', '.join(parts)}"
            in ok(invoke("eval", chosen)))
    assert "chosen on validation" not in ok(invoke("eval", winner))
    assert ok(invoke("predict", chosen)) == ok(invoke("predict", winner))


def test_a_candidate_is_the_plain_run_of_its_options(chosen, tmp_path):
    for k, override in enumerate(DEFAULT):
        plain = tmp_path / f"{k}"
        ok(invoke("train", "forecast", "--out", plain, "--window", override["window"],
                  "--inputs", override["inputs"], *SMALL))
        assert not (plain / "candidate-0").exists() and "chose" not in _info(plain)
        assert same_params(_params(plain), _params(chosen / f"candidate-{k}"))
        assert _info(plain)["task_state"] == _info(chosen / f"candidate-{k}")["task_state"]


@pytest.mark.parametrize("value, message", [("0", "0 is below 1"),
                                            ("ten", "'ten' is neither a whole number")])
def test_a_bad_window_is_one_line(tmp_path, value, message):
    one_line_error(invoke("train", "forecast", "--window", value, "--out", tmp_path / "r"),
                   "Invalid value for '--window'", message)
    assert not (tmp_path / "r").exists()


def test_a_given_window_or_mode_leaves_the_other_to_choose():
    task = get_task("forecast")
    assert task.candidates({"window": 12}) == [{"inputs": "level"}, {"inputs": "relative"}]
    assert task.candidates({"window": "auto", "inputs": "relative"}) == [
        {"window": 30}, {"window": 16}, {"window": 8}]
    assert task.candidates({}) == DEFAULT
    assert task.candidates({"window": 12, "inputs": "level"}) == []


def test_an_interrupted_choice_resumes_to_the_uninterrupted_one(chosen, tmp_path,
                                                               monkeypatch):
    part = tmp_path / "part"
    # Ctrl-C during the second candidate's fifth step: it saves and the summary says where
    monkeypatch.setattr(Trainer, "_stop_requested", lambda self: (
        self.run.path.endswith("candidate-1") and self.position.step == 5))
    result = invoke("train", "forecast", "--out", part, *SMALL[:-2])  # not --quiet
    assert result.exit_code == 130, result.output
    assert "candidate 1/6 (--inputs level --window 30)" in result.output
    assert "interrupted at step 5 of candidate 2/6" in result.output
    assert "chose" not in _info(part) and not (part / "best.npz").exists()
    one_line_error(invoke("eval", part), "is still choosing among 6 candidates",
                   "--resume")
    monkeypatch.undo()
    out = ok(invoke("train", "--resume", part))
    assert "candidates: --inputs level --window 30 valid loss" in out and "kept --" in out
    for k in range(len(DEFAULT)):
        for name in ("last.npz", "best.npz"):
            assert same_params(_params(chosen / f"candidate-{k}", name),
                         _params(part / f"candidate-{k}", name)), (k, name)
    assert _info(part)["chose"] == _info(chosen)["chose"]
    assert same_params(_params(part), _params(chosen))


def test_a_run_stopped_before_its_choice_chooses_on_resume(chosen, tmp_path,
                                                           monkeypatch):
    # every candidate has ended (nothing left for any to train), yet the run has not
    # chosen (a second Ctrl-C, or a killed process, before the winner was copied): the
    # resume still chooses and copies it; from then on the run has nothing left
    part = tmp_path / "part"

    def stopped(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(candidates, "adopt", stopped)
    assert invoke("train", "forecast", "--out", part, *SMALL).exit_code != 0
    assert "chose" not in _info(part)
    monkeypatch.undo()
    out = ok(invoke("train", "--resume", part))
    assert "nothing to train" not in out and "done after 6 candidates of " in out, out
    assert _info(part)["chose"] == _info(chosen)["chose"]
    assert same_params(_params(part), _params(chosen))
    assert "nothing to train" in ok(invoke("train", "--resume", part))


def test_after_the_choice_the_run_resumes_as_the_winner(chosen, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(chosen, run)
    k = _info(run)["chose"]["chosen"]
    before = _params(run / f"candidate-{k}", "last.npz")
    out = ok(invoke("train", "--resume", run, "--epochs", "3", "--quiet"))
    assert "candidates" not in out
    assert _info(run)["config"]["epochs"] == 3 and "chose" in _info(run)
    assert not same_params(_params(run, "last.npz"), before)
    assert same_params(_params(run / f"candidate-{k}", "last.npz"), before)  # the record stays
    other = "level" if _info(run)["config"]["inputs"] == "relative" else "relative"
    one_line_error(invoke("train", "forecast", "--resume", run, "--inputs", other),
                   "--inputs cannot change when resuming")


def test_a_candidate_resumed_alone_keeps_the_runs_plan(chosen, tmp_path, monkeypatch):
    """While the run chooses, a candidate resumed on its own with another --steps,
    --epochs, --patience or --eval-every is refused in one line naming the run's resume,
    its files untouched (the candidates are scored against each other, so all train to
    one plan); other options may change."""
    part = tmp_path / "part"
    monkeypatch.setattr(Trainer, "_stop_requested", lambda self: (
        self.run.path.endswith("candidate-1") and self.position.step == 3))
    assert invoke("train", "forecast", "--out", part, *SMALL).exit_code == 130
    monkeypatch.undo()
    for k, option in ((1, ["--epochs", "3"]), (4, ["--patience", "2"])):
        candidate = part / f"candidate-{k}"
        before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns)
                  for p in candidate.iterdir()}
        one_line_error(invoke("train", "--resume", candidate, *option),
                       f"{' '.join(option)}: {candidate} is a candidate of the run {part}",
                       f"`recurrent train --resume {part} {' '.join(option)}`")
        assert {p.name: (p.read_bytes(), p.stat().st_mtime_ns)
                for p in candidate.iterdir()} == before
    ok(invoke("train", "--resume", part / "candidate-1", "--threads", "1", "--quiet"))
    ok(invoke("train", "--resume", part, "--quiet"))
    assert _info(part)["chose"] == _info(chosen)["chose"]


def test_a_missing_or_foreign_candidate_is_one_line(tmp_path, monkeypatch):
    part = tmp_path / "part"
    monkeypatch.setattr(Trainer, "_stop_requested", lambda self: self.position.step == 2)
    assert invoke("train", "forecast", "--out", part, *SMALL).exit_code == 130
    monkeypatch.undo()
    # a run cut off while copying the winner: its checkpoints are there, its options not
    for name in ("best.npz", "last.npz"):
        shutil.copyfile(part / "candidate-0" / "last.npz", part / name)
    for command in (["eval", part], ["predict", part], ["export", part, "--format",
                                                          "onnx", "--out", tmp_path / "m.onnx"]):
        one_line_error(invoke(*command), "is still choosing among 6 candidates")
    config = _info(part / "candidate-1")
    config["config"]["hidden"] = 4
    (part / "candidate-1" / "config.json").write_text(json.dumps(config))
    before = {p: (p / "config.json").read_bytes() for p in (part, part / "candidate-0")}
    one_line_error(invoke("train", "--resume", part, "--epochs", "3"),
                   "does not belong to the run", "option hidden differs")
    # a refused resume writes nothing
    assert all((p / "config.json").read_bytes() == b for p, b in before.items())
    for name in os.listdir(part / "candidate-1"):
        os.remove(part / "candidate-1" / name)
    os.rmdir(part / "candidate-1")
    one_line_error(invoke("train", "--resume", part), "chooses among 6 candidates",
                   "candidate-1 is missing")


def test_candidates_are_described_as_their_options():
    assert candidates.describe({"inputs": "level"}) == "--inputs level"
    assert candidates.describe({"wide_scale": True, "hidden": 8}) == "--wide-scale --hidden 8"
    assert candidates.describe({"wide_scale": False}) == "--no-wide-scale"


def test_choose_takes_the_lowest_score_the_earliest_on_a_tie_and_never_nan():
    assert candidates.choose([0.3, 0.2, 0.2]) == 1
    assert candidates.choose([math.nan, 0.5, 0.4]) == 2
    assert candidates.choose([0.5, math.nan]) == 0
    assert candidates.choose([math.nan, math.nan]) == 0


class _Named:
    name = "toy"

    def __init__(self, named):
        self.named = named

    def candidates(self, config):
        return self.named


@pytest.mark.parametrize("named", [[{"inputs": "level"}], [{}, {}], ["level", "relative"],
                                   ({"a": 1}, {"a": 2})])
def test_a_task_naming_bad_candidates_is_one_line(named):
    with pytest.raises(UserError, match="named bad candidates"):
        candidates.overrides(_Named(named), {})
    assert candidates.overrides(_Named([]), {}) == []
    assert candidates.overrides(object(), {}) == []


def test_ensembles_and_explicit_modes_make_no_candidates(tmp_path):
    task = get_task("forecast")
    assert task.candidates({"inputs": "level", "window": 30}) == []
    options = {p.name: p.default for p in task.options()
               if isinstance(p.default, (int, float, str, type(None)))}
    config = TrainingConfig.resolve(task, {**options, "steps": 2, "threads": 1})
    assert len(candidates.overrides(task, config)) == len(DEFAULT)
    out = tmp_path / "run"
    with pytest.raises(UserError, match="--ensemble 2: "):
        start_run(task, TrainingConfig({**config, "ensemble": 2}), str(out))
    assert not out.exists()


class _PoolingChoice:
    """toy-sign choosing its pooling among candidates: a task without after_training,
    through the library."""

    def __new__(cls):
        from train_toys import ToySign

        class PoolingChoice(ToySign):
            def candidates(self, config):
                if config.get("pooling") != "auto":
                    return []
                return [{"pooling": "last"}, {"pooling": "mean"}, {"pooling": "max"}]

        return PoolingChoice()


def test_any_task_can_name_candidates(tmp_path):
    from train_toys import registered
    with registered():  # its reference cells
        _pooling_choice(tmp_path)


def _pooling_choice(tmp_path):
    task = _PoolingChoice()
    config = TrainingConfig.resolve(task, {"samples": 96, "pooling": "auto", "threads": 1,
                                           "quiet": True, "interrupt_at": None,
                                           "select_by": "accuracy:max"})
    config["loss"] = task.loss
    with pytest.raises(UserError, match="--ensemble 2: this toy-sign run chooses among "
                                        "candidates .--pooling last; --pooling mean"):
        start_run(task, TrainingConfig({**config, "ensemble": 2}), str(tmp_path / "e"))
    assert not (tmp_path / "e").exists()
    summary = start_run(task, config, str(tmp_path / "run"), echo=lambda line: None).fit()
    record = _info(tmp_path / "run")["chose"]
    # the record holds each candidate's validation accuracy as measured; the highest wins
    assert record["select_by"] == "accuracy:max"
    assert all(0.5 <= score <= 1 for score in record["scores"])
    assert record["chosen"] == int(np.argmax(record["scores"]))
    assert summary["steps_text"] == "3 candidates of 15 steps each"
    assert summary["best"].endswith(f"with --pooling {('last', 'mean', 'max')[record['chosen']]}")
    for k, pooling in enumerate(("last", "mean", "max")):
        plain = start_run(task, TrainingConfig({**config, "pooling": pooling}),
                          str(tmp_path / pooling), echo=lambda line: None)
        plain.fit()
        assert same_params(_params(tmp_path / pooling), _params(tmp_path / "run" / f"candidate-{k}"))


class _LearningRateChoice:
    """toy-wave choosing its learning rate among candidates, some of which diverge."""

    def __new__(cls, rates):
        from train_toys import ToyWave

        class LearningRateChoice(ToyWave):
            def candidates(self, config):
                return [{"lr": lr} for lr in rates]

        return LearningRateChoice()


def _rate_config(task):
    config = TrainingConfig.resolve(task, {"threads": 1, "quiet": True, "interrupt_at": None,
                                           "optimizer": "sgd", "clip_norm": 0})
    config["loss"] = task.loss
    return config


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # lr 1e10 and 1e30 diverge
def test_a_candidate_that_diverges_is_left_out(tmp_path):
    from train_toys import registered
    with registered():
        task = _LearningRateChoice([1e30, 0.01, 1e10])
        lines = []
        summary = start_run(task, TrainingConfig({**_rate_config(task), "quiet": False}),
                            str(tmp_path / "run"), echo=lines.append).fit()
        record = _info(tmp_path / "run")["chose"]
        assert record["chosen"] == 1
        assert record["scores"][0] is None and record["scores"][2] is None
        assert math.isfinite(record["scores"][1])
        assert summary["steps_text"] == "3 candidates (2 diverged) of 14 steps each"
        left_out = [line for line in lines if "left out" in line]
        assert len(left_out) == 2 and "candidate 1/3 (--lr 1e+30) left out: training " \
            "stopped at step" in left_out[0]
        assert "--lr 0.01 (valid loss" in candidates.chosen_text(_info(tmp_path / "run"))
        assert "--lr 1e+30 (diverged)" in candidates.chosen_text(_info(tmp_path / "run"))
        # a plain run of the diverging options stops with that one-line error
        from train_toys import ToyWave
        plain = ToyWave()
        with pytest.raises(UserError, match=r"^training stopped at step \d+: .* \(try a "
                                            r"lower --lr or --clip-norm\)"):
            start_run(plain, TrainingConfig({**_rate_config(plain), "lr": 1e30}),
                      str(tmp_path / "plain"), echo=lambda line: None).fit()


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_when_every_candidate_diverges_the_run_stops_in_one_line(tmp_path):
    from train_toys import registered
    with registered():
        task = _LearningRateChoice([1e30, 1e10])
        with pytest.raises(UserError, match=r"every candidate's training diverged; "
                                            r"candidate 1 \(--lr 1e\+30\): training stopped"):
            start_run(task, _rate_config(task), str(tmp_path / "run"),
                      echo=lambda line: None).fit()
        assert "chose" not in _info(tmp_path / "run")
        # eval and predict point at the way out, not at a resume that would diverge again
        way_out = (r"every candidate of .* diverged in training, so it holds no model: "
                   r"start a new run with a lower --lr or --clip-norm")
        with pytest.raises(UserError, match=way_out):
            load_model(RunDir.open(str(tmp_path / "run")))
        # a resume, which could only diverge again, says the same and writes nothing
        files = [tmp_path / "run" / "config.json",
                 *(tmp_path / "run" / f"candidate-{k}" / "config.json" for k in range(2))]
        before = [f.read_bytes() for f in files]
        with pytest.raises(UserError, match=way_out):
            resume_run(task, RunDir.open(str(tmp_path / "run")), changes={"epochs": 5})
        assert [f.read_bytes() for f in files] == before


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_a_diverged_candidate_never_wins_even_when_the_others_score_nan(tmp_path,
                                                                         monkeypatch):
    from train_toys import registered
    from recurrent.candidates import CandidatesTrainer
    monkeypatch.setattr(CandidatesTrainer, "_score", lambda self, k: math.nan)
    with registered():
        task = _LearningRateChoice([1e30, 0.01])
        start_run(task, _rate_config(task), str(tmp_path / "run"),
                  echo=lambda line: None).fit()
    record = _info(tmp_path / "run")["chose"]
    assert record["chosen"] == 1 and record["scores"][0] is None
    assert (tmp_path / "run" / "best.npz").exists()


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_a_resume_leaves_a_diverged_candidate_out_without_training_it(tmp_path,
                                                                      monkeypatch):
    from train_toys import registered
    with registered():
        task = _LearningRateChoice([1e30, 0.01, 0.02])
        config = _rate_config(task)
        start_run(task, config, str(tmp_path / "full"), echo=lambda line: None).fit()
        # Ctrl-C in the third candidate; the first has diverged by then
        monkeypatch.setattr(Trainer, "_stop_requested", lambda self: (
            self.run.path.endswith("candidate-2") and self.position.step == 3))
        part = str(tmp_path / "part")
        summary = start_run(task, config, part, echo=lambda line: None).fit()
        assert summary["status"] == "interrupted" and summary["part"] == "candidate 3/3"
        assert json.loads((tmp_path / "part" / "candidate-0" / "diverged.json").read_text()
                          )["status"] == "diverged"
        monkeypatch.undo()
        trained = []
        fit = Trainer.fit
        monkeypatch.setattr(Trainer, "fit", lambda self, resume=False: (
            trained.append(os.path.basename(self.run.path)), fit(self, resume=resume))[1])
        from recurrent.runs import resume_run
        lines = []
        resume_run(task, RunDir.open(part), echo=lines.append).fit(resume=True)
    assert trained == ["candidate-1", "candidate-2"]  # the diverged one is not retrained
    assert _info(tmp_path / "part")["chose"] == _info(tmp_path / "full")["chose"]
    assert same_params(_params(tmp_path / "part"), _params(tmp_path / "full"))


def test_candidates_that_cannot_be_prepared_are_left_out_saying_why(tmp_path):
    """A series too short for the 30-row window: the four 30- and 16-row candidates
    (40 rows) are left out, each with a line saying why, and the run chooses among the
    two that fit; with one left (--inputs level, 20 rows), RUN is its plain run."""
    rows = [[1900 + i, f"{np.sin(i / 3):.4f}"] for i in range(40)]
    path = write_csv(tmp_path / "short.csv", ["year", "value"], rows)
    result = invoke("train", "forecast", "--data", path, "--out", tmp_path / "r", *SMALL)
    ok(result)
    notes = [line for line in result.stderr.splitlines() if "left out" in line]
    assert notes == [
        f"candidate {k}/6 (--inputs {mode} --window 30) left out: too few rows in "
        f"'{path}': 40 rows, but --window 30 and --horizon 1 need at least 45 (training, "
        f"validation and test windows)" for k, mode in ((1, "level"), (2, "relative"))]
    record = _info(tmp_path / "r")["chose"]
    assert [c["window"] for c in record["candidates"]] == [16, 16, 8, 8]
    assert record["given"] == {"inputs": "auto", "window": "auto"}
    short = write_csv(tmp_path / "shorter.csv", ["year", "value"], rows[:20])
    result = invoke("train", "forecast", "--data", short, "--inputs", "level", "--out",
                    tmp_path / "one", *SMALL)
    ok(result)
    assert result.stderr.count("left out: too few rows") == 2, result.stderr
    info = _info(tmp_path / "one")
    assert "chose" not in info and info["config"]["window"] == 8
    assert "chosen on validation" not in ok(invoke("eval", tmp_path / "one"))
    # an option of the user's that no candidate can take is the user's error, unprefixed
    result = invoke("train", "forecast", "--data", path, "--column", "nosuch", "--out",
                    tmp_path / "x", *SMALL)
    one_line_error(result, "column 'nosuch' not found")
    assert "candidate 1/6" not in result.stderr and not (tmp_path / "x").exists()


def test_a_series_no_candidate_fits_names_what_each_window_needs(tmp_path):
    """Too short for every window of --window auto: the one line says what each window
    needs (the smallest's 13 rows among them), not only the first candidate's 45."""
    rows = [[1900 + i, f"{np.sin(i / 3):.4f}"] for i in range(12)]
    path = write_csv(tmp_path / "tiny.csv", ["year", "value"], rows)
    result = invoke("train", "forecast", "--data", path, "--out", tmp_path / "r", *SMALL)
    line = one_line_error(result, "none of the 6 candidates fits: too few rows in")
    needs = re.findall(r"--window (\d+) and --horizon 1 need at least (\d+)", result.stderr)
    assert needs == [("30", "45"), ("16", "25"), ("8", "13")], result.stderr
    assert line.count("too few rows") == 1  # what they share said once
    assert not (tmp_path / "r").exists()


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_a_ctrl_c_between_candidates_names_the_next_not_a_saved_step(tmp_path, monkeypatch,
                                                                     capsys):
    from train_toys import registered
    from recurrent.cli import _print_summary
    ctrl_c_around(monkeypatch, "candidate-0", "after")
    with registered():
        task = _LearningRateChoice([1e30, 0.01])  # the first diverges
        part = str(tmp_path / "part")
        summary = start_run(task, _rate_config(task), part, echo=lambda line: None).fit()
        assert summary["status"] == "interrupted" and summary["before"] == "candidate 2/2"
        assert "part" not in summary
        _print_summary(task, summary)
        assert capsys.readouterr().out == (
            f"interrupted before candidate 2/2: the candidates before it are saved; "
            f"continue with `recurrent train {task.name} --resume {part}`\n")
        assert not (tmp_path / "part" / "candidate-1" / "last.npz").exists()
        monkeypatch.undo()
        resume_run(task, RunDir.open(part), echo=lambda line: None).fit(resume=True)
    assert _info(tmp_path / "part")["chose"]["chosen"] == 1


def test_a_ctrl_c_while_a_candidate_finishes_stops_before_the_next(tmp_path, monkeypatch):
    from train_toys import registered
    ctrl_c_around(monkeypatch, "candidate-0", "finishing")
    with registered():
        task = _LearningRateChoice([0.01, 0.02])
        summary = start_run(task, _rate_config(task), str(tmp_path / "part"),
                            echo=lambda line: None).fit()
    assert summary["status"] == "interrupted" and summary["before"] == "candidate 2/2"
    assert (tmp_path / "part" / "candidate-0" / "last.npz").exists()
    assert not (tmp_path / "part" / "candidate-1" / "last.npz").exists()


def test_a_ctrl_c_while_a_candidate_is_set_up_stops_that_candidate(tmp_path, monkeypatch):
    from train_toys import registered
    with registered():
        task = _LearningRateChoice([0.01, 0.02])
        full = start_run(task, _rate_config(task), str(tmp_path / "full"),
                         echo=lambda line: None).fit()
        ctrl_c_around(monkeypatch, "candidate-1", "before")  # the last one: not lost
        part = str(tmp_path / "part")
        summary = start_run(task, _rate_config(task), part, echo=lambda line: None).fit()
        assert summary["status"] == "interrupted" and summary["part"] == "candidate 2/2"
        assert summary["step"] < 14  # stopped at its first window, not trained through
        monkeypatch.undo()
        resumed = resume_run(task, RunDir.open(part), echo=lambda line: None)
        assert resumed.fit(resume=True)["status"] == "done"
    assert full["status"] == "done"
    assert _info(tmp_path / "part")["chose"] == _info(tmp_path / "full")["chose"]
    assert same_params(_params(tmp_path / "part"), _params(tmp_path / "full"))


def test_the_commands_an_unfinished_choice_advises_work_from_a_path_with_blanks(tmp_path,
                                                                                monkeypatch):
    """The commands and the candidate a run still choosing names, copied as they stand,
    are the run's and its candidate's paths as a shell reads them, and they finish it."""
    import shlex
    part = tmp_path / "my part"
    monkeypatch.setattr(Trainer, "_stop_requested", lambda self: self.position.step == 2)
    assert invoke("train", "forecast", "--out", part, *SMALL).exit_code == 130
    monkeypatch.undo()
    line = one_line_error(invoke("eval", part), "is still choosing among 6 candidates")
    assert advised(line) == ["train", "--resume", str(part)]
    named = line.rsplit("use one of its candidates (", 1)[1].rsplit(" ...)", 1)[0]
    assert shlex.split(named) == [str(part / "candidate-0")]
    line = one_line_error(invoke("train", "--resume", part / "candidate-1", "--epochs", 3),
                          f"{part / 'candidate-1'} is a candidate of the run {part}")
    assert advised(line) == ["train", "--resume", str(part), "--epochs", "3"]
    ok(invoke(*advised(line)))
    ok(invoke("eval", part))
