"""Setup work a command does not need is not done, and skipping it changes no result:
seq2seq keeps each split's encoded pairs per process (every epoch, evaluation and check
asked for them again) and counts an epoch's batches without making them
(Task.count_batches); a forecast run whose model never reads exponential smoothing does
not fit or restart it (nor import statsmodels) to predict."""
from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import invoke, ok, one_line_error, reversal_tsv

from recurrent.errors import UserError
from recurrent.plugins import get_task
from recurrent.trainer import Trainer
from recurrent_plugins.forecast.task import ForecastTask
from recurrent_plugins.seq2seq.task import Seq2Seq

SMALL = ("--hidden", 8, "--threads", 1, "--quiet", "--no-plot")


@pytest.mark.parametrize("batch_size", [1, 7, 32, 5000])
@pytest.mark.parametrize("max_train", [0, 50])
def test_seq2seq_counts_the_batches_it_makes(tmp_path, batch_size, max_train):
    tsv, _ = reversal_tsv(tmp_path / "pairs.tsv", "abcdef", 1500)
    task = Seq2Seq()
    state = task.prepare({"data": str(tsv), "max_train": max_train})
    for split in ("train", "valid", "test"):
        config = {"batch_size": batch_size, "max_eval": 40}
        made = list(task.batches(state, split, config, np.random.default_rng([3, 0])))
        assert task.count_batches(state, split, config, np.random.default_rng(9)) == \
            len(made) > 0


def test_seq2seq_splits_kept_per_process_equal_a_fresh_read(tmp_path):
    from recurrent_plugins.seq2seq import task as module
    tsv, _ = reversal_tsv(tmp_path / "pairs.tsv", "abcdef", 1500)
    task = Seq2Seq()
    state = task.prepare({"data": str(tsv)})
    first = {split: task.pairs(state, split, {}) for split in ("train", "valid", "test")}
    assert task.pairs(state, "train", {}) is first["train"]  # kept, not read again
    module._splits.clear()
    for split, pairs in first.items():
        assert task.pairs(state, split, {}) == pairs
    assert len(task.pairs(state, "valid", {"max_eval": 5})) == 5  # a limit is its own key


def test_seq2seq_a_changed_file_is_refused_though_its_splits_were_kept(tmp_path):
    tsv, words = reversal_tsv(tmp_path / "pairs.tsv", "abcdef", 1500)
    task = Seq2Seq()
    state = task.prepare({"data": str(tsv)})
    task.pairs(state, "valid", {})
    tsv.write_text("".join(f"{w}\t{w}\n" for w in words), encoding="utf-8")
    with pytest.raises(UserError, match="changed since this run was trained"):
        task.pairs(state, "valid", {})


def test_seq2seq_runs_equal_those_whose_steps_were_counted_by_making_batches(
        tmp_path, monkeypatch):
    """The cosine schedule's horizon is the epoch's steps: a run counted by
    count_batches equals, bit for bit, one counted by making every batch."""
    tsv, _ = reversal_tsv(tmp_path / "pairs.tsv", "abcd", 800)
    args = ("train", "seq2seq", "--data", tsv, "--epochs", 2, "--batch-size", 16,
            "--embed-dim", 4, "--schedule", "cosine", *SMALL)
    counted = []
    count = Seq2Seq.count_batches
    monkeypatch.setattr(Seq2Seq, "count_batches",
                        lambda *a: counted.append(count(*a)) or counted[-1])
    ok(invoke(*args, "--out", tmp_path / "counted"))
    monkeypatch.delattr(Seq2Seq, "count_batches")
    made = Trainer._count_steps_per_epoch
    made_counts = []
    monkeypatch.setattr(Trainer, "_count_steps_per_epoch",
                        lambda self: made_counts.append(made(self)) or made_counts[-1])
    ok(invoke(*args, "--out", tmp_path / "made"))
    assert counted == made_counts and counted[0] > 1
    a, b = (np.load(tmp_path / name / "last.npz") for name in ("counted", "made"))
    assert sorted(a.files) == sorted(b.files)
    assert all(np.array_equal(a[k], b[k]) for k in a.files)
    lr = [[r.get("lr") for r in map(json.loads, (tmp_path / name / "metrics.jsonl")
                                    .read_text().splitlines()) if r.get("kind") == "train"]
          for name in ("counted", "made")]
    assert lr[0] == lr[1] and lr[0]


@pytest.fixture(scope="module")
def forecast_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("lazy_ets")
    for model in ("rnn", "esrnn", "hybrid"):
        ok(invoke("train", "forecast", "--model", model, "--window", 8, "--steps", 2,
                  *SMALL, "--out", root / model))
    return root


def _ets_refused(monkeypatch):
    """From now on the ETS fits cannot be made; the series read so far are forgotten
    (the task keeps the last one it read, with whatever fits it made)."""
    def refused(*args, **kwargs):
        raise UserError("the ETS fits were asked for")
    monkeypatch.setattr(ForecastTask, "_ets_fits", staticmethod(refused))
    get_task("forecast")._cache.clear()


@pytest.mark.parametrize("model", ["rnn", "esrnn"])
@pytest.mark.parametrize("data", [(), ("--data", "sunspots")])
def test_a_forecast_without_ets_does_not_fit_it_to_predict(forecast_runs, model, data,
                                                           monkeypatch):
    """Nor restart the fits at a new file's first rows (--data, --stream)."""
    want = ok(invoke("predict", forecast_runs / model, "--steps", 20, "--json", *data))
    _ets_refused(monkeypatch)
    assert ok(invoke("predict", forecast_runs / model, "--steps", 20, "--json", *data)) \
        == want


def test_a_hybrid_forecast_still_reads_its_ets_fits(forecast_runs, monkeypatch):
    _ets_refused(monkeypatch)
    one_line_error(invoke("predict", forecast_runs / "hybrid", "--steps", 3),
                   "the ETS fits were asked for")
    # and every run's eval reports the ETS baseline, so it asks for them too
    one_line_error(invoke("eval", forecast_runs / "rnn"), "the ETS fits were asked for")
