"""Audit (mutation testing) of the training locks (recurrent/run_lock.py) and of the code
that takes and lets go of them (runs.start_run, runs.resume_run, the trainers' fit):
release really lets go, holds are counted, a lock is the directory's whatever the path's
spelling (and a directory made again is another one), a refusal or a file system without
flock leaks no descriptor, hold_all is all or none, and every way out of a training (fit
returning, a failed start, a refused resume) leaves the run free for another process.
"Another process" is stood for by a second open file description of the directory in
this process: flock locks belong to those, so it conflicts as another process's would."""
from __future__ import annotations

import errno
import json
import os

import pytest
from helpers import invoke, ok, one_line_error, tiny_text, train_tiny

from recurrent import run_lock, runs
from recurrent.errors import UserError

fcntl = pytest.importorskip("fcntl", reason="the run lock is a POSIX flock (fcntl)")


def free(path) -> bool:
    """Whether another holder could take the run directory's lock now."""
    fd = os.open(str(path), os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)  # (closing lets go of this probe's own lock)
    return True


def held(path) -> bool:
    """Whether this process holds the directory's lock (run_lock's own record)."""
    info = os.stat(path)
    return (info.st_dev, info.st_ino) in run_lock._held


def open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


needs_proc = pytest.mark.skipif(not os.path.isdir("/proc/self/fd"),
                                reason="counts open descriptors in /proc/self/fd (Linux only)")


@pytest.fixture
def run_dir(tmp_path):
    path = tmp_path / "run"
    path.mkdir()
    return path


def test_release_lets_go_and_a_later_hold_locks_again(run_dir):
    key = run_lock.hold(str(run_dir))
    assert not free(run_dir)
    run_lock.release(key)
    assert free(run_dir)
    key = run_lock.hold(str(run_dir))  # held again: really locked, not remembered as held
    assert not free(run_dir)
    run_lock.release(key)
    assert free(run_dir)
    run_lock.release(key)  # a key no longer held: nothing to undo
    run_lock.release(None)  # (hold's key on a file system without flock)
    assert free(run_dir)


@needs_proc
def test_holds_are_counted_the_last_release_lets_go(run_dir):
    before = open_descriptors()
    keys = [run_lock.hold(str(run_dir)) for _ in range(3)]
    assert len(set(keys)) == 1 and open_descriptors() == before + 1  # one descriptor
    for key in keys[:-1]:
        run_lock.release(key)
        assert not free(run_dir)
    run_lock.release(keys[-1])
    assert free(run_dir) and open_descriptors() == before


def test_one_lock_per_directory_whatever_its_spelling(run_dir, tmp_path):
    link = tmp_path / "link"
    link.symlink_to(run_dir, target_is_directory=True)
    keys = [run_lock.hold(p) for p in (str(run_dir), str(link), f"{run_dir}/.")]
    assert len(set(keys)) == 1
    run_lock.release_all(keys)
    assert free(run_dir)


def test_a_directory_made_again_is_another_lock(run_dir):
    old = run_lock.hold(str(run_dir))
    try:
        os.rmdir(run_dir)
        run_dir.mkdir()  # the same path, another directory: not held by the old key
        new = run_lock.hold(str(run_dir))
        assert new != old and not free(run_dir)
        run_lock.release(new)
        assert free(run_dir)
    finally:
        run_lock.release(old)


@needs_proc
def test_a_refused_hold_leaves_no_descriptor_open(run_dir):
    other = os.open(str(run_dir), os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)  # another trainer holds it
        before = open_descriptors()
        for _ in range(3):
            with pytest.raises(UserError, match="is being trained by another process"):
                run_lock.hold(str(run_dir))
        assert open_descriptors() == before
    finally:
        os.close(other)
    key = run_lock.hold(str(run_dir))  # free again: this process takes it
    assert not free(run_dir)
    run_lock.release(key)


@needs_proc
def test_without_flock_training_goes_on_unlocked(run_dir, monkeypatch):
    def no_flock(fd, operation):
        raise OSError(errno.ENOLCK, "No locks available")
    monkeypatch.setattr(fcntl, "flock", no_flock)
    before = open_descriptors()
    assert run_lock.hold(str(run_dir)) is None  # no error: the run trains unlocked
    assert run_lock.hold_all([str(run_dir)]) == [None]
    assert open_descriptors() == before and not held(run_dir)


def test_a_run_directory_that_cannot_be_opened_is_one_line(tmp_path):
    path = tmp_path / "file"
    path.write_text("not a directory")
    with pytest.raises(UserError, match="cannot open the run directory"):
        run_lock.hold(str(path))
    with pytest.raises(UserError, match="cannot open the run directory"):
        run_lock.hold(str(tmp_path / "missing"))


