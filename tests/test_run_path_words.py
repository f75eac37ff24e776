"""Run directories whose names a shell or the command line reads otherwise: the commands
train, export and import print name them so that, pasted into a shell, they reach the same
directory (a space, a quote, a leading "-"), and an --out that is a symbolic link to a
missing directory is refused in one line saying so."""
from __future__ import annotations

import os
import re
import shlex

import pytest

from helpers import TINY_RUN, invoke, ok, one_line_error, tiny_text


def _commands(output: str) -> list[list[str]]:
    """The `recurrent ...` commands between backquotes in ``output``, split as a shell
    splits them."""
    return [shlex.split(text) for text in re.findall(r"`(recurrent [^`]*)`", output)]


@pytest.mark.parametrize("name", ["-dash run", "it's $HOME"])
def test_the_printed_commands_name_the_run_as_the_shell_reads_them(tmp_path, monkeypatch,
                                                                    name):
    monkeypatch.chdir(tmp_path)
    text = tiny_text(tmp_path)
    done = ok(invoke("train", "char-lm", "--data", text, "--steps", 2, "--hidden", 8,
                     "--embed-dim", 4, "--seq-len", 16, "--threads", 1, "--no-plot",
                     "--out", name))
    commands = _commands(done.splitlines()[-1])
    assert [c[:2] for c in commands] == [["recurrent", "eval"], ["recurrent", "predict"]]
    for command in commands:
        assert os.path.samefile(command[2], name)
    ok(invoke(*commands[0][1:]))  # the eval command as printed runs
    exported = ok(invoke("export", os.path.join(".", name), "--format", "safetensors",
                         "--out", f"{name}.safetensors"))
    again = shlex.split(exported.splitlines()[-1].split(": ", 1)[1])
    assert again[:2] == ["recurrent", "import"] and os.path.isfile(again[2])
    imported = ok(invoke("import", again[2], "--out", f"{name} imported"))
    (command,) = _commands(imported)
    assert os.path.samefile(command[2], f"{name} imported")


def test_an_out_linked_to_a_missing_directory_is_refused_in_one_line(tmp_path):
    link = tmp_path / "link"
    target = tmp_path / "gone"
    link.symlink_to(target)
    text = tiny_text(tmp_path)
    one_line_error(invoke("train", "char-lm", "--data", text, *TINY_RUN, "--out", link),
                   f"--out {link} is a symbolic link to {target}, which does not exist")
    assert link.is_symlink() and not target.exists()


def test_a_symbolic_link_loop_is_named_as_one(tmp_path):
    # loop1 -> loop2 -> loop1: "does not exist" would send the user looking for a
    # missing directory (or blame loop2); each command names the loop in one line
    loop1, loop2 = tmp_path / "loop1", tmp_path / "loop2"
    loop1.symlink_to(loop2)
    loop2.symlink_to(loop1)
    loop = "is a symbolic link loop"
    text = tiny_text(tmp_path)
    run = tmp_path / "run"
    ok(invoke("train", "char-lm", "--data", text, *TINY_RUN, "--no-plot", "--out", run))
    for args, fragment in [
            (("predict", loop1, "the"), f"run directory {loop1} {loop}"),
            (("eval", loop1), f"run directory {loop1} {loop}"),
            (("train", "--resume", loop1), f"run directory {loop1} {loop}"),
            (("train", "char-lm", "--data", text, *TINY_RUN, "--out", loop1),
             f"--out {loop1} {loop}"),
            (("export", run, "--format", "onnx", "--out", loop1 / "x.onnx"),
             f"directory {loop1} {loop}"),
            (("export", run, "--format", "onnx", "--out", loop1), f"--out {loop1} {loop}"),
            (("import", loop1, "--out", tmp_path / "imported"), f"{loop1} {loop}"),
            (("train", "char-lm", "--data", loop1, *TINY_RUN, "--out", tmp_path / "other"),
             "Too many levels of symbolic links")]:
        line = one_line_error(invoke(*args), fragment)
        assert "does not exist" not in line and "loop2 " not in line, line
    assert loop1.is_symlink() and loop2.is_symlink() and not (tmp_path / "other").exists()
