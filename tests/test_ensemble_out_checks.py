"""A new ensemble's member directories (and a run's candidate directories) are checked
before anything is written: a stray member run in --out used to be refused only after the
ensemble's config.json was written, so the directory then "already held a run" and could
not be used again; and --ensemble takes at most ensemble.MAX_MEMBERS, where 10^14 made
member directories until the disk filled."""
import os

from helpers import invoke, ok, one_line_error
from recurrent import ensemble


def _text(tmp_path):
    path = tmp_path / "text.txt"
    path.write_text("to be or not to be, that is the question. " * 60, encoding="utf-8")
    return path


def test_a_stray_member_run_is_refused_before_the_ensemble_is_written(tmp_path):
    out = tmp_path / "run"
    os.makedirs(out / "member-1")
    (out / "member-1" / "metrics.jsonl").write_text("{}\n", encoding="utf-8")
    args = ("train", "char-lm", "--data", _text(tmp_path), "--steps", 1, "--hidden", 8,
            "--seq-len", 16, "--batch-size", 4, "--threads", 1, "--quiet", "--no-plot",
            "--ensemble", 2, "--out", out)
    one_line_error(invoke(*args), "member-1 holds a run's metrics.jsonl")
    assert sorted(os.listdir(out)) == ["member-1"]  # no config.json, no member-0
    os.remove(out / "member-1" / "metrics.jsonl")
    ok(invoke(*args))  # the directory is usable once the stray file is gone


def test_ensemble_size_is_bounded(tmp_path):
    one_line_error(invoke("train", "char-lm", "--data", _text(tmp_path), "--ensemble",
                          10 ** 14, "--out", tmp_path / "run"),
                   f"{ensemble.MAX_MEMBERS}")
    assert not os.path.exists(tmp_path / "run")


def test_a_stray_candidate_run_is_refused_before_any_candidate_is_written(tmp_path):
    """The same for a run that chooses among candidates (forecast's --window auto): it
    wrote candidate-0/config.json before it found candidate-1's stray file."""
    out = tmp_path / "run"
    os.makedirs(out / "candidate-1")
    (out / "candidate-1" / "metrics.jsonl").write_text("{}\n", encoding="utf-8")
    args = ("train", "forecast", "--steps", 1, "--hidden", 4, "--threads", 1, "--quiet",
            "--no-plot", "--out", out)
    one_line_error(invoke(*args), "candidate-1 holds a run's metrics.jsonl")
    assert sorted(os.listdir(out)) == ["candidate-1"]
    os.remove(out / "candidate-1" / "metrics.jsonl")
    ok(invoke(*args))
