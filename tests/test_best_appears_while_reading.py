"""A run read while it trains: its first evaluation writes best.npz after eval, predict or
export has chosen to read last.npz (the run had no best checkpoint yet). What they print
names the checkpoint they read, not the one the run holds when they print. The trainer's
write is made at that known point: just after the reader has loaded last.npz."""
from __future__ import annotations

import os
import shutil

import pytest

from helpers import invoke, ok, tiny_text, train_tiny

from recurrent import runs
from recurrent.checkpoint import load_arrays, save_arrays


@pytest.fixture()
def half_run(tmp_path):
    """(run without best.npz, the best.npz its first evaluation writes)."""
    trained = tmp_path / "trained"
    ok(train_tiny(tiny_text(tmp_path), trained))
    best = tmp_path / "best.npz"
    shutil.move(trained / "best.npz", best)  # as a run that has not evaluated yet,
    last = str(trained / "last.npz")         # whose last.npz records no best evaluation
    arrays, meta = load_arrays(last)
    save_arrays(last, arrays, {**meta, "best_loss": None, "best_score": None})
    return trained, best


@pytest.fixture()
def best_written_after_load(monkeypatch, half_run):
    """best.npz appears in the run right after the reader has read last.npz."""
    run, best = half_run
    real = runs.load_arrays

    def load_then_trainer_writes(path):
        arrays = real(path)
        if os.path.basename(path) == "last.npz" and not (run / "best.npz").exists():
            shutil.copy(best, run / "best.npz")
        return arrays

    monkeypatch.setattr(runs, "load_arrays", load_then_trainer_writes)
    return run


def test_eval_header_names_the_checkpoint_it_read(best_written_after_load):
    run = best_written_after_load
    header = ok(invoke("eval", run, "--split", "valid")).splitlines()[0]
    assert header.endswith("(no best checkpoint yet: the latest parameters, last.npz)"), \
        header


def test_eval_json_names_the_checkpoint_it_read(best_written_after_load):
    import json
    run = best_written_after_load
    assert json.loads(ok(invoke("eval", run, "--json")))["checkpoint"] == "last"


def test_predict_notes_the_checkpoint_it_read(best_written_after_load):
    run = best_written_after_load
    result = invoke("predict", run, "--prime", "the", "--length", "5")
    ok(result)
    assert result.stderr.startswith(f"note: {run} has no best checkpoint yet"), result.stderr


def test_export_notes_the_checkpoint_it_read(best_written_after_load, tmp_path):
    run = best_written_after_load
    result = invoke("export", run, "--format", "safetensors", "--out", tmp_path / "m.st")
    ok(result)
    assert f"note: {run} has no best checkpoint yet" in result.stderr, result.stderr
