"""seq2seq task end to end through the CLI on real data (a slice of the bundled CMUdict
grapheme-to-phoneme pairs): train, eval beside the baselines, predict (greedy, beam,
n-best, JSON, --stream, the attention PNG), any TSV at character level, the fixed split,
and bad input as one-line errors."""
import json
import lzma

import numpy as np
import pytest
from helpers import invoke, ok, one_line_error, reversal_tsv

from recurrent.checkpoint import RunDir
from recurrent.errors import UserError
from recurrent.out_paths import shell_word
from recurrent_plugins.seq2seq import data, metrics

SMALL = ["--hidden", "16", "--embed-dim", "8", "--epochs", "1", "--threads", "1",
         "--quiet", "--no-plot"]


@pytest.fixture(scope="module")
def bundled_pairs():
    with lzma.open(data.resolve_path(None), "rt", encoding="utf-8") as f:
        return [tuple(line.rstrip("\n").split("\t")) for line in f]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    path = tmp_path_factory.mktemp("seq2seq") / "run"
    ok(invoke("train", "seq2seq", "--max-train", 600, "--max-eval", 400, "--out", path,
              *SMALL))
    return path


def test_bundled_data_is_one_pronunciation_per_word_split_by_word(bundled_pairs):
    words = [w for w, _ in bundled_pairs]
    assert len(words) == len(set(words)) > 100_000
    assert all(w.isalpha() and w.islower() for w in words)
    phonemes = {p for _, t in bundled_pairs for p in t.split()}
    assert len(phonemes) == 39 and not any(c.isdigit() for p in phonemes for c in p)
    splits = [data.split_of(w) for w in words]
    shares = {s: splits.count(s) / len(words) for s in data.SPLITS}
    assert abs(shares["train"] - 0.9) < 0.01 and abs(shares["test"] - 0.05) < 0.005
    assert [data.split_of(w) for w in words[:50]] == splits[:50]  # a function of the word


def test_eval_reports_g2p_metrics_beside_the_majority_baseline(run):
    report = json.loads(ok(invoke("eval", run, "--json")))
    m, base = report["metrics"], report["baselines"]
    assert set(base) == {"majority"}  # letters -> phonemes: no copy baseline
    for key in ("loss", "exact", "bleu", "chrf", "wer", "per"):
        assert np.isfinite(m[key]) and np.isfinite(base["majority"].get(key, 0.0))
    assert m["wer"] == pytest.approx(1 - m["exact"])
    assert 0 < base["majority"]["per"] < 1 and m["pairs"] == base["majority"]["pairs"] == 400
    text = ok(invoke("eval", run))
    assert "majority" in text and "per" in text


def test_eval_of_a_run_trained_with_max_eval_says_it_scores_that_many(run, bundled_pairs,
                                                                    tmp_path):
    """The run's --max-eval 400 cuts the split eval scores too: its report says so once,
    above the table, and --json gives the split's pairs beside those scored. A --data
    file is scored whole, without the note."""
    whole = RunDir.open(run).info()["task_state"]["counts"]["test"]
    assert whole > 400
    text = ok(invoke("eval", run))
    notes = [line for line in text.splitlines() if "--max-eval" in line]
    assert notes == [f"note: scored on 400 of the split's {whole} pairs, spread over it, as "
                     f"the run's --max-eval 400 says: eval has no --max-eval of its own (a "
                     f"run trained with --max-eval 0, the default, scores them all)"], text
    assert text.splitlines()[1] == notes[0]  # under eval's header, above the table
    metrics_ = json.loads(ok(invoke("eval", run, "--json")))["metrics"]
    assert metrics_["pairs"] == 400 and metrics_["split_pairs"] == whole
    tsv = tmp_path / "some.tsv"
    tsv.write_text("".join(f"{s}\t{t}\n" for s, t in bundled_pairs[:500]), encoding="utf-8")
    scored = ok(invoke("eval", run, "--data", tsv))
    assert "--max-eval" not in scored, scored


