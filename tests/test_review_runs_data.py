"""Run directories and data files: a metrics line cut off by a killed process does not
swallow the next record, a file that cannot be written (full disk, read-only directory) is
one line naming it, a pipe given as data reads the same each time, an encoding error in a
file with a UTF-8 byte-order mark names the real byte and offset, and huge metrics print
in exponent form while training."""
from __future__ import annotations

import codecs
import errno
import json
import os
import subprocess
import sys
import threading

import numpy as np
import pytest
from helpers import invoke, one_line_error

from recurrent import datafile
from recurrent.checkpoint import METRICS, RunDir, atomic_write
from recurrent.errors import UserError
from recurrent.progress import format_metrics


def test_record_after_a_cut_off_metrics_line_is_kept(tmp_path):
    run = RunDir(str(tmp_path))
    run.append_metrics({"kind": "train", "step": 1})
    run.append_metrics({"kind": "eval", "step": 2})
    path = run.file(METRICS)
    with open(path, "rb") as f:
        data = f.read()
    with open(path, "wb") as f:  # the process was killed while writing the last line
        f.write(data[:-10])
    run.append_metrics({"kind": "train", "step": 3})
    assert [(r["kind"], r["step"]) for r in run.read_metrics()] == [("train", 1), ("train", 3)]


def test_a_file_that_cannot_be_written_is_one_line_naming_it(tmp_path):
    path = str(tmp_path / "last.npz")

    def full(f):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with pytest.raises(UserError, match=r"cannot write .*last\.npz: No space left") as info:
        atomic_write(path, full)
    assert isinstance(info.value, OSError)  # cache writers that skip on OSError still do
    assert os.listdir(tmp_path) == []  # no temporary file left behind


