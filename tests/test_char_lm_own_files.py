"""char-lm as a user drives it with their own text files: a run whose training file is gone
when `eval --data` scores another file, a zip the reader cannot open although it is intact
(encrypted, or compressed with a method zipfile lacks), and `predict --stream` fed a file
saved with a UTF-8 byte-order mark."""
import base64
import json
import struct
import zipfile

import pytest
from click.testing import CliRunner
from helpers import invoke, ok, one_line_error, tiny_text, train_tiny

from recurrent.cli import cli

pytest.importorskip("recurrent_plugins.cells",
                    reason="the fast built-in cells (recurrent_plugins.cells) are not built")

# `zip -X -P pw e.zip small.txt` (Info-ZIP 3.0) of "To be, or not to be.\n": a whole,
# password-protected archive (zipfile reads it back with pwd=b"pw")
ENCRYPTED_ZIP = base64.b64decode(
    "UEsDBBQACQAIADgvhl0ZbWm+IAAAABUAAAAJAAAAc21hbGwudHh0JWKCqw/m/W2S1mSogQR6CNRNatDfmwgW"
    "SSeZ7jYC5vZQSwcIGW1pviAAAAAVAAAAUEsBAh4DFAAJAAgAOC+GXRltab4gAAAAFQAAAAkAAAAAAAAAAQAA"
    "AKSBAAAAAHNtYWxsLnR4dFBLBQYAAAAAAQABADcAAABXAAAAAAA=")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A tiny char-lm run and its training text (in a directory of its own)."""
    directory = tmp_path_factory.mktemp("own")
    data = tiny_text(directory)
    path = directory / "run"
    ok(train_tiny(data, path))
    return path, data


def test_eval_data_says_the_missing_file_is_the_runs_training_data(run, tmp_path):
    """`eval RUN --data OTHER` also reads the run's own training file (the baselines are
    fitted on its training split): when that file is gone, the one line must say so, not
    only name a file the user never gave."""
    path, data = run
    moved = tmp_path / "moved"
    moved.mkdir()
    other = tmp_path / "other.txt"
    other.write_text("the lazy dog.\n", encoding="utf-8")
    data.rename(moved / data.name)
    try:
        one_line_error(invoke("eval", path, "--data", other, "--threads", 1),
                       f"data file not found: {data}",
                       "the data this run was trained on",
                       "eval's baselines, with --data too, are fitted on its training split")
        one_line_error(invoke("eval", path, "--threads", 1), f"data file not found: {data}")
    finally:
        (moved / data.name).rename(data)
    ok(invoke("eval", path, "--data", other, "--threads", 1))


def test_an_encrypted_zip_is_not_called_corrupt(tmp_path):
    path = tmp_path / "text.zip"
    path.write_bytes(ENCRYPTED_ZIP)
    result = invoke("train", "char-lm", "--data", path, "--threads", 1, "--out",
                    tmp_path / "run")
    one_line_error(result, "text.zip is an encrypted zip", "small.txt", "password")
    assert "corrupt" not in result.stderr
    assert not (tmp_path / "run").exists()


def test_a_zip_method_zipfile_lacks_is_named_not_called_corrupt(tmp_path):
    """An archive whose member is stored with Deflate64 (method 9, what Windows Explorer
    writes for large files): intact, but zipfile has no decompressor for it."""
    text = ("the quick brown fox jumps over the lazy dog.\n" * 60).encode()
    plain = tmp_path / "stored.zip"
    with zipfile.ZipFile(plain, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("text.txt", text)
    raw = bytearray(plain.read_bytes())
    raw[8:10] = struct.pack("<H", 9)  # the local header's method
    central = raw.find(b"PK\x01\x02")
    raw[central + 10:central + 12] = struct.pack("<H", 9)  # the central directory's
    path = tmp_path / "deflate64.zip"
    path.write_bytes(bytes(raw))
    result = invoke("train", "char-lm", "--data", path, "--threads", 1, "--out",
                    tmp_path / "run")
    one_line_error(result, "deflate64.zip is compressed with deflate64", "text.txt")
    assert "corrupt" not in result.stderr


def test_stream_drops_a_byte_order_mark_opening_stdin(run):
    """A file saved with a UTF-8 byte-order mark, piped into `predict --stream`: the mark
    is no character of the first line (as datafile drops a data file's), so that line is
    answered as it is without it; a later U+FEFF is text and stays."""
    path, _ = run
    plain = CliRunner().invoke(cli, ["predict", str(path), "--stream"],
                               input=b"the quick\nbrown\n")
    marked = CliRunner().invoke(cli, ["predict", str(path), "--stream"],
                                input=b"\xef\xbb\xbfthe quick\nbrown\n")
    assert plain.exit_code == 0, plain.output + plain.stderr
    assert marked.exit_code == 0, marked.output + marked.stderr
    assert [json.loads(line) for line in marked.stdout.splitlines()] == \
        [json.loads(line) for line in plain.stdout.splitlines()]
    later = CliRunner().invoke(cli, ["predict", str(path), "--stream"],
                               input=b"the\n\xef\xbb\xbfbrown\n")
    assert later.exit_code == 1
    assert "'\\ufeff'" in later.stderr
