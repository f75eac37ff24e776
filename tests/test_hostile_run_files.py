"""Run directories and exported files from elsewhere, well formed but of absurd or hostile
contents (sizes a config.json or a checkpoint's headers declare, JSON nested past
Python's recursion limit, a device behind a run's file, a name megabytes long): each is
refused in one line, before gigabytes are allocated. The commands that must not allocate
run in a subprocess whose address space is limited, where such an allocation fails."""
import json
import os
import resource
import subprocess
import sys
import zipfile
from functools import partial

import numpy as np
import pytest
from helpers import installed_env, invoke, ok, one_line_error, tiny_text, train_tiny

from recurrent.checkpoint import BEST, CONFIG_FILE, LAST, METRICS

_refused = partial(one_line_error, code=1)

ADDRESS_SPACE = 1500 * 2**20  # room for the command, not for the sizes declared below


def limited(cwd, *args):
    """`recurrent ARGS...` in a subprocess of ADDRESS_SPACE bytes of address space."""
    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))
    return subprocess.run([sys.executable, "-m", "recurrent", *map(str, args)],
                          capture_output=True, text=True, timeout=300, env=installed_env(),
                          cwd=cwd, preexec_fn=limit)


@pytest.fixture
def run(tmp_path):
    path = tmp_path / "run"
    ok(train_tiny(tiny_text(tmp_path), path))
    assert (path / BEST).exists() and (path / LAST).exists()
    return path


def edit_info(run, edit):
    path = run / CONFIG_FILE
    info = json.loads(path.read_text())
    edit(info)
    path.write_text(json.dumps(info))


def test_a_checkpoint_declaring_more_bytes_than_it_holds_is_refused_unallocated(run):
    """An array header declaring 8 GB (the data a compressed zip bomb would inflate to)
    in a file of kilobytes: refused from the headers, not allocated then read."""
    arrays = dict(np.load(run / BEST))
    with zipfile.ZipFile(run / BEST, "w") as archive:
        for name, value in arrays.items():
            with archive.open(name + ".npy", "w") as f:
                if name == "param/head.weight":
                    np.lib.format.write_array_header_1_0(
                        f, {"descr": "<f4", "fortran_order": False, "shape": (2 * 10**5, 10**4)})
                else:
                    np.lib.format.write_array(f, value)
    _refused(limited(run.parent, "eval", run), f"checkpoint {run / BEST}",
                     "declare 8000", "more than the file's")


@pytest.mark.parametrize("key, value", [("hidden", 10**9), ("layers", 10**6),
                                        ("embed_dim", 10**9)])
@pytest.mark.parametrize("command", ["eval", "train --resume"])
def test_config_sizes_beyond_the_checkpoint_are_refused_unallocated(run, key, value,
                                                                    command):
    def edit(info):
        info["model_spec" if key == "embed_dim" else "config"][key] = value
    edit_info(run, edit)
    checkpoint = run / (BEST if command == "eval" else LAST)
    _refused(limited(run.parent, *command.split(), run),
                     f"checkpoint {checkpoint} does not fit this model: it holds fewer "
                     f"parameters than the model's options describe")


def exported_with_metadata(run, tmp_path, rewrite):
    """``run`` exported as safetensors, its config.json metadata text replaced by
    ``rewrite(text)`` in the file's header (the tensors left as they are); the path."""
    exported = tmp_path / "run.safetensors"
    ok(invoke("export", run, "--format", "safetensors", "--out", exported))
    data = exported.read_bytes()
    size = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + size])
    header["__metadata__"]["config.json"] = rewrite(header["__metadata__"]["config.json"])
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    exported.write_bytes(len(text).to_bytes(8, "little") + text + data[8 + size:])
    return exported


def test_import_of_metadata_sizes_beyond_the_file_is_refused_unallocated(run, tmp_path):
    def hidden_1e9(text):
        info = json.loads(text)
        info["config"]["hidden"] = 10**9
        return json.dumps(info)

    exported = exported_with_metadata(run, tmp_path, hidden_1e9)
    _refused(limited(tmp_path, "import", exported, "--out", tmp_path / "imported"),
                     f"{exported} does not fit this model: it holds fewer parameters")
    assert not (tmp_path / "imported").exists()


DEEP = "[" * 100_000 + "]" * 100_000  # past the recursion limit of Python's json


def test_a_config_json_nested_too_deeply_is_refused_in_one_line(run):
    (run / CONFIG_FILE).write_text(DEEP)
    one_line_error(invoke("eval", run), f"{run / CONFIG_FILE} is corrupted or unreadable")


@pytest.mark.parametrize("text", ["[1, 2]", "null", "3"])
@pytest.mark.parametrize("command", [("eval",), ("train", "--resume"), ("predict",)])
def test_a_config_json_that_is_json_but_not_an_object_is_refused_unchanged(run, text,
                                                                           command):
    (run / CONFIG_FILE).write_text(text)
    one_line_error(invoke(*command, run), f"{run / CONFIG_FILE} is corrupted: expected a JSON object")
    assert (run / CONFIG_FILE).read_text() == text


def test_a_metrics_line_nested_too_deeply_is_skipped_on_resume(run):
    with open(run / METRICS, "a") as f:
        f.write(DEEP + "\n")
    ok(invoke("train", "--resume", run, "--steps", 3))


def test_safetensors_metadata_nested_too_deeply_is_refused_in_one_line(run, tmp_path):
    exported = exported_with_metadata(run, tmp_path, lambda text: DEEP)
    one_line_error(invoke("import", exported, "--out", tmp_path / "imported"),
                   "its config.json metadata is corrupted")


@pytest.mark.parametrize("command", [("eval", "{run}"),
                                     ("train", "--resume", "{run}", "--steps", "3")])
def test_a_metrics_file_linked_to_a_device_is_refused_not_read(run, command):
    """metrics.jsonl -> /dev/zero in a run without best.npz (eval reads the records to
    say why; a resume that trains on drops those after its checkpoint): reading it would
    never end."""
    os.remove(run / BEST)
    os.remove(run / METRICS)
    os.symlink("/dev/zero", run / METRICS)
    _refused(limited(run.parent, *(arg.format(run=run) for arg in command)),
                     f"cannot read {run / METRICS}: not a regular file")


def test_an_error_quoting_a_huge_value_is_cut_short(run):
    edit_info(run, lambda info: info["config"].update(cell="x" * 10**6))
    result = invoke("eval", run)
    one_line_error(result, "unknown cell 'xxx", "characters left out",
                   f"(read from {run / CONFIG_FILE})")
    assert len(result.stderr) < 2100
