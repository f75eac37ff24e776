"""char-lm as a user drives it with their own text files: a run whose training file is gone
when `eval --data` scores another file, a zip the reader cannot open although it is intact
(encrypted, or compressed with a method zipfile lacks), and `predict --stream` fed a file
saved with a UTF-8 byte-order mark, and a file that repeats the training text."""
import base64
import json
import struct
import subprocess
import sys
import zipfile

import numpy as np
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
    fitted on its training split): when that file is gone, the note that leaves them out
    must say so, not only name a file the user never gave."""
    path, data = run
    moved = tmp_path / "moved"
    moved.mkdir()
    other = tmp_path / "other.txt"
    other.write_text("the lazy dog.\n", encoding="utf-8")
    data.rename(moved / data.name)
    try:
        report = ok(invoke("eval", path, "--data", other, "--threads", 1))
        assert (f"baselines left out (they are fitted on the run's training split): data "
                f"file not found: {data}; that is the data this run was trained on") in report
        one_line_error(invoke("eval", path, "--threads", 1),
                       f"{data}, the data {path} was trained on, is gone",
                       "--split valid --data NEW")
    finally:
        (moved / data.name).rename(data)
    assert "left out" not in ok(invoke("eval", path, "--data", other, "--threads", 1))


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


def test_eval_data_notes_the_characters_that_repeat_the_training_text(tmp_path):
    """`eval --data` of a file that copies part of the training text says how many of its
    scored characters end a 50-character passage of the training split, counted here
    with plain string slices."""
    from recurrent_plugins.char_lm import text as char_text
    whole = char_text.read_text(char_text.bundled_path())[:40_000]
    plays = tmp_path / "plays.txt"
    plays.write_text(whole, encoding="utf-8")
    run = tmp_path / "run"
    ok(train_tiny(plays, run))
    n_train = json.loads((run / "config.json").read_text())["task_state"]["n_train"]
    trained, held_out = whole[:n_train], whole[n_train:]
    passages = {trained[i:i + 50] for i in range(len(trained) - 49)}

    def expected(content):
        return sum(content[i - 49:i + 1] in passages for i in range(49, len(content)))

    copied = tmp_path / "copied.txt"
    content = trained[5000:8000] + held_out
    copied.write_text(content, encoding="utf-8")
    metrics = json.loads(ok(invoke("eval", run, "--data", copied, "--json")))["metrics"]
    assert 3000 - 49 <= metrics["train_overlap"] == expected(content) < 3000 - 49 + 50
    lines = ok(invoke("eval", run, "--data", copied)).splitlines()
    assert lines[1] == (f"note: {metrics['train_overlap']} of the {metrics['chars']} scored "
                        f"characters (each with the 49 before it) are in the run's training "
                        f"split (as the model reads them): their scores are not held-out "
                        f"scores")
    fresh = tmp_path / "fresh.txt"
    fresh.write_text(held_out, encoding="utf-8")
    metrics = json.loads(ok(invoke("eval", run, "--data", fresh, "--json")))["metrics"]
    assert metrics["train_overlap"] == expected(held_out) == 0  # no note then
    assert ok(invoke("eval", run, "--data", fresh)).splitlines()[1].startswith("metric ")



def test_training_overlap_counts_repeats_on_both_sides_exactly():
    """passages_seen counts each position of the file whose passage the training split
    holds, however often either side repeats it, and none across a join of two copies."""
    from recurrent_plugins.char_lm import metrics as char_metrics
    rng = np.random.default_rng(0)
    train = rng.integers(0, 80, 300_000)
    ids = np.concatenate([train[1000:3000], train[1000:3000], rng.integers(0, 80, 300_000)])
    seen = char_metrics.passages_seen(np.concatenate([train, train[:5000]]), ids)
    assert seen == 2 * (2000 - 49)


def test_predict_primes_a_crlf_run_with_its_own_line_break(tmp_path):
    """A run trained on CRLF text starts its sample from "\\r\\n" as the training text
    breaks lines, not from a bare "\\n" it never saw without "\\r" before it."""
    data = tmp_path / "crlf.txt"
    data.write_bytes(b"the quick brown fox jumps over the lazy dog.\r\n" * 60)
    path = tmp_path / "run"
    ok(train_tiny(data, path))
    assert json.loads((path / "config.json").read_text())["task_state"]["line_break"] == "\r\n"
    # --length 0 prints the prime alone (click's CliRunner.output would fold "\r\n")
    printed = invoke("predict", path, "--length", 0)
    assert printed.exit_code == 0, printed.output
    assert printed.stdout_bytes == b"\r\n"


def test_eval_data_with_windows_line_ends_says_so(task_runs, tmp_path):
    """A run trained on text with "\\n" line ends, evaluated on the same kind of text
    saved with "\\r\\n": the one line says the line ends are the cause."""
    data = tmp_path / "crlf.txt"
    data.write_bytes(b"the quick brown fox jumps over the lazy dog.\r\n" * 60)
    one_line_error(invoke("eval", task_runs["char-lm"], "--data", data),
                   "not in the model's vocabulary: '\\r'", "Windows line ends", "dos2unix")


def test_composed_and_decomposed_accents_read_alike(tmp_path):
    """Trained on a text whose accents are decomposed (e + U+0301), a run reads "é"
    composed or decomposed as the same character: --prime, --stream lines and an
    eval --data file in the other form are read, not refused as unknown characters."""
    import unicodedata
    sentence = "le café est déjà là, voilà l'élève.\n"
    decomposed = tmp_path / "nfd.txt"
    decomposed.write_text(unicodedata.normalize("NFD", sentence * 60), encoding="utf-8")
    composed = tmp_path / "nfc.txt"
    composed.write_text(sentence * 10, encoding="utf-8")
    out = tmp_path / "run"
    ok(train_tiny(decomposed, out))
    texts = [ok(invoke("predict", out, "--prime", unicodedata.normalize(form, "café"),
                       "--length", 20, "--seed", 3))
             for form in ("NFC", "NFD")]
    assert texts[0] == texts[1]
    answer = ok(CliRunner().invoke(cli, ["predict", str(out), "--stream"],
                                   input="caf\u00e9\n"))
    assert "error" not in json.loads(answer)
    report = json.loads(ok(invoke("eval", out, "--data", composed, "--json")))
    assert report["metrics"]["chars"] > 0


@pytest.mark.parametrize("encoding, source", [("windows-1252", "windows-1252"),
                                              ("latin-1", "latin1"), ("utf-8", "latin1")])
def test_a_text_saved_in_a_windows_code_page_is_told_to_convert_from_it(tmp_path, encoding,
                                                                        source):
    """Curly quotes and dashes saved in Windows-1252 are bytes 0x80-0x9f, control
    characters in Latin-1: the conversion the refusal suggests is from the code page that
    reads them as the characters they are. UTF-8 quotes, whose bytes include 0x80-0x9f
    too, beside one Latin-1 byte, keep the Latin-1 advice."""
    quoted = "the café said “hello” – twice.\n" * 80
    raw = {"windows-1252": quoted.encode("cp1252"),
           "latin-1": ("the café said hello twice.\n" * 80).encode("latin-1"),
           "utf-8": quoted.encode("utf-8") + "café\n".encode("latin-1")}[encoding]
    path = tmp_path / "text.txt"
    path.write_bytes(raw)
    result = invoke("train", "char-lm", "--data", path, "--threads", 1, "--out",
                    tmp_path / "run")
    one_line_error(result, f"{path} is not UTF-8 text", f"iconv -f {source} -t utf-8")
    assert not (tmp_path / "run").exists()


def test_data_files_are_named_by_the_path_given(run, tmp_path, monkeypatch):
    """Two files of one name in different folders: each refusal names the one given, as
    typed, as the other tasks' refusals do."""
    path, _ = run
    monkeypatch.chdir(tmp_path)
    for folder, text in (("a", "hello world!"), ("b", "To be, or not to be.\n")):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "short.txt").write_text(text, encoding="utf-8")
    (tmp_path / "b" / "empty.txt").write_text("", encoding="utf-8")
    (tmp_path / "b" / "one.txt").write_text("t", encoding="utf-8")
    train = ("train", "char-lm", "--threads", 1, "--out", tmp_path / "run")
    one_line_error(invoke(*train, "--data", "a/short.txt"),
                   "Error: a/short.txt has 12 characters, shorter than one training window")
    one_line_error(invoke(*train, "--data", "b/short.txt", "--max-chars", 5),
                   "--max-chars 5 keeps 5 characters of b/short.txt (which has 21)")
    one_line_error(invoke(*train, "--data", "b/empty.txt"),
                   "Error: b/empty.txt is empty: char-lm needs UTF-8 text")
    assert not (tmp_path / "run").exists()
    one_line_error(invoke("eval", path, "--data", "b/short.txt"),
                   "Error: b/short.txt has characters not in the model's vocabulary: ','")
    one_line_error(invoke("eval", path, "--data", "b/one.txt"),
                   "Error: b/one.txt has 1 character(s): evaluation needs at least 2")


