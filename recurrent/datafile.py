"""Opening a data file for any task: decompression, text decoding, refusing binary data,
and the rows of a CSV file (csv_rows) with the checks its header needs.

One reader so that every task (and third-party task plugins) accepts the same files: plain,
gzip, bzip2, xz/lzma, or a zip archive holding exactly one file, recognised by content (the
magic bytes), with the file name's extension deciding only for raw .lzma, which has no magic.
A compressed file of several streams (`cat a.gz b.gz`, pbzip2, pixz) is read whole; bytes
after a stream that are no whole stream are refused, never dropped. A file of no bytes is
empty whatever its name says.
Text is UTF-8 (a leading byte-order mark is dropped) or UTF-16/32 with a byte-order mark;
char-lm and seq2seq read it in one Unicode normalisation form (TEXT_FORM, normalized).

Every problem is a one-line recurrent.errors.UserError naming the file and the real problem:
a corrupt archive, a zip with several members, a spreadsheet or image instead of text, the
byte offset of the first byte that is not UTF-8 and how to convert the file, UTF-16/32 text
cut short or damaged, a NUL byte or character in any encoding.
"""
from __future__ import annotations

import bz2
import codecs
import csv
import gzip
import hashlib
import io
import lzma
import os
import re
import stat
import sys
import unicodedata
import zipfile
import zlib
from dataclasses import dataclass

from .checks import one_line
from .errors import UserError
from .out_paths import named
from . import std_streams

# (magic bytes at offset 0, name) of the compressions read here.
_COMPRESSIONS = (
    (b"\x1f\x8b", "gzip"),
    (b"BZh", "bzip2"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"PK\x03\x04", "zip"),
    (b"PK\x05\x06", "zip"),  # an empty archive
)
# Extension -> the compression a file so named should hold.
_EXTENSIONS = {".gz": "gzip", ".gzip": "gzip", ".bz2": "bzip2", ".xz": "xz", ".lzma": "lzma",
               ".zip": "zip"}

# (magic bytes at offset 0, what the content is, what to do): binary formats people pass
# by mistake, named so that the message says what the file is rather than "binary".
_BINARY = (
    (b"\x89PNG\r\n\x1a\n", "a PNG image", None),
    (b"\xff\xd8\xff", "a JPEG image", None),
    (b"GIF8", "a GIF image", None),
    (b"%PDF-", "a PDF document", "extract the text first"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an old Office document (.xls/.doc)",
     "save it as CSV or plain text (UTF-8)"),
    (b"PAR1", "a Parquet file", "export it as CSV"),
    (b"\x93NUMPY", "a NumPy .npy array", None),
    (b"\x89HDF\r\n\x1a\n", "an HDF5 file", "export it as CSV"),
    (b"SQLite format 3\x00", "an SQLite database", "export the table as CSV"),
    (b"7z\xbc\xaf'\x1c", "a 7z archive", "extract the file first"),
    (b"Rar!\x1a\x07", "a RAR archive", "extract the file first"),
    (b"(\xb5/\xfd", "zstd-compressed data",
     "decompress it (zstd -d) or recompress it with gzip, bzip2 or xz"),
    (b"\x7fELF", "an executable", None),
)

# Byte-order marks, longest first (the UTF-32-LE mark starts with the UTF-16-LE one).
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"),
)

# The content of each pipe read so far (`--data <(zcat FILE)`, /dev/stdin), by the pipe's
# device and inode (a later pipe at the same /dev/fd path is another pipe): a pipe gives
# its data once, and a task may read its file more than once (once per candidate, say);
# a regular file is read again each time. Each CLI command starts with none kept
# (forget_pipes), so a named pipe written again is read again by the next command.
_PIPES: dict[tuple[int, int], bytes] = {}
# the names a shell gives a process substitution, <(command)
_SHELL_PIPE = re.compile(r"/dev/fd/\d+|/proc/(self|\d+)/fd/\d+")


def forget_pipes() -> None:
    """Drop the pipes' kept content (the next read of a named pipe waits for a writer)."""
    _PIPES.clear()

