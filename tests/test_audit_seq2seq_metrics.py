"""Mutation audit, round 2: plugins/seq2seq/metrics.py score() wiring, against hand-worked
edit distances and sacrebleu called directly on the joined strings.

- character-level targets: BLEU with sacrebleu's "char" tokenizer (whitespace not
  counted), chrF with its defaults (chrF, not chrF++), each hypothesis against its own
  reference;
- the symbol error rate is the summed edit distance over the REFERENCE symbols; exact
  match is whole-sequence equality;
- textbook edit distances: kitten/sitting 3, flaw/lawn 2, intention/execution 5;
- the majority baseline's mapping reads only the pairs of equal length."""
import pytest

from recurrent_plugins.seq2seq import metrics

sacrebleu = pytest.importorskip("sacrebleu",
                                reason="the seq2seq extra (sacrebleu) is not installed")


def test_textbook_edit_distances():
    assert metrics.edit_distance(list("kitten"), list("sitting")) == 3
    assert metrics.edit_distance(list("flaw"), list("lawn")) == 2
    assert metrics.edit_distance(list("intention"), list("execution")) == 5
    assert metrics.edit_distance([], list("abc")) == 3
    assert metrics.edit_distances([list("ab"), list("abcdef")],
                                  [list("ba"), list("azced")]).tolist() == [2, 3]


def test_char_level_score_by_hand():
    hyps = [list("kitten"), list("flaw"), list("stone")]
    refs = [list("sitting"), list("lawn"), list("stone")]
    m = metrics.score(hyps, refs, "char", g2p=False)
    # edit distances 3 + 2 + 0 over 7 + 4 + 5 reference characters
    assert m["ser"] == pytest.approx(5 / 16)
    assert m["exact"] == pytest.approx(1 / 3) and m["pairs"] == 3
    hyp_text, ref_text = ["kitten", "flaw", "stone"], [["sitting", "lawn", "stone"]]
    assert m["bleu"] == pytest.approx(
        sacrebleu.corpus_bleu(hyp_text, ref_text, tokenize="char").score)
    assert m["chrf"] == pytest.approx(sacrebleu.corpus_chrf(hyp_text, ref_text).score)
    # one word each: word tokenization would give another (much lower) BLEU
    assert m["bleu"] != pytest.approx(sacrebleu.corpus_bleu(hyp_text, ref_text).score)


def test_g2p_score_per_over_reference_phonemes_and_wer():
    hyps = [["K", "AE", "T"], ["D", "AO", "G"], ["HH", "OW"]]
    refs = [["K", "AE", "T", "S"], ["D", "AO", "G"], ["HH", "AH", "L", "OW"]]
    m = metrics.score(hyps, refs, "token", g2p=True)
    # 1 + 0 + 2 deletions over 4 + 3 + 4 reference phonemes (8 hypothesis phonemes);
    # one word of three exactly right
    assert m["per"] == pytest.approx(3 / 11)
    assert m["wer"] == pytest.approx(2 / 3) and m["exact"] == pytest.approx(1 / 3)
    assert "ser" not in m


def test_exact_match_is_whole_sequence_equality():
    m = metrics.score([list("stony"), list("cat")], [list("stone"), list("cat")], "char",
                      g2p=False)
    assert m["exact"] == pytest.approx(1 / 2)  # "stony" differs only in its last letter
    assert m["ser"] == pytest.approx(1 / 8)


def test_majority_mapping_reads_only_the_equal_length_pairs():
    """The majority baseline aligns position by position, which means something only when
    both sides have the same length: the pair ("ab", "xyz") is skipped. Over the
    equal-length pairs a meets p twice, x twice and q once (the tie goes to the smallest
    symbol, p; counting the skipped pair would make it x), b meets y twice and r once,
    c meets t and s once each (s)."""
    pairs = [(list("ab"), list("pr")), (list("a"), list("p")), (list("a"), list("q")),
             (list("ab"), list("xyz")), (list("ab"), list("xy")), (list("ab"), list("xy")),
             (list("c"), list("t")), (list("c"), list("s"))]
    assert metrics.majority_mapping(pairs) == {"a": "p", "b": "y", "c": "s"}
    assert metrics.apply_mapping({"a": "p", "b": "y"}, list("abz")) == ["p", "y"]


def test_outputs_under_four_symbols_are_not_all_scored_bleu_0():
    """Short targets (g2p of short words, digit strings, token-level or character-level)
    have no 4-grams: without sacrebleu's effective order a perfect output scored BLEU 0
    and a wrong, longer one more."""
    refs = [["K", "AE", "T"], ["N", "AY", "T"]]
    assert metrics.score(refs, refs, "token", True)["bleu"] == pytest.approx(100)
    wrong = [["K", "AE", "T", "S", "Z"], ["N", "AY", "T", "S", "Z"]]
    assert metrics.score(wrong, refs, "token", True)["bleu"] < 100
    digits = [list("42"), list("7"), list("310")]
    assert metrics.score(digits, digits, "char", False)["bleu"] == pytest.approx(100)
    # an output with 4-grams: the plain corpus BLEU, as before
    hyps, refs = [["HH", "L", "OW"], ["K", "AE", "T", "S"]], [["HH", "AH", "L", "OW"],
                                                               ["K", "AE", "T", "S"]]
    assert metrics.score(hyps, refs, "token", True)["bleu"] == pytest.approx(
        sacrebleu.corpus_bleu(["HH L OW", "K AE T S"], [["HH AH L OW", "K AE T S"]],
                              tokenize="none").score)
