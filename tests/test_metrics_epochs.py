"""metrics.jsonl's "epoch": every "train" and "eval" record names the epoch its step was
taken in, counted from 1 as the progress line prints it, whether the evaluation came
mid-epoch (--eval-every) or at the epoch's end; a run made before config.json recorded
"metrics_format" keeps counting its records as they began when it is resumed."""
import json
import math

import pytest

import train_toys
from recurrent.checkpoint import CONFIG_FILE, RunDir
from recurrent.plugins import get_task
from recurrent.runs import resume_run
from test_train import train

STEPS_PER_EPOCH = 9  # toy-sign: its training split in batches of 16


@pytest.fixture(autouse=True)
def toys():
    with train_toys.registered():
        yield


def _records(path):
    return [r for r in RunDir(str(path)).read_metrics() if r["kind"] in ("train", "eval")]


@pytest.mark.parametrize("eval_every", [0, 5, 6])
def test_every_record_names_the_epoch_of_its_step_counted_from_one(tmp_path, eval_every):
    trainer, _ = train(tmp_path, "toy-sign", epochs=2, log_every=1, eval_every=eval_every)
    assert trainer.position.step == 2 * STEPS_PER_EPOCH
    records = _records(tmp_path / "run")
    assert {r["kind"] for r in records} == {"train", "eval"}
    for r in records:
        assert r["epoch"] == math.ceil(r["step"] / STEPS_PER_EPOCH), r
    info = RunDir.open(str(tmp_path / "run")).info()
    assert info["metrics_format"] == 2


def test_a_run_resumed_after_ctrl_c_keeps_one_record_per_step_and_counts_alike(tmp_path):
    train(tmp_path, "toy-sign", name="full", epochs=2, log_every=1, eval_every=5)
    _, summary = train(tmp_path, "toy-sign", epochs=2, log_every=1, eval_every=5,
                       interrupt_at=7)
    assert summary["status"] == "interrupted"
    train_toys.resume_uninterrupted(tmp_path / "run", "toy-sign").fit(resume=True)
    resumed, full = _records(tmp_path / "run"), _records(tmp_path / "full")
    keys = [(r["kind"], r["step"], r["epoch"]) for r in resumed]
    assert keys == [(r["kind"], r["step"], r["epoch"]) for r in full]
    assert len(set(keys)) == len(keys)


def test_a_run_made_before_metrics_format_resumes_counting_as_it_began(tmp_path):
    train(tmp_path, "toy-sign", epochs=1, log_every=3)
    run = RunDir.open(str(tmp_path / "run"))
    info = run.info()
    del info["metrics_format"]  # as an earlier version wrote config.json
    with open(run.file(CONFIG_FILE), "w") as f:
        json.dump(info, f)
    before = _records(tmp_path / "run")
    info["config"]["epochs"] = 2
    run.update_config(info["config"])
    resume_run(get_task("toy-sign"), run, echo=lambda line: None).fit(resume=True)
    after = _records(tmp_path / "run")
    assert after[:len(before)] == before
    # the earlier counting: the epochs completed before the record was written
    assert [(r["kind"], r["step"], r["epoch"]) for r in after[len(before):]] == \
        [("train", 12, 1), ("train", 15, 1), ("train", 18, 1), ("eval", 18, 2)]
    assert "metrics_format" not in RunDir.open(str(tmp_path / "run")).info()
