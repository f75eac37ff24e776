"""Reading labelled text from CSV, checking it, and the stratified train/valid/test split.

Every problem with a user's file becomes a one-line recurrent.errors.UserError that names
the file (and the line, where there is one); nothing here prints or exits.
"""
from __future__ import annotations

import hashlib
import math
import os
import re
from dataclasses import dataclass
from importlib import resources

import numpy as np

from recurrent import datafile
from recurrent.checks import has_control
from recurrent.datafile import excerpt
from recurrent.errors import UserError

from .text import TOKENIZER, is_blank, normalize

BUNDLED_NAME = "rotten_tomatoes.csv.gz"


def bundled_path() -> str:
    """Path of the bundled Rotten Tomatoes snippets (plugins/sentiment/data/)."""
    return str(resources.files(__package__).joinpath("data", BUNDLED_NAME))


@dataclass
class LabelledText:
    """The rows of one CSV file: parallel lists, in file order."""

    path: str
    texts: list[str]
    labels: list[str] | None  # None when the file was read without a label column
    sha256: str  # of the (decompressed) content: notices a changed file between train and eval
    ids: list[str] | None = None  # the id column's cells (predict --id-column), if read


TRAIN_COLUMN_HINT = "choose with --text-column/--label-column"


def read_csv(path: str, text_column: str, label_column: str | None,
             column_hint: str = TRAIN_COLUMN_HINT, tokenizer: int = TOKENIZER,
             id_column: str | None = None) -> LabelledText:
    """Read ``text_column`` (and ``label_column`` unless None, ``id_column`` unless None)
    of a UTF-8 CSV with a header.

    The file may be compressed (recurrent.datafile reads it). Rejects, with one line each: a
    missing, unreadable or binary file, non-UTF-8 bytes, an empty file, missing columns
    (naming the columns found and ``column_hint``, how the caller's command chooses them),
    a text column that is also the label column,
    rows whose text, label or id is empty or missing (a text without a token under tokenizer
    version ``tokenizer`` is empty: text.is_blank), rows with more fields than the header
    (an unquoted comma in a text would otherwise shift a fragment of it into the label;
    only empty fields after the header's last named column are allowed), a column read
    here named twice in the header, malformed CSV (datafile.csv_rows).
    Blank lines are not rows and are skipped. A field may be as long as the file (the csv
    module's own limit, 131072 characters, is raised while reading).
    """
    if text_column == label_column:
        # the model would read each text's label as its text: a perfect score that
        # means nothing
        raise UserError(f"the text column and the label column are both {text_column!r}: "
                        f"the model would read each label as its text ({column_hint})")
    content = datafile.read(path)
    digest = hashlib.sha256(content.data).hexdigest()
    rows = datafile.iter_csv_rows(content.text, path)  # one at a time: only the cells read
    header = next(rows, (None, None, None))[2]
    if header is None or not any(h.strip() for h in header):
        raise UserError(f"{path} is empty: expected a CSV header line with column names")
    columns = [h.strip() for h in header]
    wanted = [c for c in (text_column, label_column, id_column) if c is not None]
    missing = [c for c in wanted if c not in columns]
    if missing:
        datafile.check_comma_header(columns, path)
        found = ", ".join(repr(c) for c in columns)
        raise UserError(f"{path} has no column {' or '.join(repr(c) for c in missing)}; "
                        f"columns found: {found} ({column_hint})")
    datafile.check_unique_columns(columns, wanted, path)
    text_at = columns.index(text_column)
    label_at = columns.index(label_column) if label_column is not None else None
    id_at = columns.index(id_column) if id_column is not None else None
    # a row may not hold more fields than the header's up to its last named column
    # (empty fields after it, as spreadsheets may write them, are allowed); a shorter
    # row lacks trailing fields, and the text or label it lacks is refused below
    width = max(i for i, c in enumerate(columns) if c) + 1
    texts, labels, ids = [], [], []
    for _, line, row in rows:
        if not row:
            continue  # a blank line
        if any(f.strip() for f in row[width:]):
            raise UserError(f"{path} line {line}: {len(row)} fields, the header has "
                            f"{width} (quote texts that contain commas)")
        # a row that ends before a column read is most often a text broken by an
        # unquoted line break, its rest on the next line: said with the empty cell
        short = (f" (the row has {len(row)} field{'s' * (len(row) != 1)}, the header "
                 f"{width}: quote texts that contain line breaks)")
        text = row[text_at].strip() if text_at < len(row) else ""
        if is_blank(text, tokenizer):
            raise UserError(f"{path} line {line}: empty text in column {text_column!r}"
                            + (short if text_at >= len(row) else
                               " (only invisible characters)" if text else ""))
        texts.append(text)
        if label_at is not None:
            label = row[label_at].strip() if label_at < len(row) else ""
            if not label:
                raise UserError(f"{path} line {line}: empty label in column {label_column!r}"
                                + (short if label_at >= len(row) else ""))
            labels.append(label)
        if id_at is not None:
            key = row[id_at].strip() if id_at < len(row) else ""
            if not key:
                raise UserError(f"{path} line {line}: empty id in column {id_column!r}"
                                + (short if id_at >= len(row) else ""))
            ids.append(key)
    if not texts:
        raise UserError(f"{path} has a header but no data rows")
    return LabelledText(os.fspath(path), texts, labels if label_column is not None else None,
                        digest, ids if id_column is not None else None)