def test_predict_greedy_beam_json_and_plot(run, tmp_path):
    best = ok(invoke("predict", run, "cat")).strip()
    assert best and all(p.isupper() for p in best.split())
    assert ok(invoke("predict", run, "CAT")).strip() == best  # words are lower-cased
    nbest = ok(invoke("predict", run, "cat", "dog", "--beam", 3, "--n-best", 2)).splitlines()
    assert [line.split("\t")[:2] for line in nbest] == [["cat", "1"], ["cat", "2"],
                                                        ["dog", "1"], ["dog", "2"]]
    scores = [float(line.split("\t")[2]) for line in nbest]
    assert scores[0] >= scores[1] and scores[2] >= scores[3]
    png = tmp_path / "attn.png"
    result = invoke("predict", run, "cat", "--beam", 3, "--json", "--plot", png)
    answer = json.loads(ok(result))
    assert result.stderr == f"wrote {png}\n"  # on stderr: stdout stays the JSON
    assert answer["input"] == "cat" and len(answer["hypotheses"]) == 1
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    greedy = json.loads(ok(invoke("predict", run, "cat", "--json")))["hypotheses"][0]
    assert greedy["output"] == best


def test_predict_stream_answers_each_line(run):
    from click.testing import CliRunner

    from recurrent.cli import cli
    best = ok(invoke("predict", run, "dog")).strip()
    result = CliRunner().invoke(cli, ["predict", str(run), "--stream"], input="dog\ncafé\n")
    assert result.exit_code == 1  # one line refused, the stream went on
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert lines[0]["input"] == "dog" and lines[0]["output"] == best
    assert "never saw" in lines[1]["error"]


def test_predict_bad_input_is_one_line(run, tmp_path):
    one_line_error(invoke("predict", run, "café"), "never saw", "'é'")
    one_line_error(invoke("predict", run), "give the text",
                   f"e.g. recurrent predict {shell_word(run)} \"word\"")
    one_line_error(invoke("predict", run, "cat", "--n-best", 3), "--beam")
    one_line_error(invoke("predict", run, "cat", "--plot", tmp_path / "no" / "a.png"),
                   "does not exist")
    one_line_error(invoke("export", run, "--format", "torch", "--precision", "int8",
                          "--out", tmp_path / "m.safetensors"), "--precision int8 is for")
    assert not (tmp_path / "m.safetensors").exists()


def test_any_tsv_at_character_level_with_copy_baseline(tmp_path):
    tsv, words = reversal_tsv(tmp_path / "reverse.tsv", "abcdef", 3000)
    out = tmp_path / "run"
    ok(invoke("train", "seq2seq", "--data", tsv, "--out", out, *SMALL))
    report = json.loads(ok(invoke("eval", out, "--json")))
    assert set(report["baselines"]) == {"majority", "copy"}
    assert "ser" in report["metrics"] and "wer" not in report["metrics"]
    palindromes = sum(w == w[::-1] for w in words if data.split_of(w) == "test")
    copy = report["baselines"]["copy"]
    assert copy["exact"] == pytest.approx(palindromes / copy["pairs"])
    assert ok(invoke("predict", out, "abc")).strip().isalpha()
    other = tmp_path / "other.tsv"
    other.write_text("abc\tcba\nfed\tdef\naa\tzz\n", encoding="utf-8")  # z: unseen target
    report = json.loads(ok(invoke("eval", out, "--data", other, "--json")))
    assert report["metrics"]["pairs"] == 3 and report["baselines"]["copy"]["exact"] == 0
    other.write_text("abc\tcba\nzz\tzz\n", encoding="utf-8")  # z: an unseen source
    one_line_error(invoke("eval", out, "--data", other), "other.tsv", "never saw", "'z'")


def test_bad_tsv_is_one_line(tmp_path):
    bad = tmp_path / "bad.tsv"
    bad.write_text("a\tb\nno tab here\n", encoding="utf-8")
    one_line_error(invoke("train", "seq2seq", "--data", bad, "--out", tmp_path / "r",
                          *SMALL), "line 2", "no tab")
    empty = tmp_path / "empty.tsv"
    empty.write_text("a\t \n", encoding="utf-8")
    one_line_error(invoke("train", "seq2seq", "--data", empty, "--out", tmp_path / "r",
                          *SMALL), "line 1", "target is empty")


