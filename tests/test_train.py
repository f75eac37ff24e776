"""The training loop, checkpoints and exact resume, through the library API (runs.py),
with throwaway task plugins on generated data (tests/train_toys.py)."""
import json
import math
import os
import zipfile

import numpy as np
import pytest

import train_toys
from recurrent import checkpoint
from recurrent.checkpoint import BEST, LAST, RunDir, atomic_write, load_arrays, save_arrays
from recurrent.config import SHARED_DEFAULTS, TrainingConfig
from recurrent.errors import UserError
from recurrent.plugins import get_task
from recurrent.position import Position
from recurrent.runs import resume_run, start_run


@pytest.fixture(autouse=True)
def toys():
    with train_toys.registered():
        yield


def config_for(task_name, **overrides):
    task = get_task(task_name)
    base = {p.name: p.default for p in task.options()}
    base.update(overrides)
    config = TrainingConfig.resolve(task, base)
    config.setdefault("threads", 1)
    config["threads"] = config["threads"] or 1
    config["quiet"] = True
    return task, config


def train(tmp_path, task_name, name="run", **overrides):
    task, config = config_for(task_name, **overrides)
    trainer = start_run(task, config, str(tmp_path / name), echo=lambda line: None)
    return trainer, trainer.fit()


def train_records(run_path):
    return [r for r in RunDir(run_path).read_metrics() if r["kind"] == "train"]


def eval_records(run_path):
    return [r for r in RunDir(run_path).read_metrics() if r["kind"] == "eval"]


# ---- checkpoint files ----------------------------------------------------------------

def test_arrays_round_trip_without_pickle(tmp_path):
    path = str(tmp_path / "c.npz")
    save_arrays(path, {"a": np.arange(6, dtype=np.float32).reshape(2, 3)}, {"step": 3})
    arrays, meta = load_arrays(path)
    np.testing.assert_array_equal(arrays["a"], np.arange(6).reshape(2, 3))
    assert meta == {"step": 3}
    with zipfile.ZipFile(path) as z:  # plain .npy members only
        assert sorted(z.namelist()) == ["a.npy", "meta.npy"]


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_atomic_writes_get_the_mode_of_a_plain_file_write(tmp_path, umask):
    previous = os.umask(umask)
    try:
        atomic_write(str(tmp_path / "config.json"), lambda f: f.write(b"{}"))
        save_arrays(str(tmp_path / LAST), {"w": np.ones(2)}, {})
        with open(tmp_path / "plain", "w"):
            pass
    finally:
        os.umask(previous)
    want = 0o666 & ~umask
    assert os.stat(tmp_path / "plain").st_mode & 0o777 == want
    for name in ("config.json", LAST):
        assert os.stat(tmp_path / name).st_mode & 0o777 == want, name


def test_interrupted_write_leaves_previous_checkpoint_intact(tmp_path, monkeypatch):
    path = str(tmp_path / "last.npz")
    save_arrays(path, {"w": np.ones(4, np.float32)}, {"step": 1})

    def interrupted_fsync(fd):
        raise KeyboardInterrupt  # Ctrl-C after the bytes were written, before the rename

    monkeypatch.setattr(checkpoint.os, "fsync", interrupted_fsync)
    with pytest.raises(KeyboardInterrupt):
        save_arrays(path, {"w": np.zeros(4, np.float32)}, {"step": 2})
    monkeypatch.undo()
    arrays, meta = load_arrays(path)
    assert meta["step"] == 1 and np.all(arrays["w"] == 1)
    assert os.listdir(tmp_path) == ["last.npz"]  # the temp file was removed


