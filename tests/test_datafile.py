"""recurrent.datafile, the one reader of every task's data files: each compression for each
task, and every bad file a one-line error through the CLI (non-zero exit, no traceback)."""
import bz2
import gzip
import io
import lzma
import zipfile

import numpy as np
import pytest
from helpers import invoke, ok, one_line_error

from recurrent import datafile
from recurrent.errors import UserError
from recurrent_plugins.char_lm import text as char_text
from recurrent_plugins.forecast import series as forecast_series
from recurrent_plugins.sentiment.dataset import read_csv

SENTIMENT_CSV = "text,label\n" + "".join(
    f"{w} film number {i},{'pos' if w == 'good' else 'neg'}\n"
    for i in range(40) for w in ("good", "bad"))
FORECAST_CSV = "t,v\n" + "".join(f"{i},{np.sin(i / 3) + i / 50:.4f}\n" for i in range(80))
CHAR_TEXT = "To be, or not to be, that is the question.\n" * 60


def _zip(payload: bytes, names=("data",)) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in names:
            archive.writestr(name, payload)
    return buffer.getvalue()


# name suffix -> how to pack the bytes
PACKERS = {
    "": lambda b: b,
    ".gz": gzip.compress,
    ".bz2": bz2.compress,
    ".xz": lzma.compress,
    ".lzma": lambda b: lzma.compress(b, format=lzma.FORMAT_ALONE),
    ".zip": _zip,
}


def write(tmp_path, name, payload):
    path = tmp_path / name
    path.write_bytes(payload if isinstance(payload, bytes) else payload.encode("utf-8"))
    return str(path)


def packed(tmp_path, stem, text, suffix, bom=False):
    raw = ("\ufeff" if bom else "").encode("utf-8") + text.encode("utf-8")
    return write(tmp_path, stem + suffix, PACKERS[suffix](raw))


# ---- the module itself ------------------------------------------------------------------

@pytest.mark.parametrize("suffix", list(PACKERS))
def test_every_compression_round_trips_and_drops_the_bom(tmp_path, suffix):
    path = packed(tmp_path, "t.txt", "héllo\nwörld\n", suffix, bom=True)
    content = datafile.read(path)
    assert content.text == "héllo\nwörld\n"
    assert content.compression == {"": None, ".gz": "gzip", ".bz2": "bzip2", ".xz": "xz",
                                   ".lzma": "lzma", ".zip": "zip"}[suffix]


def test_compression_is_recognised_by_content_not_name(tmp_path):
    path = write(tmp_path, "plain_name.csv", gzip.compress(b"a,b\n1,2\n"))
    assert datafile.read_text(path) == "a,b\n1,2\n"


@pytest.mark.parametrize("encoding", ["utf-16", "utf-32"])
def test_utf16_and_utf32_with_a_byte_order_mark(tmp_path, encoding):
    path = write(tmp_path, "t.txt", "naïve, café\n".encode(encoding))  # writes the BOM
    assert datafile.read_text(path) == "naïve, café\n"