def test_metrics_edit_distance_and_majority_mapping():
    assert metrics.edit_distance(list("kitten"), list("sitting")) == 3
    assert metrics.edit_distance([], ["a", "b"]) == 2
    mapping = metrics.majority_mapping([(list("ab"), ["A", "B"]), (list("ab"), ["A", "C"]),
                                        (list("abc"), ["X"])])
    assert mapping == {"a": "A", "b": "B"}
    refs = [["HH", "AH", "L", "OW"], ["K", "AE", "T", "S"]]
    perfect = metrics.score(refs, refs, "token", True)
    assert perfect["exact"] == 1 and perfect["per"] == 0 and perfect["wer"] == 0
    assert perfect["bleu"] == pytest.approx(100) and perfect["chrf"] == pytest.approx(100)
    worse = metrics.score([["HH", "L", "OW"], ["K", "AE", "T", "S"]], refs, "token", True)
    assert worse["per"] == pytest.approx(1 / 8) and worse["wer"] == 0.5
    assert 0 < worse["bleu"] < 100 and 0 < worse["chrf"] < 100


# ---- defects found in review ------------------------------------------------------------

def test_a_file_without_validation_or_test_pairs_is_refused_before_the_run_exists(tmp_path):
    # a small TSV often hashes no source into valid (5%): BLEU of no pairs used to crash
    words = [f"w{k}" for k in range(200)]
    kept = [w for w in words if data.split_of(w) != "valid"][:19]
    tsv = tmp_path / "novalid.tsv"
    tsv.write_text("".join(f"{w}\t{w[::-1]}\n" for w in kept), encoding="utf-8")
    out = tmp_path / "run"
    one_line_error(invoke("train", "seq2seq", "--data", tsv, "--steps", 2, "--out", out,
                          *SMALL), "novalid.tsv", "no validation", "19 pairs")
    assert not out.exists()
    kept = [w for w in words if data.split_of(w) == "train"][:19]
    tsv.write_text("".join(f"{w}\t{w[::-1]}\n" for w in kept), encoding="utf-8")
    one_line_error(invoke("train", "seq2seq", "--data", tsv, "--steps", 2, "--out", out,
                          *SMALL), "no validation and no test pairs")
    assert not out.exists()
    tsv.write_text(f"{kept[0]}\t{kept[0][::-1]}\n", encoding="utf-8")  # one pair
    one_line_error(invoke("train", "seq2seq", "--data", tsv, "--steps", 2, "--out", out,
                          *SMALL), "no validation and no test pairs", "it has 1 pair)")
    assert not out.exists()
    with pytest.raises(UserError, match="no pairs"):
        metrics.score([], [], "char", False)


def test_character_targets_are_scored_by_character_ngrams():
    sacrebleu = pytest.importorskip("sacrebleu", reason="sacrebleu not installed "
                                    "(the seq2seq extra)")
    # one-word targets have no word 2-4-grams: a perfect copy used to score BLEU 0
    words = [list(w) for w in ("knight", "through", "phoneme", "cat")]
    perfect = metrics.score(words, words, "char", False)
    assert perfect["bleu"] == pytest.approx(100) and perfect["chrf"] == pytest.approx(100)
    worse = metrics.score([list("night"), *words[1:]], words, "char", False)
    assert 50 < worse["bleu"] < 100
    # token-level targets (g2p phonemes) keep their figures: tokens, not characters
    refs = [["HH", "AH", "L", "OW"], ["K", "AE", "T", "S"]]
    hyps = [["HH", "L", "OW"], ["K", "AE", "T", "S"]]
    expected = sacrebleu.corpus_bleu(["HH L OW", "K AE T S"], [["HH AH L OW", "K AE T S"]],
                                     tokenize="none").score
    assert metrics.score(hyps, refs, "token", True)["bleu"] == pytest.approx(expected)