CONVERT_HINT = "convert it to UTF-8, e.g. iconv -f {source} -t utf-8 FILE > FILE.utf8"
# Bytes 0x80-0x9f are control characters in Latin-1 that text hardly holds, and in
# Windows-1252 the curly quotes, dashes, ellipsis and euro sign of text saved on Windows:
# converted as Latin-1 they would become invisible controls. (0x81, 0x8d, 0x8f, 0x90 and
# 0x9d are undefined in Windows-1252.) Inside a UTF-8 sequence they are UTF-8's own.
_WINDOWS_1252 = re.compile(rb"[\x80\x82-\x8c\x8e\x91-\x9c\x9e\x9f]")
_UTF8_SEQUENCE = re.compile(rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}"
                            rb"|[\xf0-\xf4][\x80-\xbf]{3}")


def convert_hint(raw: bytes) -> str:
    """How to convert ``raw``, bytes that are not UTF-8, to UTF-8: from Windows-1252 when
    they hold one of its characters in 0x80-0x9f outside UTF-8 sequences, else from
    Latin-1."""
    stray = _WINDOWS_1252.search(_UTF8_SEQUENCE.sub(b"", raw))
    return CONVERT_HINT.format(source="windows-1252" if stray else "latin1")


def read_bytes(path, label: str | None = None) -> bytes:
    """The content of ``path``, decompressed if it is gzip, bzip2, xz/lzma or a one-file zip.

    ``label`` is what messages call the file (default: the path). Missing, unreadable and
    corrupt files, a zip without exactly one member, and known binary formats (images,
    spreadsheets, databases, other archives) are UserErrors.
    """
    return _load(path, label)[0]


STDIN_PATH = "/dev/stdin"


def data_path(option: str, value: str | None) -> str | None:
    """The data file an input option (``option``, e.g. "--data") names, None when it was
    not given; "-" is standard input, the usual meaning of that name for a command's
    input file (a terminal there is refused: the command would wait for typed data)."""
    value = named(option, value, None)
    if value != "-":
        return value
    _refuse_terminal(f"{option} -", "or give the file's path")
    return STDIN_PATH


def _refuse_terminal(what: str, advice: str) -> None:
    """UserError when standard input is a terminal (the command would wait for typed
    data), closed or not open for reading, for data read from it. ``what`` names the
    data, ``advice`` ends the message."""
    state = std_streams.unusable(sys.stdin, writing=False) or (
        "a terminal" if sys.stdin.isatty() else None)
    if state:
        raise UserError(f"{what}: standard input is {state}; pipe or redirect the "
                        f"data into it (... < FILE), {advice}")


def check_every_rank_reads(path: str | None, ranks: int, whose: str | None = None,
                           advice: str = "save the data to a file and give its path") -> None:
    """UserError when the data file ``path`` of a data-parallel run (``ranks`` above 1)
    is not one every rank can open and read itself: standard input or another pipe,
    whose data reaches only the first process that reads it (the next would wait for
    it), or a descriptor of this process (/dev/fd/N, as `--data /dev/fd/0 < FILE` or a
    shell's <(zcat FILE) give), which the ranks, processes of their own, do not have.
    ``whose``: the data's owner as the error names it (default: the --data given)."""
    if path is None or ranks <= 1:
        return
    try:
        pipe = path == STDIN_PATH or stat.S_ISFIFO(os.stat(path).st_mode)
    except OSError:  # missing or unreadable: said where the data is read
        return
    descriptor = _SHELL_PIPE.fullmatch(path)
    if not (pipe or descriptor):
        return
    if path == STDIN_PATH:
        what = "standard input"
        reason = "standard input reaches one process only"
    elif descriptor:
        what = "a descriptor of this process"
        reason = f"{path} is a descriptor of this process, which the ranks do not share"
    else:
        what = "a pipe"
        reason = "a pipe's data reaches one process only"
    label = (f"{whose}'s data is {what}" + ("" if path == STDIN_PATH else f" ({path})")
             if whose is not None else f"--data {'-' if path == STDIN_PATH else path}")
    raise UserError(f"{label}: every rank of a data-parallel run opens and reads the data "
                    f"file itself, so it must be a regular file that can be opened more "
                    f"than once, and {reason}; {advice}")


