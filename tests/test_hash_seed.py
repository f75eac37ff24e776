"""A run does not depend on Python's string hashing: the same command in processes with
different PYTHONHASHSEED values (anything keyed on hash() of a string, or on the order
of a set of strings, would differ) trains the same parameters, bit for bit, for the
tasks that build vocabularies and hash word pairs from text."""
import subprocess
import sys

import numpy as np
import pytest
from helpers import installed_env, write_csv

from recurrent.checkpoint import load_arrays

TINY = ("--hidden", "8", "--steps", "6", "--threads", "1", "--quiet", "--no-plot")


def sentiment_data(directory) -> list[str]:
    rows = [[f"{w} {v} film number {i} with {'great' if i % 3 else 'dull'} {w}s", label]
            for i, (w, v, label) in enumerate(
                [("plot", "shines", "pos"), ("cast", "drags", "neg"),
                 ("script", "sparkles", "pos"), ("score", "grates", "neg")] * 15)]
    return ["sentiment", "--data", write_csv(directory / "texts.csv", ("text", "label"), rows),
            "--ensemble", "1"]


def seq2seq_data(directory) -> list[str]:
    words = ["cat", "dog", "bird", "fish", "horse", "mouse", "snake", "whale"] * 8
    path = directory / "pairs.tsv"
    path.write_text("".join(f"{w}\t{' '.join(w.upper()[::-1])}\n" for w in words),
                    encoding="utf-8")
    return ["seq2seq", "--data", str(path), "--embed-dim", "4", "--batch-size", "16"]


def trained(tmp_path, task_args, hash_seed) -> dict:
    out = tmp_path / f"run-{hash_seed}"
    result = subprocess.run(
        [sys.executable, "-m", "recurrent", "train", *task_args, *TINY, "--out", str(out)],
        capture_output=True, text=True,
        env=installed_env(PYTHONHASHSEED=str(hash_seed)))
    assert result.returncode == 0, result.stderr
    arrays, _ = load_arrays(str(out / "last.npz"))
    return arrays


@pytest.mark.parametrize("make_args", [sentiment_data, seq2seq_data])
def test_runs_do_not_depend_on_the_hash_seed(tmp_path, make_args):
    task_args = make_args(tmp_path)
    first, second = (trained(tmp_path, task_args, seed) for seed in (0, 12345))
    assert sorted(first) == sorted(second)
    for name in first:
        assert np.array_equal(first[name], second[name]), name
