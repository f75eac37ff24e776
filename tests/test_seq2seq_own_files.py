"""seq2seq on a user's own TSV files, as they come: Unicode text whose accents are
composed in one file and decomposed in another, a header line naming the columns, blanks
around the tab, and a third column (the attribution of Tatoeba/ManyThings pair files). Through the CLI, on
small files of distinct words and their reversals."""
import json
import unicodedata

import pytest
from helpers import invoke, ok, one_line_error, reversal_tsv

from recurrent_plugins.seq2seq import data

SMALL = ["--hidden", "16", "--embed-dim", "8", "--steps", "10", "--threads", "1",
         "--quiet", "--no-plot"]
LETTERS = "abcdeéèüñ"


def _state(run) -> dict:
    return json.loads((run / "config.json").read_text(encoding="utf-8"))["task_state"]


def _nfd(path, out):
    """``out``: the text of ``path`` with every accent decomposed (NFD)."""
    out.write_text(unicodedata.normalize("NFD", path.read_text(encoding="utf-8")),
                   encoding="utf-8")
    return out


@pytest.fixture(scope="module")
def nfd_run(tmp_path_factory):
    """A run trained on a file whose accents are decomposed (e + U+0301)."""
    root = tmp_path_factory.mktemp("nfd")
    nfc, _ = reversal_tsv(root / "nfc.tsv", LETTERS, 700)
    nfd = _nfd(nfc, root / "nfd.tsv")
    run = root / "run"
    ok(invoke("train", "seq2seq", "--data", nfd, "--out", run, *SMALL))
    return run, nfc, nfd


def test_composed_and_decomposed_inputs_read_alike(nfd_run):
    """Trained on decomposed text, the run reads "é" composed or decomposed as the same
    symbol: predict answers both alike, and eval --data scores the composed file."""
    run, nfc, _ = nfd_run
    composed = "cé"
    decomposed = unicodedata.normalize("NFD", composed)
    assert composed != decomposed
    first = json.loads(ok(invoke("predict", run, composed, "--json")))
    second = json.loads(ok(invoke("predict", run, decomposed, "--json")))
    assert first["hypotheses"] == second["hypotheses"]
    report = json.loads(ok(invoke("eval", run, "--data", nfc, "--json")))
    assert report["metrics"]["pairs"] == len(nfc.read_text(encoding="utf-8").splitlines())
    assert _state(run)["unicode"] == "NFC"


def test_a_run_that_recorded_no_form_reads_inputs_as_they_are(nfd_run, tmp_path):
    """A run whose state records no normalisation form (saved before the state recorded
    one) reads its inputs as they are: a decomposed "é" is not the composed one its
    vocabulary holds (this run read its decomposed file in NFC)."""
    run, _, _ = nfd_run
    old = tmp_path / "old"
    old.mkdir()
    for item in run.iterdir():
        if item.is_file():
            (old / item.name).write_bytes(item.read_bytes())
    config = json.loads((old / "config.json").read_text(encoding="utf-8"))
    for key in ("header", "two_fields", "unicode"):
        del config["task_state"][key]
    (old / "config.json").write_text(json.dumps(config), encoding="utf-8")
    one_line_error(invoke("predict", old, unicodedata.normalize("NFD", "cé")),
                   "never saw", "(U+0301)")
    ok(invoke("predict", old, "cé"))
    ok(invoke("predict", run, unicodedata.normalize("NFD", "cé")))


def test_an_unknown_combining_mark_is_named_by_its_code_point(nfd_run):
    """A combining mark the vocabulary lacks (U+0361, which composes with no letter) is
    named with its code point: alone in quotes it draws over the quote before it."""
    run, _, _ = nfd_run
    one_line_error(invoke("predict", run, "c\u0361"), "never saw", "(U+0361)")


