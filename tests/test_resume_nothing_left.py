"""A resume of a run that has no step left to train (it reached its --epochs, --steps or
--patience, and the options given again change none of them) writes nothing: not
config.json, not the checkpoints, not metrics.jsonl or loss.png, and says so. A run
stopped after its last step but before its final files were written is still completed
by a resume."""
from __future__ import annotations

import errno
import os

import pytest
from helpers import TINY_RUN, invoke, ok, one_line_error, tiny_text, train_tiny

from recurrent.checkpoint import LAST, load_arrays, save_arrays


def _files(run) -> dict:
    """Every file under ``run``: its bytes and modification time."""
    found = {}
    for root, _, names in os.walk(run):
        for name in names:
            path = os.path.join(root, name)
            with open(path, "rb") as f:
                found[os.path.relpath(path, run)] = (f.read(), os.stat(path).st_mtime_ns)
    return found


@pytest.mark.parametrize("given", [
    (),
    ("--quiet", "--threads", "2", "--no-plot"),  # how it runs and reports: nothing to run
    ("--steps", "2", "--patience", "5", "--eval-every", "1"),
])
def test_a_run_at_its_steps_is_left_as_it_is(tmp_path, given):
    run = tmp_path / "run"
    ok(train_tiny(tiny_text(tmp_path), run, "--plot"))
    before = _files(run)
    assert "loss.png" in before
    text = ok(invoke("train", "--resume", run, *given))
    assert f"nothing to train: {run} had already reached its --steps 2 after 2 steps" in text
    assert "nothing written (to train on, resume it with a larger --steps" in text
    assert _files(run) == before


def test_an_ensemble_at_its_epochs_is_left_as_it_is(tmp_path):
    # --epochs 1 ends each member before --steps 50
    run = tmp_path / "run"
    ok(train_tiny(tiny_text(tmp_path), run, "--steps", "50", "--epochs", "1",
                  "--ensemble", "2"))
    before = _files(run)
    text = ok(invoke("train", "--resume", run, "--steps", "60"))
    assert "had already reached its --epochs 1" in text, text
    assert "a larger --epochs" in text
    assert _files(run) == before
    # a member resumed alone is a run with nothing left too
    ok(invoke("train", "--resume", run / "member-1"))
    assert _files(run) == before


def test_a_run_stopped_after_its_last_step_is_completed(tmp_path):
    # its last.npz does not say it finished (a Ctrl-C after the last step, or a process
    # killed before its final files): the resume ends the run and writes them
    run = tmp_path / "run"
    ok(train_tiny(tiny_text(tmp_path), run, "--plot"))
    arrays, meta = load_arrays(str(run / LAST))
    save_arrays(str(run / LAST), arrays, {**meta, "finished": False})
    (run / "loss.png").unlink()
    text = ok(invoke("train", "--resume", run))
    assert "done after 2 steps" in text and "nothing to train" not in text
    assert load_arrays(str(run / LAST))[1]["finished"] is True
    assert (run / "loss.png").exists()
    # and from then on it has nothing left
    before = _files(run)
    assert "nothing to train" in ok(invoke("train", "--resume", run))
    assert _files(run) == before


def test_a_missing_loss_plot_alone_is_drawn_again_and_said_so(tmp_path):
    run = tmp_path / "run"
    ok(train_tiny(tiny_text(tmp_path), run, "--plot"))
    (run / "loss.png").unlink()
    before = _files(run)
    text = ok(invoke("train", "--resume", run))
    assert f"; {run / 'loss.png'} drawn, nothing else written (to train on" in text, text
    after = _files(run)
    assert after.pop("loss.png") and after == before


def test_plot_given_to_a_run_trained_without_one_draws_it_and_says_so(tmp_path):
    run = tmp_path / "run"
    ok(train_tiny(tiny_text(tmp_path), run))
    before = _files(run)
    assert "loss.png" not in before
    text = ok(invoke("train", "--resume", run, "--plot"))
    assert f"; {run / 'loss.png'} drawn, nothing else written (to train on" in text, text
    assert "nothing written" not in text
    after = _files(run)
    assert after.pop("loss.png") and after == before


def test_plot_given_to_an_ended_ensemble_draws_its_members_plots_and_says_so(tmp_path):
    run = tmp_path / "run"
    ok(train_tiny(tiny_text(tmp_path), run, "--ensemble", "2"))
    before = _files(run)
    text = ok(invoke("train", "--resume", run, "--plot"))
    plots = [run / "member-0" / "loss.png", run / "member-1" / "loss.png"]
    assert f"; {plots[0]}, {plots[1]} drawn, nothing else written" in text, text
    after = _files(run)
    assert after.pop("member-0/loss.png") and after.pop("member-1/loss.png")
    assert after == before


def test_a_loss_plot_that_cannot_be_drawn_again_is_one_line_naming_it(tmp_path,
                                                                      monkeypatch):
    # a read-only run directory (the test may run as root, whom a chmod does not stop)
    run = tmp_path / "run"
    ok(train_tiny(tiny_text(tmp_path), run))
    before = _files(run)
    replace = os.replace

    def read_only(src, dst, *args, **kwargs):
        if str(dst).startswith(str(run)):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS))
        return replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", read_only)
    one_line_error(invoke("train", "--resume", run, "--plot"),
                   f"cannot write {run / 'loss.png'}: Read-only file system")
    assert _files(run) == before


def test_a_larger_limit_still_trains_on(tmp_path):
    run = tmp_path / "run"
    ok(train_tiny(tiny_text(tmp_path), run))
    text = ok(invoke("train", "--resume", run, "--steps", "3"))
    assert "done after 3 steps" in text
    assert load_arrays(str(run / LAST))[1]["step"] == 3


def test_an_ensemble_whose_figure_was_not_finite_is_left_as_it_is(tmp_path):
    # metrics.jsonl writes a NaN or infinite figure as null: the combination's record
    # still reads as the ensemble's, a figure that is not a finite number
    import json
    run = tmp_path / "run"
    ok(train_tiny(tiny_text(tmp_path), run, "--ensemble", "2",
                  "--select-by", "perplexity:min"))
    lines = []
    for line in (run / "metrics.jsonl").read_text().splitlines():
        record = json.loads(line)
        if record.get("ensemble"):
            record["metrics"]["perplexity"] = None
        lines.append(json.dumps(record, sort_keys=True) + "\n")
    (run / "metrics.jsonl").write_text("".join(lines))
    before = _files(run)
    text = ok(invoke("train", "--resume", run))
    assert "nothing to train" in text and "not a finite number" in text, text
    assert _files(run) == before


def test_quiet_is_heeded_by_an_ensemble_with_nothing_left(tmp_path):
    # --quiet is how this invocation prints, not saved by a resume that writes nothing:
    # the members are not listed, only the one summary line
    run = tmp_path / "run"
    loud = [str(option) for option in TINY_RUN if option != "--quiet"]
    ok(invoke("train", "char-lm", "--data", tiny_text(tmp_path), *loud, "--no-plot",
              "--ensemble", "2", "--out", run))
    before = _files(run)
    text = ok(invoke("train", "--resume", run, "--quiet"))
    assert len(text.splitlines()) == 1 and text.startswith("nothing to train:"), text
    assert _files(run) == before
