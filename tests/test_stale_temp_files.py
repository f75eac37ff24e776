"""A trainer killed while it writes a checkpoint (SIGKILL: no cleanup can run) leaves
atomic_write's temporary file, ".last.npz.<8 chars>.tmp", as large as a checkpoint, in the
run directory; every such kill of a run resumed again and again added one, and nothing
removed them. The run's training lock, taken by every train and resume, removes them (no
other trainer writes the run then), and nothing else."""
import os

from recurrent import run_lock
from recurrent.checkpoint import atomic_write

STALE = [".last.npz.k3j9x_2a.tmp", ".best.npz.abcdefgh.tmp", ".config.json.0a1b2c3d.tmp",
         ".metrics.jsonl.zzzzzzzz.tmp", ".loss.png.q_q_q_q_.tmp"]
KEPT = ["notes.txt", ".last.npz.tmp", ".mine.png.abcdefgh.tmp", "last.npz.abcdefgh.tmp",
        ".last.npz.abcdefgh.tmp.keep",
        # not mkstemp's: its 8 characters are lowercase letters, digits and _ only, and
        # nothing follows .tmp (not even the newline a regex's $ lets through)
        ".last.npz.ABCDEFGH.tmp", ".last.npz.abcdefgh.tmp\n"]


def test_the_training_lock_removes_temp_files_of_killed_writes(tmp_path):
    for name in STALE + KEPT:
        (tmp_path / name).write_bytes(b"x" * 100)
    key = run_lock.hold(str(tmp_path))
    try:
        assert sorted(os.listdir(tmp_path)) == sorted(KEPT)
    finally:
        run_lock.release(key)


def test_the_names_matched_are_those_atomic_write_makes(tmp_path, monkeypatch):
    import tempfile

    made = []
    mkstemp = tempfile.mkstemp

    def recording(*args, **kwargs):
        fd, name = mkstemp(*args, **kwargs)
        made.append(os.path.basename(name))
        return fd, name

    monkeypatch.setattr(tempfile, "mkstemp", recording)
    for name in ("last.npz", "best.npz", "config.json", "metrics.jsonl", "loss.png"):
        atomic_write(str(tmp_path / name), lambda f: f.write(b"1"))
    for name in made:  # as a kill would have left them
        (tmp_path / name).write_bytes(b"x")
    key = run_lock.hold(str(tmp_path))
    run_lock.release(key)
    assert sorted(os.listdir(tmp_path)) == sorted(
        ["last.npz", "best.npz", "config.json", "metrics.jsonl", "loss.png"])