def test_a_third_column_is_refused_before_the_run_is_made(tmp_path):
    """A ManyThings file (English, French, attribution) is refused with one line naming
    the line and how to keep two columns, not read with the attribution in every target."""
    pairs, words = reversal_tsv(tmp_path / "pairs.tsv", LETTERS, 700)
    three = tmp_path / "fra.txt"
    three.write_text("".join(f"{w}\t{w[::-1]}\tCC-BY 2.0 (France) Attribution: "
                             f"tatoeba.org #{k}\n" for k, w in enumerate(words)),
                     encoding="utf-8")
    out = tmp_path / "run"
    one_line_error(invoke("train", "seq2seq", "--data", three, "--out", out, *SMALL),
                   "fra.txt line 1: 3 tab-separated fields, expected 2", "cut -f1,2")
    assert not out.exists()


def test_a_header_line_is_skipped_as_the_options_say(tmp_path):
    """"source<TAB>target" first is skipped (both fields are column names); --no-header
    reads it as a pair; --header skips a first line of other names ("eng<TAB>fra");
    eval --data skips a header line too."""
    pairs, words = reversal_tsv(tmp_path / "pairs.tsv", LETTERS, 700)
    body = pairs.read_text(encoding="utf-8")
    named = tmp_path / "named.tsv"
    named.write_text("source\ttarget\n" + body, encoding="utf-8")
    codes = tmp_path / "codes.tsv"
    codes.write_text("eng\tfra\n" + body, encoding="utf-8")
    counted = {}
    for name, path, extra in (("auto", named, ()), ("no", named, ("--no-header",)),
                              ("codes", codes, ("--header",))):
        run = tmp_path / name
        result = invoke("train", "seq2seq", "--data", path, "--out", run, *extra, *SMALL)
        ok(result)
        assert "note:" not in result.stderr, result.stderr  # column names pass silently
        counted[name] = sum(_state(run)["counts"].values())
    assert counted == {"auto": len(words), "no": len(words) + 1, "codes": len(words)}
    report = json.loads(ok(invoke("eval", tmp_path / "auto", "--data", named, "--json")))
    assert report["metrics"]["pairs"] == len(words)


def test_header_on_a_file_without_one_names_the_pair_it_skipped(tmp_path):
    """The bundled dictionary has no header: --header drops its first pair, which a note
    names (a source of the sources' letters, a target of the targets' phonemes), and the
    run trains on the others."""
    run = tmp_path / "run"
    result = invoke("train", "seq2seq", "--header", "--max-train", "200", "--max-eval", "5",
                    "--out", run, *SMALL)
    ok(result)
    notes = [line for line in result.stderr.splitlines() if line.startswith("note:")]
    assert notes == ["note: --header skipped line 1 of cmudict_g2p.tsv.xz, 'a\\tAH', which "
                     "reads as a pair like the others, not column names; give --no-header "
                     "to train on it"], result.stderr


@pytest.mark.parametrize("line, pair", [
    ("a\tAH", True), ("aaberg\tAA B ER G", True),
    ("word\tphonemes", False),  # column names (data.HEADER_WORDS)
    ("Word\tPron", False),  # the sources hold no capitals, the targets no "Pron"
    ("grapheme\tarpabet", False),  # a target of letters, not phonemes
    ("eng\tfra", False)])
def test_a_skipped_line_reads_as_a_pair_only_when_it_fits_its_own_sides(line, pair):
    """The bundled dictionary's pairs (lower-case words, phonemes in capitals): a line of
    the same shape reads as a pair; column names, whatever they are, do not."""
    pairs, _ = data.read_pairs(data.resolve_path(None), **data.reading({}))
    assert data.reads_as_pair(line, pairs[1:], "char", "token") is pair


def test_column_names_over_text_whose_sides_share_symbols_read_as_no_pair():
    """Where both sides are written in the same letters (English and French), short names
    fit either side: such a line is not taken for a pair."""
    pairs = [("a green frog.", "une grenouille verte."), ("far away.", "loin d'ici."),
             ("fragile!", "fragile !")]
    letters = set("engfra")
    assert all(letters <= set(side) for side in ("".join(s for s, _ in pairs),
                                                 "".join(t for _, t in pairs)))
    assert not data.reads_as_pair("eng\tfra", pairs, "char", "char")