def test_a_training_text_that_reads_empty_is_named_as_the_runs_data(tmp_path):
    """`eval RUN` and `--resume` read the run's own text again: when it reads empty (the
    file emptied since, or a run trained on standard input given nothing there), the
    refusal says that it is the run's training data, as the other tasks' do, not only
    that char-lm needs text, which reads as if the command had been given a file."""
    data = tiny_text(tmp_path)
    path = tmp_path / "run"
    ok(train_tiny(data, path))
    data.write_text("", encoding="utf-8")
    named = (f"Error: {data} is empty", "(the data this run was trained on)")
    one_line_error(invoke("eval", path, "--threads", 1), *named)
    one_line_error(invoke("train", "--resume", path, "--steps", 3), *named)
    tiny_text(tmp_path)  # the text again, piped into a run that reads standard input
    piped = tmp_path / "piped"
    # -P: the package on the path, not a source tree in the working directory
    recurrent = [sys.executable, "-P", "-m", "recurrent"]
    with open(data, "rb") as stdin:
        trained = subprocess.run([*recurrent, "train", "char-lm", "--data", "-",
                                  "--steps", "2", "--hidden", "8", "--threads", "1",
                                  "--quiet", "--no-plot", "--out", str(piped)],
                                 stdin=stdin, capture_output=True, timeout=300)
    assert trained.returncode == 0, trained.stderr
    done = subprocess.run([*recurrent, "eval", str(piped)], stdin=subprocess.DEVNULL,
                          capture_output=True, timeout=300)
    one_line_error(done, "Error: /dev/stdin is empty", "(the data this run was trained on)")