def test_zip_ignores_folders_and_macos_metadata(tmp_path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("data/", b"")
        archive.writestr("__MACOSX/data/._x.csv", b"\x00\x05junk")
        archive.writestr("data/x.csv", b"a\n1\n")
    assert datafile.read_text(write(tmp_path, "x.zip", buffer.getvalue())) == "a\n1\n"


def _xlsx() -> bytes:
    return _zip(b"<xml/>", names=("[Content_Types].xml", "xl/workbook.xml"))


def _tar_gz() -> bytes:
    header = b"x.csv".ljust(257, b"\x00") + b"ustar\x0000" + b"\x00" * 243
    return gzip.compress(header + b"a,b\n")


# (file name, bytes, fragment of the one-line message)
BAD_FILES = [
    ("trunc.csv.gz", gzip.compress(FORECAST_CSV.encode())[:-30], "truncated or corrupt gzip data"),
    ("bad.csv.bz2", b"BZh9" + b"\x17" * 40, "truncated or corrupt bzip2 data"),
    ("trunc.csv.xz", lzma.compress(FORECAST_CSV.encode())[:-30], "truncated or corrupt xz data"),
    ("named.csv.gz", b"t,v\n1,2\n", "its name says gzip but the content is not gzip data"),
    ("bad.zip", b"PK\x03\x04 not really a zip", "truncated or corrupt zip data"),
    ("two.zip", _zip(b"t,v\n", names=("a.csv", "b.csv")),
     "holds 2 files (a.csv, b.csv): a data zip must hold exactly one"),
    ("empty.zip", _zip(b"", names=()), "is an empty zip archive"),
    ("sheet.xlsx", _xlsx(), "is an Excel workbook (.xlsx), not text: save it as CSV"),
    ("latin1.csv", "t,v\ncafé,1\n".encode("latin-1"),
     "is not UTF-8 text (byte 0xe9 at offset 7; tried UTF-8): convert it to UTF-8"),
    ("latin1.csv.gz", gzip.compress("t,v\ncafé,1\n".encode("latin-1")),
     "(byte 0xe9 at offset 7 of the decompressed content; tried UTF-8): decompress it and "
     "convert it to UTF-8"),
    ("image.csv", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "is a PNG image, not text"),
    ("blob.bin", b"\x01\x02\x03\x00\x05\x06", "looks binary (NUL byte at offset 3), not text"),
    ("wide.csv", "t,v\n1,2\n".encode("utf-16-le"), "looks like UTF-16 text without a byte-order"),
    ("data.tar.gz", _tar_gz(), "is a tar archive (inside its gzip compression), not text"),
    ("double.csv.gz.gz", gzip.compress(gzip.compress(b"t,v\n")),
     "holds gzip data inside its gzip compression"),
]


@pytest.mark.parametrize("name, payload, fragment", BAD_FILES, ids=[b[0] for b in BAD_FILES])
def test_bad_files_are_one_line_errors_naming_the_problem(tmp_path, name, payload, fragment):
    path = write(tmp_path, name, payload)
    with pytest.raises(UserError) as info:
        datafile.read_text(path, name)
    message = str(info.value)
    assert fragment in message and "\n" not in message
    assert message.startswith(name) or f" {name}" in message


def test_missing_unreadable_and_directory(tmp_path):
    with pytest.raises(UserError, match="data file not found"):
        datafile.read_text(tmp_path / "absent.csv")
    with pytest.raises(UserError, match="is a directory"):
        datafile.read_text(tmp_path)


# ---- every compression for every task ----------------------------------------------------

@pytest.mark.parametrize("suffix", list(PACKERS))
def test_char_lm_reads_every_compression(tmp_path, suffix):
    assert char_text.read_text(packed(tmp_path, "t.txt", CHAR_TEXT, suffix, bom=True)) \
        == CHAR_TEXT


@pytest.mark.parametrize("suffix", list(PACKERS))
def test_sentiment_reads_every_compression(tmp_path, suffix):
    data = read_csv(packed(tmp_path, "d.csv", SENTIMENT_CSV, suffix, bom=True), "text", "label")
    assert len(data.texts) == 80 and data.labels[:2] == ["pos", "neg"]


@pytest.mark.parametrize("suffix", list(PACKERS))
def test_forecast_reads_every_compression(tmp_path, suffix):
    path = packed(tmp_path, "s.csv", FORECAST_CSV, suffix, bom=True)
    series = forecast_series.read_series(forecast_series.resolve_source(path), None, "t")
    assert series.values.shape == (80, 1) and series.times[-1] == 79


# ---- through the CLI: a compressed file trains, a bad one is one line ----------------------

TRAIN = {
    "char-lm": (CHAR_TEXT, "t.txt", ["--batch-size", 2, "--seq-len", 8, "--hidden", 8,
                                     "--embed-dim", 4]),
    "sentiment": (SENTIMENT_CSV, "d.csv", ["--hidden", 8, "--embed-dim", 8]),
    "forecast": (FORECAST_CSV, "s.csv", ["--time-column", "t", "--window", 5, "--hidden", 8]),
}
COMMON = ["--steps", 1, "--threads", 1, "--quiet", "--no-plot"]


@pytest.mark.parametrize("task", list(TRAIN))
def test_cli_trains_from_a_zipped_and_an_xz_file(tmp_path, task):
    body, stem, options = TRAIN[task]
    for suffix in (".zip", ".xz"):
        path = packed(tmp_path, stem, body, suffix)
        ok(invoke("train", task, "--data", path, *options, *COMMON,
                  "--out", tmp_path / f"run{suffix}"))


CLI_BAD = [b for b in BAD_FILES if b[0] in ("trunc.csv.gz", "bad.csv.bz2", "trunc.csv.xz",
                                            "two.zip", "latin1.csv", "image.csv", "blob.bin")]


@pytest.mark.parametrize("task", list(TRAIN))
@pytest.mark.parametrize("name, payload, fragment", CLI_BAD, ids=[b[0] for b in CLI_BAD])
def test_cli_bad_file_is_one_line_error(tmp_path, task, name, payload, fragment):
    path = write(tmp_path, name, payload)
    result = invoke("train", task, "--data", path, *TRAIN[task][2], *COMMON,
                    "--out", tmp_path / "run")
    one_line_error(result, fragment)
    assert not (tmp_path / "run").exists()


# ---- damaged files that the library functions would read as other data --------------------

STREAMS = {"bzip2": (".bz2", bz2.compress), "xz": (".xz", lzma.compress),
           "lzma": (".lzma", lambda b: lzma.compress(b, format=lzma.FORMAT_ALONE))}
HALVES = (b"".join(b"row %d of the first half\n" % i for i in range(400)),
          b"".join(b"row %d of the second half\n" % i for i in range(400)))


def _damaged(packed_bytes: bytes) -> bytes:
    damaged = bytearray(packed_bytes)
    damaged[0] ^= 0xff  # the stream's first byte
    return bytes(damaged)


@pytest.mark.parametrize("kind", list(STREAMS))
def test_data_after_the_first_stream_is_read_or_refused_never_dropped(tmp_path, kind):
    """bz2.decompress and lzma.decompress stop without a word at anything after a stream
    that is not a whole stream: a damaged second stream of a concatenated or parallel
    (pbzip2, pixz) file, or bytes appended to it, would leave the data read shorter."""
    suffix, pack = STREAMS[kind]
    first, second = HALVES
    whole = write(tmp_path, "whole" + suffix, pack(first) + pack(second))
    assert datafile.read_bytes(whole) == first + second
    for name, tail in (("damaged", _damaged(pack(second))), ("appended", b"not data\n")):
        path = write(tmp_path, name + suffix, pack(first) + tail)
        with pytest.raises(UserError) as info:
            datafile.read_text(path, name + suffix)
        assert str(info.value).startswith(
            f"cannot decompress {name + suffix}: truncated or corrupt {kind} data (the "
            f"{len(tail)} bytes from offset {len(pack(first))}, after its first stream, are "
            f"not a whole {kind} stream: ")
    result = invoke("train", "char-lm", "--data", path, *TRAIN["char-lm"][2], *COMMON,
                    "--out", tmp_path / "run")
    one_line_error(result, f"truncated or corrupt {kind} data")
    assert not (tmp_path / "run").exists()


def test_xz_stream_padding_is_no_data(tmp_path):
    """NUL bytes after an xz stream, in fours, are padding the xz format allows (xz -dc
    reads past them)."""
    first, second = HALVES
    padded = lzma.compress(first) + b"\x00" * 4 + lzma.compress(second) + b"\x00" * 8
    assert datafile.read_bytes(write(tmp_path, "p.xz", padded)) == first + second


def test_nul_characters_are_refused_in_utf16_as_in_utf8(tmp_path):
    """A NUL character is no text in any encoding: UTF-16 text holding one is refused as
    the same text in UTF-8 is, rather than read with U+0000 among its characters."""
    text = "text,label\ngood,pos\nbad\x00,neg\n"
    with pytest.raises(UserError) as utf8:
        datafile.read_text(write(tmp_path, "d8.csv", text), "d8.csv")
    assert "looks binary" in str(utf8.value)
    for encoding in ("utf-16", "utf-32"):
        with pytest.raises(UserError) as info:
            datafile.read_text(write(tmp_path, "d.csv", text.encode(encoding)), "d.csv")
        assert str(info.value) == "d.csv looks binary (NUL character on line 3), not text"


def test_damaged_utf16_says_so_rather_than_to_convert_from_latin1(tmp_path):
    """A file with a UTF-16 byte-order mark whose bytes are not UTF-16 (cut off inside a
    character) is damaged UTF-16, which converting from Latin-1 would garble."""
    raw = "text,label\ngood,pos\n".encode("utf-16-le")
    path = write(tmp_path, "d.csv", b"\xff\xfe" + raw[:-1])
    with pytest.raises(UserError) as info:
        datafile.read_text(path, "d.csv")
    assert str(info.value) == ("d.csv starts with a UTF-16 byte-order mark but is not UTF-16 "
                               "text (truncated data at byte offset 40): the file is cut "
                               "short or damaged; save or export it again")


@pytest.mark.parametrize("suffix", [s for s in PACKERS if s])
def test_an_empty_file_named_as_compressed_is_empty(tmp_path, suffix):
    """A file of no bytes (a download that failed, `touch data.csv.gz`) is refused as
    empty by every task, as an empty plain file is, not as data of the wrong format."""
    path = write(tmp_path, "d.csv" + suffix, b"")
    assert datafile.read(path) == datafile.Content(b"", "", None)
    one_line_error(invoke("train", "sentiment", "--data", path, *TRAIN["sentiment"][2],
                          *COMMON, "--out", tmp_path / "run"),
                   f"{path} is empty: expected a CSV header line")


def test_zip_ignores_the_folder_settings_of_macos(tmp_path):
    """The .DS_Store files macOS writes into folders are no data either: a zip of a
    folder holds them beside the one data file."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("data/.DS_Store", b"\x00\x00\x00\x01Bud1")
        archive.writestr("data/x.csv", b"a\n1\n")
    assert datafile.read_text(write(tmp_path, "x.zip", buffer.getvalue())) == "a\n1\n"


@pytest.mark.parametrize("encoding", ["UTF-16LE", "UTF-16BE", "UTF-32LE", "UTF-32BE"])
def test_text_without_a_byte_order_mark_is_named_in_its_own_encoding(tmp_path, encoding):
    """The refusal's iconv command names the encoding the bytes are in: converted from
    UTF-16LE, big-endian or UTF-32 text would become other characters without a word."""
    text = "year,value\n1700,5\n1701,11\n"
    path = write(tmp_path, "w.csv", text.encode(encoding))
    with pytest.raises(UserError) as info:
        datafile.read_text(path, "w.csv")
    assert str(info.value) == (f"w.csv looks like {encoding[:6]} text without a byte-order "
                               f"mark: convert it to UTF-8, e.g. iconv -f {encoding} -t UTF-8 "
                               f"FILE > FILE.utf8")
