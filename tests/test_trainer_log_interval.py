"""The automatic --log-every (0: about 20 training records over the planned steps, at
most every 100 steps) is the same with and without --quiet: --quiet changes what is
printed, never what metrics.jsonl records."""
from __future__ import annotations

import pytest
import train_toys

from recurrent.checkpoint import RunDir
from recurrent.config import TrainingConfig
from recurrent.plugins import get_task
from recurrent.runs import start_run


@pytest.fixture(autouse=True)
def toys():
    with train_toys.registered():
        yield


def _train_steps(tmp_path, name, **overrides):
    task = get_task("toy-sign")  # its defaults leave --log-every automatic
    values = {p.name: p.default for p in task.options()}
    values.update({"threads": 1, "schedule": "constant", "batch_size": 2, **overrides})
    config = TrainingConfig.resolve(task, values)
    assert not config["log_every"]
    start_run(task, config, str(tmp_path / name), echo=lambda line: None).fit()
    return [r["step"] for r in RunDir(str(tmp_path / name)).read_metrics()
            if r["kind"] == "train"]


# 72 steps an epoch; --steps beyond the epochs planned leaves the epochs' total
@pytest.mark.parametrize("limits", [{"epochs": 2}, {"epochs": 1, "steps": 1000}])
def test_quiet_runs_log_the_same_training_records(tmp_path, limits):
    shown = _train_steps(tmp_path, "shown", quiet=False, **limits)
    quiet = _train_steps(tmp_path, "quiet", quiet=True, **limits)
    assert quiet == shown
    assert shown[0] > 1 and 1 < len(shown) <= 30  # about 20 records, not one a step
