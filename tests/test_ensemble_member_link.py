"""An ensemble's member reached through a symbolic link (`ln -s runs/rt/member-1 m1`) is
still that ensemble's member: resumed alone with another plan, it is refused as the member
named by its own path is (docs/training.md, --ensemble)."""
from __future__ import annotations

import json
import os

from helpers import bundled_reviews, invoke, ok, one_line_error, write_reviews

SMALL = ["--hidden", "8", "--embed-dim", "8", "--batch-size", "64", "--threads", "1",
         "--quiet", "--no-plot"]


def test_a_member_linked_elsewhere_keeps_the_ensembles_plan(tmp_path):
    csv = write_reviews(tmp_path / "slice.csv", bundled_reviews(60))
    run = tmp_path / "ens"
    ok(invoke("train", "sentiment", "--data", csv, "--out", run, "--ensemble", "2",
              "--steps", "3", *SMALL))
    member = run / "member-1"
    link = tmp_path / "m1"
    link.symlink_to(member)
    files = {name: (member / name).read_bytes() for name in os.listdir(member)}
    one_line_error(invoke("train", "--resume", link, "--steps", "9"),
                   f"--steps 9: {link} is a member of the ensemble {run}",
                   f"`recurrent train --resume {run} --steps 9`")
    assert {name: (member / name).read_bytes() for name in os.listdir(member)} == files
    assert json.loads((member / "config.json").read_text())["config"]["steps"] == 3
