"""An ensemble member whose training diverges: left out of the combined model, as a
diverging candidate is, and named by the training summary, eval, predict and resume."""
from __future__ import annotations

import json

import pytest
from helpers import invoke, ok, one_line_error
from train_toys import SpikeInLaterMembers

from recurrent.config import TrainingConfig
from recurrent.runs import start_run

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")

LEFT_OUT = "member-1 diverged in training, left out: the ensemble combines the other 1 member"


def _train(run, **options):
    task = SpikeInLaterMembers()
    config = TrainingConfig.resolve(task, {"threads": 1, "quiet": True, "interrupt_at": None,
                                           "ensemble": 2, **options})
    config["loss"] = task.loss
    return start_run(task, config, str(run), echo=lambda line: None).fit()


def test_a_member_that_diverged_after_a_checkpoint_is_left_out_and_named(tmp_path):
    # member 2 saved checkpoints at steps 1 and 2 before it diverged: the ensemble is
    # member 1 alone, and every command that reads it says so
    from train_toys import registered
    run = tmp_path / "run"
    with registered():
        summary = _train(run, eval_every=1)
        assert summary["status"] == "done"
        assert "2 members (member-1 diverged, left out) of " in summary["steps_text"]
        assert (run / "member-1" / "last.npz").exists()
        assert json.loads((run / "member-1" / "diverged.json").read_text())["step"] == 2
        record = json.loads((run / "metrics.jsonl").read_text())
        assert record["left_out"] == ["member-1"] and len(record["member_steps"]) == 1

        text = ok(invoke("eval", run))
        assert LEFT_OUT in text.splitlines()[0], text
        combined = json.loads(ok(invoke("eval", run, "--json")))
        alone = json.loads(ok(invoke("eval", run / "member-0", "--json")))
        assert combined["members_left_out"] == ["member-1"]
        assert combined["metrics"] == alone["metrics"]  # member 2's weights play no part

        predicted = invoke("predict", run)
        assert predicted.exit_code == 0, predicted.output + predicted.stderr
        assert f"note: {run / 'member-1'} {LEFT_OUT[len('member-1 '):]}" in predicted.stderr


def test_a_member_that_diverged_before_any_checkpoint_is_not_trained_again(tmp_path):
    # its error suggests no --resume (which would repeat the divergence), and a resume
    # of the ensemble leaves the member out rather than train it again
    from train_toys import registered
    run = tmp_path / "run"
    with registered():
        summary = _train(run)
        assert "member-1 diverged, left out" in summary["steps_text"]
        assert not (run / "member-1" / "last.npz").exists()
        error = json.loads((run / "member-1" / "diverged.json").read_text())["error"]
        assert "no checkpoint had been written yet" in error and "--resume" not in error
        out = ok(invoke("train", "--resume", run, "--epochs", 3))
        assert "(member-1 diverged, left out)" in out, out
        assert not (run / "member-1" / "last.npz").exists()
        assert LEFT_OUT in ok(invoke("eval", run)).splitlines()[0]


def test_an_ensemble_whose_every_member_diverged_holds_no_model(tmp_path):
    from train_toys import registered
    run = tmp_path / "run"
    with registered():
        one_line_error(invoke("train", "toy-wave", "--ensemble", 2, "--spike-at", 2,
                              "--threads", 1, "--quiet", "--out", run),
                       "every member's training diverged; member 1 (seed 0): training "
                       "stopped at step 3")
        refusal = f"every member of {run} diverged in training, so it holds no model"
        one_line_error(invoke("eval", run), refusal)
        one_line_error(invoke("predict", run), refusal)
        one_line_error(invoke("train", "--resume", run), refusal)


def test_a_diverged_member_read_alone_says_it_is_left_out(tmp_path):
    # eval, predict and export of member-1 alone read its last good checkpoint: each says
    # that it diverged, after which step, and that the ensemble leaves it out
    from train_toys import registered
    run = tmp_path / "run"
    member = run / "member-1"
    note = (f"note: {member} diverged in training after step 2 (its last good step) and "
            f"is left out of the ensemble {run}")
    with registered():
        _train(run, eval_every=1)
        for args in (("eval", member), ("eval", member, "--json"), ("predict", member),
                     ("export", member, "--format", "safetensors", "--out",
                      tmp_path / "m.safetensors")):
            result = invoke(*args)
            assert result.exit_code == 0, result.output + result.stderr
            assert note in result.stderr, (args, result.stderr)
        # the member that trained to its end, and the ensemble, have no such note
        for path in (run / "member-0", run):
            assert "diverged in training after" not in invoke("eval", path).stderr
