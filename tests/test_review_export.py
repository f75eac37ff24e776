"""`recurrent import` of files it cannot make a run of: a tensor dtype numpy has no type
for (bfloat16, as torch users save), and config.json metadata whose task is not a string
or whose task state is not an object (a run RunDir.open would call corrupted). Each is
refused in one line (a UserError), and no run directory is made."""
import json
import struct

import pytest
from helpers import invoke, ok, one_line_error

from recurrent.errors import UserError
from recurrent.export import safetensors as st
from recurrent.export.run import import_file

TINY = ["--threads", "1", "--quiet", "--no-plot", "--steps", "2", "--eval-every", "0"]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """(tensors, info, path) of a tiny char-lm run's safetensors export."""
    root = tmp_path_factory.mktemp("review_export")
    ok(invoke("train", "char-lm", "--out", root / "run", "--hidden", "4", "--embed-dim", "3",
              "--seq-len", "8", "--batch-size", "2", "--max-chars", "3000", *TINY))
    ok(invoke("export", root / "run", "--format", "safetensors", "--out", root / "f.st"))
    return st.read(str(root / "f.st")) + (root / "f.st",)


def _bfloat16_file(path):
    """A safetensors file with recurrent's metadata and one bfloat16 tensor, written
    byte by byte (8-byte header length, JSON header, data)."""
    header = {"__metadata__": {"format": st.FORMAT, st.CONFIG_KEY: "{}"},
              "head.bias": {"dtype": "BF16", "shape": [2], "data_offsets": [0, 4]}}
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"\x80\x3f\x00\x40")


def test_a_bfloat16_file_is_refused_in_one_line(tmp_path):
    path = tmp_path / "bf16.safetensors"
    _bfloat16_file(path)
    with pytest.raises(UserError, match="bfloat16"):
        st.read(str(path))
    result = invoke("import", path, "--out", tmp_path / "run")
    one_line_error(result, "bfloat16", "float32")
    assert "internal error" not in result.stderr
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("key,value", [("task", ["char-lm"]), ("task_state", [1])])
def test_metadata_of_the_wrong_type_is_refused_before_a_run_is_made(key, value, exported,
                                                                      tmp_path):
    tensors, info, _ = exported
    path = str(tmp_path / "bad.safetensors")
    st.write(path, tensors, dict(info, **{key: value}))
    with pytest.raises(UserError, match=f"{key!r} is not a JSON"):
        import_file(path, str(tmp_path / "run"))
    assert not (tmp_path / "run").exists()
    one_line_error(invoke("import", path, "--out", tmp_path / "run"), key)


def test_an_imported_run_refuses_resume_and_says_what_it_holds(exported, tmp_path):
    # --resume used to find no last.npz, retrain from random weights and overwrite the
    # imported best.npz
    run = tmp_path / "imported"
    ok(invoke("import", exported[2], "--out", run))
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    one_line_error(invoke("train", "--resume", run, "--steps", "3"),
                   "was made by `recurrent import` from f.st and holds no training state",
                   "--resume needs the original run")
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before
    one_line_error(invoke("eval", run, "--checkpoint", "last"),
                   "was made by `recurrent import` and holds best.npz only")
    ok(invoke("eval", run))


@pytest.mark.parametrize("text, said", [("{not json", "Expecting property name"),
                                        ("[1, 2]", "not a JSON object")])
def test_config_metadata_that_is_not_a_json_object_is_refused(exported, tmp_path, text, said):
    """The config.json a file's metadata holds, when it is not JSON or not an object, is
    refused as corrupted in one line before a run is made."""
    from safetensors.numpy import save_file
    tensors, _, _ = exported
    path = tmp_path / "bad.safetensors"
    save_file(tensors, str(path), metadata={"format": st.FORMAT, st.CONFIG_KEY: text})
    one_line_error(invoke("import", path, "--out", tmp_path / "run"),
                   f"{path}: its config.json metadata is corrupted (", said)
    assert not (tmp_path / "run").exists()
