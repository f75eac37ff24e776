"""Audit (mutation round 3) of plugins/seq2seq/data.py: the hashed 90/5/5 split and the
reading of source<TAB>target lines, against the rules its module docstring states."""
import subprocess
import sys
from collections import Counter

from helpers import installed_env

from recurrent_plugins.seq2seq import data


def test_the_hashed_split_is_90_5_5():
    """40000 distinct sources: the shares of train, valid and test are 0.90, 0.05 and
    0.05 to within 0.004 (over 3 standard errors of a share near 0.05 is 0.0033), and
    a source always lands in the same split."""
    sources = [f"word{k}" for k in range(40_000)]
    counts = Counter(data.split_of(s) for s in sources)
    shares = {name: counts[name] / len(sources) for name in data.SPLITS}
    assert abs(shares["train"] - 0.90) < 0.004
    assert abs(shares["valid"] - 0.05) < 0.004
    assert abs(shares["test"] - 0.05) < 0.004
    # the same splits in processes whose string hashing differs (PYTHONHASHSEED)
    code = ("from recurrent_plugins.seq2seq import data; "
            "print(*(data.split_of(f'word{k}') for k in range(100)))")
    for seed in ("0", "1"):
        child = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                               env=installed_env(PYTHONHASHSEED=seed))
        assert child.returncode == 0, child.stderr
        assert child.stdout.split() == [data.split_of(s) for s in sources[:100]]


def test_the_first_tab_splits_a_line(tmp_path):
    """"a<TAB>b<TAB>c": source "a", target "b<TAB>c" (the first tab splits) under
    read_pairs' default rules, those of runs saved before two_fields."""
    path = tmp_path / "pairs.tsv"
    path.write_text("abc\tA B\tC\ncat\tK AE T\n", encoding="utf-8")
    pairs, _ = data.read_pairs(str(path))
    assert pairs == [("abc", "A B\tC"), ("cat", "K AE T")]


def test_pair_batch_by_hand():
    """Sources [5] and [5, 6, 7, 9], targets [4, 8, 9] and [4]; T = max(4, 3 + 1) = 4.
    The decoder reads <s> (1) then the target (teacher forcing), it predicts the target
    then </s> (2), and lengths count the </s> step; padding is 0 everywhere else."""
    batch = data.pair_batch([[5], [5, 6, 7, 9]], [[4, 8, 9], [4]])
    assert batch["x"].shape == (4, 2, 2)
    assert batch["x"][:, 0, 0].tolist() == [5, 0, 0, 0]
    assert batch["x"][:, 1, 0].tolist() == [5, 6, 7, 9]
    assert batch["x"][:, 0, 1].tolist() == [1, 4, 8, 9]
    assert batch["x"][:, 1, 1].tolist() == [1, 4, 0, 0]
    assert batch["y"][:, 0].tolist() == [4, 8, 9, 2]
    assert batch["y"][:, 1].tolist() == [4, 2, 0, 0]
    assert batch["lengths"].tolist() == [4, 2]
    assert (data.BOS, data.EOS) == (1, 2)


def test_token_level_splits_on_any_run_of_whitespace():
    """"K  AE\tT " (two spaces, a tab, a trailing blank) is three tokens at token level,
    never an empty token; at character level every character is a symbol."""
    assert data.symbols("K  AE\tT ", "token") == ["K", "AE", "T"]
    assert data.symbols("a b", "char") == ["a", " ", "b"]
    assert data.join(["K", "AE", "T"], "token") == "K AE T"


def test_source_batch_by_hand():
    """Sources [5] and [5, 6, 7]: (3, 2) time-major, in reading order, padded with 0 --
    the layout pair_batch gives the encoder in training (x[..., 0])."""
    src = data.source_batch([[5], [5, 6, 7]])
    assert src.tolist() == [[5, 5], [0, 6], [0, 7]]
    train = data.pair_batch([[5], [5, 6, 7]], [[4], [4]])["x"][:, :, 0]
    assert train[:3].tolist() == src.tolist()


def test_lines_of_only_blanks_are_skipped(tmp_path):
    """A line holding only spaces is a blank line (skipped), not a line without a tab."""
    path = tmp_path / "pairs.tsv"
    path.write_text("cat\tK AE T\n   \n\ndog\tD AO G\n", encoding="utf-8")
    pairs, _ = data.read_pairs(str(path))
    assert pairs == [("cat", "K AE T"), ("dog", "D AO G")]


def test_a_file_read_again_by_other_rules_is_read_by_them(tmp_path):
    """read_pairs keeps the pairs of the file it read last: a second read of the same
    file with other rules (a run saved before ``strip`` beside a newer one, in one
    process) gets the pairs of its own rules, not the first read's."""
    path = tmp_path / "pairs.tsv"
    path.write_text("cat \t tac\ndog\tgod\n", encoding="utf-8")
    stripped, fingerprint = data.read_pairs(str(path), strip=True)
    assert stripped == [("cat", "tac"), ("dog", "god")]
    kept, same = data.read_pairs(str(path), strip=False)
    assert kept == [("cat ", " tac"), ("dog", "god")] and same == fingerprint