def check_path_encodable(path: str) -> None:
    """UserError when ``path`` has characters the file-name encoding cannot represent: a
    path saved in a run's config.json under a UTF-8 locale, read again under an ASCII one
    (LC_ALL=C with PYTHONUTF8=0), where no file can be opened or found by that name."""
    try:
        os.fsencode(path)
    except UnicodeEncodeError:
        raise UserError(f"cannot read data file {path}: its name has characters this "
                        f"locale's file-name encoding ({sys.getfilesystemencoding()}) "
                        f"cannot represent; use a UTF-8 locale (e.g. LC_ALL=C.UTF-8)"
                        ) from None


def _load(path, label: str | None) -> tuple[bytes, str | None]:
    """(content, the compression it was read from or None)."""
    path = os.fspath(path)
    label = path if label is None else label
    check_path_encodable(path)
    if path == STDIN_PATH:  # a run trained with --data - reads its data there again
        _refuse_terminal("data file /dev/stdin", "the same data the run was trained on")
    try:
        seen = os.stat(path)
        if stat.S_ISFIFO(seen.st_mode) and (seen.st_dev, seen.st_ino) in _PIPES:
            raw = _PIPES[seen.st_dev, seen.st_ino]
        else:
            with open(path, "rb") as f:
                raw = f.read()
                opened = os.fstat(f.fileno())
                if stat.S_ISFIFO(opened.st_mode):
                    _PIPES[opened.st_dev, opened.st_ino] = raw
    except FileNotFoundError:
        if _SHELL_PIPE.fullmatch(path):
            raise UserError(f"data file not found: {path}, a pipe such as <(zcat FILE) that "
                            f"lasts only while the command given it runs (a run trained on "
                            f"one cannot read its data again: train on the file itself)"
                            ) from None
        raise UserError(f"data file not found: {path}") from None
    except IsADirectoryError:
        raise UserError(f"data path is a directory, not a file: {path}") from None
    except PermissionError:
        raise UserError(f"data file is not readable (permission denied): {path}") from None
    except OSError as e:
        raise UserError(f"cannot read data file {path}: {e.strerror or e}") from None
    # a file of no bytes is empty whatever its name says (a download that failed, `touch
    # data.csv.gz`): each task refuses it as empty, as it does an empty plain file
    kind = compression(raw, path) if raw else None
    if kind is not None:
        raw = _decompress(raw, kind, label)
    _refuse_binary(raw, label, inside=kind)
    return raw, kind


def decode(raw: bytes, label: str, compressed: bool = False) -> str:
    """Text from ``raw``: UTF-8 (its byte-order mark dropped), or UTF-16/32 with a
    byte-order mark. Bytes that are not text are a UserError naming the first bad offset
    (in the decompressed content when ``compressed``) and how to convert the file."""
    encoding = "utf-8"
    for bom, name in _BOMS:
        if raw.startswith(bom):
            encoding = name
            break
    if encoding in ("utf-8", "utf-8-sig"):  # UTF-16/32 text holds NUL bytes of its own
        _refuse_nul(raw, label)
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError as e:
        where = " of the decompressed content" if compressed else ""
        shown = encoding.replace("-sig", "").upper()
        if encoding in ("utf-16", "utf-32"):
            # the byte-order mark says what the text is: bytes that are not that are a
            # file cut off inside a character or damaged, which no conversion mends
            raise UserError(f"{label} starts with a {shown} byte-order mark but is not "
                            f"{shown} text ({e.reason} at byte offset {e.start}{where}): "
                            f"the file is cut short or damaged; save or export it again"
                            ) from None
        hint = ("decompress it and " if compressed else "") + convert_hint(raw)
        # utf-8-sig decodes the bytes after its byte-order mark: its offsets start there
        at = e.start + len(raw) - len(e.object)
        raise UserError(f"{label} is not {shown} text (byte 0x{raw[at]:02x} at offset "
                        f"{at}{where}; tried {shown}): {hint}") from None
    if encoding in ("utf-16", "utf-32") and "\x00" in text:
        # refused as the NUL bytes of UTF-8 text are (_refuse_nul)
        line = len(lines(text[:text.index("\x00")]))
        raise UserError(f"{label} looks binary (NUL character on line {line}), not text")
    return text[1:] if text.startswith("\ufeff") else text