def test_blanks_around_the_tab_are_no_symbols(tmp_path):
    """"word <TAB> drow": the blanks are dropped, in training and from predict's inputs,
    so the source vocabulary has no space and an input typed without it is read; a run
    saved before the rule keeps them."""
    pairs, words = reversal_tsv(tmp_path / "pairs.tsv", LETTERS, 700)
    spaced = tmp_path / "spaced.tsv"
    spaced.write_text("".join(f"{w} \t {w[::-1]}\n" for w in words), encoding="utf-8")
    run = tmp_path / "run"
    ok(invoke("train", "seq2seq", "--data", spaced, "--out", run, *SMALL))
    state = _state(run)
    assert state["strip"] is True and " " not in state["source_vocab"]
    ok(invoke("predict", run, words[0]))
    ok(invoke("predict", run, f" {words[0]} "))
    report = json.loads(ok(invoke("eval", run, "--data", spaced, "--json")))
    assert report["metrics"]["pairs"] == len(words)
    assert data.read_pairs(str(spaced), **data.reading({}))[0][0] == (
        f"{words[0]} ", f" {words[0][::-1]}")


def test_the_reading_rules_of_runs_saved_before_them(tmp_path):
    """A state without the rules reads as runs were read before them: every line a
    pair, split at the first tab, the text as it is."""
    assert data.reading({}) == {"header": False, "two_fields": False, "form": None,
                                "strip": False}
    path = tmp_path / "pairs.tsv"
    path.write_text("source\ttarget\ncafe\u0301\tA\tB\n", encoding="utf-8")
    assert data.read_pairs(str(path), **data.reading({}))[0] == [
        ("source", "target"), ("cafe\u0301", "A\tB")]


def test_plot_of_symbols_its_font_lacks_says_so_in_one_note(tmp_path):
    # CJK ideographs are not in matplotlib's default font (DejaVu Sans): the attention
    # PNG draws them as boxes, and stderr says so once, naming them, rather than two
    # lines of Python warning per character.
    import os
    import subprocess
    import sys
    tsv, _ = reversal_tsv(tmp_path / "cjk.tsv", "日本語中文ab", 700)
    run = tmp_path / "run"
    ok(invoke("train", "seq2seq", "--data", tsv, "--out", run, *SMALL))
    png = tmp_path / "attention.png"
    command = [sys.executable, "-m", "recurrent", "predict", str(run), "日本語ab", "--plot",
               str(png)]
    done = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path,
                          env={**os.environ, "PYTHONSAFEPATH": "1"}, timeout=120)
    assert done.returncode == 0, done.stderr
    assert png.stat().st_size > 0
    note, wrote = done.stderr.splitlines()  # the output's symbols may add glyphs
    assert wrote == f"wrote {png}" and note.endswith(": they are drawn as empty boxes")
    assert note.startswith(f"note: {png}: the plot's font has no glyph for ")
    assert all(f"'{c}'" in note for c in "日本語") and "'a'" not in note


def test_an_input_that_is_not_utf8_is_refused_as_such(nfd_run):
    # a byte that is not UTF-8 in an argument reaches Python as a lone surrogate: it is
    # refused as --stream refuses such a line, not as a symbol "never seen in training"
    run, _, _ = nfd_run
    one_line_error(invoke("predict", run, "abc", "ab\udcff"),
                   "input 2 is not UTF-8 text (byte 0xff)")
    one_line_error(invoke("predict", run, "ab\udcff", "--json"),
                   "input 1 is not UTF-8 text (byte 0xff)")


def test_an_unseen_symbol_in_an_eval_file_is_named_by_its_line(nfd_run, tmp_path):
    """Blank lines hold no pair: the message gives the line an editor shows, not the
    pair's count."""
    other = tmp_path / "other.tsv"
    other.write_text("abc\tcba\n\n\nabz\tzba\n", encoding="utf-8")
    run, _, _ = nfd_run
    one_line_error(invoke("eval", run, "--data", other),
                   "other.tsv has source symbols the model never saw in training: 'z'",
                   "(first on line 4, 'abz')")


