"""Runs made of several trainings (an ensemble's members): what a member's divergence
and a resume that trains nothing say about the run."""
from __future__ import annotations

import numpy as np
import pytest
from helpers import bundled_reviews, invoke, ok, write_reviews

from recurrent.config import TrainingConfig
from recurrent.ensemble import member_seed
from recurrent.errors import Diverged
from recurrent.runs import start_run


def _spike_in_later_members():
    """toy-wave whose training targets hold an infinity in batch 2 for every member but
    the first (a member's seed is not the run's): member 2 diverges, member 1 does not."""
    from train_toys import ToyWave

    class SpikeInLaterMembers(ToyWave):
        def batches(self, state, split, config, rng):
            for i, batch in enumerate(super().batches(state, split, config, rng)):
                if split == "train" and i == 2 and config["seed"] != state["seed"]:
                    batch["y"][0, 0, 0] = np.inf
                yield batch

    return SpikeInLaterMembers()


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_a_diverging_member_is_named_and_the_members_before_it_stay(tmp_path):
    # The error names the member: a plain run's line alone ("...; no checkpoint had been
    # written yet") would read as if the ensemble had saved nothing.
    from train_toys import registered
    with registered():
        task = _spike_in_later_members()
        config = TrainingConfig.resolve(task, {"threads": 1, "quiet": True,
                                               "interrupt_at": None, "ensemble": 2})
        config["loss"] = task.loss
        run = tmp_path / "run"
        trainer = start_run(task, config, str(run), echo=lambda line: None)
        with pytest.raises(Diverged) as caught:
            trainer.fit()
    message = str(caught.value)
    assert message.startswith(f"member 2/2 (seed {member_seed(0, 1)}): training stopped at "
                              f"step 3: "), message
    assert "no checkpoint had been written yet" in message
    assert (run / "member-0" / "best.npz").exists()
    assert not (run / "member-1" / "last.npz").exists()
    assert not (run / "metrics.jsonl").exists()  # no combined record of a half ensemble


def test_a_resume_that_no_member_can_train_on_says_why(tmp_path):
    # Every member had stopped early (--patience): a resume with more --steps trains
    # nothing, and says so and how to train on, as a plain run does.
    data = write_reviews(tmp_path / "slice.csv", bundled_reviews(150))
    run = tmp_path / "run"
    args = ["--hidden", "8", "--embed-dim", "8", "--threads", "1", "--quiet", "--no-plot",
            "--patience", "1", "--eval-every", "2"]
    first = ok(invoke("train", "sentiment", "--data", data, "--out", run, "--ensemble", "2",
                      "--steps", "200", *args))
    assert "(2 stopped early)" in first, first
    out = ok(invoke("train", "--resume", run, "--steps", "300"))
    assert ("the run had stopped early (--patience): resume it with a larger --patience, "
            "or --patience 0, to train on") in out, out