def check_utf8(text: str, what: str) -> str:
    """``text`` as UTF-8 text; UserError for a text read with bytes that are not UTF-8
    kept as lone surrogates (surrogateescape: command-line arguments, `predict --stream`
    lines), naming the first such byte; an answer echoing the text would carry them,
    which strict JSON readers refuse. Under a locale whose encoding is not UTF-8 (LC_ALL=C
    with PYTHONUTF8=0: ASCII) a command-line argument's UTF-8 bytes arrive as such
    surrogates too; they are read as UTF-8, as stdin and data files are whatever the
    locale."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError as e:
        if codecs.lookup(sys.getfilesystemencoding()).name != "utf-8":
            try:
                return os.fsencode(text).decode("utf-8")
            except UnicodeError:
                pass  # not the bytes of UTF-8 text either: refused below
        code = ord(text[e.start])
        byte = f" (byte 0x{code - 0xDC00:02x})" if 0xDC80 <= code <= 0xDCFF else ""
        raise UserError(f"{what} is not UTF-8 text{byte}") from None


@dataclass(frozen=True)
class Content:
    """A text file as read: its (decompressed) bytes, their text and the compression."""
    data: bytes
    text: str
    compression: str | None  # "gzip", "bzip2", "xz", "lzma", "zip" or None


def read(path, label: str | None = None) -> Content:
    """Read, decompress and decode a text file (see read_bytes and decode)."""
    path = os.fspath(path)
    label = path if label is None else label
    raw, kind = _load(path, label)
    return Content(raw, decode(raw, label, compressed=kind is not None), kind)


def read_text(path, label: str | None = None) -> str:
    """The text of a data file: ``read(path, label).text``."""
    return read(path, label).text


def fingerprint(text: str) -> str:
    """A short content hash of a data file's text, recorded in a run's task state to
    notice a changed file."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def compression(raw: bytes, path: str = "") -> str | None:
    """The compression ``raw`` holds ("gzip", "bzip2", "xz", "lzma", "zip"), or None for
    plain content. Decided by content; a name promising one that is absent is a UserError
    from read_bytes, not plain text."""
    for magic, kind in _COMPRESSIONS:
        if raw.startswith(magic):
            return kind
    return _EXTENSIONS.get(os.path.splitext(path)[1].lower())


def _decompress(raw: bytes, kind: str, label: str) -> bytes:
    if kind != "lzma" and not any(raw.startswith(m) for m, k in _COMPRESSIONS if k == kind):
        raise UserError(f"cannot decompress {label}: its name says {kind} but the content is "
                        f"not {kind} data (it starts with {raw[:8]!r})")
    try:
        if kind == "gzip":
            return gzip.decompress(raw)
        if kind == "zip":
            return _unzip(raw, label)
        return _streams(raw, kind)
    except UserError:
        raise
    except (OSError, EOFError, ValueError, zlib.error, lzma.LZMAError, zipfile.BadZipFile,
            RuntimeError, NotImplementedError) as e:
        raise UserError(f"cannot decompress {label}: truncated or corrupt {kind} data "
                        f"({one_line(e)})") from None


