"""`train --out DIR` takes an existing directory that holds no run, and refuses one with a
run's last.npz, best.npz or metrics.jsonl -- but not one with a loss.png: the run's loss
plot then silently replaces the user's own figure. Refused before anything is written."""
import os

import pytest
from helpers import ok, one_line_error, tiny_text, train_tiny


@pytest.fixture
def text(tmp_path):
    return tiny_text(tmp_path)


def _train(text, out, *extra):
    return train_tiny(text, out, *(extra or ("--plot",)))


def test_a_directory_with_someones_loss_png_is_refused(text, tmp_path):
    pytest.importorskip("matplotlib", reason="the plot extra (matplotlib) is not installed")
    out = tmp_path / "figures"
    out.mkdir()
    (out / "loss.png").write_bytes(b"my own figure")
    one_line_error(_train(text, out), "loss.png", "choose another --out")
    assert (out / "loss.png").read_bytes() == b"my own figure"
    assert sorted(os.listdir(out)) == ["loss.png"]  # no config.json: nothing started


def test_an_existing_directory_with_other_files_is_still_taken(text, tmp_path):
    out = tmp_path / "notes"
    out.mkdir()
    (out / "README.txt").write_text("mine", encoding="utf-8")
    ok(_train(text, out, "--no-plot"))
    assert (out / "README.txt").read_text(encoding="utf-8") == "mine"