def test_eval_data_reads_sources_as_predict_does(run, bundled_pairs, tmp_path):
    known = set(RunDir.open(run).info()["task_state"]["source_vocab"])
    test = [(w, t) for w, t in bundled_pairs
            if data.split_of(w) == "test" and set(w) <= known][:40]
    lower, upper = tmp_path / "lower.tsv", tmp_path / "upper.tsv"
    lower.write_text("".join(f"{w}\t{t}\n" for w, t in test), encoding="utf-8")
    upper.write_text("".join(f"{w.upper()}\t{t}\n" for w, t in test), encoding="utf-8")
    a = json.loads(ok(invoke("eval", run, "--data", lower, "--json")))
    b = json.loads(ok(invoke("eval", run, "--data", upper, "--json")))
    assert a["metrics"] == b["metrics"] and a["baselines"] == b["baselines"]
    assert a["metrics"]["pairs"] == 40
    first = test[0][0]
    assert ok(invoke("predict", run, first.upper())) == ok(invoke("predict", run, first))
    bad = tmp_path / "bad.tsv"
    bad.write_text(f"{test[0][0]}\t{test[0][1]}\nCAFÉ\tK AE F EY\n", encoding="utf-8")
    one_line_error(invoke("eval", run, "--data", bad), "bad.tsv", "never saw", "'é'",
                   "CAFÉ")
    one_line_error(invoke("predict", run, "CAFÉ"), "never saw", "'é'")


def test_greedy_normalised_score_follows_alpha(run):
    def best(*options):
        return json.loads(ok(invoke("predict", run, "knight", "--json", *options))
                          )["hypotheses"][0]
    raw, mean = best("--alpha", 0), best("--alpha", 1)
    assert raw["output"] == mean["output"] and raw["score"] == mean["score"]
    steps = len(mean["output"].split()) + mean["finished"]  # EOS counts
    assert steps > 1
    assert raw["normalised"] == pytest.approx(raw["score"])
    assert mean["normalised"] == pytest.approx(mean["score"] / steps)
    assert best("--alpha", 0.5)["normalised"] == pytest.approx(mean["score"] / steps ** 0.5)


def test_an_answer_does_not_depend_on_the_inputs_decoded_with_it(tmp_path):
    # the default limit is per input (2 x its length, or the longest training target, +
    # 10): an under-trained model that never emits </s> shows it; `predict` (one batch)
    # and `--stream` (one at a time) agree
    from click.testing import CliRunner

    from recurrent.cli import cli
    out = tmp_path / "run"
    ok(invoke("train", "seq2seq", "--max-train", 200, "--max-eval", 20, "--steps", 1,
              "--out", out, *SMALL))
    longest = RunDir.open(out).info()["task_state"]["longest_target"]
    words = ["a", "cat", "internationalisation"]
    for beam in (1, 3):
        together = ok(invoke("predict", out, *words, "--json", "--beam", beam)).splitlines()
        result = CliRunner().invoke(cli, ["predict", str(out), "--stream", "--beam",
                                          str(beam)], input="\n".join(words) + "\n")
        assert result.exit_code == 0, result.output + result.stderr
        streamed = [json.loads(line) for line in result.stdout.splitlines()]
        for word, line, alone in zip(words, together, streamed):
            h = json.loads(line)["hypotheses"][0]
            assert h["output"] == alone["output"] == ok(invoke("predict", out, word,
                                                               "--beam", beam)).strip()
            # (float32 sums over another batch size may round differently)
            assert h["score"] == pytest.approx(alone["score"], rel=1e-6)
            n = len(h["output"].split())
            assert n <= max(2 * len(word), longest) + 10
        assert not json.loads(together[0])["hypotheses"][0]["finished"]  # cut there