def _streams(raw: bytes, kind: str) -> bytes:
    """The content of the bzip2, xz or lzma data ``raw``: of each of its streams in turn
    (`cat a.xz b.xz`, pbzip2 and pixz write several), past the NUL bytes of xz's stream
    padding. Anything else after a stream is a ValueError: bz2.decompress and
    lzma.decompress stop there without a word, and a damaged stream or bytes appended
    to the file would leave the data read shorter."""
    parts, rest = [], raw
    while rest:
        decompressor = (bz2.BZ2Decompressor() if kind == "bzip2" else lzma.LZMADecompressor(
            lzma.FORMAT_XZ if kind == "xz" else lzma.FORMAT_ALONE))
        try:
            content = decompressor.decompress(rest)
            if not decompressor.eof:
                raise EOFError("Compressed data ended before the end-of-stream marker was "
                               "reached")
        except (OSError, EOFError, lzma.LZMAError) as e:
            if not parts:  # the first stream: the library's reason says it all
                raise
            streams = "stream" if len(parts) == 1 else f"{len(parts)} streams"
            raise ValueError(f"the {len(rest)} bytes from offset {len(raw) - len(rest)}, "
                             f"after its first {streams}, are not a whole {kind} stream: "
                             f"{one_line(e)}") from None
        parts.append(content)
        rest = decompressor.unused_data
        if kind == "xz":
            rest = rest.lstrip(b"\x00")
    return b"".join(parts)


def _unzip(raw: bytes, label: str) -> bytes:
    with zipfile.ZipFile(io.BytesIO(raw)) as archive:
        names = archive.namelist()
        _refuse_office(names, archive, label)
        # Folders and the metadata macOS adds (__MACOSX/, a folder's .DS_Store) are not data.
        files = [n for n in names if not n.endswith("/") and not n.startswith("__MACOSX/")
                 and n.rpartition("/")[2] != ".DS_Store"]
        if len(files) != 1:
            if not files:
                raise UserError(f"{label} is an empty zip archive: a data zip must hold "
                                f"exactly one file")
            shown = ", ".join(files[:5]) + (f" (and {len(files) - 5} more)"
                                            if len(files) > 5 else "")
            raise UserError(f"{label} holds {len(files)} files ({shown}): a data zip must "
                            f"hold exactly one; extract the one you want")
        # An intact archive this reader cannot open is no "truncated or corrupt" data:
        # say what it is, so that the file is not fetched again for nothing.
        member = archive.getinfo(files[0])
        if member.flag_bits & 0x1:
            raise UserError(f"{label} is an encrypted zip: extract {files[0]} with its "
                            f"password (unzip {label}) and pass that file")
        if member.compress_type not in _ZIP_METHODS:
            method = zipfile.compressor_names.get(member.compress_type,
                                                  f"method {member.compress_type}")
            raise UserError(f"{label} is compressed with {method}, which this reader "
                            f"cannot decompress: extract {files[0]} (unzip {label}) and "
                            f"pass that file, or zip it again with deflate")
        return archive.read(files[0])


# The zip compression methods Python's zipfile decompresses (Zstandard from Python 3.14).
_ZIP_METHODS = tuple(getattr(zipfile, name) for name in (
    "ZIP_STORED", "ZIP_DEFLATED", "ZIP_BZIP2", "ZIP_LZMA", "ZIP_ZSTANDARD")
    if hasattr(zipfile, name))


def _refuse_office(names: list[str], archive: zipfile.ZipFile, label: str) -> None:
    what = None
    if "[Content_Types].xml" in names:
        prefixes = {n.split("/", 1)[0] for n in names}
        what = ("an Excel workbook (.xlsx)" if "xl" in prefixes
                else "a Word document (.docx)" if "word" in prefixes
                else "an Office document")
    elif "mimetype" in names and archive.read("mimetype").startswith(b"application/vnd.oasis"):
        what = "an OpenDocument file (.ods/.odt)"
    if what:
        raise UserError(f"{label} is {what}, not text: save it as CSV or plain text (UTF-8)")


def _refuse_binary(raw: bytes, label: str, inside: str | None) -> None:
    where = f" (inside its {inside} compression)" if inside else ""
    for magic, what, todo in _BINARY:
        if raw.startswith(magic):
            raise UserError(f"{label} is {what}{where}, not text" + (f": {todo}" if todo else ""))
    if raw[257:262] == b"ustar":
        raise UserError(f"{label} is a tar archive{where}, not text: extract the file first "
                        f"(tar -xf)")
    for magic, kind in _COMPRESSIONS:
        if inside and raw.startswith(magic):
            raise UserError(f"{label} holds {kind} data inside its {inside} compression: "
                            f"decompress it once and pass that file")


