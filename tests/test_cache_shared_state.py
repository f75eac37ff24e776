"""State kept between runs and within a process.

A process killed while it writes a cache entry (SIGKILL: no cleanup can run) leaves
atomic_write's temporary file, as large as the entry, in the shared cache; a later write
into that folder removes it once it has been left unchanged long enough to be no other
process's write in progress.

A task's per-process memo of a data file is keyed by the file's identity: a file rewritten
with the same size and its modification time set back (cp -p, rsync -t, touch -r) is read
again, never answered from the memo of its old content."""
import hashlib
import os
import tempfile

import numpy as np
from helpers import bundled_reviews, write_reviews

from recurrent import cache, tuning


def _temp_beside(path: str) -> str:
    """A temporary file named as atomic_write names the one it writes ``path`` through."""
    fd, name = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp",
                                dir=os.path.dirname(path))
    os.write(fd, b"x" * 1000)
    os.close(fd)
    return name


def test_a_later_write_removes_the_temp_file_of_a_killed_cache_write(tmp_path, monkeypatch):
    monkeypatch.setenv("RECURRENT_CACHE_DIR", str(tmp_path))
    old_key, new_key = {"format": 1, "rows": "a"}, {"format": 1, "rows": "b"}
    folder = os.path.dirname(cache.entry_path("ns", old_key))
    os.makedirs(folder)
    stale = _temp_beside(cache.entry_path("ns", old_key))
    os.utime(stale, (0, 0))  # left unchanged for decades: its writer is dead
    live = _temp_beside(cache.entry_path("ns", old_key))  # another process's write now
    notes = os.path.join(folder, "notes.txt")
    with open(notes, "w") as f:
        f.write("mine")
    # old, but no name mkstemp gives (lowercase letters, digits and _; nothing after .tmp)
    kept = [os.path.join(folder, name) for name in (".notes.ABCDEFGH.tmp",
                                                    ".notes.abcdefgh.tmp\n")]
    for name in kept:
        with open(name, "w") as f:
            f.write("mine")
        os.utime(name, (0, 0))
    cache.store("ns", new_key, {"x": np.arange(3.0)})
    assert not os.path.exists(stale)
    assert os.path.exists(live) and os.path.exists(notes)
    assert all(os.path.exists(name) for name in kept)
    np.testing.assert_array_equal(cache.load("ns", new_key)["x"], np.arange(3.0))


def test_the_tuning_write_removes_the_temp_file_of_a_killed_one(tmp_path, monkeypatch):
    monkeypatch.setenv("RECURRENT_CACHE_DIR", str(tmp_path))
    path = tuning.cache_path()
    os.makedirs(os.path.dirname(path))
    stale = _temp_beside(path)
    os.utime(stale, (0, 0))
    tuning.write_cache(path, tuning.defaults(), {})
    assert sorted(os.listdir(os.path.dirname(path))) == [os.path.basename(path)]
    assert tuning.read_cache(path) == tuning.defaults()


def _rewrite_keeping_size_and_mtime(path: str, write) -> None:
    """Replace ``path`` by a file that ``write(new path)`` makes, of the same size, with
    the old modification time (as cp -p or rsync -t leave it)."""
    before = os.stat(path)
    new = path + ".new"
    write(new)
    assert os.path.getsize(new) == before.st_size
    os.utime(new, ns=(before.st_atime_ns, before.st_mtime_ns))
    os.replace(new, path)


def _sha256(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def test_sentiment_reads_a_file_rewritten_with_the_same_size_and_mtime(tmp_path):
    from recurrent_plugins.sentiment import TASK
    path = str(tmp_path / "reviews.csv")
    rows = bundled_reviews(20)
    write_reviews(path, rows)
    first = TASK.prepare({"data": path, "min_freq": 1})
    # two texts of each class change labels: the same bytes in all, other content
    swap = {"fresh": "rotten", "rotten": "fresh"}
    flipped = [(t, swap[label]) if i in (0, 1, 20, 21) else (t, label)
               for i, (t, label) in enumerate(rows)]
    _rewrite_keeping_size_and_mtime(path, lambda new: write_reviews(new, flipped))
    again = TASK.prepare({"data": path, "min_freq": 1})
    assert first["sha256"] != again["sha256"] == _sha256(path)


def test_seq2seq_reads_a_file_rewritten_with_the_same_size_and_mtime(tmp_path):
    from recurrent_plugins.seq2seq.data import read_pairs
    path = str(tmp_path / "pairs.tsv")
    with open(path, "w") as f:
        f.write("abc\tcba\nxyz\tzyx\n")
    assert read_pairs(path)[0] == [("abc", "cba"), ("xyz", "zyx")]

    def write(new):
        with open(new, "w") as f:
            f.write("abc\tabc\nxyz\txyz\n")

    _rewrite_keeping_size_and_mtime(path, write)
    assert read_pairs(path)[0] == [("abc", "abc"), ("xyz", "xyz")]


def test_char_lm_reads_a_file_rewritten_with_the_same_size_and_mtime(tmp_path):
    from recurrent_plugins.char_lm.task import _Corpus
    path = str(tmp_path / "text.txt")
    with open(path, "w") as f:
        f.write("hello world\n")
    assert _Corpus.text(path) == "hello world\n"

    def write(new):
        with open(new, "w") as f:
            f.write("jello world\n")

    _rewrite_keeping_size_and_mtime(path, write)
    assert _Corpus.text(path) == "jello world\n"
