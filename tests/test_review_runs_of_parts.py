"""Runs made of several trainings (an ensemble's members): what a member's divergence
and a resume that trains nothing say about the run."""
from __future__ import annotations

import pytest
from helpers import bundled_reviews, invoke, ok, write_reviews
from train_toys import SpikeInLaterMembers

from recurrent.config import TrainingConfig
from recurrent.ensemble import member_seed
from recurrent.runs import start_run


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_a_diverging_member_is_named_and_the_members_before_it_stay(tmp_path):
    # The line that leaves the member out names it: a plain run's line alone ("...; no
    # checkpoint had been written yet") would read as if the ensemble had saved nothing.
    from train_toys import registered
    lines = []
    with registered():
        task = SpikeInLaterMembers()
        config = TrainingConfig.resolve(task, {"threads": 1, "interrupt_at": None,
                                               "ensemble": 2})
        config["loss"] = task.loss
        run = tmp_path / "run"
        start_run(task, config, str(run), echo=lines.append).fit()
    left = [line for line in lines if "left out" in line]
    assert left and left[0].startswith(f"member 2/2 (seed {member_seed(0, 1)}) left out: "
                                       f"training stopped at step 3: "), lines
    assert "no checkpoint had been written yet" in left[0]
    assert (run / "member-0" / "best.npz").exists()
    assert not (run / "member-1" / "last.npz").exists()


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
    assert ("had already reached its --patience 1 (stopped early) after 2 members"
            in out), out
    assert "resume it with a larger --patience, or --patience 0;" in out
