"""sentiment task: CSV reading, every bad-input path, the stratified split, tokenizer and
vocabulary, against hand-checked values."""
import bz2
import csv
import gzip

import numpy as np
import pytest

from recurrent.errors import UserError
from recurrent_plugins.sentiment.dataset import (bundled_path, class_list, read_csv,
                                                 stratified_split)
from recurrent_plugins.sentiment.text import (PAD_ID, UNK_ID, build_vocab, encode, is_blank,
                                              length_buckets, pad_batch, tokenize)


def write(tmp_path, content, name="d.csv"):
    path = tmp_path / name
    if isinstance(content, str):
        content = content.encode("utf-8")
    path.write_bytes(content)
    return str(path)


def one_line(exc_info):
    message = str(exc_info.value)
    assert "\n" not in message
    return message


# ---- reading -------------------------------------------------------------------------------

def test_read_csv_columns_quotes_and_blank_lines(tmp_path):
    path = write(tmp_path, 'id,label,text\n1,pos,"Great, really great."\n\n2,neg,"said ""meh"""\n')
    data = read_csv(path, "text", "label")
    assert data.texts == ["Great, really great.", 'said "meh"']
    assert data.labels == ["pos", "neg"]
    assert len(data.sha256) == 64


def test_read_csv_compressed_and_bom(tmp_path):
    body = "\ufefftext,label\nok,a\nbad,b\n".encode("utf-8")
    for name, packed in (("d.csv.gz", gzip.compress(body)), ("d.csv.bz2", bz2.compress(body))):
        data = read_csv(write(tmp_path, packed, name), "text", "label")
        assert data.texts == ["ok", "bad"] and data.labels == ["a", "b"]


def test_read_csv_without_label_column(tmp_path):
    data = read_csv(write(tmp_path, "review\nfine film\n"), "review", None)
    assert data.texts == ["fine film"] and data.labels is None


def test_bundled_data_is_the_documented_file():
    data = read_csv(bundled_path(), "text", "label")
    assert len(data.texts) == 12752
    assert data.labels.count("fresh") == 7368 and data.labels.count("rotten") == 5384
    assert data.sha256 == "4c025e4886506544a10d76b5e0810cbb53bc6da0ea7e32287eb4665e4ec17655"


def test_missing_file(tmp_path):
    with pytest.raises(UserError, match="data file not found") as e:
        read_csv(str(tmp_path / "nope.csv"), "text", "label")
    one_line(e)


def test_directory_instead_of_file(tmp_path):
    with pytest.raises(UserError, match="directory") as e:
        read_csv(str(tmp_path), "text", "label")
    one_line(e)


def test_non_utf8_file(tmp_path):
    path = write(tmp_path, "text,label\ncaf\xe9 cr\xe8me,a\n".encode("latin-1"))
    with pytest.raises(UserError,
                       match=r"not UTF-8 text \(byte 0xe9 at offset 14; tried UTF-8\)") as e:
        read_csv(path, "text", "label")
    one_line(e)


def test_corrupt_gzip(tmp_path):
    with pytest.raises(UserError, match="cannot decompress") as e:
        read_csv(write(tmp_path, b"not gzip at all", "d.csv.gz"), "text", "label")
    one_line(e)


def test_empty_file_and_header_only(tmp_path):
    with pytest.raises(UserError, match="is empty") as e:
        read_csv(write(tmp_path, ""), "text", "label")
    one_line(e)
    with pytest.raises(UserError, match="no data rows"):
        read_csv(write(tmp_path, "text,label\n\n"), "text", "label")


def test_missing_columns_name_the_columns_found(tmp_path):
    path = write(tmp_path, "review,sentiment\nnice,pos\n")
    with pytest.raises(UserError) as e:
        read_csv(path, "text", "label")
    message = one_line(e)
    assert "no column 'text' or 'label'" in message
    assert "columns found: 'review', 'sentiment'" in message
    with pytest.raises(UserError, match="no column 'label'; columns found"):
        read_csv(path, "review", "label")


