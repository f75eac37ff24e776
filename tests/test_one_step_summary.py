"""The training summary counts a run, an ensemble's members or a choice's candidates
trained for one step as "1 step", not "1 steps"."""
import math

from helpers import invoke, ok, tiny_text, write_csv

ONE = ("--steps", 1, "--hidden", 4, "--threads", 1, "--quiet", "--no-plot")


def test_a_run_of_one_step(tmp_path):
    out = ok(invoke("train", "char-lm", "--data", tiny_text(tmp_path), *ONE,
                    "--seq-len", 8, "--batch-size", 2, "--out", tmp_path / "run"))
    assert out.startswith("done after 1 step: "), out


def test_members_and_candidates_of_one_step(tmp_path):
    texts = write_csv(tmp_path / "texts.csv", ("text", "label"),
                      [[f"{'good fine' if i % 2 else 'bad awful'} text {i}",
                        "pos" if i % 2 else "neg"] for i in range(60)])
    out = ok(invoke("train", "sentiment", "--data", texts, "--ensemble", 2, *ONE,
                    "--out", tmp_path / "ens"))
    assert out.startswith("done after 2 members of 1 step each: "), out
    series = write_csv(tmp_path / "series.csv", ("time", "v"),
                       [[i, round(math.sin(i / 5), 6)] for i in range(200)])
    out = ok(invoke("train", "forecast", "--data", series, *ONE, "--out", tmp_path / "fc"))
    assert " candidates of 1 step each: " in out, out
