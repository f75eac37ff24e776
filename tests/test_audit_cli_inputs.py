"""Setup a command keeps or skips, and the CLI inputs around it: each kept
seq2seq split holds its own pairs, a rewritten data file is read again, a max_eval of
true is refused, seq2seq baselines are kept per --max-eval, the target level seq2seq
resolves is its own; the trainer counts --tbptt windows rather than batches and gives
count_batches the first epoch's generator; a forecast's ETS fits are made once per
series and a backtest reports no window counts as metrics; --debug lets a MemoryError
through; eval names a missing best checkpoint of an ensemble member; the last
checkpoint is last.npz; an empty --out beside --resume is refused; a resume compares an
option the run set with its saved value, not with what the task chose."""
from __future__ import annotations

import dataclasses
import json
import os
import shutil

import pytest
from helpers import invoke, ok, one_line_error, reversal_tsv, tiny_text, train_tiny

from recurrent.checkpoint import BEST, LAST, RunDir
from recurrent.config import TrainingConfig
from recurrent.ensemble import member_path
from recurrent.errors import UserError
from recurrent.runs import checkpoint_file
from recurrent_plugins.forecast.task import Prepared
from recurrent_plugins.seq2seq import data as s2s_data
from recurrent_plugins.seq2seq import task as s2s_task
from recurrent_plugins.seq2seq.task import Seq2Seq


def test_seq2seq_each_split_keeps_its_own_pairs(tmp_path):
    tsv, _ = reversal_tsv(tmp_path / "pairs.tsv", "abcdef", 1500)
    task = Seq2Seq()
    state = task.prepare({"data": str(tsv)})
    got = {split: task.pairs(state, split, {}) for split in ("train", "valid", "test")}
    for split, pairs in got.items():
        assert pairs and all(s2s_data.split_of("".join(s)) == split for s, _ in pairs), split


def test_seq2seq_a_rewritten_file_is_read_again_for_its_new_run(tmp_path):
    """Same path, new content, a state prepared again: its pairs are the new file's."""
    tsv, words = reversal_tsv(tmp_path / "pairs.tsv", "abcdef", 1500)
    task = Seq2Seq()
    old = task.pairs(task.prepare({"data": str(tsv)}), "valid", {})
    tsv.write_text("".join(f"{w}\t{w}\n" for w in words), encoding="utf-8")  # copies
    new = task.pairs(task.prepare({"data": str(tsv)}), "valid", {})
    assert [s for s, _ in new] == [s for s, _ in old]
    assert all(s == t for s, t in new) and any(s != t for s, t in old)


@pytest.mark.parametrize("value", [True, False, 1.5, "3"])
def test_seq2seq_max_eval_of_another_type_is_refused(value):
    if value is False:  # false or 0 is "every pair", as an unset option
        assert s2s_task._max_eval({"max_eval": value}) == 0
        return
    with pytest.raises(UserError, match="max_eval"):
        s2s_task._max_eval({"max_eval": value})


def test_seq2seq_baselines_are_kept_per_max_eval(tmp_path):
    tsv, _ = reversal_tsv(tmp_path / "pairs.tsv", "abcdef", 1500)
    task = Seq2Seq()
    state = task.prepare({"data": str(tsv)})
    every = task.baselines(state, "valid", {})
    few = task.baselines(state, "valid", {"max_eval": 3})
    fresh = task._score_baselines(state, task.pairs(state, "valid", {"max_eval": 3}),
                                  {"max_eval": 3})
    assert json.loads(json.dumps(fresh)) == few != every


def test_forecast_ets_fits_are_made_once_per_prepared_series():
    calls = []
    required = {f.name: None for f in dataclasses.fields(Prepared)
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING}
    prepared = Prepared(**required, ets_fits=lambda: calls.append(1) or ["fit"])
    assert calls == []  # not made until asked
    assert prepared.ets == ["fit"] and prepared.ets is prepared.ets
    assert calls == [1]


def test_a_backtest_reports_no_scored_window_count_as_a_metric(task_runs):
    result = json.loads(ok(invoke("eval", task_runs["forecast"], "--backtest", 2,
                                  "--json")))["backtest"]
    for name, values in result["forecasters"].items():
        assert "scored_windows" not in values and "windows" not in values, name


def test_debug_lets_a_memory_error_through(tmp_path):
    out = tmp_path / "big"
    result = invoke("--debug", "train", "char-lm", "--data", tiny_text(tmp_path),
                    "--hidden", 1_000_000_000, "--steps", 1, "--threads", 1, "--quiet",
                    "--no-plot", "--out", out)
    assert isinstance(result.exception, MemoryError)  # re-raised, not one line