def test_empty_text_and_empty_label_rows(tmp_path):
    with pytest.raises(UserError, match=r"line 3: empty text in column 'text'") as e:
        read_csv(write(tmp_path, "text,label\nfine,a\n   ,b\n"), "text", "label")
    one_line(e)
    with pytest.raises(UserError, match=r"line 2: empty label in column 'label'"):
        read_csv(write(tmp_path, "text,label\nfine,\n"), "text", "label")
    with pytest.raises(UserError, match=r"line 2: empty label"):
        read_csv(write(tmp_path, "text,label\nshort row\n"), "text", "label")
    # a row that ends before a column read says so: a text broken by an unquoted line break
    path = write(tmp_path, "text,label\nthis film was great\nand i loved it,pos\n")
    with pytest.raises(UserError) as e:
        read_csv(path, "text", "label")
    assert one_line(e) == (f"{path} line 2: empty label in column 'label' (the row has 1 "
                           f"field, the header 2: quote texts that contain line breaks)")
    with pytest.raises(UserError, match=r"line 2: empty text in column 'text' \(the row has "
                                        r"1 field, the header 2: quote"):
        read_csv(write(tmp_path, "label,text\npos\n"), "text", "label")
    with pytest.raises(UserError, match=r"line 2: empty id in column 'id' \(the row has 1 "
                                        r"field, the header 2: quote"):
        read_csv(write(tmp_path, "text,id\ngood\n"), "text", None, id_column="id")
    # an empty cell of a row as long as the header is named alone
    with pytest.raises(UserError) as e:
        read_csv(write(tmp_path, "text,label\nfine,\n"), "text", "label")
    assert one_line(e).endswith("line 2: empty label in column 'label'")
    # a row without a trailing column the task does not read is fine
    short = read_csv(write(tmp_path, "text,label,source\ngood,pos\n"), "text", "label")
    assert short.texts == ["good"] and short.labels == ["pos"]


def test_row_with_more_fields_than_the_header_is_refused(tmp_path):
    """An unquoted comma in a text shifts a fragment of it into the label column: refused,
    naming the line, rather than read as a label of its own."""
    path = write(tmp_path, "text,label\nfine film,pos\nslow, but moving,pos\ndull,neg\n")
    with pytest.raises(UserError) as e:
        read_csv(path, "text", "label")
    assert one_line(e) == (f"{path} line 3: 3 fields, the header has 2 "
                           f"(quote texts that contain commas)")
    with pytest.raises(UserError, match="line 2: 3 fields, the header has 2"):  # text only
        read_csv(write(tmp_path, "review,label\nslow, but moving,pos\n"), "review", None)
    quoted = read_csv(write(tmp_path, 'text,label\n"slow, but moving",pos\n'), "text", "label")
    assert quoted.texts == ["slow, but moving"] and quoted.labels == ["pos"]


def test_empty_fields_after_the_last_named_column_are_allowed(tmp_path):
    """As a spreadsheet may write them: after the header's last named column, in the
    header and in rows; a non-empty one there is refused."""
    data = read_csv(write(tmp_path, "text,label,\nfine film,pos,\ndull,neg\nok,pos,, \n"),
                    "text", "label")
    assert data.texts == ["fine film", "dull", "ok"] and data.labels == ["pos", "neg", "pos"]
    with pytest.raises(UserError, match="line 3: 3 fields, the header has 2"):
        read_csv(write(tmp_path, "text,label,\nfine film,pos,\ndull,neg,x\n"),
                 "text", "label")


def test_text_longer_than_the_csv_modules_field_limit(tmp_path):
    """A well-formed field beyond the csv module's default 131072-character limit reads
    (texts are cut to --max-tokens later); the module's limit is left as it was."""
    limit = csv.field_size_limit()
    long_text = "word " * 40000  # 200000 characters
    data = read_csv(write(tmp_path, f'text,label\n"{long_text}",pos\nshort,neg\n'),
                    "text", "label")
    assert data.texts == [long_text.strip(), "short"] and data.labels == ["pos", "neg"]
    assert csv.field_size_limit() == limit


def test_malformed_csv(tmp_path):
    with pytest.raises(UserError, match="malformed CSV") as e:
        read_csv(write(tmp_path, 'text,label\n"fine"x,a\n'), "text", "label")
    one_line(e)


def test_single_class():
    assert class_list(["b", "a", "b"], "f.csv") == ["a", "b"]
    with pytest.raises(UserError, match="single class 'pos'") as e:
        class_list(["pos", "pos"], "f.csv")
    one_line(e)


# ---- split ---------------------------------------------------------------------------------

def test_stratified_split_sizes_disjoint_and_deterministic():
    labels = ["a"] * 60 + ["b"] * 30 + ["c"] * 10
    split = stratified_split(labels, 0.1, 0.2, seed=3)
    # per class: test round(n*0.2), valid round(n*0.1), train the rest
    counts = {name: {c: sum(labels[i] == c for i in idx) for c in "abc"}
              for name, idx in split.items()}
    assert counts["test"] == {"a": 12, "b": 6, "c": 2}
    assert counts["valid"] == {"a": 6, "b": 3, "c": 1}
    assert counts["train"] == {"a": 42, "b": 21, "c": 7}
    together = np.concatenate(list(split.values()))
    assert sorted(together.tolist()) == list(range(100))
    again = stratified_split(labels, 0.1, 0.2, seed=3)
    assert all(np.array_equal(split[k], again[k]) for k in split)
    other = stratified_split(labels, 0.1, 0.2, seed=4)
    assert not np.array_equal(split["test"], other["test"])