def _refuse_nul(raw: bytes, label: str) -> None:
    at = raw.find(b"\x00")
    if at < 0:
        return
    encoding = _without_bom(raw[:64])
    if encoding:
        raise UserError(f"{label} looks like {encoding[:6]} text without a byte-order mark: "
                        f"convert it to UTF-8, e.g. iconv -f {encoding} -t UTF-8 FILE > "
                        f"FILE.utf8")
    raise UserError(f"{label} looks binary (NUL byte at offset {at}), not text")


# (encoding, the byte positions in each unit that are NUL for characters below U+0100),
# UTF-32 first: its little-endian units also have every other byte NUL
_NUL_LANES = (("UTF-32LE", 4, (1, 2, 3)), ("UTF-32BE", 4, (0, 1, 2)),
              ("UTF-16LE", 2, (1,)), ("UTF-16BE", 2, (0,)))


def _without_bom(head: bytes) -> str | None:
    """The encoding of text without a byte-order mark whose first bytes ``head`` hold
    Latin-1 characters in UTF-16 or UTF-32 (the other bytes of each unit NUL), or None;
    converting from another of them would give other characters."""
    if not head.strip(b"\x00"):
        return None
    for encoding, unit, lanes in _NUL_LANES:
        if len(head) >= 2 * unit and not any(head[lane::unit].strip(b"\x00")
                                             for lane in lanes):
            return encoding
    return None


# The Unicode normalisation form new runs of the text tasks that read characters as they
# are written (char-lm, seq2seq) read their text in: canonically equivalent text (a
# composed "\u00e9" or "e" and a combining U+0301) is the same characters, and nothing
# else changes (NFKC would also rewrite full-width letters and ligatures, which a model
# of characters may have to reproduce; the sentiment tokenizer applies NFKC of its own).
TEXT_FORM = "NFC"
FORMS = ("NFC", "NFD", "NFKC", "NFKD")  # the forms a run's state may record


def normalized(text: str, form: str | None) -> str:
    """``text`` in the Unicode normalisation form ``form`` ("NFC", "NFD", "NFKC", "NFKD"),
    or as it is when None. A text task reads its data files, its eval files and its
    predict inputs through the same form, recorded in the run, so that text that differs
    only in how an accented letter is encoded (a composed "\u00e9" or "e" and a combining
    U+0301) is the same symbols; a run that recorded none keeps reading text as it is."""
    if form is None or unicodedata.is_normalized(form, text):
        return text
    return unicodedata.normalize(form, text)


def shown(symbol: str) -> str:
    """``repr(symbol)`` for a message, with its code point when it is one combining mark
    (Unicode category M), which repr leaves as it is and which a terminal draws over the
    quote before it: "'\u0301' (U+0301)" names the symbol where "'\u0301'" would show
    an accented quote."""
    text = repr(symbol)
    if len(symbol) == 1 and unicodedata.category(symbol)[0] == "M":
        text += f" (U+{ord(symbol):04X})"
    return text


_LINE_END = re.compile(r"\r\n|\r|\n")


def lines(text: str) -> list[str]:
    """The lines of ``text``, ended by \\n, \\r\\n or \\r only (the last may be empty).
    str.splitlines would also end them at the Unicode separators (\\x0b, \\x0c,
    \\x1c-\\x1e, \\x85, \\u2028, \\u2029), which a text may hold: one line would become
    two, and the line numbers that messages give would shift."""
    return _LINE_END.split(text)


def csv_rows(text: str, label: str) -> list[tuple[int, int, list[str]]]:
    """The rows of iter_csv_rows(text, label), as a list."""
    return list(iter_csv_rows(text, label))


