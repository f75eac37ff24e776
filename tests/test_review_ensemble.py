"""Review checks of ensembles (recurrent/ensemble.py): an ensemble size of 0, given
through the library or found in a damaged config.json, is refused with one line instead
of being read as a plain run."""
from __future__ import annotations

import json
import os

import pytest
from helpers import bundled_reviews, write_reviews

from recurrent import ensemble
from recurrent.checkpoint import RunDir
from recurrent.config import TrainingConfig
from recurrent.errors import UserError
from recurrent.runs import load_model, resume_run, start_run
from recurrent_plugins.sentiment import TASK


@pytest.fixture(scope="module")
def csv(tmp_path_factory):
    return write_reviews(tmp_path_factory.mktemp("review") / "slice.csv",
                         bundled_reviews(60))


def _config(csv, **changes):
    base = {p.name: p.default for p in TASK.options()}
    return TrainingConfig.resolve(TASK, dict(base, data=csv, threads=1, quiet=True,
                                             plot=False, steps=1, hidden=4, embed_dim=4,
                                             **changes))


@pytest.mark.parametrize("value", [0, False])
def test_an_ensemble_size_of_zero_or_false_is_refused(value):
    with pytest.raises(UserError, match="option ensemble is .*expected a whole number"):
        ensemble.size({"ensemble": value})
    assert ensemble.size({}) == 1 and ensemble.size({"ensemble": None}) == 1


def test_an_ensemble_of_zero_members_is_not_started_as_a_plain_run(csv, tmp_path):
    out = tmp_path / "zero"
    with pytest.raises(UserError, match="option ensemble is 0"):
        start_run(TASK, _config(csv, ensemble=0), str(out), echo=lambda line: None)
    assert not out.exists()


def test_a_damaged_ensemble_size_is_one_line_not_a_plain_run_in_its_directory(csv,
                                                                             tmp_path):
    out = str(tmp_path / "ens")
    start_run(TASK, _config(csv, ensemble=2), out, echo=lambda line: None)  # not trained
    path = os.path.join(out, "config.json")
    with open(path, encoding="utf-8") as f:
        info = json.load(f)
    info["config"]["ensemble"] = 0
    with open(path, "w", encoding="utf-8") as f:
        json.dump(info, f)
    before = sorted(os.listdir(out))
    run = RunDir.open(out)
    with pytest.raises(UserError, match="option ensemble is 0"):
        resume_run(TASK, run, echo=lambda line: None)
    with pytest.raises(UserError, match="option ensemble is 0"):
        load_model(run)
    assert sorted(os.listdir(out)) == before
