"""A run file that cannot be read (no permission, a directory in its place, a failing
disk) is reported as unreadable, with the system's reason, not as "corrupted or
truncated": those words would tell the user to throw away a checkpoint that is intact. A
directory stands in for the unreadable file here, as permission bits do not stop root."""
import os
import shutil

import pytest
from helpers import invoke, ok, one_line_error, tiny_text, train_tiny


@pytest.fixture
def run(tmp_path):
    path = tmp_path / "run"
    ok(train_tiny(tiny_text(tmp_path), path))
    return path


def _directory_in_place_of(path):
    """Move ``path`` aside and put a directory in its place; returns the moved file."""
    kept = str(path) + ".kept"
    os.replace(path, kept)
    os.mkdir(path)
    return kept


@pytest.mark.parametrize("args", [("predict", "--length", 5), ("eval",),
                                  ("export", "--format", "safetensors", "--out", "OUT")])
def test_an_unreadable_checkpoint_is_not_called_corrupted(run, tmp_path, args):
    best = run / "best.npz"
    kept = _directory_in_place_of(best)
    args = [tmp_path / "model.safetensors" if a == "OUT" else a for a in args]
    result = invoke(args[0], run, *args[1:])
    one_line_error(result, f"cannot read checkpoint {best}: ", "Is a directory")
    assert "corrupted" not in result.stderr
    os.rmdir(best)
    os.replace(kept, best)
    ok(invoke("predict", run, "--length", 5))  # the checkpoint itself was never at fault


def test_an_unreadable_config_is_not_called_corrupted(run):
    config = run / "config.json"
    kept = _directory_in_place_of(config)
    result = invoke("predict", run, "--length", 5)
    one_line_error(result, f"cannot read {config}: ", "Is a directory")
    assert "corrupted" not in result.stderr
    os.rmdir(config)
    shutil.move(kept, config)
    ok(invoke("predict", run, "--length", 5))