def test_a_file_of_blank_lines_is_refused_for_training_and_for_eval(nfd_run, tmp_path):
    """A file with no pair at all (blank lines only) is named in one line, by train before
    the run is made and by eval --data before anything is scored."""
    blank = tmp_path / "blank.tsv"
    blank.write_text("\n\n", encoding="utf-8")
    out = tmp_path / "run"
    one_line_error(invoke("train", "seq2seq", "--data", blank, "--out", out, *SMALL),
                   "blank.tsv holds no source<TAB>target pairs")
    assert not out.exists()
    one_line_error(invoke("eval", nfd_run[0], "--data", blank),
                   "blank.tsv holds no source<TAB>target pairs")


def test_token_level_inputs_with_tabs_and_line_breaks_keep_one_line_per_answer(tmp_path):
    """Whitespace only separates a token-level input's tokens: predict's tab-separated
    lines show the input with each run of it as one space, so an input typed with a tab
    or a line break gives the same fields and lines as one typed with spaces."""
    words = ["one", "two", "three", "four", "five"]
    rows = [f"{a} {b} {c}\t{c} {b} {a}\n" for a in words for b in words for c in words]
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("".join(rows), encoding="utf-8")
    run = tmp_path / "run"
    ok(invoke("train", "seq2seq", "--data", pairs, "--source-level", "token", "--out", run,
              *SMALL))
    typed = ["one\ttwo", "three\nfour", "five  one"]
    spaced = ["one two", "three four", "five one"]
    for extra, answers, fields in (((), 1, 2), (("--beam", 2, "--n-best", 2), 2, 4)):
        got = ok(invoke("predict", run, *typed, *extra)).splitlines()
        assert got == ok(invoke("predict", run, *spaced, *extra)).splitlines()
        assert len(got) == len(typed) * answers
        assert all(len(line.split("\t")) == fields for line in got)
        assert [line.split("\t")[0] for line in got[::answers]] == spaced


def test_stream_says_whether_max_len_cut_the_output(nfd_run):
    """--stream's answer has predict --json's "finished" for its best hypothesis: false
    when --max-len cut the output before its </s>, which the output alone does not show."""
    from click.testing import CliRunner

    from recurrent.cli import cli
    run, nfc, _ = nfd_run
    words = [line.split("\t")[0] for line in nfc.read_text(encoding="utf-8").splitlines()[:4]]
    seen = set()
    for max_len in ("1", "2", "40"):
        result = CliRunner().invoke(cli, ["predict", str(run), "--stream", "--max-len",
                                          max_len], input="".join(f"{w}\n" for w in words))
        assert result.exit_code == 0, result.output
        answers = [json.loads(line) for line in result.stdout.splitlines()]
        for word, answer in zip(words, answers, strict=True):
            best = json.loads(ok(invoke("predict", run, word, "--max-len", max_len,
                                        "--json")))["hypotheses"][0]
            assert (answer["output"], answer["finished"]) == (best["output"],
                                                              best["finished"])
            seen.add(answer["finished"])
    assert seen == {True, False}


def test_messages_name_a_file_by_its_path_as_every_task_does(nfd_run, tmp_path):
    """A training and an evaluation file are often both pairs.tsv, in folders of their
    own: a message naming the file by its name alone would not say which one it means."""
    for folder in ("train", "test"):
        (tmp_path / folder).mkdir()
    unseen = tmp_path / "test" / "pairs.tsv"
    unseen.write_text("abc\tcba\nabz\tzba\n", encoding="utf-8")
    one_line_error(invoke("eval", nfd_run[0], "--data", unseen),
                   f"Error: {unseen} has source symbols the model never saw in training")
    blank = tmp_path / "train" / "pairs.tsv"
    blank.write_text("\n\n", encoding="utf-8")
    one_line_error(invoke("train", "seq2seq", "--data", blank, "--out", tmp_path / "run",
                          *SMALL), f"Error: {blank} holds no source<TAB>target pairs")