def test_split_keeps_a_training_row_per_class_and_rejects_tiny_data():
    split = stratified_split(["a"] * 10 + ["b"], 0.1, 0.1, seed=0)
    assert any(i == 10 for i in split["train"])
    with pytest.raises(UserError, match="too few for a train/validation/test split") as e:
        stratified_split(["a", "b", "a", "b"], 0.1, 0.1, seed=0)
    one_line(e)
    with pytest.raises(UserError, match="fractions"):
        stratified_split(["a", "b"] * 10, 0.6, 0.5, seed=0)


# ---- tokens --------------------------------------------------------------------------------

def test_tokenize_words_and_punctuation():
    assert tokenize("It's NOT bad... really!") == ["it's", "not", "bad", ".", ".", ".",
                                                   "really", "!"]
    assert tokenize("Don\u2019t -- 10/10 :)") == ["don't", "-", "-", "10", "/", "10",
                                                  ":", ")"]
    assert tokenize("Don\u2019t", 1) == ["don\u2019t"]  # version 1 kept the apostrophe
    assert tokenize("Café  crème") == ["café", "crème"]


@pytest.mark.parametrize("text, same_as, v1", [
    ("cafe\u0301 bien", "café bien", ["cafe", "\u0301", "bien"]),  # decomposed accent (NFD)
    ("hi\u00adgh \u200bvalue", "high value", ["hi", "\u00ad", "gh", "\u200b", "value"]),
    ("I \u2764\ufe0f it", "I \u2764 it", ["i", "\u2764", "\ufe0f", "it"]),  # emoji style
    ("\uff27\uff4f\uff4f\uff44 \ufb01lm", "Good film", ["\uff47\uff4f\uff4f\uff44", "\ufb01lm"]),
    ("so good\u2026", "so good...", ["so", "good", "\u2026"]),
    ("\ufeffgreat", "great", ["\ufeff", "great"]),  # a byte-order mark left in a field
    # an invisible character between a letter and its accent: deleted before NFKC composes
    ("cafe\u00ad\u0301", "caf\u00e9", ["cafe", "\u00ad", "\u0301"]),
    ("good\u200bfilm", "good film", ["good", "\u200b", "film"]),  # a zero-width space
])
def test_tokenize_version_2_reads_lookalike_text_alike(text, same_as, v1):
    """Text that looks the same tokenizes the same (NFKC, invisible characters and
    variation selectors deleted); version 1, kept for the runs it made, did not."""
    assert tokenize(text) == tokenize(same_as) != tokenize(text, 1) == v1


def test_tokenize_version_2_keeps_combining_marks_in_their_words():
    """Vowel signs and viramas are combining marks, not word characters for re's \\w:
    version 1 cut Hindi words into letters and signs; Persian's zero-width non-joiner
    split one word in two."""
    hindi = "\u092b\u093f\u0932\u094d\u092e \u0905\u091a\u094d\u091b\u0940 \u0939\u0948"
    assert tokenize(hindi) == hindi.split()
    assert len(tokenize(hindi, 1)) == 11
    assert tokenize("\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645") == [
        "\u0645\u06cc\u062e\u0648\u0627\u0647\u0645"]
    assert tokenize("a \u0301 b") == ["a", "\u0301", "b"]  # a lone mark is still a token


def test_tokenize_unknown_version_and_blank_text():
    with pytest.raises(ValueError, match="unknown tokenizer version 4"):
        tokenize("good", 4)
    assert is_blank(" \u200b\u200d\ufeff\t") and not is_blank("\u200bx")
    assert not is_blank("\u0301")
    # version 1 made tokens of invisible characters: its texts are blank only when empty
    assert not is_blank("\u200b", 1) and tokenize("\u200b", 1) == ["\u200b"]
    assert is_blank(" \t", 1)


def test_build_vocab_frequency_order_min_freq_and_cap():
    docs = [["b", "a", "b"], ["c", "a", "b"], ["d"]]
    assert build_vocab(docs, 0, 1) == ["<pad>", "<unk>", "b", "a", "c", "d"]
    assert build_vocab(docs, 0, 2) == ["<pad>", "<unk>", "b", "a"]
    assert build_vocab(docs, 3, 1) == ["<pad>", "<unk>", "b"]
    with pytest.raises(ValueError, match="max_vocab"):
        build_vocab(docs, 2, 1)