def iter_csv_rows(text: str, label: str):
    """(line where the row starts, line where it ends, cells) for each row of the CSV
    ``text``, one at a time (a reader that keeps only the cells it needs holds no more);
    a blank line is a row without cells. Quotes are read strictly: a quoted field
    followed by other characters, or one still open at the end of the text, is a UserError
    (``label`` names the file) naming the line where the row starts, since an unbalanced
    quote otherwise swallows the lines after it into one field; when the first line
    shows a file that is not CSV (check_comma_header), that is the error instead. A field
    may be as long as the text (the csv module's own limit, 131072 characters, is raised
    while each row is read).
    """
    reader = csv.reader(_line_pieces(text), strict=True)
    start = 1
    while True:
        # the limit is raised only while a row is read, so that a reader that stops
        # early (a UserError for a row) leaves the csv module's own limit as it was
        limit = csv.field_size_limit(max(csv.field_size_limit(), len(text) + 1))
        try:
            row = next(reader, None)
        except csv.Error as e:
            # a file in another format (tab-separated with a quoted field, JSON lines)
            # fails as CSV at some later line: name the format rather than that line
            check_comma_header(next(csv.reader([lines(text)[0]]), []), label)
            if str(e) == "unexpected end of data":
                raise UserError(f"{label} line {start}: malformed CSV (a quoted field opened "
                                f"on this line is never closed: an unbalanced quote)") from None
            inside = (f", in a row that starts at line {start}"
                      if reader.line_num > start else "")
            raise UserError(f"{label} line {reader.line_num}: malformed CSV ({e}{inside})"
                            ) from None
        finally:
            csv.field_size_limit(limit)
        if row is None:
            return
        yield start, reader.line_num, row
        start = reader.line_num + 1


def _line_pieces(text: str):
    """The lines of ``text`` with their line ends, one at a time, as
    io.StringIO(text, newline="") gives them to the csv module, without the copy of the
    whole text (four bytes a character) that StringIO makes."""
    start = 0
    for end in _LINE_END.finditer(text):
        yield text[start:end.end()]
        start = end.end()
    if start < len(text):
        yield text[start:]


def check_unique_columns(header: list[str], wanted, label: str) -> None:
    """UserError when a column in ``wanted`` is named more than once in ``header``: which
    of them holds the data is ambiguous, and reading the first would silently drop the
    other."""
    for name in dict.fromkeys(wanted):
        count = header.count(name)
        if name is not None and count > 1:
            raise UserError(f"{label} has {count} columns named {name!r}: rename all but one "
                            f"so that it is clear which one to read")


def excerpt(text: str, size: int = 40) -> str:
    """``repr(text)``, cut to its first ``size`` characters (and saying how many it has)
    when longer: a cell quoted in a one-line message may be megabytes long."""
    if len(text) <= size:
        return repr(text)
    return f"{text[:size]!r}... ({len(text)} characters)"


def check_comma_header(header: list, label: str) -> None:
    """UserError when a CSV's header shows that the file is not CSV, which no choice of
    column can fix: one cell holding a semicolon or a tab (a file separated by those, a
    spreadsheet's export in some locales), or a first cell opening a JSON object or array
    (JSON lines), or a spreadsheet's separator line (`sep=,`, which Excel writes above
    the header and reads as no data). ``label`` names the file in the message as it
    stands."""
    if header and header[0].strip().lower().startswith("sep=") \
            and not any(cell.strip() for cell in header[1:]):
        line = ",".join(header)
        also = "" if line.strip().lower() == "sep=," else (
            ", and save the file with commas between the columns")
        raise UserError(f"{label} starts with a spreadsheet's separator line {line!r}, not "
                        f"a header: delete that line{also}")
    for separator, name in ((";", "semicolon"), ("\t", "tab")):
        if len(header) == 1 and separator in header[0]:
            raise UserError(f"{label} is {name}-separated (header {header[0]!r}): save it "
                            f"with commas between the columns")
    if header and header[0].lstrip().startswith(("{", "[")):
        raise UserError(f"{label} is JSON, not CSV (its first line starts with "
                        f"{header[0].lstrip()[0]!r}): save it as CSV, a header line of "
                        f"column names then one row per line")