def test_eval_of_an_ensemble_says_when_a_member_has_lost_its_best_checkpoint(tmp_path):
    run = tmp_path / "ens"
    ok(train_tiny(tiny_text(tmp_path), run, "--ensemble", 2))
    assert "the split that chose this best checkpoint" in ok(
        invoke("eval", run, "--split", "valid"))
    os.remove(os.path.join(member_path(str(run), 1), "best.npz"))
    out = ok(invoke("eval", run, "--split", "valid"))
    best = os.path.join(member_path(str(run), 1), "best.npz")
    assert (f"(member-1 has no best checkpoint, {best} is missing, though an evaluation "
            f"saved it; restore it for the best parameters: its latest parameters, "
            f"last.npz)") in out


def test_the_last_checkpoint_is_last_npz_though_the_run_has_a_best_one(task_runs):
    run = RunDir.open(str(task_runs["char-lm"]))
    assert run.has(BEST)
    assert checkpoint_file(run, "last") == LAST and checkpoint_file(run, "best") == BEST


def test_checkpoint_last_of_a_run_whose_last_npz_is_gone_points_at_its_best(
        task_runs, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(task_runs["char-lm"], run)
    os.remove(run / LAST)
    one_line_error(invoke("eval", run, "--checkpoint", "last"),
                   f"has no {LAST} (its {BEST} is there: leave out --checkpoint last)")


def test_an_empty_out_beside_resume_is_refused(task_runs, tmp_path):
    run = tmp_path / "copy"
    shutil.copytree(task_runs["char-lm"], run)
    before = (run / "metrics.jsonl").read_bytes()
    one_line_error(invoke("train", "--resume", run, "--out", "", "--steps", 3),
                   "give either --out")
    assert (run / "metrics.jsonl").read_bytes() == before


def test_seq2seq_resolves_the_target_level_it_chose_not_the_source_level():
    """The bundled data's targets default to tokens, its sources to characters."""
    task = Seq2Seq()
    state = task.prepare({"max_train": 50})
    assert (state["source_level"], state["target_level"]) == ("char", "token")
    assert task.resolved_options(state) == {"target_level": "token"}


def test_a_resume_compares_an_option_the_run_set_with_its_saved_value():
    """What the task chose counts only for an option the run left at None."""
    config = TrainingConfig({"season": 12})
    assert config.resumed({"season": 12}, {"season": 7})["season"] == 12
    with pytest.raises(UserError, match=r"the run has 12\)"):
        config.resumed({"season": 7}, {"season": 7})


def test_steps_per_epoch_count_tbptt_windows_though_the_task_counts_its_batches(
        tmp_path, monkeypatch):
    """A sequence-output task with count_batches, trained with --tbptt shorter than its
    batches: an epoch's steps are its windows, more than its batches."""
    import train_toys

    from recurrent.trainer import Trainer
    monkeypatch.setattr(train_toys.ToyLM, "count_batches", lambda self, *args: sum(
        1 for _ in self.batches(*args)), raising=False)
    counted, count = [], Trainer._count_steps_per_epoch
    monkeypatch.setattr(Trainer, "_count_steps_per_epoch",
                        lambda self: counted.append(count(self)) or counted[-1])
    with train_toys.registered():
        ok(invoke("train", "toy-lm", "--tbptt", 5, "--seq-len", 10, "--epochs", 1,
                  "--schedule", "cosine", "--threads", 1, "--quiet", "--out", tmp_path / "run"))
        state = json.loads((tmp_path / "run" / "config.json").read_text())
    batches = train_toys.ToyLM().count_batches(state["task_state"], "train",
                                               state["config"], None)
    assert counted == [2 * batches] and batches > 1


def test_a_task_counts_its_batches_with_the_first_epochs_generator(tmp_path, monkeypatch):
    """The count is of the batches epoch 0 makes (a task's count may depend on its
    draws), so it is given the generator that epoch is given."""
    import train_toys
    asked = []

    def count_batches(self, state, split, config, rng):
        asked.append((split, train_toys._first_epoch(rng, config["seed"])))
        return sum(1 for _ in self.batches(state, split, config, rng))
    monkeypatch.setattr(train_toys.ToyLM, "count_batches", count_batches, raising=False)
    with train_toys.registered():
        ok(invoke("train", "toy-lm", "--epochs", 1, "--schedule", "cosine", "--threads", 1,
                  "--quiet", "--out", tmp_path / "run"))
    assert asked == [("train", True)]