def test_encode_unknown_and_cut():
    index = {"<pad>": 0, "<unk>": 1, "good": 2}
    assert encode(["good", "odd", "good"], index, 0) == [2, UNK_ID, 2]
    assert encode(["good", "odd", "good"], index, 2) == [2, UNK_ID]


def test_pad_batch_time_major():
    x, lengths = pad_batch([[5, 6], [7], [8, 9, 4]])
    assert x.dtype == np.int64 and x.shape == (3, 3)
    assert lengths.tolist() == [2, 1, 3]
    assert x[:, 0].tolist() == [5, 6, PAD_ID]
    assert x[:, 1].tolist() == [7, PAD_ID, PAD_ID]
    assert x[:, 2].tolist() == [8, 9, 4]


def test_length_buckets_cover_every_row_once():
    lengths = np.array([5, 1, 9, 3, 3, 7, 2, 8, 1, 4])
    sorted_batches = length_buckets(lengths, 4, None)
    assert [len(b) for b in sorted_batches] == [4, 4, 2]
    flat = np.concatenate(sorted_batches)
    assert lengths[flat].tolist() == sorted(lengths.tolist())
    shuffled = length_buckets(lengths, 3, np.random.default_rng(0), pool_batches=2)
    assert sorted(np.concatenate(shuffled).tolist()) == list(range(10))
    for batch in shuffled:  # each pool is sorted, so each batch is non-decreasing in length
        assert np.all(np.diff(lengths[batch]) >= 0)


def test_one_very_long_row_does_not_pad_its_whole_batch():
    """A 20,000-symbol row among short ones padded all 128 rows of its batch to its
    length (1.8 GB for a small seq2seq model): a batch is cut where its padded positions
    would pass MAX_BATCH_SLOTS; batches under it are as before."""
    from recurrent_plugins.sentiment.text import MAX_BATCH_SLOTS
    rng = np.random.default_rng(0)
    lengths = rng.integers(3, 9, size=1000)
    lengths_long = lengths.copy()
    lengths_long[17] = 20_000
    for batches in (length_buckets(lengths_long, 128, np.random.default_rng(1)),
                    length_buckets(lengths_long, 128, None)):
        assert sorted(np.concatenate(batches).tolist()) == list(range(1000))
        assert all(len(b) * lengths_long[b].max() <= MAX_BATCH_SLOTS or len(b) == 1
                   for b in batches)
        assert [17] in [b.tolist() for b in batches]  # on its own
    lengths_huge = lengths.copy()
    lengths_huge[:3] = MAX_BATCH_SLOTS + 1  # each longer than the budget alone
    assert [len(b) for b in length_buckets(lengths_huge, 128, None)][-3:] == [1, 1, 1]
    # ordinary data: the batches of the documented scheme (shuffle, sort within pools of
    # 50 batches, cut, shuffle the batches), in the same order from the same generator
    gen = np.random.default_rng(1)
    order, plain = gen.permutation(1000), []
    for start in range(0, 1000, 128 * 50):
        pool = order[start:start + 128 * 50]
        pool = pool[np.argsort(lengths[pool], kind="stable")]
        plain += [pool[i:i + 128] for i in range(0, len(pool), 128)]
    plain = [plain[i] for i in gen.permutation(len(plain))]
    got = length_buckets(lengths, 128, np.random.default_rng(1))
    assert [b.tolist() for b in got] == [b.tolist() for b in plain]


def test_the_vocabulary_counts_only_what_the_model_reads(tmp_path):
    """Words met only beyond --max-tokens never reach the model: they stay out of the
    vocabulary (an embedding no step trains), the words before the cut are in it."""
    from helpers import bundled_reviews, write_reviews

    from recurrent_plugins.sentiment import TASK
    rows = [(text + " zzzbeyond zzzbeyond", label) for text, label in bundled_reviews(50)]
    data = write_reviews(tmp_path / "cut.csv", rows)
    cut = TASK.prepare({"data": data, "min_freq": 1, "max_tokens": 3})
    whole = TASK.prepare({"data": data, "min_freq": 1, "max_tokens": 0})
    assert "zzzbeyond" in whole["vocab"] and "zzzbeyond" not in cut["vocab"]
    firsts = {t for text, _ in rows for t in tokenize(text)[:3]}
    assert set(cut["vocab"][2:]) <= firsts
