"""`--data` given again on resume is judged by the file the run reads (Task.read_files),
not by the path as it was typed at training: from another working directory, another
spelling of that file is no change, and a file of the same relative path there is
another file, refused in one line that names the run's."""
from __future__ import annotations

import shutil

from helpers import invoke, ok, one_line_error, tiny_text, train_tiny


def test_data_on_resume_names_the_file_the_run_reads(tmp_path, monkeypatch):
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    text = tiny_text(first)
    monkeypatch.chdir(first)
    ok(train_tiny(text.name, first / "run"))
    shutil.copy(text, second / text.name)  # another file of that relative path
    (second / text.name).write_text(text.read_text(encoding="utf-8").upper(),
                                    encoding="utf-8")
    monkeypatch.chdir(second)
    before = (first / "run" / "config.json").read_bytes()
    one_line_error(invoke("train", "--resume", first / "run", "--steps", 3, "--data",
                          text.name, "--quiet"),
                   f"--data cannot change when resuming (the run reads {str(text)!r})")
    assert (first / "run" / "config.json").read_bytes() == before
    ok(invoke("train", "--resume", first / "run", "--steps", 3, "--data",
              f"../first/{text.name}", "--quiet"))


def test_every_task_reports_the_file_it_reads(task_runs):
    """Each built-in task's read_files: the absolute path of the file given as --data,
    nothing for its bundled data."""
    import json
    import os

    from recurrent import plugins
    for name, run in task_runs.items():
        info = json.loads((run / "config.json").read_text())
        read = plugins.get_task(name).read_files(info["task_state"])
        if name == "forecast":  # trained on a bundled series (--data sunspots)
            assert read == {}, name
        else:
            given = info["config"]["data"]
            assert read == {"data": os.path.abspath(given)} and os.path.isfile(given), name
