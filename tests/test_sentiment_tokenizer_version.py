"""The sentiment task's tokenizer version: new runs record and use version 3, a run that
recorded none keeps version 1 (its vocabulary was built with it), an unknown version and
a text of only invisible characters are one-line errors."""
import json

import pytest
from helpers import bundled_reviews, invoke, ok, one_line_error, write_reviews

from recurrent_plugins.sentiment import TASK
from recurrent_plugins.sentiment.task import _split_key
from recurrent_plugins.sentiment.text import TOKENIZER, UNK_ID, encode, tokenize

SMALL = ["--hidden", "8", "--embed-dim", "8", "--steps", "2", "--threads", "1", "--quiet",
         "--no-plot", "--ensemble", "1"]
TYPOGRAPHIC = [("It\u2019s a mess\u2026 don\u2019t go", "rotten"),
               ("Cafe\u0301 charm, it\u2019s lovely", "fresh")]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """120 fresh and 120 rotten bundled snippets, and a few texts version 2 reads
    differently (typographic apostrophes, an ellipsis, a decomposed accent)."""
    rows = bundled_reviews(120) + TYPOGRAPHIC * 4
    return write_reviews(tmp_path_factory.mktemp("tok") / "slice.csv", rows)


def test_a_new_state_records_the_version_and_an_old_one_reads_with_version_1(data):
    state = TASK.prepare({"data": data, "min_freq": 1})
    assert state["tokenizer"] == TOKENIZER == 3
    assert "it's" in state["vocab"] and "it\u2019s" not in state["vocab"]
    old = {k: v for k, v in state.items() if k != "tokenizer"}
    index = {tok: i for i, tok in enumerate(state["vocab"])}
    # the old state reads "it’s" as version 1 did: a token outside this vocabulary
    seqs_new, _ = TASK.split_rows(state, "train", {})
    seqs_old, _ = TASK.split_rows(old, "train", {})
    unknown = [sum(seq.count(UNK_ID) for seq in seqs) for seqs in (seqs_new, seqs_old)]
    assert unknown[1] >= unknown[0] + 8
    texts = [t for t, _ in TYPOGRAPHIC]
    new_ids = [encode(tokenize(t, 2), index, 400) for t in texts]
    old_ids = [encode(tokenize(t, 1), index, 400) for t in texts]
    assert new_ids != old_ids
    # the cached baselines of the two versions are kept apart
    assert _split_key(state) != _split_key(old)


def test_runs_predict_with_their_own_version_and_refuse_an_unknown_one(data, tmp_path):
    run = tmp_path / "run"
    ok(invoke("train", "sentiment", "--data", data, "--out", run, "--min-freq", "1", *SMALL))
    config = json.loads((run / "config.json").read_text())
    assert config["task_state"]["tokenizer"] == TOKENIZER
    # lookalike texts get the same answer under versions 2 and 3
    same = json.loads(ok(invoke("predict", run, "--json", "It\u2019s lovely\u2026")))
    assert same == {**json.loads(ok(invoke("predict", run, "--json", "It's lovely..."))),
                    "text": "It\u2019s lovely\u2026"}
    one_line_error(invoke("predict", run, "\u200b\ufeff"), "text argument 1 is empty")

    config["task_state"]["tokenizer"] = 4
    (run / "config.json").write_text(json.dumps(config))
    one_line_error(invoke("predict", run, "good"), "tokenizer version 4", "upgrade recurrent")
    one_line_error(invoke("eval", run), "tokenizer version 4")


def test_a_text_of_only_invisible_characters_is_an_empty_text(tmp_path):
    data = write_reviews(tmp_path / "bad.csv", [("good", "pos"), ("\u200b\u00ad", "neg")])
    one_line_error(invoke("train", "sentiment", "--data", data, "--out", tmp_path / "run",
                          *SMALL), "line 3: empty text", "only invisible characters")
    assert not (tmp_path / "run").exists()


def test_a_version_1_run_still_reads_texts_of_invisible_characters(data, tmp_path):
    """Version 1 made a token of each invisible character: its runs keep evaluating files,
    and predicting texts, that hold such texts (version 2 refuses them as empty)."""
    run = tmp_path / "old"
    ok(invoke("train", "sentiment", "--data", data, "--out", run, "--min-freq", "1", *SMALL))
    config = json.loads((run / "config.json").read_text())
    del config["task_state"]["tokenizer"]  # as a run made before tokenizer versions
    (run / "config.json").write_text(json.dumps(config))
    odd = write_reviews(tmp_path / "odd.csv", [("good fun", "fresh"), ("\u200b", "rotten")])
    assert json.loads(ok(invoke("eval", run, "--data", odd, "--json")))["metrics"]
    assert json.loads(ok(invoke("predict", run, "--json", "\u200b")))["text"] == "\u200b"
    one_line_error(invoke("predict", run, " "), "text argument 1 is empty")