def test_training_on_a_full_disk_is_one_line(tmp_path, monkeypatch):
    data = tmp_path / "corpus.txt"
    data.write_text("the cat sat on the mat. " * 200, encoding="utf-8")
    replace = os.replace

    def full_disk(src, dst, *args, **kwargs):
        if str(dst).endswith("last.npz"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", full_disk)
    result = invoke("train", "char-lm", "--data", data, "--steps", 2, "--hidden", 8,
                    "--threads", 1, "--quiet", "--no-plot", "--out", tmp_path / "run")
    one_line_error(result, "cannot write", "last.npz", "No space left on device")


def test_a_pipe_reads_the_same_content_each_time(tmp_path):
    fifo = str(tmp_path / "pipe")
    os.mkfifo(fifo)
    content = b"year,value\n2000,1\n2001,2\n"

    def writer():
        with open(fifo, "wb") as f:
            f.write(content)

    thread = threading.Thread(target=writer)
    thread.start()
    first = datafile.read_bytes(fifo)
    thread.join(10)
    assert first == content
    again = []  # a task reading its file again (in a thread: a pipe without data blocks)
    reader = threading.Thread(target=lambda: again.append(datafile.read_bytes(fifo)),
                              daemon=True)
    reader.start()
    reader.join(10)
    if reader.is_alive():  # waiting for a writer: give it one that writes nothing
        os.close(os.open(fifo, os.O_WRONLY))
        reader.join(10)
    assert again == [content]


def test_a_later_pipe_at_the_same_path_is_read_afresh():
    # /dev/fd/N names whichever pipe has descriptor N now: the content kept for a pipe
    # belongs to that pipe, not to its path
    contents = []
    for content in (b"first pipe\n", b"second pipe\n"):
        read_end, write_end = os.pipe()
        os.write(write_end, content)
        os.close(write_end)
        contents.append((read_end, datafile.read_bytes(f"/dev/fd/{read_end}")))
        os.close(read_end)
    assert contents[0][0] == contents[1][0]  # the same path both times
    assert [c for _, c in contents] == [b"first pipe\n", b"second pipe\n"]


def test_eval_reads_a_pipe_and_names_a_directory(tmp_path):
    from helpers import ok, write_csv
    rows = [[float(np.sin(i / 3.0) + 0.01 * i)] for i in range(120)]
    path = write_csv(tmp_path / "s.csv", ["v"], rows)
    run = tmp_path / "run"
    ok(invoke("train", "forecast", "--data", path, "--out", run, "--model", "rnn",
              "--window", "8", "--steps", "3", "--threads", "1", "--quiet", "--no-plot"))
    one_line_error(invoke("eval", run, "--data", tmp_path), "data path is a directory, not a file")
    one_line_error(invoke("eval", run, "--data", tmp_path / "none.csv"), "not found")
    read_end, write_end = os.pipe()
    with open(path, "rb") as f:
        payload = f.read()
    writer = threading.Thread(target=lambda: (os.write(write_end, payload),
                                              os.close(write_end)))
    writer.start()
    try:
        piped = json.loads(ok(invoke("eval", run, "--data", f"/dev/fd/{read_end}",
                                     "--json")))
    finally:
        writer.join(10)
        os.close(read_end)
    whole = json.loads(ok(invoke("eval", run, "--data", path, "--json")))
    assert piped["metrics"] == whole["metrics"]


def test_utf8_bom_error_names_the_real_byte_and_offset(tmp_path):
    path = tmp_path / "reviews.csv"
    path.write_bytes(codecs.BOM_UTF8 + b"text,label\nma\xeetre,fresh\n")
    with pytest.raises(UserError, match=r"byte 0xee at offset 16"):
        datafile.read_text(path)


def test_huge_metric_prints_in_exponent_form_while_training():
    line = format_metrics({"loss": 65.16, "perplexity": 1.994e28}, ["loss", "perplexity"])
    assert line == "loss 65.1600  perplexity 1.9940e+28"


def test_a_file_given_as_run_directory_is_named_as_such(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text("x")
    one_line_error(invoke("eval", path), "is a file, not a run directory")


def test_automatic_tuning_measures_no_more_threads_than_cores(tmp_path, monkeypatch):
    import json

    from recurrent import threads, tuning
    monkeypatch.setattr(threads, "openmp_enabled", lambda: True)
    monkeypatch.setattr(threads, "available_cores", lambda: 2)
    monkeypatch.setenv("RECURRENT_NUM_THREADS", "64")  # runs still use at most 2 (cores)
    measured = []

    def fake_tune(budget, num_threads=None, progress=None):
        measured.append(num_threads)
        return tuning.defaults(), []

    monkeypatch.setattr(tuning, "tune", fake_tune)
    path = str(tmp_path / "tuning.json")
    tuning.tune_and_store(1.0, path=path)
    assert measured == [2]
    with open(path, encoding="utf-8") as f:
        assert json.load(f)["threads"] == 2


def test_a_new_run_never_overwrites_the_files_of_a_run_without_config(tmp_path):
    # a run directory whose config.json was lost still holds checkpoints and metrics:
    # --out into it must not replace them
    run = tmp_path / "run"
    run.mkdir()
    (run / "last.npz").write_bytes(b"old checkpoint")
    (run / "metrics.jsonl").write_text('{"kind": "train", "step": 1}\n')
    text = tmp_path / "text.txt"
    text.write_text("a few words of text to model, one character at a time. " * 40)
    one_line_error(invoke("train", "char-lm", "--data", text, "--out", run, "--steps", 1),
                   "holds a run's last.npz, metrics.jsonl without its config.json")
    assert (run / "last.npz").read_bytes() == b"old checkpoint"
    assert sorted(p.name for p in run.iterdir()) == ["last.npz", "metrics.jsonl"]


def test_a_damaged_numeric_option_is_one_line_on_resume(tmp_path):
    # "lr": null in a hand-edited config.json was an internal error (a TypeError)
    from helpers import ok
    text = tmp_path / "text.txt"
    text.write_text("a few words of text to model, one character at a time. " * 40)
    run = tmp_path / "run"
    ok(invoke("train", "char-lm", "--data", text, "--out", run, "--steps", "2", "--quiet",
              "--no-plot", "--threads", "1"))
    config = json.loads((run / "config.json").read_text())
    config["config"]["lr"] = None
    (run / "config.json").write_text(json.dumps(config))
    one_line_error(invoke("train", "--resume", run, "--steps", "4"),
                   "option lr must be a number, got None")


def test_numpy_numbers_are_numbers_for_the_options():
    import numpy as np

    from recurrent.config import TrainingConfig
    from recurrent.plugins import get_task
    task = get_task("char-lm")
    config = TrainingConfig.resolve(task, {"hidden": np.int64(16), "lr": np.float32(0.01),
                                           "seed": np.uint32(3)})
    config.check(task)
    with pytest.raises(UserError, match="option hidden must be a number, got True"):
        TrainingConfig.resolve(task, {"hidden": True}).check(task)


def test_a_named_pipe_is_read_afresh_after_forget_pipes(tmp_path):
    # what each CLI command does first: a named pipe written again is read again
    fifo = str(tmp_path / "pipe")
    os.mkfifo(fifo)

    def read_with(content):
        writer = threading.Thread(target=lambda: open(fifo, "wb").write(content))
        writer.start()
        data = datafile.read_bytes(fifo)
        writer.join(10)
        return data

    assert read_with(b"first\n") == b"first\n"
    datafile.forget_pipes()
    assert read_with(b"second\n") == b"second\n"
    datafile.forget_pipes()


def test_a_run_trained_on_a_shell_pipe_names_it_when_its_data_is_read_again(tmp_path):
    """`--data <(zcat FILE)` trains; the run keeps /dev/fd/N, which is gone by the next
    command: eval and resume say so, not only "not found"."""
    from helpers import installed_env, ok
    text = ("To be, or not to be, that is the question:\n" * 400).encode()
    read_end, write_end = os.pipe()
    writer = threading.Thread(target=lambda: (os.write(write_end, text),
                                              os.close(write_end)))
    writer.start()
    run = tmp_path / "run"
    pipe = f"/dev/fd/{read_end}"
    try:
        ok(invoke("train", "char-lm", "--data", pipe, "--steps", 2, "--hidden", 8,
                  "--threads", 1, "--quiet", "--no-plot", "--out", run))
    finally:
        writer.join(10)
        os.close(read_end)
    for args in (["eval", run], ["train", "--resume", run, "--steps", "4"]):
        # a process of its own, as the next command is (here descriptor N is reused)
        job = subprocess.run([sys.executable, "-m", "recurrent", *map(str, args)],
                             capture_output=True, text=True, env=installed_env(),
                             timeout=120)
        assert job.returncode == 1 and job.stdout == "", job.stdout
        assert job.stderr.strip() == (
            f"Error: data file not found: {pipe}, a pipe such as <(zcat FILE) that lasts "
            f"only while the command given it runs (a run trained on one cannot read its "
            f"data again: train on the file itself)"), job.stderr


@pytest.mark.parametrize("key, value", [("momentum", "0.9"), ("momentum", True),
                                        ("weight_decay", "0.1")])
def test_a_damaged_optimizer_default_option_is_one_line_on_resume(tmp_path, key, value):
    """momentum and weight_decay default to None (the optimizer's own) but hold a number
    when set: a hand-edited text or true is refused in one line, not trained with or an
    internal error."""
    from helpers import ok
    text = tmp_path / "text.txt"
    text.write_text("a few words of text to model, one character at a time. " * 40)
    run = tmp_path / "run"
    ok(invoke("train", "char-lm", "--data", text, "--out", run, "--steps", "2", "--quiet",
              "--no-plot", "--threads", "1", "--optimizer", "rmsprop"))
    config = json.loads((run / "config.json").read_text())
    config["config"][key] = value
    (run / "config.json").write_text(json.dumps(config))
    one_line_error(invoke("train", "--resume", run, "--steps", "4"),
                   f"config.json is corrupted: option {key} (--{key.replace('_', '-')}) "
                   f"is {json.dumps(value)}, not a number")


@pytest.mark.parametrize("key, value, kind", [
    ("seq_len", 64.5, "a whole number"), ("hidden", 8.0, "a whole number"),
    ("batch_size", True, "a whole number"), ("seed", "0", "a whole number"),
    ("dropout", "0.1", "a number"), ("bidirectional", 0, "true or false")])
def test_a_saved_option_of_another_type_is_refused_by_every_command(tmp_path, key, value,
                                                                   kind):
    """A hand-edited config.json whose option holds a value its option could not have
    stored (64.5 for an integer, read later as 64) is a corrupted file for eval, predict,
    export and resume alike, in one line naming the option; the run's files stay."""
    from helpers import TINY_RUN, ok, tiny_text
    run = tmp_path / "run"
    ok(invoke("train", "char-lm", "--data", tiny_text(tmp_path), "--out", run, *TINY_RUN,
              "--no-plot"))
    config = json.loads((run / "config.json").read_text())
    config["config"][key] = value
    (run / "config.json").write_text(json.dumps(config))
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    flag = "--" + key.replace("_", "-")
    for args in (["eval", run], ["predict", run, "--length", "5"],
                 ["export", run, "--format", "safetensors", "--out", tmp_path / "x.st"],
                 ["train", "--resume", run, "--steps", "4"]):
        one_line_error(invoke(*args), f"{run / 'config.json'} is corrupted: option {key} "
                                      f"({flag}) is {json.dumps(value)}, not {kind}")
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before
    assert not (tmp_path / "x.st").exists()


def test_a_task_option_of_another_type_is_refused():
    """The task's own options are checked as the shared ones (forecast's --horizon), and
    an option with a callback or a string value is left to the code that reads it."""
    from recurrent.cli import training_params
    from recurrent.config import saved_option_problem
    from recurrent.plugins import get_task
    params = training_params(get_task("forecast"))
    assert saved_option_problem({"horizon": 12, "window": "auto", "lr": 1}, params) is None
    assert saved_option_problem({"horizon": 12.0}, params) == (
        "option horizon (--horizon) is 12.0, not a whole number")
    assert saved_option_problem({"window": 30, "season": None}, params) is None


def test_a_run_of_a_task_option_of_two_values_opens(tmp_path):
    """A task option of several values (nargs=2) is saved as a list, which is what its
    option stores: the run it trained opens for eval, as its other options are checked."""
    import click
    import train_toys

    import recurrent

    class SpanSign(train_toys.ToySign):
        name = "span-sign"

        def options(self):
            return super().options() + [
                click.Option(["--span"], nargs=2, type=int, default=(2, 8))]

    class Plugin:
        @recurrent.hookimpl
        def register_tasks(self, register):
            register(SpanSign())

    from helpers import ok, registered_plugin
    run = tmp_path / "run"
    with train_toys.registered(), registered_plugin(Plugin(), "test-span-plugin"):
        ok(invoke("train", "span-sign", "--span", 3, 5, "--steps", 2, "--quiet",
                  "--threads", 1, "--out", run))
        assert json.loads((run / "config.json").read_text())["config"]["span"] == [3, 5]
        assert "accuracy" in ok(invoke("eval", run))
