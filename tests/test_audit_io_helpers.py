"""Audit of the run-file and data-file helpers (recurrent/checkpoint.py, cache.py,
datafile.py) and of truncation.py, wide.py, pretrain.py, memo.py and candidates.py: each
test pins one behaviour a hand-made mutant of the module changed without any other test
noticing (the audit's table names the mutant)."""
import json
import lzma
import os
import stat
import zipfile

import numpy as np
import pytest
from helpers import invoke, ok, one_line_error, tiny_text, train_tiny

from recurrent import cache, candidates, checkpoint, datafile
from recurrent.checkpoint import (CONFIG_FILE, LAST, METRICS, RunDir, atomic_write,
                                  json_text, load_arrays, save_arrays)
from recurrent.errors import UserError

# -- checkpoint.py ---------------------------------------------------------------------


def test_atomic_write_fsyncs_the_file_then_renames_then_fsyncs_the_directory(
        tmp_path, monkeypatch):
    """The write is durable: the temp file's bytes reach the disk before the rename, and
    the rename itself (the directory entry) after it."""
    path = str(tmp_path / "config.json")
    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        events.append("fsync dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "fsync file")
        real_fsync(fd)

    def replace(src, dst):
        events.append("replace")
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    atomic_write(path, lambda f: f.write(b'{"a": 1}'))
    monkeypatch.undo()
    assert events == ["fsync file", "replace", "fsync dir"]
    assert open(path, "rb").read() == b'{"a": 1}'


def test_save_arrays_refuses_an_array_named_meta(tmp_path):
    path = tmp_path / LAST
    with pytest.raises(ValueError, match="'meta' is reserved"):
        save_arrays(str(path), {"w": np.ones(2), "meta": np.zeros(1)}, {"step": 1})
    assert not path.exists()


def test_a_checkpoint_whose_meta_is_not_a_json_object_is_corrupted(tmp_path):
    path = str(tmp_path / LAST)
    np.savez(path, w=np.ones(3), meta=np.array(json.dumps([1, 2])))
    with pytest.raises(UserError, match="is corrupted or truncated .*meta is not a JSON"):
        load_arrays(path)


def test_json_text_prints_undefined_numbers_as_null():
    obj = {"loss": float("nan"), "acc": np.float32(0.5), "m": [np.float64(np.inf), 1.5],
           "pair": (np.array([2.0, -np.inf]), 3), "n": np.int64(7)}
    text = json_text(obj)
    assert text == ('{"loss": null, "acc": 0.5, "m": [null, 1.5], "pair": [[2.0, null], 3], '
                    '"n": 7}')
    json.loads(text)  # strict JSON


def test_a_run_without_format_or_of_another_format_is_refused(tmp_path):
    run = tmp_path / "run"
    ok(train_tiny(tiny_text(tmp_path), run))
    RunDir.open(str(run))  # as written
    info = json.loads((run / CONFIG_FILE).read_text())
    for format_ in (None, 2):
        changed = dict(info)
        if format_ is None:
            del changed["format"]
        else:
            changed["format"] = format_
        (run / CONFIG_FILE).write_text(json.dumps(changed))
        with pytest.raises(UserError, match=f"has format {format_!r}; this recurrent reads "
                                            f"format 1"):
            RunDir.open(str(run))


def test_read_metrics_keeps_json_objects_only(tmp_path):
    (tmp_path / METRICS).write_bytes(b'{"step": 1, "loss": 2.5}\n[1, 2]\n3\n"text"\nnull\n'
                                     b'\xff\xfe\n{"step": 2, "loss": 2.0}\n{"step": 3, "lo')
    assert RunDir(str(tmp_path)).read_metrics() == [{"step": 1, "loss": 2.5},
                                                    {"step": 2, "loss": 2.0}]


# -- cache.py ----------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["off", "OFF", " Off ", "0", "none", "False"])
def test_cache_dir_turned_off_in_any_case(monkeypatch, value):
    monkeypatch.setenv("RECURRENT_CACHE_DIR", value)
    assert cache.cache_dir() is None
    assert cache.entry_path("ns", {"a": 1}) is None
    cache.store("ns", {"a": 1}, {"x": np.ones(2)})  # nothing written, nothing raised
    assert cache.load("ns", {"a": 1}) is None


def test_cache_dir_falls_back_to_xdg_then_home(monkeypatch, tmp_path):
    monkeypatch.setenv("RECURRENT_CACHE_DIR", "  ")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache.cache_dir() == str(tmp_path / "xdg" / "recurrent")
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache.cache_dir() == str(tmp_path / "home" / ".cache" / "recurrent")
    monkeypatch.setenv("RECURRENT_CACHE_DIR", str(tmp_path / "mine"))
    assert cache.cache_dir() == str(tmp_path / "mine")


def test_cache_dir_expands_a_tilde_and_ignores_a_relative_xdg_cache_home(
        monkeypatch, tmp_path):
    """"~/..." as a service file or .env passes it (no shell expands it) is the home
    directory, not a directory named "~" in the working directory; a relative
    XDG_CACHE_HOME is invalid (XDG spec) and ignored."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("RECURRENT_CACHE_DIR", "~/mine")
    assert cache.cache_dir() == str(tmp_path / "home" / "mine")
    monkeypatch.delenv("RECURRENT_CACHE_DIR")
    for relative in ("xdg", "~/xdg"):
        monkeypatch.setenv("XDG_CACHE_HOME", relative)
        assert cache.cache_dir() == str(tmp_path / "home" / ".cache" / "recurrent")
    cache.store("ns", {"a": 1}, {"x": np.ones(2)})
    assert cache.load("ns", {"a": 1})["x"].tolist() == [1.0, 1.0]
    assert sorted(os.listdir(tmp_path)) == ["home"]  # nothing made in the working directory


@pytest.fixture
def cache_root(monkeypatch, tmp_path):
    root = tmp_path / "cache"
    monkeypatch.setenv("RECURRENT_CACHE_DIR", str(root))
    return root


def test_cache_entries_round_trip_per_key_and_namespace(cache_root):
    key = {"data": "ab12", "options": {"k": 3, "level": "char"}, "format": 1}
    cache.store("scores", key, {"x": np.arange(4.0), "name": np.array("ok")})
    # the same key built in another order names the same entry
    again = {"format": 1, "options": {"level": "char", "k": 3}, "data": "ab12"}
    assert cache.entry_path("scores", again) == cache.entry_path("scores", key)
    got = cache.load("scores", again)
    np.testing.assert_array_equal(got["x"], np.arange(4.0))
    assert str(got["name"]) == "ok"
    # the same key in another namespace is another entry
    assert cache.load("fits", key) is None
    cache.store("fits", key, {"x": np.zeros(2)})
    np.testing.assert_array_equal(cache.load("scores", key)["x"], np.arange(4.0))
    np.testing.assert_array_equal(cache.load("fits", key)["x"], np.zeros(2))
    assert sorted(os.listdir(cache_root)) == ["fits", "scores"]


def test_a_key_with_a_tuple_or_a_number_as_dict_key_is_found_again(cache_root):
    # JSON has neither: the stored key is read back as a list and a string key
    key = {"shape": (3, 4), "levels": {1: "char"}}
    cache.store("ns", key, {"x": np.arange(3.0)})
    np.testing.assert_array_equal(cache.load("ns", key)["x"], np.arange(3.0))
    assert cache.load("ns", {"shape": (3, 5), "levels": {1: "char"}}) is None


def test_cache_entry_of_another_key_or_damaged_is_a_miss(cache_root):
    a, b = {"data": "a"}, {"data": "b"}
    cache.store("ns", a, {"x": np.ones(3)})
    # a file in b's place that holds a's entry (a hash collision, a copied cache)
    os.replace(cache.entry_path("ns", a), cache.entry_path("ns", b))
    assert cache.load("ns", b) is None
    with open(cache.entry_path("ns", b), "wb") as f:
        f.write(b"PK\x03\x04 not a zip")
    assert cache.load("ns", b) is None


def test_a_cache_that_cannot_be_written_is_skipped(cache_root):
    cache_root.write_text("a file where the cache directory should be")
    cache.store("ns", {"data": "a"}, {"x": np.ones(3)})  # no error
    assert cache.load("ns", {"data": "a"}) is None


# -- datafile.py -------------------------------------------------------------------------


def test_a_doubled_utf8_byte_order_mark_is_dropped(tmp_path):
    path = tmp_path / "twice.csv"
    path.write_bytes(b"\xef\xbb\xbf\xef\xbb\xbfa,b\n1,2\n")
    assert datafile.read_text(path) == "a,b\n1,2\n"


def test_a_zip_of_many_files_lists_five_and_counts_the_rest(tmp_path):
    for count, listed in ((5, "a0, a1, a2, a3, a4)"), (7, "a0, a1, a2, a3, a4 (and 2 more))")):
        path = tmp_path / f"many{count}.zip"
        with zipfile.ZipFile(path, "w") as archive:
            for i in range(count):
                archive.writestr(f"a{i}", "x\n")
        with pytest.raises(UserError) as e:
            datafile.read_bytes(path, "DATA")
        assert str(e.value) == (f"DATA holds {count} files ({listed}: a data zip must hold "
                                f"exactly one; extract the one you want")


def test_raw_lzma_is_recognised_by_its_extension_in_any_case(tmp_path):
    path = tmp_path / "SERIES.CSV.LZMA"
    path.write_bytes(lzma.compress(b"t,y\n1,2\n", format=lzma.FORMAT_ALONE))
    content = datafile.read(path)
    assert (content.text, content.compression) == ("t,y\n1,2\n", "lzma")


# -- truncation.py -----------------------------------------------------------------------


def test_scatter_suffix_zeroes_the_steps_gathered_from_padding():
    """Rows of lengths 5, 2, 0 with K = 3: row 0 gathers steps 2..4, row 1 steps 0..1
    (its step 2 read padding), row 2 nothing valid; every other step gets zero."""
    from recurrent.truncation import gather_suffix, scatter_suffix, truncation_plan
    lengths = np.array([5, 2, 0])
    prefix, suffix, index = truncation_plan(lengths, 3)
    np.testing.assert_array_equal(index, [[2, 0, 0], [3, 1, 1], [4, 2, 2]])
    h = np.arange(5 * 3, dtype=np.float64).reshape(5, 3, 1)
    np.testing.assert_array_equal(gather_suffix(h, index)[:, :, 0],
                                  [[6, 1, 2], [9, 4, 5], [12, 7, 8]])
    d = scatter_suffix(np.ones((3, 3, 2)), index, suffix, 5)
    want = np.zeros((5, 3))
    want[2:5, 0] = 1
    want[0:2, 1] = 1
    np.testing.assert_array_equal(d[:, :, 0], want)
    np.testing.assert_array_equal(d[:, :, 1], want)


# -- wide.py -----------------------------------------------------------------------------


def _fixed_wide(folds):
    from recurrent.wide import Wide
    return Wide(9, 0, 2, fixed=True, folds=folds)


def test_a_wide_part_of_one_fold_is_refused():
    for folds in (1, -2, 2.0):
        with pytest.raises(ValueError, match="folds: expected 0 or an int >= 2"):
            _fixed_wide(folds)
    assert _fixed_wide(2).folds == 2 and _fixed_wide(0).folds == 0


def test_rows_of_two_tokens_have_their_bigram():
    from recurrent.wide import bigram_features, ngram_features
    from recurrent_plugins.sentiment.text import pad_batch
    x, lengths = pad_batch([[2, 3], [4]])  # T = 2
    f = ngram_features(x, lengths, 9, 16).toarray()
    want = np.zeros((2, 25))
    want[0, [2, 3, int(bigram_features(np.array([2]), np.array([3]), 9, 16)[0])]] = 1
    want[1, 4] = 1
    np.testing.assert_array_equal(f, want)


# -- pretrain.py -------------------------------------------------------------------------


def _lm_config(**changes):
    from recurrent.config import TrainingConfig
    from recurrent_plugins.sentiment import TASK
    options = dict(TrainingConfig.resolve(TASK, {"quiet": True}), hidden=8, threads=1,
                   bidirectional=False)
    return TrainingConfig({**options, **changes})


ROWS = [[2, 3, 4, 5, 2, 3], [3, 4, 5], [5, 4, 3, 2], [2, 2, 3, 3, 4], [4, 5], [3, 2, 5, 4]]


def _fixed_batches(groups, record=None):
    """batches(rng) yielding the rows of each group of ROWS as one padded batch."""
    from recurrent_plugins.sentiment.text import pad_batch

    def batches(rng):
        if record is not None:
            record.append(int(rng.integers(1 << 62)))
        for group in groups:
            yield pad_batch([ROWS[i] for i in group])
    return batches


def _pretrain(config, groups, record=None):
    """One epoch of pretraining (vocabulary 6, embedding 4) over the groups of ROWS."""
    from recurrent.pretrain import pretrain_language_model
    return pretrain_language_model(config, 6, 4, _fixed_batches(groups, record), 1)


def test_pretraining_loss_is_the_mean_over_predicted_tokens():
    """With a learning rate too small to move a float32 weight, each batch's loss is that
    of the initial model, and an epoch's loss is their mean weighted by predicted tokens
    (5 + 2 tokens and 3 + 4 + 1 tokens here), not the mean of the two batches."""
    config = _lm_config(lr=1e-30, optimizer="sgd")
    (_, [[a]]) = _pretrain(config, [[0, 1]])
    (_, [[b]]) = _pretrain(config, [[2, 3, 4]])
    (_, [[both]]) = _pretrain(config, [[0, 1], [2, 3, 4]])
    assert a != pytest.approx(b, rel=1e-3)
    assert both == pytest.approx((7 * a + 8 * b) / 15, rel=1e-6)


def test_pretraining_ignores_the_runs_dropout():
    """The language models train without dropout, recurrent dropout or zoneout: a run
    with them pretrains exactly as one without."""
    plain_values, plain_losses = _pretrain(_lm_config(layers=2), [[0, 1, 2], [3, 4, 5]])
    values, losses = _pretrain(
        _lm_config(layers=2, dropout=0.5, recurrent_dropout=0.3, zoneout=0.2),
        [[0, 1, 2], [3, 4, 5]])
    assert losses == plain_losses
    assert set(values) == set(plain_values)
    for name in values:
        np.testing.assert_array_equal(values[name], plain_values[name])


def test_a_batch_with_nothing_to_predict_changes_nothing():
    """A batch of one-token rows has no next token: no step is taken for it (an optimizer
    step on it would still move Adam's moments)."""
    from recurrent.pretrain import pretrain_language_model
    from recurrent_plugins.sentiment.text import pad_batch

    def batches(extra):
        def make(rng):
            yield pad_batch([ROWS[0], ROWS[1]])
            if extra:
                yield pad_batch([[2], [5], [3]])
            yield pad_batch([ROWS[2], ROWS[3]])
        return make

    config = _lm_config(optimizer="adam")
    plain = pretrain_language_model(config, 6, 4, batches(False), 2)
    with_singles = pretrain_language_model(config, 6, 4, batches(True), 2)
    assert with_singles[1] == plain[1]
    for name in plain[0]:
        np.testing.assert_array_equal(with_singles[0][name], plain[0][name])


def test_pretraining_shuffles_with_a_generator_of_the_seed_per_direction():
    """batches(rng) gets a generator drawn from the run's seed: another seed shuffles
    otherwise, and the reverse model's passes are shuffled apart from the forward's."""
    draws = {}
    for seed in (1, 2):
        draws[seed] = []
        _pretrain(_lm_config(seed=seed, bidirectional=True), [[0, 1]], draws[seed])
    assert len(draws[1]) == 2  # one epoch of each direction
    assert draws[1][0] != draws[2][0]
    assert draws[1][0] != draws[1][1]
    again = []
    _pretrain(_lm_config(seed=1, bidirectional=True), [[0, 1]], again)
    assert again == draws[1]


# -- memo.py -----------------------------------------------------------------------------


def test_rows_key_tells_dtypes_of_the_same_bytes_apart():
    from recurrent.memo import rows_key
    assert rows_key(np.zeros(3)) != rows_key(np.zeros(3, np.int64))
    assert rows_key(np.zeros(2, np.float32)) != rows_key(np.zeros(2, np.int32))


# -- candidates.py -----------------------------------------------------------------------


def _choosing_run(tmp_path):
    """A run directory choosing between two candidates, written as JSON and .npz files
    (no training): RUN holds a stale metrics.jsonl and loss.png of an earlier copy."""
    run = tmp_path / "run"
    overrides = [{"inputs": "level"}, {"inputs": "relative"}]
    base = {"task": "forecast", "task_state": {}, "model_spec": {}, "version": "x",
            "format": 1}
    for k, override in enumerate(overrides):
        path = run / f"candidate-{k}"
        path.mkdir(parents=True)
        (path / CONFIG_FILE).write_text(json.dumps({**base, "config": {"lr": 0.1,
                                                                       **override}}))
        save_arrays(str(path / LAST), {"w": np.full(2, k)}, {"step": 10 + k})
        save_arrays(str(path / "best.npz"), {"w": np.full(2, 10 * k)}, {"step": 5 + k})
    (run / CONFIG_FILE).write_text(json.dumps({**base, "config": {"lr": 0.1,
                                                                   "inputs": "auto"},
                                               "candidates": overrides}))
    (run / METRICS).write_text('{"step": 3}\n')
    (run / "loss.png").write_bytes(b"\x89PNG stale")
    (run / "candidate-0" / METRICS).write_text('{"step": 4}\n')
    return RunDir(str(run))


def test_adopting_a_candidate_copies_its_files_and_drops_those_it_lacks(tmp_path):
    run = _choosing_run(tmp_path)
    candidates.adopt(run, 1, [0.5, 0.25], "loss")
    assert sorted(os.listdir(run.path)) == ["best.npz", "candidate-0", "candidate-1",
                                            "config.json", "last.npz"]
    arrays, meta = load_arrays(run.file(LAST))
    np.testing.assert_array_equal(arrays["w"], [1, 1])
    assert meta == {"step": 11}
    info = run.info()
    assert info["config"] == {"lr": 0.1, "inputs": "relative"}
    assert info["chose"] == {"candidates": [{"inputs": "level"}, {"inputs": "relative"}],
                             "scores": [0.5, 0.25], "chosen": 1, "select_by": "loss",
                             "diverged": [], "given": {"inputs": "auto"}}
    assert "candidates" not in info and candidates.pending(info) == []


def test_a_plain_run_is_not_one_whose_candidates_all_diverged(tmp_path):
    run = _choosing_run(tmp_path)
    assert not candidates.all_diverged(run)
    for k in (0, 1):
        (tmp_path / "run" / f"candidate-{k}" / checkpoint.DIVERGED).write_text("{}")
    assert candidates.all_diverged(run)
    candidates.adopt(run, 1, [None, None], "loss")  # now a plain run: no candidates
    assert not candidates.all_diverged(run)


SMALL_FORECAST = ("--window", 8, "--steps", 4, "--hidden", 8, "--threads", 1, "--quiet",
                  "--no-plot")  # --inputs auto: two candidates, level and relative


def test_candidates_are_checked_for_task_and_options_but_not_resumable_ones(
        tmp_path, monkeypatch):
    from recurrent.checkpoint import write_json
    from recurrent.trainer import Trainer
    part = tmp_path / "part"
    monkeypatch.setattr(Trainer, "_stop_requested", lambda self: self.position.step == 2)
    assert invoke("train", "forecast", *SMALL_FORECAST, "--out", part).exit_code == 130
    monkeypatch.undo()
    run = RunDir(str(part))
    info = run.info()
    assert len(candidates.pending(info)) == 2
    # a resume cut off after it wrote the run's new options, before the candidates'
    info["config"].update(steps=6, patience=3, quiet=False)
    write_json(run.file(CONFIG_FILE), info)
    assert [c.path for c in candidates.check(run)] == [str(part / "candidate-0"),
                                                       str(part / "candidate-1")]
    info["task"] = "char-lm"
    write_json(run.file(CONFIG_FILE), info)
    with pytest.raises(UserError, match="candidate-0 does not belong to the run .*: its "
                                        "task differs from the run's"):
        candidates.check(run)


def test_a_choosing_run_checks_every_candidate_directory_before_writing(tmp_path):
    out = tmp_path / "out"
    (out / "candidate-1").mkdir(parents=True)
    (out / "candidate-1" / LAST).write_bytes(b"someone's checkpoint")
    one_line_error(invoke("train", "forecast", *SMALL_FORECAST, "--out", out),
                   "candidate-1 holds a run's last.npz without its config.json")
    assert os.listdir(out) == ["candidate-1"]
    assert os.listdir(out / "candidate-1") == [LAST]


def test_atomic_write_keeps_a_replaced_files_mode_and_a_symlink(tmp_path):
    """A file replaced keeps its permissions (a plot a user made group-readable only), and
    a symbolic link stays a link: the file it names gets the new content."""
    import os
    from recurrent.checkpoint import atomic_write
    target = tmp_path / "real.png"
    target.write_bytes(b"old")
    os.chmod(target, 0o640)
    link = tmp_path / "link.png"
    link.symlink_to(target)
    atomic_write(str(link), lambda f: f.write(b"new"), follow_link=True)
    assert link.is_symlink() and target.read_bytes() == b"new"
    assert (target.stat().st_mode & 0o777) == 0o640
    fresh = tmp_path / "fresh.png"
    old_umask = os.umask(0o022)
    try:
        atomic_write(str(fresh), lambda f: f.write(b"x"))
    finally:
        os.umask(old_umask)
    assert (fresh.stat().st_mode & 0o777) == 0o644
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fresh.png", "link.png", "real.png"]


def test_a_link_in_a_run_directory_never_sends_its_writes_elsewhere(tmp_path):
    """A run's checkpoints and config.json replace a symbolic link where they are (a
    directory of links to another run's files, `cp -rs`; a link to a file that is not a
    run's): the file the link names keeps its content, and a dangling link is replaced,
    not followed to create a file elsewhere."""
    from recurrent.checkpoint import save_arrays, write_json
    other, run = tmp_path / "other", tmp_path / "run"
    other.mkdir()
    run.mkdir()
    (other / "last.npz").write_bytes(b"the other run's checkpoint")
    (other / "config.json").write_text("{}")
    for name in ("last.npz", "config.json"):
        (run / name).symlink_to(other / name)
    (run / "best.npz").symlink_to(tmp_path / "elsewhere" / "best.npz")  # dangling
    save_arrays(str(run / "last.npz"), {"w": np.zeros(2)}, {})
    write_json(str(run / "config.json"), {"a": 1})
    save_arrays(str(run / "best.npz"), {"w": np.ones(2)}, {})
    assert (other / "last.npz").read_bytes() == b"the other run's checkpoint"
    assert (other / "config.json").read_text() == "{}"
    assert not (tmp_path / "elsewhere").exists()
    for name in ("last.npz", "config.json", "best.npz"):
        assert not (run / name).is_symlink() and (run / name).is_file(), name
    assert sorted(os.listdir(run)) == ["best.npz", "config.json", "last.npz"]


def test_a_run_copied_as_links_resumes_without_writing_into_the_original(tmp_path):
    """`cp -rs A B; recurrent train --resume B`: B's checkpoints, config.json and
    metrics.jsonl become its own files (metrics.jsonl keeping A's records before B's);
    A's files are left as they are (no record is appended through the link)."""
    import shutil
    original, copy = tmp_path / "A", tmp_path / "B"
    ok(train_tiny(tiny_text(tmp_path), original, "--steps", 3))
    before = {p.name: p.read_bytes() for p in original.iterdir()}
    copy.mkdir()
    for path in original.iterdir():
        (copy / path.name).symlink_to(path)
    ok(invoke("train", "--resume", copy, "--steps", 6, "--quiet"))
    assert {p.name: p.read_bytes() for p in original.iterdir()} == before
    metrics = copy / "metrics.jsonl"
    assert not metrics.is_symlink()
    assert metrics.read_bytes().startswith(before["metrics.jsonl"])
    assert len(metrics.read_bytes()) > len(before["metrics.jsonl"])
    shutil.rmtree(copy)


def test_metrics_of_a_run_copied_as_hard_links_or_read_only_links_become_its_own(tmp_path):
    """cp -al (hard links) appended the copy's records into the original's metrics.jsonl;
    a symbolic link to a read-only original became a read-only file (the append then
    fails for a non-root user); a link to a removed file failed the append."""
    import stat
    from recurrent.checkpoint import RunDir
    original, copy = tmp_path / "A", tmp_path / "B"
    original.mkdir()
    copy.mkdir()
    RunDir(str(original)).append_metrics({"kind": "a"})
    before = (original / "metrics.jsonl").read_bytes()
    os.link(original / "metrics.jsonl", copy / "metrics.jsonl")  # cp -al
    RunDir(str(copy)).append_metrics({"kind": "b"})
    assert (original / "metrics.jsonl").read_bytes() == before
    assert (copy / "metrics.jsonl").read_bytes().startswith(before)
    assert os.stat(copy / "metrics.jsonl").st_nlink == 1
    os.remove(copy / "metrics.jsonl")
    os.chmod(original / "metrics.jsonl", 0o444)  # cp -rs of a read-only run
    (copy / "metrics.jsonl").symlink_to(original / "metrics.jsonl")
    RunDir(str(copy)).append_metrics({"kind": "b"})
    assert not (copy / "metrics.jsonl").is_symlink()
    assert stat.S_IMODE(os.stat(copy / "metrics.jsonl").st_mode) & stat.S_IWUSR
    assert (original / "metrics.jsonl").read_bytes() == before
    os.remove(copy / "metrics.jsonl")
    (copy / "metrics.jsonl").symlink_to(tmp_path / "removed.jsonl")
    RunDir(str(copy)).append_metrics({"kind": "b"})
    assert not (copy / "metrics.jsonl").is_symlink()
    assert not (tmp_path / "removed.jsonl").exists()
    assert RunDir(str(copy)).read_metrics() == [{"kind": "b"}]
