"""A practitioner's own labelled files: labels written in two cases trained as two classes,
a label column of ids failed as "too few rows", tab-separated and JSON-lines files failed
as "malformed CSV" or with a list of odd column names, and a Japanese or Thai text was
one token per sentence, so every text not seen in training was <unk> and got one answer."""
import pytest
from helpers import bundled_reviews, invoke, ok, one_line_error, write_reviews

from recurrent.errors import UserError
from recurrent_plugins.sentiment import TASK
from recurrent_plugins.sentiment.dataset import class_list, read_csv, stratified_split
from recurrent_plugins.sentiment.text import UNK_ID, encode, tokenize

SMALL = ("--ensemble", 1, "--steps", 2, "--hidden", 4, "--embed-dim", 4, "--threads", 1,
         "--quiet", "--no-plot")


@pytest.mark.parametrize("one, other", [("Sports", "sports"), ("very good", "very  good"),
                                        ("NEG", "neg"), ("pos", "pos\u200b"),
                                        ("pos", "\uff50\uff4f\uff53")])
def test_one_label_in_two_cases_or_spacings_is_refused(tmp_path, one, other):
    """Also one label with an invisible zero-width space, or in full-width letters: labels
    that print alike."""
    rows = [(f"text number {i}", [one, other, "x"][i % 3]) for i in range(30)]
    data = write_reviews(tmp_path / "labels.csv", rows)
    result = invoke("train", "sentiment", "--data", data, *SMALL, "--out", tmp_path / "run")
    one_line_error(result, f"{one!r} and {other!r}" if one < other else f"{other!r} and {one!r}",
                   "write each class one way")
    assert not (tmp_path / "run").exists()
    # labels that differ in more than case and spacing are classes of their own
    assert class_list(["good", "very good", "goods"], "f.csv") == ["good", "goods", "very good"]


def test_a_label_column_of_ids_is_named_as_the_likely_cause():
    with pytest.raises(UserError) as refused:
        stratified_split([str(i) for i in range(200)], 0.1, 0.1, seed=0)
    message = str(refused.value)
    assert "200 labelled rows in 200 classes, 200 of them with a single row" in message
    assert "is the label column the labels?" in message and "only 200" not in message
    # a file that is only small keeps the plain message
    with pytest.raises(UserError, match="only 4 labelled rows: too few"):
        stratified_split(["a", "b", "a", "b"], 0.1, 0.1, seed=0)


def test_a_tab_separated_file_with_a_quoted_text_is_named_so(tmp_path):
    path = tmp_path / "reviews.tsv"
    path.write_text('text\tlabel\ngreat film\tpos\n"a ""dull"" one"\tneg\n', encoding="utf-8")
    with pytest.raises(UserError) as refused:
        read_csv(str(path), "text", "label")
    assert str(refused.value) == (f"{path} is tab-separated (header 'text\\tlabel'): save it "
                                  f"with commas between the columns")


@pytest.mark.parametrize("line", ['{"text": "great, really", "label": "pos"}',
                                  '{"text":"great, really","label":"pos"}'])
def test_a_json_lines_file_is_named_so(tmp_path, line):
    path = tmp_path / "reviews.jsonl"
    path.write_text(f'{line}\n{{"text": "dull", "label": "neg"}}\n', encoding="utf-8")
    with pytest.raises(UserError) as refused:
        read_csv(str(path), "text", "label")
    message = str(refused.value)
    assert message.startswith(f"{path} is JSON, not CSV") and "\n" not in message


def test_unspaced_scripts_are_read_letter_by_letter(tmp_path):
    # Japanese and Thai sentences share letters, not whole sentences
    assert tokenize("映画が好き。") == ["映", "画", "が", "好", "き", "。"]
    assert tokenize("\uff83\uff9e\uff70\uff80") == ["デ", "ー", "タ"]  # half-width: NFKC
    assert tokenize("\u0e20\u0e32\u0e29\u0e32\u0e44\u0e17\u0e22\u0e07\u0e48") == [
        "\u0e20", "\u0e32", "\u0e29", "\u0e32", "\u0e44", "\u0e17", "\u0e22",
        "\u0e07\u0e48"]  # a Thai tone mark stays with its letter
    assert tokenize("abc映画 Korean 영화가") == ["abc", "映", "画", "korean", "영화가"]
    good, bad = ["最高の映画でした", "とても楽しい作品", "感動しました"], [
        "最悪の映画でした", "とても退屈な作品", "がっかりしました"]
    rows = [(t, "pos") for t in good] * 10 + [(t, "neg") for t in bad] * 10
    state = TASK.prepare({"data": write_reviews(tmp_path / "ja.csv", rows)})
    index = {tok: i for i, tok in enumerate(state["vocab"])}
    # a sentence the training texts never held, of letters they did, has no unknown token
    ids = encode(tokenize("楽しい映画でした"), index, 400)
    assert len(ids) == 8 and UNK_ID not in ids


def test_texts_without_unspaced_letters_tokenize_as_version_2():
    texts = [t for t, _ in bundled_reviews(300)] + [
        "Der Film war großartig, wunderschön!", "love it \U0001f60d\U0001f525 #happy",
        "\ud55c\uad6d \uc601\ud654",
        "\u092b\u093f\u0932\u094d\u092e \u0905\u091a\u094d\u091b\u0940",
        "It\u2019s cafe\u0301 \uff27ood"]
    assert all(tokenize(t) == tokenize(t, 2) for t in texts)


@pytest.mark.parametrize("label", [
    "very\tgood", "very\ngood", "very\r\ngood",
    # the other characters that end a line (str.splitlines) or that a terminal acts on
    "very\u2028good", "very\u2029good", "very\x0bgood", "very\x0cgood", "very\x85good",
    "very\x1b[31mgood", "very\x08good", "very\x7fgood"])
def test_a_label_holding_a_tab_or_line_break_is_refused(tmp_path, label):
    """A quoted label cell may hold a tab, a line break or another control character,
    which would break eval's tables and predict's one tab-separated line per text:
    training refuses it."""
    rows = [(text, label if l == "fresh" else "bad") for text, l in bundled_reviews(20)]
    data = write_reviews(tmp_path / "labels.csv", rows)
    result = invoke("train", "sentiment", "--data", data, *SMALL, "--out", tmp_path / "run")
    one_line_error(result, repr(label), "tab or line break")
    assert not (tmp_path / "run").exists()


def test_the_label_column_as_the_text_column_is_refused(tmp_path):
    """A text column that is also the label column would train on each text's label and
    score near 1.0, a result that means nothing."""
    data = write_reviews(tmp_path / "reviews.csv", bundled_reviews(20))
    result = invoke("train", "sentiment", "--data", data, "--text-column", "label", *SMALL,
                    "--out", tmp_path / "run")
    one_line_error(result, "text column and the label column are both 'label'",
                   "--text-column/--label-column")
    assert not (tmp_path / "run").exists()


def test_a_vocabulary_without_a_word_is_refused(tmp_path):
    """A --min-freq that no training token reaches would leave only <pad> and <unk>: every
    text the same string of <unk>s, a model that can tell texts apart by length alone."""
    data = write_reviews(tmp_path / "reviews.csv", bundled_reviews(20))
    result = invoke("train", "sentiment", "--data", data, "--min-freq", 100000, *SMALL,
                    "--out", tmp_path / "run")
    one_line_error(result, "no token occurs 100000 times or more", "lower --min-freq")
    assert not (tmp_path / "run").exists()
    # one word that reaches it is a vocabulary
    ok(invoke("train", "sentiment", "--data", data, "--min-freq", 20, *SMALL,
              "--out", tmp_path / "run"))