def test_hold_all_is_all_or_none_and_skips_what_does_not_exist(tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    keys = run_lock.hold_all([str(first), str(tmp_path / "missing"), str(second)])
    assert len(keys) == 2 and not free(first) and not free(second)
    run_lock.release_all(keys)
    other = os.open(str(second), os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(UserError, match="is being trained by another process"):
            run_lock.hold_all([str(first), str(second)])
        assert free(first)  # the one taken before the refusal was let go
    finally:
        os.close(other)


def test_recurrent_train_lets_go_of_the_lock_when_it_ends(tmp_path):
    run = tmp_path / "run"
    ok(train_tiny(tiny_text(tmp_path), run))
    assert free(run)
    ok(invoke("train", "--resume", run, "--steps", 3))
    assert free(run)


def _char_lm_config(tmp_path):
    from recurrent.config import TrainingConfig
    from recurrent.plugins import get_task
    task = get_task("char-lm")
    values = {"data": str(tiny_text(tmp_path)), "steps": 2, "hidden": 8, "embed_dim": 4,
              "seq_len": 16, "threads": 1, "quiet": True, "plot": False}
    config = TrainingConfig.resolve(task, values)
    config["loss"] = task.loss
    return task, config


def test_a_started_run_is_held_until_its_fit_returns(tmp_path):
    task, config = _char_lm_config(tmp_path)
    out = tmp_path / "run"
    trainer = runs.start_run(task, config, str(out), echo=lambda line: None)
    assert not free(out)  # from its creation on
    trainer.fit()
    assert free(out) and not held(out)


def test_a_start_that_fails_after_the_run_is_made_lets_go_of_the_lock(tmp_path, monkeypatch):
    task, config = _char_lm_config(tmp_path)

    def failing(*args, **kwargs):
        raise RuntimeError("no trainer")
    monkeypatch.setattr(runs, "_trainer", failing)
    out = tmp_path / "run"
    with pytest.raises(RuntimeError, match="no trainer"):
        runs.start_run(task, config, str(out), echo=lambda line: None)
    assert (out / "config.json").exists() and free(out)


def test_a_refused_resume_lets_go_of_the_lock(tmp_path):
    run = tmp_path / "run"
    ok(train_tiny(tiny_text(tmp_path), run))
    info = json.loads((run / "config.json").read_text())
    info["imported_from"] = "model.safetensors"  # weights only: refused by resume_run
    (run / "config.json").write_text(json.dumps(info))
    one_line_error(invoke("train", "--resume", run, "--steps", 3), "recurrent import")
    assert free(run)


def test_a_resume_of_an_ensemble_holds_every_member_before_it_writes(tmp_path):
    """resume_run takes the members' locks with the ensemble's: while another trainer
    holds a member, the ensemble's resume is refused and its config.json is unchanged."""
    run = tmp_path / "ens"
    ok(train_tiny(tiny_text(tmp_path), run, "--ensemble", 2))
    config = (run / "config.json").read_bytes()
    other = os.open(str(run / "member-1"), os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)  # a resume of member-1 trains
        one_line_error(invoke("train", "--resume", run, "--steps", 4),
                       "member-1 is being trained by another process")
        assert (run / "config.json").read_bytes() == config
        assert free(run) and free(run / "member-0")
    finally:
        os.close(other)
    ok(invoke("train", "--resume", run, "--steps", 4))
    assert free(run) and free(run / "member-0") and free(run / "member-1")


CANDIDATES = ["--hidden", "8", "--epochs", "2", "--threads", "1", "--quiet", "--no-plot"]


def test_a_run_of_candidates_holds_every_candidate_while_it_trains(tmp_path, monkeypatch):
    """forecast's --window auto trains its candidates in turn: while the second trains,
    the first (and the run) stay held, so that no other process resumes them."""
    from recurrent.trainer import Trainer
    run, seen = tmp_path / "run", {}

    def probe(self):
        if self.run.path.endswith("candidate-1") and self.position.step == 1:
            seen.update(run=free(run), first=free(run / "candidate-0"))
        return False
    monkeypatch.setattr(Trainer, "_stop_requested", probe)
    ok(invoke("train", "forecast", "--out", run, *CANDIDATES))
    assert seen == {"run": False, "first": False}
    assert free(run) and free(run / "candidate-0") and not held(run)


def test_a_resume_of_candidates_holds_them_before_it_writes(tmp_path, monkeypatch):
    from recurrent.trainer import Trainer
    run = tmp_path / "run"
    monkeypatch.setattr(Trainer, "_stop_requested", lambda self: (
        self.run.path.endswith("candidate-1") and self.position.step == 2))
    assert invoke("train", "forecast", "--out", run, *CANDIDATES).exit_code == 130
    monkeypatch.undo()
    before = (run / "config.json").read_bytes()
    other = os.open(str(run / "candidate-0"), os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)  # a resume of candidate-0 trains
        one_line_error(invoke("train", "--resume", run, "--epochs", "3"),
                       "candidate-0 is being trained by another process")
        assert (run / "config.json").read_bytes() == before
    finally:
        os.close(other)
    assert free(run) and not held(run)


def test_a_trainer_fitted_again_leaves_a_later_trainers_lock_alone(tmp_path):
    """A trainer's locks from its setup are let go of once: fitting it again (a notebook
    cell run twice) does not undo the hold of a trainer made since on the same run."""
    task, config = _char_lm_config(tmp_path)
    out = tmp_path / "run"
    first = runs.start_run(task, config, str(out), echo=lambda line: None)
    first.fit()
    from recurrent.checkpoint import RunDir
    second = runs.resume_run(task, RunDir.open(str(out)), echo=lambda line: None,
                             changes={"steps": 3})
    assert not free(out)
    first.fit(resume=True)
    assert not free(out)  # still the second trainer's, until its fit returns
    second.fit(resume=True)
    assert free(out) and not held(out)