def test_write_that_fails_midway_keeps_old_file(tmp_path):
    path = str(tmp_path / "config.json")
    checkpoint.write_json(path, {"a": 1})

    def half_then_fail(f):
        f.write(b'{"a": ')
        raise OSError("disk full")

    with pytest.raises(OSError):
        atomic_write(path, half_then_fail)
    assert checkpoint.read_json(path) == {"a": 1}


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty", "missing-meta"])
def test_corrupted_checkpoint_is_one_line_user_error_naming_the_file(tmp_path, damage):
    path = str(tmp_path / "last.npz")
    save_arrays(path, {"w": np.ones(1000, np.float32)}, {"step": 1})
    data = open(path, "rb").read()
    if damage == "truncate":
        open(path, "wb").write(data[: len(data) // 2])
    elif damage == "garbage":
        open(path, "wb").write(b"not a zip file at all" * 10)
    elif damage == "empty":
        open(path, "wb").close()
    else:
        np.savez(path, w=np.ones(3))
    with pytest.raises(UserError) as info:
        load_arrays(path)
    message = str(info.value)
    assert path in message and "\n" not in message


# ---- training ------------------------------------------------------------------------

def test_loss_falls_and_files_are_written(tmp_path):
    trainer, summary = train(tmp_path, "toy-lm", epochs=2)
    run = str(tmp_path / "run")
    assert summary["status"] == "done"
    evals = eval_records(run)
    assert len(evals) == 2  # once per epoch
    uniform = np.log(train_toys.PERIOD)
    assert evals[-1]["metrics"]["loss"] < 0.6 * uniform  # learned the cycle
    assert evals[-1]["metrics"]["accuracy"] > 0.7
    losses = [r["loss"] for r in train_records(run)]
    assert np.mean(losses[-3:]) < np.mean(losses[:3])
    for name in ("config.json", LAST, BEST, "metrics.jsonl"):
        assert os.path.exists(os.path.join(run, name)), name
    info = RunDir.open(run).info()
    assert info["task"] == "toy-lm" and info["task_state"]["length"] == 1200
    baselines = [r for r in RunDir(run).read_metrics() if r["kind"] == "baselines"]
    assert baselines[0]["baselines"]["uniform"]["loss"] == pytest.approx(uniform)


def test_pooled_task_with_lengths_learns(tmp_path):
    _, summary = train(tmp_path, "toy-sign", epochs=4)
    evals = eval_records(str(tmp_path / "run"))
    assert evals[-1]["metrics"]["loss"] < evals[0]["metrics"]["loss"]
    assert evals[-1]["metrics"]["loss"] < np.log(2)
    assert summary["best_loss"] == min(e["metrics"]["loss"] for e in evals)


def test_same_seed_gives_identical_runs_at_one_thread(tmp_path):
    a, _ = train(tmp_path, "toy-wave", name="a", epochs=1, dropout=0.2, layers=2)
    b, _ = train(tmp_path, "toy-wave", name="b", epochs=1, dropout=0.2, layers=2)
    np.testing.assert_array_equal(a.model.params, b.model.params)
    assert [r["loss"] for r in train_records(str(tmp_path / "a"))] == \
        [r["loss"] for r in train_records(str(tmp_path / "b"))]
    c, _ = train(tmp_path, "toy-wave", name="c", epochs=1, dropout=0.2, layers=2, seed=1)
    assert not np.array_equal(a.model.params, c.model.params)


@pytest.mark.parametrize("task_name, extra", [
    ("toy-lm", {}),  # stateful streams: the carried state is part of the checkpoint
    ("toy-wave", {"tbptt": 5, "dropout": 0.3, "layers": 2}),  # stopped mid-batch
    ("toy-sign", {"optimizer": "sgd", "nesterov": True, "schedule": "step", "decay_every": 3,
                  "warmup": 2}),
    ("toy-sign", {"tbptt": 3, "pooling": "max", "layers": 2, "dropout": 0.3}),  # truncated pool
    ("toy-lm", {"recurrent_dropout": 0.3, "zoneout": 0.2}),  # masks drawn per step
    ("toy-lm", {"cell": "ln_lstm", "recurrent_dropout": 0.3, "zoneout": 0.2}),
    # the task's own trained parameters (the learned smoothing) and their optimizer state
    ("forecast", {"forecast_model": "esrnn", "es_train": "joint", "hidden": 8,
                  "column": (), "inputs": "level", "window": 30}),
    ("toy-wave", {"tbptt": 5, "average": "ema:0.95"}),  # weight average, mid-batch
    ("toy-lm", {"average": "swa:4"}),
])
def test_resume_equals_uninterrupted_run(tmp_path, task_name, extra):
    full, _ = train(tmp_path, task_name, name="full", epochs=2, log_every=1, **extra)
    steps = full.position.step
    half, summary = train(tmp_path, task_name, name="half", epochs=2, log_every=1,
                          steps=steps // 2 + 1, **extra)
    assert summary["step"] == steps // 2 + 1
    run = RunDir.open(str(tmp_path / "half"))
    config = run.info()["config"]
    config["steps"] = 0
    run.update_config(config)
    resumed = resume_run(get_task(task_name), run, echo=lambda line: None)
    resumed.fit(resume=True)
    np.testing.assert_array_equal(resumed.model.params, full.model.params)
    assert [r["loss"] for r in train_records(str(tmp_path / "half"))] == \
        [r["loss"] for r in train_records(str(tmp_path / "full"))]
    np.testing.assert_array_equal(resumed.optimizer.buffers[resumed.optimizer.buffer_names[0]],
                                  full.optimizer.buffers[full.optimizer.buffer_names[0]])
    assert (full.task_params is None) == (task_name != "forecast")
    if full.task_params is not None:
        np.testing.assert_array_equal(resumed.task_params.params, full.task_params.params)
        for name in full.task_params.optimizer.buffer_names:
            np.testing.assert_array_equal(resumed.task_params.optimizer.buffers[name],
                                          full.task_params.optimizer.buffers[name])
        assert RunDir.open(str(tmp_path / "half")).info()["task_state"] == \
            RunDir.open(str(tmp_path / "full")).info()["task_state"]
    if full.average is not None:
        np.testing.assert_array_equal(resumed.average.values, full.average.values)
        assert resumed.average.count == full.average.count > 0


def test_tbptt_cuts_batches_into_windows(tmp_path):
    trainer, _ = train(tmp_path, "toy-wave", epochs=1, tbptt=6)
    untruncated, _ = train(tmp_path, "toy-wave", name="full", epochs=1)
    # T = 20 per batch: windows of 6, 6, 6, 2 -> four optimizer steps per batch
    assert trainer.position.step == 4 * untruncated.position.step


def test_tbptt_windows_with_lengths_keep_finished_rows(tmp_path):
    task, config = config_for("toy-wave", tbptt=3)
    trainer = start_run(task, config, str(tmp_path / "r"), echo=lambda line: None)
    x = np.zeros((7, 2, 1), np.float32)
    windows = trainer._windows({"x": x, "y": x, "lengths": np.array([7, 2])})
    assert [w[0].shape[0] for w in windows] == [3, 3, 1]
    assert [list(w[2]) for w in windows] == [[3, 2], [3, 0], [1, 0]]
    before = np.random.default_rng(0).standard_normal((1, 2, 6)).astype(np.float32)
    trainer.carry = (before.copy(), before.copy())
    trainer._train_window(*windows[1], lr=0.01)
    # row 1 had ended: its carried state passes through the window unchanged
    np.testing.assert_array_equal(trainer.carry[0][:, 1], before[:, 1])
    assert not np.allclose(trainer.carry[0][:, 0], before[:, 0])


def test_tbptt_refused_for_bidirectional(tmp_path):
    # pooled tasks truncate too (tests/test_tbptt_pooled.py); the reverse direction cannot
    for task_name in ("toy-sign", "toy-wave"):
        with pytest.raises(UserError, match="--unidirectional.*the reverse direction"):
            train(tmp_path, task_name, name=task_name, tbptt=3, bidirectional=True)


def test_early_stopping(tmp_path):
    # lr so small that float32 parameters cannot move: validation never improves again
    _, summary = train(tmp_path, "toy-wave", optimizer="sgd", lr=1e-30, momentum=0.0,
                       epochs=20, eval_every=2, patience=2)
    assert summary["status"] == "early-stopped"
    evals = eval_records(str(tmp_path / "run"))
    assert len(evals) == 3 and [e["best"] for e in evals] == [True, False, False]


@pytest.mark.parametrize("ending", ["steps", "steps-at-epoch-end", "epochs", "early-stopped"])
def test_resuming_a_run_that_ended_changes_nothing(tmp_path, ending):
    # the whole last.npz, carried state and position included: an ensemble member or
    # candidate that had ended is resumed this way, and must end as the uninterrupted
    # run's did (toy-wave's batches reset the state, so the carry is never used again)
    per_epoch = train(tmp_path, "toy-wave", name="one-epoch", epochs=1)[0].position.step
    options = {"steps": {"steps": 5, "epochs": 0},
               "steps-at-epoch-end": {"steps": per_epoch, "epochs": 2},
               "epochs": {"epochs": 2},
               "early-stopped": {"optimizer": "sgd", "lr": 1e-30, "momentum": 0.0,
                                 "epochs": 20, "eval_every": 2, "patience": 2}}[ending]
    _, summary = train(tmp_path, "toy-wave", **options)
    run = RunDir(str(tmp_path / "run"))
    before, meta = load_arrays(run.file(LAST))
    records = run.read_metrics()
    trainer = resume_run(get_task("toy-wave"), run, echo=lambda line: None)
    again = trainer.fit(resume=True)
    after, meta_after = load_arrays(run.file(LAST))
    assert again["status"] == summary["status"] and again["step"] == summary["step"]
    assert meta_after == meta and meta["step"] == summary["step"]
    assert sorted(after) == sorted(before)
    assert all(np.array_equal(after[k], before[k]) for k in before)
    assert run.read_metrics() == records  # no step taken, no evaluation added


def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(tmp_path):
    task, config = config_for("toy-wave", spike_at=3, eval_every=2)
    trainer = start_run(task, config, str(tmp_path / "run"), echo=lambda line: None)
    with pytest.raises(UserError, match=r"step 4: loss is (inf|nan)") as info:
        trainer.fit()
    assert "last.npz" in str(info.value)
    arrays, meta = load_arrays(str(tmp_path / "run" / LAST))
    assert meta["step"] == 2
    assert all(np.isfinite(v).all() for v in arrays.values())


def test_resume_after_a_failure_redoes_the_lost_steps_once(tmp_path):
    task, config = config_for("toy-wave", spike_at=3, eval_every=2, log_every=1)
    trainer = start_run(task, config, str(tmp_path / "run"), echo=lambda line: None)
    with pytest.raises(UserError):
        trainer.fit()
    assert [r["step"] for r in train_records(str(tmp_path / "run"))] == [1, 2, 3]
    run = RunDir.open(str(tmp_path / "run"))
    config = run.info()["config"]
    config["spike_at"] = None
    run.update_config(config)
    resume_run(task, run, echo=lambda line: None).fit(resume=True)
    steps = [r["step"] for r in train_records(str(tmp_path / "run"))]
    assert steps == list(range(1, len(steps) + 1))  # step 3 is logged once, by the resumed run


def test_loss_plot(tmp_path):
    pytest.importorskip("matplotlib", reason="matplotlib not installed (the plot extra)")
    train(tmp_path, "toy-sign", epochs=2, plot=True)
    png = (tmp_path / "run" / "loss.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 5000


@pytest.mark.parametrize("before", [0, 1])
def test_a_ctrl_c_while_the_loss_plot_is_drawn_counts_as_the_runs(tmp_path, monkeypatch,
                                                                  before):
    # the plot is drawn after the training's own handler has ended: a Ctrl-C then (the
    # first, ``before`` = 0) lets a finished run end done with its plot; one after a
    # Ctrl-C that stopped the training (``before`` = 1) is the second, which aborts
    pytest.importorskip("matplotlib", reason="matplotlib not installed (the plot extra)")
    import signal

    from recurrent import trainer as trainer_module
    draw = trainer_module.write_loss_plot

    def ctrl_c_then_draw(run):
        signal.raise_signal(signal.SIGINT)
        return draw(run)

    monkeypatch.setattr(trainer_module, "write_loss_plot", ctrl_c_then_draw)
    if before:
        with pytest.raises(KeyboardInterrupt):
            train(tmp_path, "toy-sign", epochs=2, plot=True, interrupt_at=3, log_every=1)
        assert not (tmp_path / "run" / "loss.png").exists()
        assert load_arrays(str(tmp_path / "run" / LAST))[1]["step"] == 4
        return
    try:
        _, summary = train(tmp_path, "toy-sign", epochs=2, plot=True)
    except KeyboardInterrupt:
        pytest.fail("the first Ctrl-C, while the plot was drawn, aborted the run")
    assert summary["status"] == "done"
    assert (tmp_path / "run" / "loss.png").read_bytes().startswith(b"\x89PNG")


def test_ctrl_c_saves_checkpoint_and_resume_finishes_like_an_uninterrupted_run(tmp_path):
    full, _ = train(tmp_path, "toy-sign", name="full", epochs=2, log_every=1)
    stopped, summary = train(tmp_path, "toy-sign", name="stopped", epochs=2, log_every=1,
                             interrupt_at=3)
    assert summary["status"] == "interrupted"
    assert summary["step"] == 4  # the SIGINT came while batch 3 was produced; it still ran
    _, meta = load_arrays(str(tmp_path / "stopped" / LAST))
    assert meta["step"] == 4
    resumed = train_toys.resume_uninterrupted(tmp_path / "stopped", "toy-sign")
    assert resumed.fit(resume=True)["status"] == "done"
    np.testing.assert_array_equal(resumed.model.params, full.model.params)


def test_clipping_is_logged(tmp_path):
    _, summary = train(tmp_path, "toy-wave", epochs=1, clip_norm=1e-3, log_every=1)
    records = train_records(str(tmp_path / "run"))
    assert summary["clipped_fraction"] == 1.0
    assert all(r["grad_norm"] > 1e-3 for r in records)  # the pre-clip norm is logged
    _, summary = train(tmp_path, "toy-wave", name="value", epochs=1, clip_norm=0,
                       clip_value=1e6)
    assert summary["clipped_fraction"] == 0.0


def test_metrics_jsonl_lines_are_json(tmp_path):
    train(tmp_path, "toy-sign", epochs=1)
    with open(tmp_path / "run" / "metrics.jsonl") as f:
        kinds = [json.loads(line)["kind"] for line in f]
    assert kinds[0] == "baselines" and "eval" in kinds


def test_new_run_refuses_an_existing_run_directory(tmp_path):
    train(tmp_path, "toy-sign", epochs=1)
    with pytest.raises(UserError, match="--resume"):
        train(tmp_path, "toy-sign", epochs=1)


def test_trainer_reads_everything_from_the_run_directory(tmp_path):
    trainer, _ = train(tmp_path, "toy-sign", epochs=1)
    again = resume_run(get_task("toy-sign"), RunDir.open(str(tmp_path / "run")))
    again.restore()
    np.testing.assert_array_equal(again.model.params, trainer.model.params)
    assert again.position == trainer.position


def test_second_ctrl_c_aborts_at_once():
    import signal

    from recurrent.interrupt import Interrupt
    before = signal.getsignal(signal.SIGINT)  # SIG_IGN when started under nohup or "&"
    with Interrupt() as interrupt:
        signal.raise_signal(signal.SIGINT)
        assert interrupt.requested  # the first one only asks the loop to stop
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is before  # restored


def test_nested_ctrl_c_handlers_share_a_request_both_ways():
    import signal

    from recurrent.interrupt import Interrupt
    before = signal.getsignal(signal.SIGINT)
    with Interrupt() as outer:
        signal.raise_signal(signal.SIGINT)  # before the inner one is installed
        with Interrupt() as inner:
            assert inner.requested  # so the inner loop stops at its next boundary
            with pytest.raises(KeyboardInterrupt):  # and a second Ctrl-C is a second
                signal.raise_signal(signal.SIGINT)
    with Interrupt() as outer:
        with Interrupt() as inner:
            assert not inner.requested
            signal.raise_signal(signal.SIGINT)  # reaches the inner one only ...
            assert inner.requested and not outer.requested
        assert outer.requested  # ... which passes it out when it ends
    assert signal.getsignal(signal.SIGINT) is before


def test_position_round_trips_through_checkpoint_meta(tmp_path):
    p = Position(epoch=2, batch=3, window=1, step=40, best_loss=0.5, bad_evals=1,
                 clipped_steps=4, loss_sum=1.5, loss_count=3, eval_sum=2.0, eval_count=4,
                 last_eval_step=36, finished=True)
    assert Position.from_meta(json.loads(json.dumps(p.to_meta()))) == p
    assert Position().to_meta()["best_loss"] is None  # JSON has no infinity
    assert Position.from_meta(Position().to_meta()).best_loss == math.inf
    trainer, _ = train(tmp_path, "toy-sign", epochs=1)
    _, meta = load_arrays(str(tmp_path / "run" / LAST))
    assert Position.from_meta(meta) == trainer.position
    # a checkpoint written before the schedule's horizons were saved still loads
    older = {k: v for k, v in meta.items() if not k.startswith("lr_")}
    assert Position.from_meta(older).lr_horizon == 0
    assert Position.from_meta(older).lr_extensions == []


def test_options_are_checked_once_per_start_and_once_per_resume(tmp_path, monkeypatch):
    checks = []
    check = TrainingConfig.check
    monkeypatch.setattr(TrainingConfig, "check",
                        lambda self, task=None: checks.append(1) or check(self, task))
    train(tmp_path, "toy-sign", epochs=1)
    assert len(checks) == 1
    resume_run(get_task("toy-sign"), RunDir.open(str(tmp_path / "run")))
    assert len(checks) == 2


def test_a_resume_reads_last_npz_once(tmp_path, monkeypatch):
    """The resume's check of the checkpoint and its restore share one reading of it."""
    train(tmp_path, "toy-sign", epochs=1, steps=2)
    last = str(tmp_path / "run" / LAST)
    reads = []
    load = np.load
    monkeypatch.setattr(np, "load", lambda path, *args, **kwargs: (
        reads.append(os.fspath(path)), load(path, *args, **kwargs))[1])
    run = RunDir.open(str(tmp_path / "run"))
    config = run.info()["config"]
    config["steps"] = 4
    run.update_config(config)
    summary = resume_run(get_task("toy-sign"), run, echo=lambda line: None).fit(resume=True)
    assert summary["status"] == "done" and summary["step"] == 4
    assert reads.count(last) == 1, reads


def test_after_training_sees_the_best_model_and_its_state_is_saved(tmp_path, monkeypatch):
    task = get_task("toy-sign")
    calls = []

    def after_training(state, config, model):
        loss = task.evaluate(state, "valid", config, model)["loss"]
        calls.append(loss)
        return {**state, "chosen_on_valid": loss}

    monkeypatch.setattr(task, "after_training", after_training, raising=False)
    assert get_task("toy-sign").after_training is after_training
    _, summary = train(tmp_path, "toy-sign", epochs=2)
    assert len(calls) == 1
    # The best checkpoint's model, not the last one's: its validation loss is the best.
    assert calls[0] == pytest.approx(summary["best_loss"], rel=1e-6)
    saved = RunDir.open(str(tmp_path / "run")).info()["task_state"]
    assert saved["chosen_on_valid"] == calls[0]
    calls.clear()
    _, summary = train(tmp_path, "toy-sign", name="stopped", epochs=2, interrupt_at=3)
    assert summary["status"] == "interrupted" and calls == []
    assert "chosen_on_valid" not in RunDir.open(str(tmp_path / "stopped")).info()["task_state"]


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "adamw", "rmsprop"])
def test_weight_decay_reaches_the_network_but_not_a_tasks_own_parameters(optimizer):
    config = TrainingConfig({**SHARED_DEFAULTS, "optimizer": optimizer, "lr": 0.1,
                             "weight_decay": 0.5, "momentum": 0.0})
    values = np.full(4, 2.0, np.float32)
    grads = np.zeros_like(values)  # no gradient: only decay could move them
    config.build_optimizer_over(values, grads).step(0.1)
    np.testing.assert_array_equal(values, 2.0)
    # the same options decay the network's parameters (through the trainer's path)
    model = config.build_model({"input": "features", "input_size": 2, "output": "last",
                                "output_size": 1})
    model.params[...] = 2.0
    model.grads[...] = 0.0
    config.build_optimizer(model).step(0.1)
    assert np.all(model.params < 2.0)