def _number_words(n: int) -> str:
    ones = ("zero one two three four five six seven eight nine ten eleven twelve thirteen "
            "fourteen fifteen sixteen seventeen eighteen nineteen").split()
    tens = "- - twenty thirty forty fifty sixty seventy eighty ninety".split()
    if n < 20:
        return ones[n]
    if n < 100:
        return tens[n // 10] + ("" if n % 10 == 0 else " " + ones[n % 10])
    return ones[n // 100] + " hundred" + ("" if n % 100 == 0 else " " + _number_words(n % 100))


def test_targets_longer_than_twice_their_source_are_not_cut_in_eval_or_predict(tmp_path):
    # numbers -> their words at character level: "777" -> "seven hundred seventy seven"
    # (27 symbols), beyond 2 x 3 + 10 = 16. The default limit reaches the longest training
    # target: predict gives what a generous --max-len gives, and eval scores those outputs
    # (it scored them cut at 16 symbols: a model right on long numbers got them all wrong)
    path = tmp_path / "numbers.tsv"
    path.write_text("".join(f"{n}\t{_number_words(n)}\n" for n in range(1000)),
                    encoding="utf-8")
    out = tmp_path / "run"
    ok(invoke("train", "seq2seq", "--data", path, "--hidden", 32, "--embed-dim", 16,
              "--batch-size", 32, "--epochs", 6, "--threads", 1, "--quiet", "--no-plot",
              "--out", out))
    test = [(str(n), _number_words(n)) for n in range(1000) if data.split_of(str(n)) == "test"]
    sources = [s for s, _ in test]
    default = [json.loads(line)["hypotheses"][0]
               for line in ok(invoke("predict", out, *sources, "--json")).splitlines()]
    generous = [json.loads(line)["hypotheses"][0] for line in
                ok(invoke("predict", out, *sources, "--json", "--max-len", 200)).splitlines()]
    assert [h["output"] for h in default] == [h["output"] for h in generous]
    assert all(h["finished"] for h in default)
    assert max(len(h["output"]) for h in default) > 2 * 3 + 10  # long outputs are there
    report = json.loads(ok(invoke("eval", out, "--json")))
    exact = sum(h["output"] == t for h, (_, t) in zip(default, test)) / len(test)
    assert report["metrics"]["pairs"] == len(test)
    assert report["metrics"]["exact"] == pytest.approx(exact) and exact > 0.3
    refs = [[t for _, t in test]]
    sacrebleu = metrics.require_sacrebleu()
    assert report["metrics"]["chrf"] == pytest.approx(
        sacrebleu.corpus_chrf([h["output"] for h in default], refs).score)


def test_a_saved_longest_target_beyond_any_decoding_limit_is_one_line(tmp_path):
    # config.json edited by hand: a longest_target no limit can hold (--max-len stops at
    # C_INT_MAX) names the field, not an internal OverflowError of the default limit
    out = tmp_path / "run"
    ok(invoke("train", "seq2seq", "--max-train", 200, "--max-eval", 20, "--steps", 1,
              "--out", out, *SMALL))
    config = json.loads((out / "config.json").read_text())
    config["task_state"]["longest_target"] = 10 ** 30
    (out / "config.json").write_text(json.dumps(config))
    one_line_error(invoke("predict", out, "cat", "--max-len", 5), "longest_target",
                   "<= 2147483647")


def test_eval_data_counts_the_pairs_whose_source_the_run_trained_on(tmp_path):
    """A --data file of training words scored them as held out: eval counts them
    (train_overlap) and says so above the table."""
    words = [f"w{k}" for k in range(400)]
    tsv = tmp_path / "words.tsv"
    tsv.write_text("".join(f"{w}\t{w[::-1]}\n" for w in words), encoding="utf-8")
    out = tmp_path / "run"
    ok(invoke("train", "seq2seq", "--data", tsv, "--steps", 2, "--out", out, *SMALL))
    seen = [w for w in words if data.split_of(w) == "train"][:7]
    fresh = [w for w in words if data.split_of(w) == "test"][:3]
    mixed = tmp_path / "mixed.tsv"
    mixed.write_text("".join(f"{w}\t{w[::-1]}\n" for w in seen + fresh), encoding="utf-8")
    report = json.loads(ok(invoke("eval", out, "--data", mixed, "--json")))
    assert report["metrics"]["train_overlap"] == 7
    text = ok(invoke("eval", out, "--data", mixed))
    assert "note: 7 of the 10 pairs are in the run's training split" in text
    assert "train_overlap" not in text  # a note, not a row of the table
    held = tmp_path / "held.tsv"
    held.write_text("".join(f"{w}\t{w[::-1]}\n" for w in fresh), encoding="utf-8")
    assert "note:" not in ok(invoke("eval", out, "--data", held))