def label_key(label: str) -> str:
    """What two ways of writing one label share: its text as the tokenizer reads it
    (text.normalize), blanks collapsed, case folded."""
    return " ".join(normalize(label).split()).casefold()


def label_number(label: str) -> float | None:
    """A label's value when it is a number (labels of one value are one class written two
    ways: class_list), else None."""
    try:
        return float(label)
    except ValueError:
        return None


_DIGITS = re.compile(r"([0-9]+)")


def class_order(labels) -> list[str]:
    """The distinct labels in the order a new run numbers its classes (its output index)
    and every report and prediction lists them: by value when each label is a finite
    number ('2' before '10', '-2' before '-1', '0.5' before '1'), else by text with runs
    of digits read as numbers ('2 stars' before '10 stars'). A run keeps the order it
    saved in its state."""
    distinct = set(labels)
    numbers = {}
    for label in distinct:
        try:
            numbers[label] = float(label)
        except ValueError:
            break
    if len(numbers) == len(distinct) and all(map(math.isfinite, numbers.values())):
        return sorted(distinct, key=lambda label: (numbers[label], label))

    def natural(label):
        # text and digit runs alternate (re.split), so their keys compare as like with
        # like; a digit run compares by its value without int() (no length limit)
        parts = _DIGITS.split(label)
        return [(len(p.lstrip("0")), p.lstrip("0")) if i % 2 else p
                for i, p in enumerate(parts)], label

    return sorted(distinct, key=natural)


def class_list(labels: list[str], path: str) -> list[str]:
    """The label set in class_order; a single class cannot train a classifier, a label
    holding a tab, line break or other control character is refused, and one label
    written two ways is refused rather than trained as two classes that split one class's
    texts between them: one number ('1' and '1.0', as a spreadsheet or pandas may mix
    them), or one word in another case or spacing ('Sports', 'sports', 'very  good' and
    'very good', as hand-labelled files mix them) or Unicode form (an invisible zero-width
    character, full-width letters: text.normalize, as the tokenizer reads texts)."""
    classes = class_order(labels)
    for label in classes:
        # a class name is one line of eval's tables and one tab-separated field of
        # predict's lines; a tab, line break (a quoted cell, often a quote left open) or
        # other control character in it would break both or act on the terminal
        if has_control(label):
            raise UserError(f"{path} has the label {excerpt(label)} in its label column, "
                            f"holding a tab or line break or another control character (is a "
                            f"quote left open?): write each class on one line without "
                            f"tabs or control characters")
    written: dict[str, str] = {}
    for label in classes:
        key = label_key(label)
        if key in written:
            raise UserError(f"{path} has labels {written[key]!r} and {label!r} in its label "
                            f"column: one label in another case, spacing or Unicode form "
                            f"would be two classes; write each class one way")
        written[key] = label
    spelled: dict[float, str] = {}
    for label in classes:
        number = label_number(label)
        if number is None:
            continue
        if number in spelled:
            raise UserError(f"{path} has labels {spelled[number]!r} and {label!r} in its "
                            f"label column: one number written two ways would be two "
                            f"classes; write each class one way")
        spelled[number] = label
    if len(classes) < 2:
        raise UserError(f"{path} has a single class {classes[0]!r} in its label column; "
                        f"a classifier needs at least two")
    return classes


