"""`recurrent predict RUN --data FILE` for sentiment: --id-column echoes each row's id at
the start of its text line and as "id" in its JSON line, so that predictions can be
joined back to the file's rows by a key; one output line per row, in the file's order;
and a large file is scored without holding every text's tokens (nor a four-bytes-a-
character copy of the file's text) at once."""
import csv
import json
import os
import tracemalloc

import pytest

from helpers import bundled_reviews, invoke, ok, one_line_error, write_csv

from recurrent.errors import UserError
from recurrent_plugins.sentiment.dataset import read_csv

ROWS = [("k1", "a gorgeous, witty, seductive movie"),
        ("k2", "dull\nand, above all, long"),  # a quoted field holding a line break
        ("k3", "a good film")]


def _keyed_file(tmp_path, rows=ROWS, bom=True):
    path = write_csv(tmp_path / "keyed.csv", ["key", "text"], rows)
    if bom:  # as an editor that writes a UTF-8 byte-order mark saves it
        with open(path, "rb") as f:
            data = f.read()
        with open(path, "wb") as f:
            f.write(b"\xef\xbb\xbf" + data)
    return path


def test_id_column_starts_each_text_line_in_the_file_order(task_runs, tmp_path):
    run, path = task_runs["sentiment"], _keyed_file(tmp_path)
    plain = ok(invoke("predict", run, "--data", path)).splitlines()
    keyed = ok(invoke("predict", run, "--data", path, "--id-column", "key")).splitlines()
    assert len(keyed) == len(ROWS)
    assert [line.split("\t")[0] for line in keyed] == ["k1", "k2", "k3"]
    assert ["\t".join(line.split("\t")[1:]) for line in keyed] == plain


def test_id_column_is_the_id_key_of_each_json_line(task_runs, tmp_path):
    run, path = task_runs["sentiment"], _keyed_file(tmp_path)
    plain = [json.loads(line) for line in
             ok(invoke("predict", run, "--data", path, "--json")).splitlines()]
    keyed = [json.loads(line) for line in ok(invoke(
        "predict", run, "--data", path, "--id-column", "key", "--json")).splitlines()]
    assert [answer.pop("id") for answer in keyed] == ["k1", "k2", "k3"]
    assert keyed == plain
    assert [answer["text"] for answer in keyed] == [text for _, text in ROWS]


def test_id_column_refusals(task_runs, tmp_path):
    run, path = task_runs["sentiment"], _keyed_file(tmp_path, bom=False)
    one_line_error(invoke("predict", run, "--data", path, "--id-column", "ident"),
                   "has no column 'ident'", "columns found: 'key', 'text'", "--id-column")
    one_line_error(invoke("predict", run, "--id-column", "key", "good"),
                   "--id-column key names a column of --data FILE")
    one_line_error(invoke("predict", run, "--data", path, "--id-column", "key", "good"),
                   "text arguments have none")
    blank = write_csv(tmp_path / "blank.csv", ["key", "text"], [("k1", "good"), ("", "bad")])
    one_line_error(invoke("predict", run, "--data", blank, "--id-column", "key"),
                   "blank.csv line 3: empty id in column 'key'")
    tabbed = write_csv(tmp_path / "tab.csv", ["key", "text"], [("a\tb", "good")])
    one_line_error(invoke("predict", run, "--data", tabbed, "--id-column", "key"),
                   "holds a tab or line break", "use --json")
    answer = json.loads(ok(invoke("predict", run, "--data", tabbed, "--id-column", "key",
                                  "--json")))
    assert answer["id"] == "a\tb"
    # a line separator or an escape would break the lines, or act on the terminal, too
    for key in ("a\u2028b", "a\x1b[2Jb", "a\x0bb"):
        odd = write_csv(tmp_path / "odd.csv", ["key", "text"], [(key, "good")])
        one_line_error(invoke("predict", run, "--data", odd, "--id-column", "key"),
                       repr(key), "holds a tab or line break", "use --json")


def _large_file(tmp_path, rows=12_000):
    texts = [text for text, _ in bundled_reviews(100)]
    return write_csv(tmp_path / "large.csv", ["key", "text"],
                     [(f"r{i}", texts[i % len(texts)]) for i in range(rows)])


def test_a_large_file_is_read_within_a_few_times_its_size(tmp_path):
    path = _large_file(tmp_path)
    tracemalloc.start()
    try:
        rows = read_csv(path, "text", None)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(rows.texts) == 12_000
    assert peak < 6 * os.path.getsize(path)


def test_a_large_file_is_predicted_within_a_few_times_its_size(task_runs, tmp_path):
    path = _large_file(tmp_path)
    tracemalloc.start()
    try:
        out = ok(invoke("predict", task_runs["sentiment"], "--data", path))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(out.splitlines()) == 12_000
    # the output itself, which the test's runner keeps, is counted in the peak
    assert peak < 10 * os.path.getsize(path) + 2 * len(out)


def test_a_row_refused_after_a_long_field_leaves_the_csv_modules_limit(tmp_path):
    """The rows are read one at a time: a refusal part-way leaves the csv module's field
    limit (raised while a row is read, for fields longer than its default) as it was."""
    limit = csv.field_size_limit()
    path = write_csv(tmp_path / "long.csv", ["key", "text"],
                     [("k1", "word " * 40000), ("", "good")])
    with pytest.raises(UserError, match="line 3: empty id in column 'key'"):
        read_csv(path, "text", None, id_column="key")
    assert csv.field_size_limit() == limit
