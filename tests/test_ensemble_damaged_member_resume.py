"""Resuming an ensemble whose member directory lost its config.json, or is a file: one
line naming the member, with no file of the run changed (a member directory that is
simply gone is made anew and trained, as documented)."""
from __future__ import annotations

import shutil

import pytest
from helpers import bundled_reviews, invoke, ok, one_line_error, write_reviews

SMALL = ["--hidden", "8", "--embed-dim", "8", "--batch-size", "64", "--threads", "1",
         "--quiet", "--no-plot"]


@pytest.fixture(scope="module")
def ensemble_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("damaged")
    csv = write_reviews(root / "slice.csv", bundled_reviews(60))
    run = root / "ens"
    ok(invoke("train", "sentiment", "--data", csv, "--out", run, "--ensemble", "3",
              "--steps", "4", *SMALL))
    return run


def _config_files(run):
    return {p.relative_to(run): p.read_bytes() for p in sorted(run.rglob("config.json"))}


def _lose_config(member):
    (member / "config.json").unlink()


def _make_a_file(member):
    shutil.rmtree(member)
    member.write_text("not a run\n", encoding="utf-8")


@pytest.mark.parametrize("damage,fragment", [
    (_lose_config, "member-1 holds a run's files without its config.json"),
    (_make_a_file, "member-1 is not a directory"),
])
def test_a_refused_resume_names_the_member_and_changes_no_file(ensemble_run, tmp_path,
                                                               damage, fragment):
    run = tmp_path / "copy"
    shutil.copytree(ensemble_run, run)
    damage(run / "member-1")
    before = _config_files(run)
    result = invoke("train", "--resume", run, "--steps", "6")
    one_line_error(result, f"{run} is an ensemble of 3 members and {fragment}",
                   "remove it to train that member anew")
    assert "--out" not in result.stderr
    assert _config_files(run) == before


def test_a_member_removed_as_advised_trains_anew(ensemble_run, tmp_path):
    run = tmp_path / "copy"
    shutil.copytree(ensemble_run, run)
    _lose_config(run / "member-1")
    shutil.rmtree(run / "member-1")
    ok(invoke("train", "--resume", run))
    assert (run / "member-1" / "best.npz").read_bytes() == \
        (ensemble_run / "member-1" / "best.npz").read_bytes()