def stratified_split(labels: list[str], valid_fraction: float, test_fraction: float,
                     seed: int) -> dict[str, np.ndarray]:
    """Row indices of "train", "valid" and "test", each sorted, split class by class.

    Every class contributes round(n_c * fraction) rows to valid and to test (so class
    proportions match across splits), drawn from a permutation fixed by ``seed``. When
    that leaves valid or test empty (every class too small), the split takes one row from
    each of round(N * fraction) classes that can spare one instead.
    """
    if not (0 < valid_fraction < 1 and 0 < test_fraction < 1
            and valid_fraction + test_fraction < 1):
        raise UserError(f"validation and test fractions must be in (0, 1) and sum below 1; "
                        f"got {valid_fraction} and {test_fraction}")
    rng = np.random.default_rng(seed)
    labels_arr = np.asarray(labels)
    # the split's own order of the classes (not class_order, the class ids): a saved
    # run's split is made again from these settings, so it must not change
    classes = sorted(set(labels))
    perms = [rng.permutation(np.flatnonzero(labels_arr == label)) for label in classes]
    # Keep at least one training row per class, so the model sees every label.
    n_tests = [min(int(round(len(rows) * test_fraction)), len(rows) - 1) for rows in perms]
    n_valids = [min(int(round(len(rows) * valid_fraction)), len(rows) - 1 - n_test)
                for rows, n_test in zip(perms, n_tests)]
    # Many small classes (5 rows at 10%) each round their share to 0, which would leave a
    # split empty however many rows the file has: then the split takes one row from each
    # class with a row to spare, in a seeded order, up to its share of all rows.
    for counts, fraction in ((n_tests, test_fraction), (n_valids, valid_fraction)):
        if sum(counts) == 0:
            want = int(round(len(labels) * fraction))
            for c in rng.permutation(len(classes)):
                if want and len(perms[c]) - n_tests[c] - n_valids[c] > 1:
                    counts[c] += 1
                    want -= 1
    parts = {"train": [], "valid": [], "test": []}
    for rows, n_test, n_valid in zip(perms, n_tests, n_valids):
        parts["test"].append(rows[:n_test])
        parts["valid"].append(rows[n_test:n_test + n_valid])
        parts["train"].append(rows[n_test + n_valid:])
    split = {name: np.sort(np.concatenate(p)).astype(np.int64) for name, p in parts.items()}
    empty = [name for name, idx in split.items() if len(idx) == 0]
    if empty:
        singles = sum(len(rows) == 1 for rows in perms)
        if 2 * singles > len(classes):
            # most classes have a single row, which stays in training: the usual cause is a
            # label column holding ids or texts, which more rows would not help
            raise UserError(f"{len(labels)} labelled rows in {len(classes)} classes, "
                            f"{singles} of them with a single row (kept for training): "
                            f"none to spare for a held-out split ({', '.join(empty)} would "
                            f"be empty); is the label column the labels?")
        raise UserError(f"only {len(labels)} labelled rows: too few for a train/validation/test "
                        f"split ({', '.join(empty)} would be empty)")
    return split
