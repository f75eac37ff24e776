"""Two processes creating the same run directory at once (`recurrent train ... --out RUN`
started twice, a scheduler's retry): both pass RunDir.check_new before either has written
config.json. The one that loses must change nothing in the winner's run; before,
its config.json replaced the winner's (atomically, but still replaced), so the run held
one process's options and the other's checkpoints, and eval failed with "checkpoint
best.npz does not fit this model"."""
import json

import pytest

from recurrent.checkpoint import CONFIG_FILE, RunDir, atomic_write
from recurrent.errors import UserError


def _race(monkeypatch, winner_text):
    """RunDir.check_new passes, then "another process" writes its config.json before this
    one writes its own."""
    original = RunDir.check_new
    state = {"raced": False}

    def check_then_lose(path):
        original(path)
        if not state["raced"]:
            state["raced"] = True
            with open(f"{path}/{CONFIG_FILE}", "w") as f:
                f.write(winner_text)

    monkeypatch.setattr(RunDir, "check_new", staticmethod(check_then_lose))


def test_the_process_that_loses_the_race_keeps_the_winners_config(tmp_path, monkeypatch):
    out = tmp_path / "run"
    out.mkdir()
    winner = json.dumps({"format": 1, "task": "char-lm", "config": {"hidden": 16}})
    _race(monkeypatch, winner)
    with pytest.raises(UserError, match="already holds a run"):
        RunDir.create(str(out), "char-lm", {"hidden": 24}, {}, {}, "0")
    assert (out / CONFIG_FILE).read_text() == winner
    assert sorted(p.name for p in out.iterdir()) == [CONFIG_FILE]  # no temp file left


def test_a_create_that_wins_writes_config_json(tmp_path):
    run = RunDir.create(str(tmp_path / "run"), "char-lm", {"hidden": 24}, {}, {}, "0")
    assert run.info()["config"] == {"hidden": 24}
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == [CONFIG_FILE]


def test_create_only_writes_where_hard_links_are_missing(tmp_path, monkeypatch):
    import os

    def no_links(src, dst):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    path = tmp_path / "x.json"
    atomic_write(str(path), lambda f: f.write(b"1"), replace=False)
    assert path.read_bytes() == b"1"
    with pytest.raises(FileExistsError):
        atomic_write(str(path), lambda f: f.write(b"2"), replace=False)
    assert path.read_bytes() == b"1"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.json"]
